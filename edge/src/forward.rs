//! What goes upstream with a call besides the message: the caller's credentials, the request id,
//! the trace context, the deadline, and the client's address appended to `x-forwarded-for`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::ConnectInfo;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use tonic::metadata::{MetadataMap, MetadataValue};

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Headers copied from a REST request to the gRPC call.
const FORWARDED_HEADERS: [&str; 4] = ["authorization", "x-request-id", "traceparent", "tracestate"];

/// Headers that describe one HTTP hop and never travel further (RFC 9110 §7.6.1), plus cookies,
/// which no upstream reads.
const HOP_HEADERS: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// Who is calling: the address rate limits count against, and the `x-forwarded-for` chain to
/// send upstream, which ends with that address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress {
    pub ip: Option<IpAddr>,
    forwarded_for: Option<HeaderValue>,
}

impl ClientAddress {
    /// From the connection's peer and the incoming `x-forwarded-for`, trusting the last
    /// `trusted_proxies` hops (the proxies in front of the edge) to have appended honestly.
    pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted_proxies: usize) -> Self {
        let mut chain: Vec<String> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|entry| entry.trim().to_owned())
            .filter(|entry| !entry.is_empty())
            .collect();
        if let Some(peer) = peer {
            chain.push(peer.to_string());
        }
        let Some(last) = chain.len().checked_sub(1) else {
            return Self {
                ip: None,
                forwarded_for: None,
            };
        };
        let client_index = last.saturating_sub(trusted_proxies);
        chain.truncate(client_index + 1);
        let ip = chain.last().and_then(|entry| parse_ip(entry)).or(peer);
        Self {
            ip,
            forwarded_for: HeaderValue::from_str(&chain.join(", ")).ok(),
        }
    }

    /// From a request's extensions (`ConnectInfo`) and headers.
    pub fn from_request<B>(request: &http::Request<B>, trusted_proxies: usize) -> Self {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Self::resolve(peer, request.headers(), trusted_proxies)
    }

    pub fn forwarded_for(&self) -> Option<&HeaderValue> {
        self.forwarded_for.as_ref()
    }
}

/// `x-forwarded-for` entries may carry ports (`1.2.3.4:5678`, `[::1]:80`).
fn parse_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

/// The deadline of a call: the client's `grpc-timeout` capped by the route's, or the route's.
pub fn deadline(headers: &HeaderMap, route_timeout: Duration) -> Duration {
    parse_grpc_timeout(headers).map_or(route_timeout, |asked| asked.min(route_timeout))
}

/// The `grpc-timeout` header: 1 to 8 digits and a unit (H, M, S, m, u, n). Malformed values are
/// ignored, as gRPC servers do.
fn parse_grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(&GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// `duration` as a `grpc-timeout` value, in the finest unit that fits 8 digits.
pub fn grpc_timeout_value(duration: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let candidates = [
        (duration.as_nanos(), "n"),
        (duration.as_micros(), "u"),
        (duration.as_millis(), "m"),
        (u128::from(duration.as_secs()), "S"),
        (u128::from(duration.as_secs() / 60), "M"),
    ];
    let (amount, unit) = candidates
        .into_iter()
        .find(|(amount, _)| *amount <= MAX)
        .unwrap_or((u128::from(duration.as_secs() / 3600).min(MAX), "H"));
    HeaderValue::from_str(&format!("{amount}{unit}"))
        .unwrap_or_else(|_| HeaderValue::from_static("99999999H"))
}

/// Metadata for a transcoded REST call.
pub fn rest_metadata(headers: &HeaderMap, client: &ClientAddress) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    for name in FORWARDED_HEADERS {
        if let Some(value) = headers.get(name)
            && let Ok(value) = MetadataValue::try_from(value.as_bytes())
        {
            metadata.insert(name, value);
        }
    }
    if let Some(chain) = client.forwarded_for()
        && let Ok(value) = MetadataValue::try_from(chain.as_bytes())
    {
        metadata.insert("x-forwarded-for", value);
    }
    metadata
}

/// Prepares a proxied gRPC call's headers (native, or gRPC-web turned into gRPC by tonic-web) for
/// upstream.
pub fn proxy_headers(headers: &mut HeaderMap, client: &ClientAddress, deadline: Duration) {
    for name in &HOP_HEADERS {
        headers.remove(name);
    }
    // Only runmesh components mint service tokens; one from outside is never passed on.
    headers.remove(runmesh_platform::auth::SERVICE_TOKEN_HEADER);
    headers.remove(&X_FORWARDED_FOR);
    if let Some(chain) = client.forwarded_for() {
        headers.insert(X_FORWARDED_FOR, chain.clone());
    }
    headers.insert(GRPC_TIMEOUT, grpc_timeout_value(deadline));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let client = ClientAddress::resolve(Some(ip("203.0.113.9")), &headers(&["6.6.6.6"]), 0);
        assert_eq!(client.ip, Some(ip("203.0.113.9")));
        assert_eq!(client.forwarded_for().unwrap(), "6.6.6.6, 203.0.113.9");
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let client = ClientAddress::resolve(
            Some(ip("10.0.0.5")),
            &headers(&["6.6.6.6, 198.51.100.7"]),
            1,
        );
        assert_eq!(client.ip, Some(ip("198.51.100.7")));
        // The chain ends with the client, where upstream services look for it.
        assert_eq!(client.forwarded_for().unwrap(), "6.6.6.6, 198.51.100.7");
    }

    #[test]
    fn more_trusted_proxies_than_hops_takes_the_first() {
        let client =
            ClientAddress::resolve(Some(ip("10.0.0.5")), &headers(&["198.51.100.7:443"]), 3);
        assert_eq!(client.ip, Some(ip("198.51.100.7")));
    }

    #[test]
    fn deadlines_are_capped_by_the_route() {
        let mut asked = HeaderMap::new();
        asked.insert(GRPC_TIMEOUT, HeaderValue::from_static("500m"));
        assert_eq!(
            deadline(&asked, Duration::from_secs(30)),
            Duration::from_millis(500)
        );
        asked.insert(GRPC_TIMEOUT, HeaderValue::from_static("2M"));
        assert_eq!(
            deadline(&asked, Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        asked.insert(GRPC_TIMEOUT, HeaderValue::from_static("soon"));
        assert_eq!(
            deadline(&asked, Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        assert_eq!(
            deadline(&HeaderMap::new(), Duration::from_secs(7)),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn timeouts_encode_in_eight_digits() {
        assert_eq!(grpc_timeout_value(Duration::from_millis(1500)), "1500000u");
        assert_eq!(grpc_timeout_value(Duration::from_secs(30)), "30000000u");
        assert_eq!(grpc_timeout_value(Duration::from_secs(200_000)), "200000S");
        assert_eq!(grpc_timeout_value(Duration::from_nanos(5)), "5n");
    }

    #[test]
    fn rest_calls_carry_credentials_ids_and_the_chain() {
        let mut incoming = HeaderMap::new();
        incoming.insert("authorization", HeaderValue::from_static("Bearer t"));
        incoming.insert("x-request-id", HeaderValue::from_static("r-1"));
        incoming.insert("traceparent", HeaderValue::from_static("00-abc-def-01"));
        incoming.insert("cookie", HeaderValue::from_static("secret=1"));
        let client = ClientAddress::resolve(Some(ip("203.0.113.9")), &HeaderMap::new(), 0);
        let metadata = rest_metadata(&incoming, &client);
        assert_eq!(metadata.get("authorization").unwrap(), "Bearer t");
        assert_eq!(metadata.get("x-request-id").unwrap(), "r-1");
        assert_eq!(metadata.get("traceparent").unwrap(), "00-abc-def-01");
        assert_eq!(metadata.get("x-forwarded-for").unwrap(), "203.0.113.9");
        assert!(metadata.get("cookie").is_none());
    }

    #[test]
    fn proxied_calls_lose_hop_headers_cookies_and_any_service_token_from_outside() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer t"));
        headers.insert("cookie", HeaderValue::from_static("secret=1"));
        headers.insert(
            runmesh_platform::auth::SERVICE_TOKEN_HEADER,
            HeaderValue::from_static("forged"),
        );
        let client = ClientAddress::resolve(Some(ip("203.0.113.9")), &HeaderMap::new(), 0);
        proxy_headers(&mut headers, &client, Duration::from_secs(5));
        assert_eq!(headers.get("authorization").unwrap(), "Bearer t");
        assert!(headers.get("cookie").is_none());
        assert!(
            headers
                .get(runmesh_platform::auth::SERVICE_TOKEN_HEADER)
                .is_none()
        );
        assert_eq!(headers.get("grpc-timeout").unwrap(), "5000000u");
    }
}
