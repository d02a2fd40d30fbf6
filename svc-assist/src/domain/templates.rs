//! Message texts: one template file per language and kind (`templates/<ko|en>/<kind>.txt`, its
//! first line the title, the rest the plain-text body), compiled into the binary and overridable
//! file by file from an operator's directory (`RUNMESH_NOTIFY_TEMPLATES`). Rendered with
//! minijinja; values are plain text (no HTML escaping).

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use super::Language;

macro_rules! builtin {
    ($($kind:literal),+ $(,)?) => {
        &[$(
            ($kind, include_str!(concat!("../../templates/en/", $kind, ".txt")),
                    include_str!(concat!("../../templates/ko/", $kind, ".txt"))),
        )+]
    };
}

/// Every kind with its English and Korean template.
const BUILTIN: &[(&str, &str, &str)] = builtin![
    "race_opening",
    "registration_confirmed",
    "registration_waitlisted",
    "waitlist_promoted",
    "registration_cancelled",
    "personal_record",
    "achievement_unlocked",
    "challenge_completed",
    "goal_met",
    "recap_ready",
    "meetup_scheduled",
    "meetup_reminder",
    "meetup_promoted",
    "meetup_cancelled",
    "comment_created",
    "join_request_decided",
    "digest",
    "test",
];

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub title: String,
    pub body: String,
}

/// A template failed to load or render.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {source}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no template for {0}")]
    Unknown(String),
}

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

fn name(language: Language, kind: &str) -> String {
    format!("{}/{kind}.txt", language.code())
}

impl Templates {
    /// The built-in templates, each replaced by `<dir>/<lang>/<kind>.txt` when that file exists.
    /// A template that does not compile is an error naming it.
    pub fn load(overrides: Option<&Path>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_keep_trailing_newline(false);
        for (kind, english, korean) in BUILTIN {
            for (language, source) in [(Language::English, *english), (Language::Korean, *korean)] {
                let name = name(language, kind);
                let source = match overrides.map(|dir| dir.join(&name)) {
                    Some(path) if path.is_file() => {
                        std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                            path: path.display().to_string(),
                            source,
                        })?
                    }
                    _ => source.to_owned(),
                };
                env.add_template_owned(name.clone(), source)
                    .map_err(|source| TemplateError::Template { name, source })?;
            }
        }
        Ok(Self { env })
    }

    /// The built-in templates only.
    pub fn builtin() -> Self {
        // The built-ins are checked by the tests below; should one ever fail, an empty
        // environment renders nothing rather than taking the process down.
        Self::load(None).unwrap_or_else(|_| Self {
            env: Environment::new(),
        })
    }

    /// `kind` in `language` with `context`: the first line is the title, the rest the body.
    pub fn render(
        &self,
        language: Language,
        kind: &str,
        context: impl Serialize,
    ) -> Result<Rendered, TemplateError> {
        let name = name(language, kind);
        let template = self
            .env
            .get_template(&name)
            .map_err(|_| TemplateError::Unknown(name.clone()))?;
        let text = template
            .render(context)
            .map_err(|source| TemplateError::Template { name, source })?;
        let (title, body) = text.split_once('\n').unwrap_or((text.as_str(), ""));
        Ok(Rendered {
            title: title.trim().to_owned(),
            body: body.trim().to_owned(),
        })
    }
}

/// The label of a message field in `language`.
pub fn label(language: Language, key: &str) -> &'static str {
    let (en, ko) = match key {
        "race" => ("Race", "대회"),
        "category" => ("Category", "종목"),
        "bib" => ("Bib", "배번"),
        "waitlist_position" => ("Waitlist position", "대기 순번"),
        "opens_at" => ("Opens", "접수 시작"),
        "closes_at" => ("Closes", "접수 마감"),
        "distance" => ("Distance", "거리"),
        "time" => ("Time", "기록"),
        "badge" => ("Badge", "배지"),
        "points" => ("Points", "포인트"),
        "crew" => ("Crew", "크루"),
        "starts_at" => ("Starts", "시작"),
        "place" => ("Meeting point", "집결지"),
        "goal" => ("Goal", "목표"),
        "runs" => ("Runs", "달리기"),
        "moving_time" => ("Moving time", "달린 시간"),
        "active_days" => ("Active days", "달린 날"),
        "recap_card" => ("Recap card", "리캡 카드"),
        _ => ("", ""),
    };
    match language {
        Language::English => en,
        Language::Korean => ko,
    }
}

/// The label of the link back to the app.
pub fn link_label(language: Language) -> &'static str {
    match language {
        Language::English => "Open in runmesh",
        Language::Korean => "runmesh에서 보기",
    }
}

/// A time as the runner reads it: their local date and time with the zone's abbreviation.
pub fn local_time(at: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use minijinja::context;

    use super::*;

    #[test]
    fn every_builtin_compiles_in_both_languages() {
        let templates = Templates::load(None).unwrap();
        for (kind, _, _) in BUILTIN {
            for language in [Language::English, Language::Korean] {
                let rendered = templates.render(language, kind, context! {}).unwrap();
                assert!(!rendered.title.is_empty(), "{kind} in {language:?}");
            }
        }
    }

    #[test]
    fn registration_confirmed_names_the_race_and_bib() {
        let templates = Templates::builtin();
        let context =
            context! { race_name => "Seoul Marathon", category_name => "10K", bib => 1042 };
        let en = templates
            .render(Language::English, "registration_confirmed", &context)
            .unwrap();
        assert_eq!(en.title, "You're in: Seoul Marathon");
        assert_eq!(
            en.body,
            "Your registration for Seoul Marathon (10K) is confirmed. Your bib number is 1042."
        );
        let ko = templates
            .render(Language::Korean, "registration_confirmed", &context)
            .unwrap();
        assert_eq!(ko.title, "Seoul Marathon 참가 확정");
        assert!(ko.body.contains("1042번"));
    }

    #[test]
    fn recap_ready_gives_the_headline_figures() {
        let templates = Templates::builtin();
        let week = |moving_time, runs, active_days| {
            context! { period => "week", date => "2025-01-06", year => 2025, runs => runs,
            distance => "42.2 km", moving_time => moving_time, active_days => active_days }
        };
        let ko = templates
            .render(Language::Korean, "recap_ready", week("3시간 50분", 5, 4))
            .unwrap();
        assert_eq!(
            ko.title,
            "지난주 5회, 42.2 km, 3시간 50분 달렸어요 — 주간 리캡 보기"
        );
        assert_eq!(
            ko.body,
            "2025-01-06부터 한 주 동안 4일 달렸어요. 리캡과 공유용 카드가 준비됐어요."
        );
        let en = templates
            .render(Language::English, "recap_ready", week("3h 50m", 5, 4))
            .unwrap();
        assert_eq!(
            en.title,
            "Last week: 5 runs, 42.2 km, 3h 50m — see your weekly recap"
        );
        assert_eq!(
            en.body,
            "Your week from 2025-01-06: 4 active days. Your recap and a card to share are ready."
        );
        let one = templates
            .render(Language::English, "recap_ready", week("45m", 1, 1))
            .unwrap();
        assert_eq!(
            one.title,
            "Last week: 1 run, 42.2 km, 45m — see your weekly recap"
        );
        assert!(one.body.contains("1 active day."), "{}", one.body);
        let year = context! { period => "year", date => "2025-01-01", year => 2025, runs => 180,
        distance => "1520.4 km", moving_time => "140h 5m", active_days => 150 };
        let ko = templates
            .render(Language::Korean, "recap_ready", &year)
            .unwrap();
        assert_eq!(
            ko.title,
            "2025년 180회, 1520.4 km, 140h 5m 달렸어요 — 연간 리캡 보기"
        );
        let en = templates
            .render(Language::English, "recap_ready", &year)
            .unwrap();
        assert_eq!(
            en.title,
            "Your 2025: 180 runs, 1520.4 km, 140h 5m — see your year in review"
        );
    }

    #[test]
    fn an_operator_file_replaces_one_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("en")).unwrap();
        std::fs::write(
            dir.path().join("en/test.txt"),
            "Ping from {{ club }}\nIt works.",
        )
        .unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        let rendered = templates
            .render(
                Language::English,
                "test",
                context! { club => "Han River RC" },
            )
            .unwrap();
        assert_eq!(rendered.title, "Ping from Han River RC");
        assert_eq!(rendered.body, "It works.");
        // Korean still uses the built-in one.
        assert_eq!(
            templates
                .render(Language::Korean, "test", context! {})
                .unwrap()
                .title,
            "테스트 알림"
        );
        std::fs::write(dir.path().join("en/test.txt"), "{% if %}").unwrap();
        assert!(Templates::load(Some(dir.path())).is_err());
    }
}
