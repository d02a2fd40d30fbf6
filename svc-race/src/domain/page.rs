//! Keyset pagination: a page token is the opaque position after the last item of a page (its
//! sort key and id), so pages stay stable while rows are added.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use super::Rejected;

const VERSION: &str = "p1";

/// The position after the last item of a page: an optional sort key (e.g. a start time in
/// microseconds) and the item's id, which breaks ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    pub sort_key: Option<i64>,
    pub id: Uuid,
}

impl PageToken {
    pub fn after(sort_key: Option<i64>, id: Uuid) -> Self {
        Self { sort_key, id }
    }

    pub fn encode(&self) -> String {
        let sort_key = self.sort_key.map(|key| key.to_string()).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(format!("{VERSION}|{sort_key}|{}", self.id.simple()))
    }

    /// `None` for an empty token (the first page).
    pub fn decode(token: &str) -> Result<Option<Self>, Rejected> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || Rejected::new("is not a token from a previous page");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.split('|');
        let (Some(VERSION), Some(sort_key), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let sort_key = if sort_key.is_empty() {
            None
        } else {
            Some(sort_key.parse().map_err(|_| invalid())?)
        };
        let id = Uuid::parse_str(id).map_err(|_| invalid())?;
        Ok(Some(Self { sort_key, id }))
    }
}

/// A page size within `1..=max`, `default` when the client sent 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(pub u64);

impl PageSize {
    pub fn parse(requested: i32, default: u64, max: u64) -> Result<Self, Rejected> {
        match requested {
            0 => Ok(Self(default)),
            size if size < 0 => Err(Rejected::new("must not be negative")),
            size => Ok(Self(u64::from(size.unsigned_abs()).min(max))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let id = Uuid::now_v7();
        for token in [PageToken::after(Some(-42), id), PageToken::after(None, id)] {
            assert_eq!(PageToken::decode(&token.encode()).unwrap(), Some(token));
        }
        assert_eq!(PageToken::decode("").unwrap(), None);
        assert!(PageToken::decode("nonsense").is_err());
        assert!(PageToken::decode(&URL_SAFE_NO_PAD.encode("p1|x|y")).is_err());
        assert!(
            PageToken::decode(&URL_SAFE_NO_PAD.encode("p2||00000000000000000000000000000000"))
                .is_err()
        );
    }

    #[test]
    fn page_sizes_default_and_cap() {
        assert_eq!(PageSize::parse(0, 20, 100).unwrap(), PageSize(20));
        assert_eq!(PageSize::parse(500, 20, 100).unwrap(), PageSize(100));
        assert_eq!(PageSize::parse(7, 20, 100).unwrap(), PageSize(7));
        assert!(PageSize::parse(-1, 20, 100).is_err());
    }
}
