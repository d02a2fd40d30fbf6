//! The knowledge base: Markdown articles (the built-in ones, in Korean and English, embedded in
//! the binary, plus an operator's folder) cut into chunks at their headings. Every chunk knows
//! its article and heading, which is what an answer cites.

use std::path::Path;

use super::builtin::BUILTIN;
use super::text::{Lang, detect};

/// One section of an article.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Stable id: `<origin>:<lang>/<slug>#<n>`; what citations name.
    pub id: String,
    /// The article's file name without `.md`; the same in both languages.
    pub slug: String,
    pub lang: Lang,
    pub title: String,
    /// The section's heading (the title for the text before the first `##`).
    pub heading: String,
    pub text: String,
    /// `builtin` or `operator`.
    pub origin: &'static str,
}

/// Cuts one article into chunks: the `# ` line is the title, each `## ` (or `### `) starts a
/// chunk. Empty sections are dropped.
pub fn chunk_article(origin: &'static str, lang: Lang, slug: &str, markdown: &str) -> Vec<Chunk> {
    let mut title = slug.to_owned();
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut heading: Option<String> = None;
    let mut body = String::new();
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("# ") {
            title = rest.trim().to_owned();
            continue;
        }
        let section = trimmed
            .strip_prefix("### ")
            .or_else(|| trimmed.strip_prefix("## "));
        if let Some(rest) = section {
            sections.push((
                heading.take().unwrap_or_default(),
                std::mem::take(&mut body),
            ));
            heading = Some(rest.trim().to_owned());
            continue;
        }
        body.push_str(line);
        body.push('\n');
    }
    sections.push((heading.unwrap_or_default(), body));
    sections
        .into_iter()
        .filter(|(_, text)| !text.trim().is_empty())
        .enumerate()
        .map(|(n, (heading, text))| Chunk {
            id: format!("{origin}:{}/{slug}#{n}", lang.code()),
            slug: slug.to_owned(),
            lang,
            heading: if heading.is_empty() {
                title.clone()
            } else {
                heading
            },
            title: title.clone(),
            text: text.trim().to_owned(),
            origin,
        })
        .collect()
}

/// The built-in articles' chunks.
pub fn builtin_chunks() -> Vec<Chunk> {
    BUILTIN
        .iter()
        .flat_map(|(lang, slug, text)| {
            let lang = Lang::from_code(lang).unwrap_or(Lang::En);
            chunk_article("builtin", lang, slug, text)
        })
        .collect()
}

/// The built-in articles' count (each in both languages).
pub fn builtin_article_count() -> usize {
    BUILTIN.len() / 2
}

/// An operator's folder: every `*.md` under `dir` (recursively). The language is the parent
/// folder's name when it is `ko` or `en`, else detected from the text.
pub fn load_dir(dir: &Path) -> std::io::Result<Vec<Chunk>> {
    let mut chunks = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&current)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("md") {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            let slug = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("article")
                .to_owned();
            let lang = path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .and_then(Lang::from_code)
                .unwrap_or_else(|| detect(&text));
            chunks.extend(chunk_article("operator", lang, &slug, &text));
        }
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn every_builtin_article_exists_in_both_languages_and_is_listed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
        for lang in ["en", "ko"] {
            let mut files: Vec<String> = std::fs::read_dir(dir.join(lang))
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| {
                            e.file_name()
                                .to_string_lossy()
                                .trim_end_matches(".md")
                                .to_owned()
                        })
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            let mut listed: Vec<String> = BUILTIN
                .iter()
                .filter(|(l, _, _)| *l == lang)
                .map(|(_, slug, _)| (*slug).to_owned())
                .collect();
            listed.sort();
            assert_eq!(files, listed, "knowledge/{lang} and builtin.rs differ");
        }
        assert!(builtin_article_count() >= 40);
    }

    #[test]
    fn articles_are_cut_at_headings() {
        let chunks = chunk_article(
            "builtin",
            Lang::En,
            "tempo",
            "# Tempo runs\n\nIntro text.\n\n## What it is\n\nComfortably hard.\n\n## Empty\n\n",
        );
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].heading, "Tempo runs");
        assert_eq!(chunks[1].heading, "What it is");
        assert_eq!(chunks[1].title, "Tempo runs");
        assert_eq!(chunks[1].id, "builtin:en/tempo#1");
        let all = builtin_chunks();
        assert!(all.iter().all(|c| !c.text.is_empty()));
        assert!(all.iter().any(|c| c.lang == Lang::Ko));
    }
}
