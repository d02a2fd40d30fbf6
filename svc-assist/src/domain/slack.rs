//! The Slack Web API as rules: the `chat.postMessage` body (Block Kit with a plain-text
//! fallback) and what each answer means for the delivery.

use std::time::Duration;

use serde_json::{Value, json};

/// What one Slack answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `ok: true`; the value is the message `ts` or the opened channel id.
    Ok(String),
    /// The token is unusable (`invalid_auth`, `token_revoked`, `account_inactive`,
    /// `missing_scope`, `not_authed`): stop the workspace's delivery, never retry.
    StopWorkspace(String),
    /// The runner's member id or DM is unusable (`channel_not_found`, `user_not_found`,
    /// `is_archived`, …): mark their Slack id invalid.
    InvalidRecipient(String),
    /// HTTP 429: wait exactly this long.
    RateLimited(Duration),
    /// 5xx, `fatal_error`, `internal_error`, `service_unavailable`, `request_timeout`: retry
    /// with backoff.
    Transient(String),
    /// Any other `ok: false`: the message itself is refused; fail it.
    Rejected(String),
}

/// Errors that stop the workspace.
const STOP: &[&str] = &[
    "invalid_auth",
    "token_revoked",
    "account_inactive",
    "missing_scope",
    "not_authed",
    "token_expired",
    "not_allowed_token_type",
    "no_permission",
    "team_access_not_granted",
];

/// Errors that mean the recipient is unusable.
const INVALID_RECIPIENT: &[&str] = &[
    "channel_not_found",
    "user_not_found",
    "is_archived",
    "user_disabled",
    "users_not_found",
    "cannot_dm_bot",
    "user_is_bot",
];

/// Errors worth retrying.
const TRANSIENT: &[&str] = &[
    "fatal_error",
    "internal_error",
    "service_unavailable",
    "request_timeout",
    "ratelimited",
    "rate_limited",
];

/// Classifies an answer: its HTTP status, `Retry-After` header (seconds) and JSON body
/// (`None` when it was not JSON). `key` is what `ok: true` yields (`ts` or `channel.id`).
pub fn classify(status: u16, retry_after: Option<&str>, body: Option<&Value>, key: Key) -> Outcome {
    if status == 429 {
        let seconds = retry_after
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(1);
        return Outcome::RateLimited(Duration::from_secs(seconds));
    }
    if status >= 500 {
        return Outcome::Transient(format!("HTTP {status}"));
    }
    let Some(body) = body else {
        return if (200..300).contains(&status) {
            Outcome::Transient(format!("HTTP {status} without a JSON body"))
        } else {
            Outcome::Rejected(format!("HTTP {status}"))
        };
    };
    if body.get("ok").and_then(Value::as_bool) == Some(true) {
        let value = match key {
            Key::Ts => body.get("ts").and_then(Value::as_str),
            Key::ChannelId => body
                .get("channel")
                .and_then(|channel| channel.get("id"))
                .and_then(Value::as_str),
        };
        return Outcome::Ok(value.unwrap_or_default().to_owned());
    }
    let error = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown_error")
        .to_owned();
    if STOP.contains(&error.as_str()) {
        Outcome::StopWorkspace(error)
    } else if INVALID_RECIPIENT.contains(&error.as_str()) {
        Outcome::InvalidRecipient(error)
    } else if TRANSIENT.contains(&error.as_str()) {
        Outcome::Transient(error)
    } else {
        Outcome::Rejected(error)
    }
}

/// Refusals of a message itself, named as such in the error metric (any other code is `other`:
/// the label's values stay a fixed set whatever a server answers).
const REJECTED: &[&str] = &[
    "msg_too_long",
    "no_text",
    "invalid_blocks",
    "invalid_arguments",
    "invalid_form_data",
    "too_many_attachments",
    "restricted_action",
    "not_in_channel",
    "channel_is_archived",
];

/// The `error` label of an answer that was not `ok` (`None` for `ok: true`): `ratelimited` for
/// HTTP 429, `http_5xx`, Slack's own code when it is one this module knows, `http_4xx` or
/// `bad_answer` without a JSON body, else `other`.
pub fn error_label(status: u16, body: Option<&Value>) -> Option<&'static str> {
    if status == 429 {
        return Some("ratelimited");
    }
    if status >= 500 {
        return Some("http_5xx");
    }
    let Some(body) = body else {
        return Some(if (200..300).contains(&status) {
            "bad_answer"
        } else {
            "http_4xx"
        });
    };
    if body.get("ok").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let code = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(
        [STOP, INVALID_RECIPIENT, TRANSIENT, REJECTED]
            .iter()
            .flat_map(|codes| codes.iter())
            .find(|known| **known == code)
            .copied()
            .unwrap_or("other"),
    )
}

/// What a successful answer yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Ts,
    ChannelId,
}

/// One message for Slack.
#[derive(Debug, Clone, PartialEq)]
pub struct Message<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub fields: &'a [(String, String)],
    pub link: Option<&'a str>,
    pub link_label: &'a str,
}

/// Escapes `&`, `<` and `>` as Slack's text formatting requires.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}

/// The plain-text fallback (notifications, screen readers, clients without blocks).
pub fn fallback_text(message: &Message<'_>) -> String {
    let mut text = escape(message.title);
    if !message.body.is_empty() {
        text.push('\n');
        text.push_str(&escape(message.body));
    }
    if let Some(link) = message.link {
        text.push('\n');
        text.push_str(link);
    }
    text
}

/// The `chat.postMessage` body: a header, the text, up to 10 fields, and a button back to the
/// app when there is a link; `text` as the fallback.
pub fn post_message(channel: &str, message: &Message<'_>) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": clip(message.title, 150), "emoji": true},
    })];
    if !message.body.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip(&escape(message.body), 3000)},
        }));
    }
    if !message.fields.is_empty() {
        let fields: Vec<Value> = message
            .fields
            .iter()
            .take(10)
            .map(|(label, value)| {
                json!({"type": "mrkdwn", "text": clip(&format!("*{}*\n{}", escape(label), escape(value)), 2000)})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if let Some(link) = message.link {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": message.link_label},
                "url": link,
            }],
        }));
    }
    json!({
        "channel": channel,
        "text": clip(&fallback_text(message), 4000),
        "blocks": blocks,
        "unfurl_links": false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn answers_are_classified_as_the_issue_lists() {
        let err = |e: &str| json!({"ok": false, "error": e});
        assert_eq!(
            classify(200, None, Some(&json!({"ok": true, "ts": "1.2"})), Key::Ts),
            Outcome::Ok("1.2".into())
        );
        assert_eq!(
            classify(
                200,
                None,
                Some(&json!({"ok": true, "channel": {"id": "D1"}})),
                Key::ChannelId
            ),
            Outcome::Ok("D1".into())
        );
        for code in [
            "invalid_auth",
            "token_revoked",
            "account_inactive",
            "missing_scope",
        ] {
            assert!(matches!(
                classify(200, None, Some(&err(code)), Key::Ts),
                Outcome::StopWorkspace(_)
            ));
        }
        for code in ["channel_not_found", "user_not_found", "is_archived"] {
            assert!(matches!(
                classify(200, None, Some(&err(code)), Key::Ts),
                Outcome::InvalidRecipient(_)
            ));
        }
        assert_eq!(
            classify(429, Some("7"), Some(&err("ratelimited")), Key::Ts),
            Outcome::RateLimited(Duration::from_secs(7))
        );
        assert!(matches!(
            classify(503, None, None, Key::Ts),
            Outcome::Transient(_)
        ));
        assert!(matches!(
            classify(200, None, Some(&err("fatal_error")), Key::Ts),
            Outcome::Transient(_)
        ));
        assert!(matches!(
            classify(200, None, Some(&err("msg_too_long")), Key::Ts),
            Outcome::Rejected(_)
        ));
    }

    #[test]
    fn error_labels_are_a_fixed_set() {
        let err = |e: &str| json!({"ok": false, "error": e});
        assert_eq!(error_label(200, Some(&json!({"ok": true}))), None);
        assert_eq!(error_label(429, None), Some("ratelimited"));
        assert_eq!(error_label(502, Some(&err("x"))), Some("http_5xx"));
        assert_eq!(error_label(404, None), Some("http_4xx"));
        assert_eq!(error_label(200, None), Some("bad_answer"));
        assert_eq!(
            error_label(200, Some(&err("invalid_auth"))),
            Some("invalid_auth")
        );
        assert_eq!(
            error_label(200, Some(&err("channel_not_found"))),
            Some("channel_not_found")
        );
        assert_eq!(
            error_label(200, Some(&err("msg_too_long"))),
            Some("msg_too_long")
        );
        assert_eq!(
            error_label(200, Some(&err("a_runner_id_42"))),
            Some("other")
        );
        assert_eq!(error_label(200, Some(&json!({"ok": false}))), Some("other"));
    }

    #[test]
    fn the_message_has_blocks_and_a_fallback() {
        let fields = vec![("Bib".to_owned(), "1042".to_owned())];
        let body = post_message(
            "D123",
            &Message {
                title: "You're in: Seoul <10K>",
                body: "Confirmed & paid",
                fields: &fields,
                link: Some("https://runmesh.example/races/1"),
                link_label: "Open",
            },
        );
        assert_eq!(body["channel"], "D123");
        assert_eq!(
            body["text"],
            "You're in: Seoul &lt;10K&gt;\nConfirmed &amp; paid\nhttps://runmesh.example/races/1"
        );
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[2]["fields"][0]["text"], "*Bib*\n1042");
        assert_eq!(
            blocks[3]["elements"][0]["url"],
            "https://runmesh.example/races/1"
        );
    }
}
