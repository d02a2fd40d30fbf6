//! What an answer is made of: the text, the passages cited, the data and calculations used, and
//! notes. Stored with the conversation as JSON and sent as `runmesh.assist.v1` messages.

use serde::{Deserialize, Serialize};

use super::knowledge::Chunk;
use super::text::Lang;
use super::understand::Intent;

/// One knowledge passage an answer relies on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    pub source_id: String,
    pub article: String,
    pub title: String,
    pub heading: String,
    pub language: String,
    pub origin: String,
    pub excerpt: String,
}

impl Citation {
    pub fn of(chunk: &Chunk) -> Self {
        Self {
            source_id: chunk.id.clone(),
            article: chunk.slug.clone(),
            title: chunk.title.clone(),
            heading: chunk.heading.clone(),
            language: chunk.lang.code().to_owned(),
            origin: chunk.origin.to_owned(),
            excerpt: excerpt(&chunk.text, 400),
        }
    }
}

/// `text` cut at a word boundary to about `max` characters.
pub fn excerpt(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    let cut = match cut.rfind(' ') {
        Some(pos) if pos > max / 2 => cut[..pos].to_owned(),
        _ => cut,
    };
    format!("{cut}…")
}

/// One tool call or calculation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataUsed {
    pub source: String,
    pub available: bool,
    pub detail: String,
    pub facts: Vec<(String, String)>,
}

impl DataUsed {
    pub fn new(source: &str, detail: impl Into<String>) -> Self {
        Self {
            source: source.to_owned(),
            available: true,
            detail: detail.into(),
            facts: Vec::new(),
        }
    }

    pub fn missing(source: &str, why: impl Into<String>) -> Self {
        Self {
            source: source.to_owned(),
            available: false,
            detail: why.into(),
            facts: Vec::new(),
        }
    }

    pub fn fact(mut self, name: &str, value: impl Into<String>) -> Self {
        self.facts.push((name.to_owned(), value.into()));
        self
    }
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub lang: Lang,
    pub intent: Intent,
    pub text: String,
    pub citations: Vec<Citation>,
    pub data: Vec<DataUsed>,
    pub notes: Vec<String>,
    pub answered: bool,
    pub model_answered: bool,
}

/// The text in the answer's language.
pub fn tr(lang: Lang, en: impl Into<String>, ko: impl Into<String>) -> String {
    match lang {
        Lang::En => en.into(),
        Lang::Ko => ko.into(),
    }
}

/// Pieces of `text` to stream: sentences and lines, each at most ~120 characters.
pub fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        let boundary = matches!(c, '\n' | '.' | '?' | '!' | '。') || current.chars().count() >= 120;
        if boundary && (c == '\n' || current.chars().count() >= 20) {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_rejoin_into_the_text() {
        let text = "First sentence is here. Second one follows!\nA line.\n";
        assert_eq!(pieces(text).concat(), text);
        assert!(pieces(text).len() >= 2);
        assert_eq!(excerpt("a b c", 400), "a b c");
        assert!(excerpt(&"word ".repeat(200), 50).ends_with('…'));
    }
}
