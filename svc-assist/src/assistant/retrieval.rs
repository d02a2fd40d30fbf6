//! Retrieval over the knowledge chunks: BM25 (Okapi, k1 1.2, b 0.75) over dictionary-free
//! tokens, with the query expanded across Korean and English, optionally fused with dense
//! retrieval by reciprocal rank. One passage per article: the best section of the best language
//! version (the question's language wins a tie).

use std::collections::HashMap;

use super::knowledge::Chunk;
use super::text::{Lang, expand_query, tokenize};

const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Reciprocal-rank fusion constant (Cormack et al.).
pub const RRF_K: f64 = 60.0;
/// The boost of a passage in the question's language.
const SAME_LANGUAGE: f64 = 1.15;

/// A BM25 index over chunks.
#[derive(Debug, Default)]
pub struct Bm25 {
    chunks: Vec<Chunk>,
    /// Term frequencies per chunk.
    terms: Vec<HashMap<String, u32>>,
    lengths: Vec<f64>,
    average_length: f64,
    /// How many chunks hold each term.
    document_frequency: HashMap<String, u32>,
    /// Each article version's chunks in order: (origin, slug, language) → chunk indexes.
    versions: HashMap<(&'static str, String, Lang), Vec<usize>>,
}

/// One retrieved passage.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub chunk: usize,
    pub score: f64,
}

impl Bm25 {
    pub fn new(chunks: Vec<Chunk>) -> Self {
        let mut terms = Vec::with_capacity(chunks.len());
        let mut lengths = Vec::with_capacity(chunks.len());
        let mut document_frequency: HashMap<String, u32> = HashMap::new();
        let mut versions: HashMap<(&'static str, String, Lang), Vec<usize>> = HashMap::new();
        for (index, chunk) in chunks.iter().enumerate() {
            versions
                .entry((chunk.origin, chunk.slug.clone(), chunk.lang))
                .or_default()
                .push(index);
            // Title and heading count twice: they say what the section is about.
            let text = format!(
                "{title} {heading} {title} {heading} {body}",
                title = chunk.title,
                heading = chunk.heading,
                body = chunk.text
            );
            let tokens = tokenize(&text);
            let mut counts: HashMap<String, u32> = HashMap::new();
            for token in &tokens {
                *counts.entry(token.clone()).or_default() += 1;
            }
            for term in counts.keys() {
                *document_frequency.entry(term.clone()).or_default() += 1;
            }
            lengths.push(tokens.len() as f64);
            terms.push(counts);
        }
        let average_length = if lengths.is_empty() {
            1.0
        } else {
            lengths.iter().sum::<f64>() / lengths.len() as f64
        };
        Self {
            chunks,
            terms,
            lengths,
            average_length,
            document_frequency,
            versions,
        }
    }

    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    pub fn chunk(&self, index: usize) -> Option<&Chunk> {
        self.chunks.get(index)
    }

    fn idf(&self, term: &str) -> f64 {
        let n = self.chunks.len() as f64;
        let df = f64::from(self.document_frequency.get(term).copied().unwrap_or(0));
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// Every chunk's BM25 score for `query` (expanded across languages), best first, with the
    /// question's language boosted; zero scores left out.
    pub fn score(&self, query: &str, lang: Lang) -> Vec<Hit> {
        let expanded = expand_query(query);
        let mut query_terms = tokenize(&expanded);
        query_terms.sort();
        query_terms.dedup();
        let mut hits: Vec<Hit> = Vec::new();
        for (index, counts) in self.terms.iter().enumerate() {
            let length = self.lengths[index];
            let mut score = 0.0;
            for term in &query_terms {
                let Some(&tf) = counts.get(term) else {
                    continue;
                };
                let tf = f64::from(tf);
                score += self.idf(term) * tf * (K1 + 1.0)
                    / (tf + K1 * (1.0 - B + B * length / self.average_length));
            }
            if score > 0.0 {
                if self.chunks[index].lang == lang {
                    score *= SAME_LANGUAGE;
                }
                hits.push(Hit {
                    chunk: index,
                    score,
                });
            }
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits
    }

    /// The best `k` passages, one per article.
    pub fn search(&self, query: &str, lang: Lang, k: usize) -> Vec<Hit> {
        self.one_per_article(self.score(query, lang), lang, k)
    }

    /// The chunk of `chunk`'s article in `lang` that stands for it: the section at the same
    /// position (the built-in articles are translations section by section), else the version's
    /// first section; `None` when the article has no version in `lang`.
    fn counterpart(&self, chunk: usize, lang: Lang) -> Option<usize> {
        let found = &self.chunks[chunk];
        let version = self
            .versions
            .get(&(found.origin, found.slug.clone(), lang))?;
        let position = self
            .versions
            .get(&(found.origin, found.slug.clone(), found.lang))
            .and_then(|own| own.iter().position(|&i| i == chunk))
            .unwrap_or(0);
        version.get(position).or_else(|| version.first()).copied()
    }

    /// One hit per article (origin and slug), ranked by the article's best hit, at most `k`.
    /// The passage kept is the article's best in `lang` when that version matched at all, else
    /// its counterpart in `lang` when the article has that version (an English question that
    /// matched only the Korean text of an article is answered from its English text), so a
    /// question is answered from its own language's version of an article whenever there is one.
    pub fn one_per_article(&self, hits: Vec<Hit>, lang: Lang, k: usize) -> Vec<Hit> {
        let mut order: Vec<(&str, &str)> = Vec::new();
        let mut best: HashMap<(&str, &str), (Hit, Option<Hit>)> = HashMap::new();
        for hit in hits {
            let chunk = &self.chunks[hit.chunk];
            let key = (chunk.origin, chunk.slug.as_str());
            let same = chunk.lang == lang;
            match best.get_mut(&key) {
                None => {
                    order.push(key);
                    let in_lang = same.then(|| hit.clone());
                    best.insert(key, (hit, in_lang));
                }
                Some((_, in_lang)) => {
                    if same && in_lang.is_none() {
                        *in_lang = Some(hit);
                    }
                }
            }
        }
        order
            .into_iter()
            .take(k)
            .filter_map(|key| best.remove(&key))
            .map(|(first, in_lang)| match in_lang {
                Some(hit) => Hit {
                    chunk: hit.chunk,
                    score: first.score.max(hit.score),
                },
                None => Hit {
                    chunk: self.counterpart(first.chunk, lang).unwrap_or(first.chunk),
                    score: first.score,
                },
            })
            .collect()
    }
}

/// Reciprocal-rank fusion of ranked lists of chunk indexes: `Σ 1 / (RRF_K + rank)`.
pub fn fuse(lists: &[Vec<usize>]) -> Vec<Hit> {
    let mut scores: HashMap<usize, f64> = HashMap::new();
    for list in lists {
        for (rank, &chunk) in list.iter().enumerate() {
            *scores.entry(chunk).or_default() += 1.0 / (RRF_K + rank as f64 + 1.0);
        }
    }
    let mut hits: Vec<Hit> = scores
        .into_iter()
        .map(|(chunk, score)| Hit { chunk, score })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.chunk.cmp(&b.chunk)));
    hits
}

/// Cosine similarity (0 for an empty or mismatched pair).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::knowledge::{builtin_chunks, chunk_article};
    use super::*;

    fn top_slugs(index: &Bm25, query: &str, k: usize) -> Vec<String> {
        let lang = super::super::text::detect(query);
        index
            .search(query, lang, k)
            .iter()
            .map(|h| index.chunks()[h.chunk].slug.clone())
            .collect()
    }

    #[test]
    fn english_questions_find_their_articles() {
        let index = Bm25::new(builtin_chunks());
        for (query, slug) in [
            ("What is a tempo run?", "tempo-runs"),
            (
                "How long before a marathon should I taper?",
                "marathon-taper",
            ),
            (
                "How many gels should I take during a marathon?",
                "marathon-fuelling",
            ),
            (
                "How do heart rate zones work with the Karvonen method?",
                "heart-rate-zones",
            ),
            ("My shin hurts after running", "shin-splints"),
            ("How does the waitlist work?", "runmesh-waitlist"),
        ] {
            let top = top_slugs(&index, query, 3);
            assert!(top.contains(&slug.to_owned()), "{query}: {top:?}");
        }
    }

    #[test]
    fn korean_questions_find_their_articles_in_korean() {
        let index = Bm25::new(builtin_chunks());
        for (query, slug) in [
            ("템포런이 뭐야?", "tempo-runs"),
            ("마라톤 테이퍼링은 언제 시작해?", "marathon-taper"),
            ("족저근막염 어떻게 해?", "plantar-fasciitis"),
            ("여름 폭염에 달리기 괜찮아?", "running-in-heat"),
            ("대회 신청 취소하면 어떻게 돼?", "runmesh-cancellation"),
        ] {
            let hits = index.search(query, Lang::Ko, 3);
            let top: Vec<_> = hits.iter().map(|h| &index.chunks()[h.chunk]).collect();
            assert!(top.iter().any(|c| c.slug == slug), "{query}: {top:?}");
            assert_eq!(top[0].lang, Lang::Ko, "{query}");
        }
    }

    #[test]
    fn korean_questions_find_english_only_operator_content_and_the_reverse() {
        let mut chunks = chunk_article(
            "operator",
            Lang::En,
            "club-track",
            "# Club track night\n\n## Intervals at the stadium\n\nOur club runs interval sessions on the stadium track every Wednesday at 7 pm.",
        );
        chunks.extend(chunk_article(
            "operator",
            Lang::Ko,
            "han-river",
            "# 한강 코스\n\n## 반포 코스\n\n반포대교에서 출발하는 10km 코스는 평탄하고 급수대가 있습니다. 여름 폭염에는 그늘이 적습니다.",
        ));
        let index = Bm25::new(chunks);
        let hits = index.search("인터벌 훈련은 어디서 해?", Lang::Ko, 1);
        assert_eq!(index.chunks()[hits[0].chunk].slug, "club-track");
        let hits = index.search("Is it hot in summer on the course?", Lang::En, 1);
        assert_eq!(index.chunks()[hits[0].chunk].slug, "han-river");
    }

    #[test]
    fn reciprocal_rank_fusion_rewards_agreement() {
        let fused = fuse(&[vec![1, 2, 3], vec![3, 1, 4]]);
        assert_eq!(fused[0].chunk, 1);
        assert_eq!(fused[1].chunk, 3);
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn an_article_matched_only_in_the_other_language_is_given_in_the_question_language() {
        let mut chunks = chunk_article(
            "builtin",
            Lang::En,
            "max-heart-rate",
            "# Maximum heart rate\n\n## Estimating it\n\nFormulas are rough.\n\n## Measuring it\n\nA field test after a warm-up.",
        );
        chunks.extend(chunk_article(
            "builtin",
            Lang::Ko,
            "max-heart-rate",
            "# 최대심박수\n\n## 추정하기\n\n공식은 대략적입니다.\n\n## 측정하기\n\n언덕 오르막 테스트를 합니다.",
        ));
        chunks.extend(chunk_article(
            "operator",
            Lang::Ko,
            "han-river",
            "# 한강 코스\n\n## 반포 코스\n\n언덕이 없는 평탄한 코스입니다.",
        ));
        let index = Bm25::new(chunks);
        // "hill" reaches only the Korean texts (through 언덕).
        let hits = index.search("hill", Lang::En, 3);
        let found: Vec<(&str, Lang, &str)> = hits
            .iter()
            .map(|h| {
                let c = &index.chunks()[h.chunk];
                (c.slug.as_str(), c.lang, c.heading.as_str())
            })
            .collect();
        assert!(
            found.contains(&("max-heart-rate", Lang::En, "Measuring it")),
            "{found:?}"
        );
        // An article with no English version stays in Korean.
        assert!(
            found.contains(&("han-river", Lang::Ko, "반포 코스")),
            "{found:?}"
        );
    }

    #[test]
    fn an_article_answers_in_the_question_language() {
        let index = Bm25::new(builtin_chunks());
        let hits = index.search("How do I do hill repeats?", Lang::En, 3);
        let first = &index.chunks()[hits[0].chunk];
        assert_eq!(
            (first.slug.as_str(), first.lang),
            ("hill-training", Lang::En)
        );
    }
}
