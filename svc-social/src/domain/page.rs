//! Keyset pagination: a page token is the opaque position after the last item of a page (its
//! sort key and id), so pages stay stable while rows are added and a deep page costs what the
//! first does.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::Rejected;

const VERSION: &str = "s1";

/// The position after the last item of a page: a sort key and the item's id (which breaks ties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    pub sort_key: i64,
    pub id: String,
}

impl PageToken {
    pub fn after(sort_key: i64, id: impl Into<String>) -> Self {
        Self {
            sort_key,
            id: id.into(),
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{VERSION}|{}|{}", self.sort_key, self.id))
    }

    /// `None` for an empty token (the first page).
    pub fn decode(token: &str) -> Result<Option<Self>, Rejected> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || Rejected::new("is not a token from a previous page");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.splitn(3, '|');
        let (Some(VERSION), Some(sort_key), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        Ok(Some(Self {
            sort_key: sort_key.parse().map_err(|_| invalid())?,
            id: id.to_owned(),
        }))
    }
}

/// A page size within `1..=100`, 20 when the client sent 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(pub u64);

impl PageSize {
    pub fn parse(requested: u32) -> Self {
        match requested {
            0 => Self(20),
            size => Self(u64::from(size).min(100)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let token = PageToken::after(-42, "run|with|bars");
        assert_eq!(PageToken::decode(&token.encode()).unwrap(), Some(token));
        assert_eq!(PageToken::decode("").unwrap(), None);
        assert!(PageToken::decode("nonsense").is_err());
        assert!(PageToken::decode(&URL_SAFE_NO_PAD.encode("s1|x|y")).is_err());
        assert_eq!(PageSize::parse(0), PageSize(20));
        assert_eq!(PageSize::parse(500), PageSize(100));
    }
}
