//! Run files to [`Activity`]: format detection by content, `.gz` unwrapping, bounded parsing.

mod fit;
mod gpx_tcx;

use std::io::Read;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::track::{Activity, FileFormat};

/// Bounds the caller sets on one file; parsing stops with an error as soon as one is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file accepted, compressed or not; also caps what a `.gz` may expand to.
    pub max_bytes: usize,
    /// Most track points accepted over all sessions.
    pub max_points: usize,
}

impl Default for Limits {
    /// 50 MiB and 2 million points (over 23 days of 1 s recording).
    fn default() -> Self {
        Limits {
            max_bytes: 50 * 1024 * 1024,
            max_points: 2_000_000,
        }
    }
}

/// Why a file was refused. [`ParseError::reason`] is the `ErrorInfo.reason` the service sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a FIT, GPX or TCX file (or their `.gz`), or a FIT file that is not an activity.
    #[error("unsupported file: {0}")]
    UnsupportedFile(String),
    /// A supported format that is damaged or truncated; says what was wrong.
    #[error("corrupt file: {0}")]
    CorruptFile(String),
    /// Readable, but without a single timestamped point.
    #[error("no track: {0}")]
    NoTrack(String),
    /// Over [`Limits::max_bytes`] (the file, or what its gzip expands to).
    #[error("file too large: over {limit} bytes")]
    TooLarge { limit: usize },
    /// Over [`Limits::max_points`].
    #[error("too many points: over {limit}")]
    TooManyPoints { limit: usize },
}

impl ParseError {
    /// `UNSUPPORTED_FILE`, `CORRUPT_FILE`, `NO_TRACK`, `FILE_TOO_LARGE` or `TOO_MANY_POINTS`.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::UnsupportedFile(_) => "UNSUPPORTED_FILE",
            ParseError::CorruptFile(_) => "CORRUPT_FILE",
            ParseError::NoTrack(_) => "NO_TRACK",
            ParseError::TooLarge { .. } => "FILE_TOO_LARGE",
            ParseError::TooManyPoints { .. } => "TOO_MANY_POINTS",
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What the bytes are, by content alone: `(format, gzipped)`. For gzip only the magic bytes are
/// looked at (the format inside is known once [`parse`] inflates it), so the format is `None`.
pub fn detect_format(bytes: &[u8]) -> (Option<FileFormat>, bool) {
    if bytes.starts_with(&GZIP_MAGIC) {
        return (None, true);
    }
    (detect_plain(bytes), false)
}

fn detect_plain(bytes: &[u8]) -> Option<FileFormat> {
    if fit::looks_like_fit(bytes) {
        return Some(FileFormat::Fit);
    }
    gpx_tcx::sniff_root(bytes)
}

/// Parses a FIT, GPX or TCX file, plain or gzipped, recognised by its content (the file name
/// plays no part). Never panics; every failure is a [`ParseError`].
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Activity, ParseError> {
    if bytes.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    if bytes.starts_with(&GZIP_MAGIC) {
        let inflated = gunzip(bytes, limits.max_bytes)?;
        let mut activity = parse_plain(&inflated, limits)?;
        activity.gzipped = true;
        return Ok(activity);
    }
    parse_plain(bytes, limits)
}

fn parse_plain(bytes: &[u8], limits: &Limits) -> Result<Activity, ParseError> {
    match detect_plain(bytes) {
        Some(FileFormat::Fit) => fit::parse(bytes, limits),
        Some(format @ (FileFormat::Gpx | FileFormat::Tcx)) => gpx_tcx::parse(bytes, format, limits),
        None if bytes.starts_with(&GZIP_MAGIC) => Err(ParseError::UnsupportedFile(
            "a gzip inside a gzip".to_owned(),
        )),
        None => Err(ParseError::UnsupportedFile(
            "not a FIT, GPX or TCX file".to_owned(),
        )),
    }
}

fn gunzip(bytes: &[u8], max_bytes: usize) -> Result<Vec<u8>, ParseError> {
    let decoder = flate2::read::MultiGzDecoder::new(bytes);
    let cap = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut out = Vec::new();
    decoder
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| ParseError::CorruptFile(format!("gzip: {e}")))?;
    if out.len() > max_bytes {
        return Err(ParseError::TooLarge { limit: max_bytes });
    }
    Ok(out)
}

/// An XML timestamp: RFC 3339, or without an offset (taken as UTC, as GPX 1.0 writers do).
pub(crate) fn parse_xml_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn garbage_is_unsupported_and_empty_is_unsupported() {
        let limits = Limits::default();
        assert_eq!(
            parse(b"hello", &limits).unwrap_err().reason(),
            "UNSUPPORTED_FILE"
        );
        assert_eq!(
            parse(b"", &limits).unwrap_err().reason(),
            "UNSUPPORTED_FILE"
        );
        assert_eq!(
            parse(b"<?xml version=\"1.0\"?><kml/>", &limits)
                .unwrap_err()
                .reason(),
            "UNSUPPORTED_FILE"
        );
    }

    #[test]
    fn the_size_cap_applies_before_parsing() {
        let limits = Limits {
            max_bytes: 4,
            max_points: 10,
        };
        assert_eq!(
            parse(b"<gpx></gpx>", &limits).unwrap_err(),
            ParseError::TooLarge { limit: 4 }
        );
    }

    #[test]
    fn a_broken_gzip_is_corrupt() {
        let err = parse(&[0x1f, 0x8b, 8, 0, 0, 0], &Limits::default()).unwrap_err();
        assert_eq!(err.reason(), "CORRUPT_FILE");
    }

    #[test]
    fn xml_times_with_and_without_offsets() {
        let z = parse_xml_time("2019-01-29T10:25:13.000Z").unwrap();
        assert_eq!(z.timestamp(), 1_548_757_513);
        assert_eq!(parse_xml_time("2019-01-29T11:25:13+01:00"), Some(z));
        assert_eq!(parse_xml_time(" 2019-01-29T10:25:13 "), Some(z));
        assert_eq!(parse_xml_time("yesterday"), None);
    }
}
