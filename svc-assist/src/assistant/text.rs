//! Text handling without a dictionary: the question's language, tokens for BM25 (Hangul
//! syllable bigrams plus lowercased Latin words and numbers), and the Korean↔English running
//! terms used to expand queries across languages.

use std::collections::BTreeSet;

/// The languages answers are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Ko,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Self::Ko => "ko",
            Self::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "ko" => Some(Self::Ko),
            "en" => Some(Self::En),
            _ => None,
        }
    }
}

pub fn is_hangul(c: char) -> bool {
    matches!(c, '\u{AC00}'..='\u{D7A3}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}')
}

/// Korean when the text has any Hangul, else English.
pub fn detect(text: &str) -> Lang {
    if text.chars().any(is_hangul) {
        Lang::Ko
    } else {
        Lang::En
    }
}

/// Words too common to help ranking.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "is", "are", "was", "were", "be", "to", "of", "and", "or", "in", "on", "at",
    "for", "with", "what", "how", "do", "does", "did", "i", "my", "me", "it", "this", "that",
    "should", "can", "when", "why", "which", "you", "your", "about", "from", "as", "by", "if",
    "so", "much", "many", "there", "any", "will", "would", "have", "has", "we", "our", "need",
];

/// BM25 tokens: lowercased Latin/digit words (stopwords dropped, a light plural cut), and for
/// each run of Hangul its syllable bigrams (a single syllable stays a token).
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut latin = String::new();
    let mut hangul: Vec<char> = Vec::new();
    let flush_latin = |latin: &mut String, tokens: &mut Vec<String>| {
        if !latin.is_empty() {
            let word = std::mem::take(latin);
            // Single letters ("s" of "runner's") carry nothing.
            if word.chars().count() > 1 && !STOPWORDS.contains(&word.as_str()) {
                tokens.push(stem(&word));
            }
        }
    };
    let flush_hangul = |hangul: &mut Vec<char>, tokens: &mut Vec<String>| {
        match hangul.len() {
            0 => {}
            1 => tokens.push(hangul[0].to_string()),
            _ => {
                for pair in hangul.windows(2) {
                    tokens.push(pair.iter().collect());
                }
            }
        }
        hangul.clear();
    };
    for c in text.chars() {
        if is_hangul(c) {
            flush_latin(&mut latin, &mut tokens);
            hangul.push(c);
        } else if c.is_alphanumeric() {
            flush_hangul(&mut hangul, &mut tokens);
            latin.extend(c.to_lowercase());
        } else {
            flush_latin(&mut latin, &mut tokens);
            flush_hangul(&mut hangul, &mut tokens);
        }
    }
    flush_latin(&mut latin, &mut tokens);
    flush_hangul(&mut hangul, &mut tokens);
    tokens
}

/// A light English stem: plural and -ing endings, so "intervals" meets "interval".
fn stem(word: &str) -> String {
    if word.len() > 4 && word.ends_with("ies") {
        return format!("{}y", &word[..word.len() - 3]);
    }
    if word.len() > 5 && word.ends_with("ing") {
        return word[..word.len() - 3].to_owned();
    }
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        return word[..word.len() - 1].to_owned();
    }
    word.to_owned()
}

/// Korean ↔ English running terms. Each row is one concept: its Korean forms, then its English
/// forms. A question naming either side is expanded with the other.
pub const TERMS: &[(&[&str], &[&str])] = &[
    (&["마라톤", "풀코스"], &["marathon"]),
    (&["하프"], &["half marathon", "half"]),
    (&["테이퍼", "테이퍼링"], &["taper", "tapering"]),
    (&["템포", "역치"], &["tempo", "threshold"]),
    (&["인터벌"], &["interval", "intervals"]),
    (&["장거리", "롱런", "엘에스디"], &["long run", "lsd"]),
    (&["이지런", "조깅", "회복주"], &["easy run", "easy", "jog"]),
    (&["회복", "휴식"], &["recovery", "rest"]),
    (&["페이스"], &["pace", "pacing"]),
    (&["심박", "심박수"], &["heart rate", "hr"]),
    (&["심박존", "심박 구간", "존"], &["zone", "zones"]),
    (&["최대심박"], &["max heart rate"]),
    (&["부상"], &["injury"]),
    (&["무릎"], &["knee"]),
    (&["정강이", "신스플린트"], &["shin splints", "shin"]),
    (&["족저근막염"], &["plantar fasciitis"]),
    (&["아킬레스"], &["achilles"]),
    (&["병원", "의사"], &["doctor", "physician"]),
    (&["러닝화", "신발"], &["shoes", "shoe"]),
    (&["장비", "용품"], &["gear"]),
    (&["더위", "폭염", "여름"], &["heat", "hot", "summer"]),
    (&["추위", "겨울", "한파"], &["cold", "winter"]),
    (&["수분", "물"], &["hydration", "water"]),
    (
        &["보급", "에너지젤", "젤"],
        &["fuelling", "fueling", "gel", "gels"],
    ),
    (
        &["탄수화물", "카보로딩"],
        &["carbohydrate", "carb loading", "carbs"],
    ),
    (&["스트레칭"], &["stretching", "stretch"]),
    (&["근력", "근력운동"], &["strength"]),
    (&["케이던스"], &["cadence"]),
    (&["워밍업", "준비운동"], &["warm-up", "warm up"]),
    (&["쿨다운", "정리운동"], &["cool-down", "cool down"]),
    (&["대회"], &["race"]),
    (&["신청", "접수"], &["registration", "register"]),
    (&["대기", "대기자"], &["waitlist"]),
    (&["취소"], &["cancel", "cancellation"]),
    (&["배번", "배번호"], &["bib"]),
    (&["기록"], &["record", "time"]),
    (&["개인기록", "최고기록"], &["personal record", "pr", "pb"]),
    (&["크루"], &["crew", "club"]),
    (&["단체런", "모임", "번개"], &["group run", "meetup"]),
    (&["수면", "잠"], &["sleep"]),
    (&["오버트레이닝", "과훈련"], &["overtraining"]),
    (
        &["주간 거리", "주간거리", "마일리지"],
        &["weekly mileage", "weekly volume", "mileage"],
    ),
    (&["초보", "입문"], &["beginner"]),
    (&["언덕", "오르막"], &["hill", "hills"]),
    (&["트레일"], &["trail"]),
    (&["트랙"], &["track"]),
    (&["호흡"], &["breathing"]),
    (&["경련", "쥐"], &["cramp", "cramps"]),
    (&["가슴 통증", "흉통"], &["chest pain"]),
    (&["미세먼지"], &["air quality", "fine dust"]),
    (&["스플릿", "구간"], &["splits", "split"]),
    (&["리겔", "예상 기록"], &["riegel", "prediction"]),
    (&["브이닷", "vdot"], &["vdot"]),
    (&["훈련"], &["training"]),
];

/// The query's text plus every term of the other language for each concept it names.
pub fn expand_query(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: BTreeSet<String> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let mut extra = Vec::new();
    for (korean, english) in TERMS {
        let has_korean = korean.iter().any(|k| lower.contains(k));
        let has_english = english.iter().any(|e| {
            if e.contains(' ') {
                lower.contains(e)
            } else {
                words.contains(*e)
            }
        });
        if has_korean {
            extra.extend(english.iter().copied());
        }
        if has_english {
            extra.extend(korean.iter().copied());
        }
    }
    if extra.is_empty() {
        return text.to_owned();
    }
    format!("{text} {}", extra.join(" "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn hangul_becomes_bigrams_and_latin_words_lowercase() {
        assert_eq!(tokenize("마라톤 Tapering"), ["마라", "라톤", "taper"]);
        assert_eq!(tokenize("몇 km"), ["몇", "km"]);
        assert_eq!(tokenize("What is a tempo run?"), ["tempo", "run"]);
        assert_eq!(tokenize("Intervals"), ["interval"]);
    }

    #[test]
    fn language_is_korean_with_any_hangul() {
        assert_eq!(detect("이번 달에 몇 km 달렸어?"), Lang::Ko);
        assert_eq!(detect("What is a tempo run?"), Lang::En);
    }

    #[test]
    fn queries_expand_across_languages() {
        assert!(expand_query("테이퍼는 언제 시작해?").contains("taper"));
        assert!(expand_query("How do I taper?").contains("테이퍼"));
        assert!(expand_query("heart rate zones").contains("심박"));
        assert!(!expand_query("shoes").contains("하프"));
    }
}
