//! The answer without a model: understand the question, run the tools or calculators, and write
//! a templated answer in the question's language with the best passages, cited. It never
//! invents: a number comes from code or the runner's data, and missing data is said to be
//! missing.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use runmesh_proto::runmesh::race::v1::RegistrationState;
use sea_orm::{DatabaseConnection, EntityTrait};

use super::answer::{Answer, Citation, DataUsed, tr};
use super::calc::{self, format_duration, format_km, format_pace};
use super::dates::{self, Period, PeriodKind};
use super::dense::Dense;
use super::retrieval::{Bm25, Hit, fuse};
use super::text::{Lang, detect};
use super::tools::{RaceSummary, RunSummary, RunnerAuth, Tools, Unavailable};
use super::understand::{self, Ask, Intent};

/// BM25 score under which a passage does not answer a knowledge question.
pub const MIN_SCORE: f64 = 4.0;
/// Passages cited per knowledge answer at most.
const PASSAGES: usize = 3;

/// Who asks, and when.
#[derive(Debug, Clone)]
pub struct Context {
    pub user_id: String,
    pub auth: RunnerAuth,
    /// The runner's time zone when the request named one.
    pub time_zone: Option<Tz>,
    pub now: DateTime<Utc>,
}

/// What the tools and calculators found for a question: the body of the answer and its data.
#[derive(Debug, Clone)]
pub struct Findings {
    pub ask: Ask,
    pub lang: Lang,
    pub body: String,
    pub data: Vec<DataUsed>,
    /// Passages: the best ones for a knowledge question, a related one otherwise.
    pub passages: Vec<usize>,
    /// Whether the assistant had what it needed.
    pub answered: bool,
    pub medical: bool,
}

/// The no-model assistant over the knowledge base and the tools.
pub struct Engine {
    pub index: Arc<Bm25>,
    pub dense: Option<Arc<Dense>>,
    pub tools: Tools,
    db: DatabaseConnection,
}

fn kmh(pace: f64) -> String {
    calc::speed_kmh(pace).map_or_else(String::new, |v| format!("{v:.2}"))
}

fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

fn local_day(at: DateTime<Utc>, tz: Tz, lang: Lang) -> String {
    let day = at.with_timezone(&tz).date_naive();
    match lang {
        Lang::En => format!("{} ({})", day, day.format("%a")),
        Lang::Ko => format!(
            "{} ({})",
            day,
            dates::korean_weekday(chrono::Datelike::weekday(&day)).trim_end_matches("요일")
        ),
    }
}

fn distance_label(meters: f64, lang: Lang) -> String {
    let named = [
        (
            calc::MARATHON_M,
            "marathon (42.195 km)",
            "마라톤(42.195 km)",
        ),
        (
            calc::HALF_MARATHON_M,
            "half marathon (21.0975 km)",
            "하프 마라톤(21.0975 km)",
        ),
    ];
    for (m, en, ko) in named {
        if (meters - m).abs() < 1.0 {
            return tr(lang, en, ko);
        }
    }
    format!("{} km", format_km(meters / 1000.0))
}

fn unavailable_text(lang: Lang, what_en: &str, what_ko: &str, why: &Unavailable) -> String {
    tr(
        lang,
        format!(
            "I can't read {what_en} right now ({why}), so I can't answer with your numbers. Please try again later."
        ),
        format!(
            "지금은 {what_ko} 정보를 읽을 수 없어서({}) 숫자로 답할 수 없습니다. 잠시 후 다시 물어봐 주세요.",
            korean_reason(why)
        ),
    )
}

fn korean_reason(why: &Unavailable) -> String {
    match why.0.as_str() {
        "the service does not offer this yet" => "서비스가 아직 이 기능을 제공하지 않음".to_owned(),
        "the service is not reachable" => "서비스에 연결할 수 없음".to_owned(),
        "the service did not answer in time" => "서비스가 제때 응답하지 않음".to_owned(),
        "the sign-in was not accepted" => "로그인이 받아들여지지 않음".to_owned(),
        other => other.to_owned(),
    }
}

impl Engine {
    pub fn new(
        index: Arc<Bm25>,
        dense: Option<Arc<Dense>>,
        tools: Tools,
        db: DatabaseConnection,
    ) -> Self {
        Self {
            index,
            dense,
            tools,
            db,
        }
    }

    /// The best passages for `question`: BM25, fused with dense retrieval when it is on. One
    /// per article, at most `k`; the BM25 score of each for the relevance cut.
    pub async fn retrieve(&self, question: &str, lang: Lang, k: usize) -> Vec<Hit> {
        let bm25 = self.index.score(question, lang);
        let Some(dense) = &self.dense else {
            return self.index.one_per_article(bm25, lang, k);
        };
        let Some(ranked) = dense.rank(question).await else {
            return self.index.one_per_article(bm25, lang, k);
        };
        let scores: std::collections::HashMap<usize, f64> =
            bm25.iter().map(|h| (h.chunk, h.score)).collect();
        let lexical: Vec<usize> = bm25.iter().take(50).map(|h| h.chunk).collect();
        let semantic: Vec<usize> = ranked.into_iter().take(50).collect();
        let fused = fuse(&[lexical, semantic])
            .into_iter()
            .map(|h| Hit {
                chunk: h.chunk,
                // Keep the lexical score for the relevance cut; dense-only passages pass it when
                // the dense ranking is confident enough to put them first.
                score: scores.get(&h.chunk).copied().unwrap_or(MIN_SCORE),
            })
            .collect();
        self.index.one_per_article(fused, lang, k)
    }

    /// The runner's time zone: the request's, else the profile's, else svc-run's, else UTC.
    pub async fn time_zone(&self, ctx: &Context) -> Tz {
        if let Some(tz) = ctx.time_zone {
            return tz;
        }
        if let Ok(Some(profile)) = crate::store::profile::Entity::find_by_id(ctx.user_id.clone())
            .one(&self.db)
            .await
            && let Ok(tz) = profile.time_zone.parse::<Tz>()
        {
            return tz;
        }
        if let Ok(name) = self.tools.time_zone(&ctx.auth).await
            && let Ok(tz) = name.parse::<Tz>()
        {
            return tz;
        }
        Tz::UTC
    }

    /// The best chunk of article `slug` for the question, in its language when there is one.
    fn related(&self, slug: &str, question: &str, lang: Lang) -> Option<usize> {
        let scored = self.index.score(question, lang);
        scored
            .iter()
            .find(|h| {
                self.index.chunks()[h.chunk].slug == slug
                    && self.index.chunks()[h.chunk].lang == lang
            })
            .map(|h| h.chunk)
            .or_else(|| {
                self.index
                    .chunks()
                    .iter()
                    .position(|c| c.slug == slug && c.lang == lang)
            })
            .or_else(|| self.index.chunks().iter().position(|c| c.slug == slug))
    }

    /// Understands the question and gathers what answers it.
    pub async fn gather(&self, question: &str, ctx: &Context) -> Findings {
        let lang = detect(question);
        let ask = understand::understand(question);
        let medical = understand::medical(question);
        let mut findings = Findings {
            ask: ask.clone(),
            lang,
            body: String::new(),
            data: Vec::new(),
            passages: Vec::new(),
            answered: true,
            medical,
        };
        let related_slug = match &ask {
            Ask::Knowledge => None,
            Ask::Totals | Ask::LongestRun | Ask::LastRun { .. } => None,
            Ask::WeeklyChange | Ask::Volume { .. } => Some("weekly-mileage"),
            Ask::Records { .. } | Ask::Predict { .. } => Some("race-time-prediction"),
            Ask::TrainingPaces { .. } => Some("vdot-training-paces"),
            Ask::TargetPace { .. } | Ask::FinishTime { .. } | Ask::Splits { .. } => {
                Some("pacing-strategy")
            }
            Ask::PaceFromSpeed { .. } | Ask::SpeedFromPace { .. } => Some("pacing-strategy"),
            Ask::HrZones { .. } => Some("heart-rate-zones"),
            Ask::MyRegistrations => Some("runmesh-waitlist"),
            Ask::RaceOpening { .. } | Ask::RacesOpeningSoon { .. } => Some("runmesh-registration"),
            Ask::MyCrews | Ask::Meetups => Some("running-crews"),
            Ask::Badges | Ask::Rank | Ask::Challenges => Some("runmesh-assistant"),
        };
        match &ask {
            Ask::Knowledge => {
                let hits = self.retrieve(question, lang, PASSAGES).await;
                let relevant: Vec<&Hit> = hits.iter().filter(|h| h.score >= MIN_SCORE).collect();
                if relevant.is_empty() {
                    findings.answered = false;
                    findings.body = tr(
                        lang,
                        "I don't know: the knowledge base has nothing that answers this, and I won't guess.",
                        "잘 모르겠습니다. 지식 베이스에 이 질문에 답할 내용이 없고, 추측하지 않겠습니다.",
                    );
                } else {
                    findings.passages = relevant.iter().map(|h| h.chunk).collect();
                    let best = &self.index.chunks()[relevant[0].chunk];
                    findings.body = format!(
                        "{}\n\n{}",
                        tr(
                            lang,
                            format!("From \"{}\" › {}:", best.title, best.heading),
                            format!("「{}」 › {}:", best.title, best.heading),
                        ),
                        best.text
                    );
                }
            }
            other => {
                self.compute(other, question, ctx, lang, &mut findings)
                    .await;
                if let Some(slug) = related_slug
                    && let Some(chunk) = self.related(slug, question, lang)
                {
                    findings.passages.push(chunk);
                }
            }
        }
        if medical
            && let Some(chunk) = self.related("when-to-see-a-doctor", question, lang)
            && !findings.passages.contains(&chunk)
        {
            findings.passages.push(chunk);
        }
        findings
    }

    /// The complete answer without a model.
    pub async fn answer(&self, question: &str, ctx: &Context) -> Answer {
        let findings = self.gather(question, ctx).await;
        self.render(findings)
    }

    /// Writes the findings as the answer.
    pub fn render(&self, findings: Findings) -> Answer {
        let lang = findings.lang;
        let mut text = findings.body.clone();
        let citations: Vec<Citation> = findings
            .passages
            .iter()
            .filter_map(|&i| self.index.chunk(i))
            .map(Citation::of)
            .collect();
        if findings.ask.intent() == Intent::Knowledge && citations.len() > 1 {
            text.push_str(&tr(lang, "\n\nSee also:", "\n\n함께 보기:"));
            for citation in &citations[1..] {
                text.push_str(&format!("\n- {} › {}", citation.title, citation.heading));
            }
        }
        if findings.medical {
            text.push_str(&tr(
                lang,
                "\n\nThis is general information, not medical advice: for pain that persists or worsens, chest pain, dizziness or fainting, stop running and see a doctor (in an emergency call 119 in Korea).",
                "\n\n일반 정보일 뿐 의학적 조언이 아닙니다. 통증이 계속되거나 심해질 때, 가슴 통증이나 어지러움, 실신이 있을 때는 달리기를 멈추고 의사의 진료를 받으세요(응급 시 119).",
            ));
        }
        if !citations.is_empty() {
            text.push_str(&tr(lang, "\n\nSources: ", "\n\n출처: "));
            let list: Vec<String> = citations
                .iter()
                .enumerate()
                .map(|(n, c)| format!("[{}] {} › {}", n + 1, c.title, c.heading))
                .collect();
            text.push_str(&list.join("; "));
        }
        Answer {
            lang,
            intent: findings.ask.intent(),
            text,
            citations,
            data: findings.data,
            notes: Vec::new(),
            answered: findings.answered,
            model_answered: false,
        }
    }

    async fn compute(
        &self,
        ask: &Ask,
        question: &str,
        ctx: &Context,
        lang: Lang,
        f: &mut Findings,
    ) {
        match ask {
            Ask::Knowledge => {}
            Ask::Totals => self.totals(question, ctx, lang, f).await,
            Ask::LongestRun => self.longest(question, ctx, lang, f).await,
            Ask::LastRun { long } => self.last_run(*long, question, ctx, lang, f).await,
            Ask::Records { distance } => self.records(*distance, ctx, lang, f).await,
            Ask::WeeklyChange => self.weekly_change(ctx, lang, f).await,
            Ask::Badges => self.badges(ctx, lang, f).await,
            Ask::Rank => self.rank(ctx, lang, f).await,
            Ask::Challenges => self.challenges(ctx, lang, f).await,
            Ask::TargetPace { meters, seconds } => target_pace(*meters, *seconds, lang, f),
            Ask::FinishTime { meters, pace } => {
                let finish = calc::finish_time(*meters, *pace).unwrap_or(0.0);
                f.data.push(
                    DataUsed::new("calc.finish_time", "distance × pace")
                        .fact("pace_per_km", format_pace(*pace))
                        .fact("finish_time", format_duration(finish)),
                );
                f.body = tr(
                    lang,
                    format!(
                        "At {}/km, {} takes {} ({} km/h).",
                        format_pace(*pace),
                        distance_label(*meters, lang),
                        format_duration(finish),
                        kmh(*pace)
                    ),
                    format!(
                        "km당 {} 페이스로 {}를 달리면 {} 걸립니다(시속 {} km).",
                        format_pace(*pace),
                        distance_label(*meters, lang),
                        format_duration(finish),
                        kmh(*pace)
                    ),
                );
            }
            Ask::PaceFromSpeed { kmh: speed } => {
                let pace = calc::pace_from_speed(*speed).unwrap_or(0.0);
                f.data.push(
                    DataUsed::new("calc.pace", "3600 / speed")
                        .fact("pace_per_km", format_pace(pace)),
                );
                f.body = tr(
                    lang,
                    format!("{speed} km/h is a pace of {}/km.", format_pace(pace)),
                    format!("시속 {speed} km는 km당 {} 페이스입니다.", format_pace(pace)),
                );
            }
            Ask::SpeedFromPace { pace } => {
                f.data
                    .push(DataUsed::new("calc.speed", "3600 / pace").fact("speed_kmh", kmh(*pace)));
                f.body = tr(
                    lang,
                    format!(
                        "A pace of {}/km is {} km/h.",
                        format_pace(*pace),
                        kmh(*pace)
                    ),
                    format!(
                        "km당 {} 페이스는 시속 {} km입니다.",
                        format_pace(*pace),
                        kmh(*pace)
                    ),
                );
            }
            Ask::Predict { from, target } => self.predict(*from, *target, ctx, lang, f).await,
            Ask::TrainingPaces { from } => self.training_paces(*from, ctx, lang, f).await,
            Ask::HrZones { max, rest, age } => hr_zones(*max, *rest, *age, lang, f),
            Ask::Volume { last_km, this_km } => volume(*last_km, *this_km, lang, f),
            Ask::Splits { meters, seconds } => splits(*meters, *seconds, lang, f),
            Ask::MyRegistrations => self.registrations(ctx, lang, f).await,
            Ask::RaceOpening { name } => self.race_opening(name, ctx, lang, f).await,
            Ask::RacesOpeningSoon { region } => {
                self.races_opening_soon(region.as_deref(), ctx, lang, f)
                    .await;
            }
            Ask::MyCrews => self.crews(ctx, lang, f).await,
            Ask::Meetups => self.meetups(ctx, lang, f).await,
        }
    }

    async fn period_runs(
        &self,
        period: Option<&Period>,
        ctx: &Context,
        tz: Tz,
    ) -> Result<Vec<RunSummary>, Unavailable> {
        let (from, to) = match period {
            Some(p) => {
                let (a, b) = p.utc_range(tz);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        self.tools.runs(&ctx.auth, from, to).await
    }

    async fn totals(&self, question: &str, ctx: &Context, lang: Lang, f: &mut Findings) {
        let tz = self.time_zone(ctx).await;
        let today = dates::today(tz, ctx.now);
        let period = dates::resolve(question, today).unwrap_or_else(|| {
            dates::resolve("this month", today).unwrap_or(Period {
                first_day: today,
                end_day: today,
                kind: PeriodKind::Month,
            })
        });
        match self.period_runs(Some(&period), ctx, tz).await {
            Ok(runs) => {
                let km: f64 = runs.iter().map(|r| r.distance_m).sum::<f64>() / 1000.0;
                let moving: f64 = runs.iter().map(|r| r.moving_s).sum();
                let span = period.describe(lang);
                f.data.push(
                    DataUsed::new("run.list_runs", format!("runs {span} ({tz})"))
                        .fact("runs", runs.len().to_string())
                        .fact("distance_km", format_km(km))
                        .fact("moving_time", format_duration(moving)),
                );
                f.body = if runs.is_empty() {
                    tr(
                        lang,
                        format!("You have no runs recorded for {span}: 0 km."),
                        format!("{span} 기간에 기록된 달리기가 없습니다: 0 km."),
                    )
                } else {
                    tr(
                        lang,
                        format!(
                            "For {span} you ran {} km in {} runs (moving time {}).",
                            format_km(km),
                            runs.len(),
                            format_duration(moving)
                        ),
                        format!(
                            "{span} 기간에 {}번 달려 총 {} km를 달렸습니다(이동 시간 {}).",
                            runs.len(),
                            format_km(km),
                            format_duration(moving)
                        ),
                    )
                };
            }
            Err(why) => self.missing(f, "run.list_runs", &why, lang, "your runs", "달리기"),
        }
    }

    fn missing(
        &self,
        f: &mut Findings,
        source: &str,
        why: &Unavailable,
        lang: Lang,
        en: &str,
        ko: &str,
    ) {
        f.answered = false;
        f.data.push(DataUsed::missing(source, why.to_string()));
        f.body = unavailable_text(lang, en, ko, why);
    }

    fn describe_run(run: &RunSummary, tz: Tz, lang: Lang) -> String {
        let pace =
            calc::pace_seconds_per_km(run.distance_m, run.moving_s).unwrap_or(run.pace_s_per_km);
        let title = if run.title.is_empty() {
            String::new()
        } else {
            format!(" “{}”", run.title)
        };
        let hr = run
            .average_heart_rate
            .map(|hr| {
                tr(
                    lang,
                    format!(", average heart rate {hr} bpm"),
                    format!(", 평균 심박 {hr} bpm"),
                )
            })
            .unwrap_or_default();
        tr(
            lang,
            format!(
                "{}{title}: {} km in {} ({}/km){hr}",
                local_day(run.start_time, tz, lang),
                format_km(run.distance_m / 1000.0),
                format_duration(run.moving_s),
                format_pace(pace)
            ),
            format!(
                "{}{title}: {} km, {} (km당 {}){hr}",
                local_day(run.start_time, tz, lang),
                format_km(run.distance_m / 1000.0),
                format_duration(run.moving_s),
                format_pace(pace)
            ),
        )
    }

    fn run_data(run: &RunSummary, tz: Tz) -> DataUsed {
        DataUsed::new("run.list_runs", format!("run {} ({tz})", run.run_id))
            .fact("date", local(run.start_time, tz))
            .fact("distance_km", format_km(run.distance_m / 1000.0))
            .fact("moving_time", format_duration(run.moving_s))
    }

    async fn longest(&self, question: &str, ctx: &Context, lang: Lang, f: &mut Findings) {
        let tz = self.time_zone(ctx).await;
        let period = dates::resolve(question, dates::today(tz, ctx.now));
        match self.period_runs(period.as_ref(), ctx, tz).await {
            Ok(runs) => {
                let span = period
                    .as_ref()
                    .map_or_else(|| tr(lang, "ever", "지금까지"), |p| p.describe(lang));
                match runs
                    .iter()
                    .max_by(|a, b| a.distance_m.total_cmp(&b.distance_m))
                {
                    Some(run) => {
                        f.data.push(
                            Self::run_data(run, tz).fact("runs_considered", runs.len().to_string()),
                        );
                        f.body = tr(
                            lang,
                            format!(
                                "Your longest run ({span}) was {} km — {}.",
                                format_km(run.distance_m / 1000.0),
                                Self::describe_run(run, tz, lang)
                            ),
                            format!(
                                "가장 긴 달리기({span})는 {} km입니다 — {}.",
                                format_km(run.distance_m / 1000.0),
                                Self::describe_run(run, tz, lang)
                            ),
                        );
                    }
                    None => {
                        f.data.push(
                            DataUsed::new("run.list_runs", format!("runs {span}"))
                                .fact("runs", "0"),
                        );
                        f.body = tr(
                            lang,
                            format!("You have no runs recorded ({span})."),
                            format!("기록된 달리기가 없습니다({span})."),
                        );
                    }
                }
            }
            Err(why) => self.missing(f, "run.list_runs", &why, lang, "your runs", "달리기"),
        }
    }

    async fn last_run(
        &self,
        long: bool,
        question: &str,
        ctx: &Context,
        lang: Lang,
        f: &mut Findings,
    ) {
        let tz = self.time_zone(ctx).await;
        let period = dates::resolve(question, dates::today(tz, ctx.now));
        let window = period.clone().or_else(|| {
            let today = dates::today(tz, ctx.now);
            Some(Period {
                first_day: today - Duration::days(365),
                end_day: today + Duration::days(1),
                kind: PeriodKind::Year,
            })
        });
        match self.period_runs(window.as_ref(), ctx, tz).await {
            Ok(runs) => {
                let pick = runs
                    .iter()
                    .filter(|r| !long || r.distance_m >= 15_000.0)
                    .max_by_key(|r| r.start_time);
                match pick {
                    Some(run) => {
                        f.data.push(Self::run_data(run, tz));
                        let what = if long {
                            tr(
                                lang,
                                "Your last long run (15 km or more)",
                                "가장 최근 장거리 달리기(15 km 이상)",
                            )
                        } else if period.is_some() {
                            tr(lang, "Your run", "해당 날짜의 달리기")
                        } else {
                            tr(lang, "Your last run", "가장 최근 달리기")
                        };
                        let more = if runs
                            .iter()
                            .filter(|r| {
                                period.is_some()
                                    && r.start_time.with_timezone(&tz).date_naive()
                                        == run.start_time.with_timezone(&tz).date_naive()
                            })
                            .count()
                            > 1
                        {
                            tr(
                                lang,
                                " (you ran more than once that day; this is the latest)",
                                " (그날 여러 번 달렸고, 가장 늦은 달리기입니다)",
                            )
                        } else {
                            String::new()
                        };
                        f.body = format!("{what}: {}{more}.", Self::describe_run(run, tz, lang));
                    }
                    None => {
                        let span = window
                            .as_ref()
                            .map(|p| p.describe(lang))
                            .unwrap_or_default();
                        f.data.push(
                            DataUsed::new("run.list_runs", format!("runs {span}"))
                                .fact("runs", runs.len().to_string()),
                        );
                        f.body = if long {
                            tr(
                                lang,
                                format!("I found no run of 15 km or more ({span})."),
                                format!("15 km 이상 달린 기록이 없습니다({span})."),
                            )
                        } else {
                            tr(
                                lang,
                                format!("You have no run recorded for {span}."),
                                format!("{span}에 기록된 달리기가 없습니다."),
                            )
                        };
                    }
                }
            }
            Err(why) => self.missing(f, "run.list_runs", &why, lang, "your runs", "달리기"),
        }
    }

    async fn records(&self, distance: Option<f64>, ctx: &Context, lang: Lang, f: &mut Findings) {
        let tz = self.time_zone(ctx).await;
        match self.tools.records(&ctx.auth).await {
            Ok(records) => {
                let chosen: Vec<_> = records
                    .iter()
                    .filter(|r| distance.is_none_or(|d| (r.distance_m - d).abs() < 1.0))
                    .collect();
                let mut data = DataUsed::new("run.personal_records", "personal records");
                for r in &chosen {
                    data = data.fact(&r.label, format_duration(r.seconds));
                }
                f.data.push(data);
                if chosen.is_empty() {
                    f.body = tr(
                        lang,
                        "You have no personal record for that distance yet.",
                        "그 거리의 개인기록이 아직 없습니다.",
                    );
                    return;
                }
                let lines: Vec<String> = chosen
                    .iter()
                    .map(|r| {
                        let when = r
                            .achieved_at
                            .map(|t| local_day(t, tz, lang))
                            .unwrap_or_default();
                        format!(
                            "- {}: {} ({}/km) {when}",
                            r.label,
                            format_duration(r.seconds),
                            format_pace(r.seconds / (r.distance_m / 1000.0))
                        )
                    })
                    .collect();
                f.body = format!(
                    "{}\n{}",
                    tr(lang, "Your personal records:", "개인기록:"),
                    lines.join("\n")
                );
            }
            Err(why) => self.missing(
                f,
                "run.personal_records",
                &why,
                lang,
                "your personal records",
                "개인기록",
            ),
        }
    }

    async fn weekly_change(&self, ctx: &Context, lang: Lang, f: &mut Findings) {
        let tz = self.time_zone(ctx).await;
        let today = dates::today(tz, ctx.now);
        let (Some(this), Some(last)) = (
            dates::resolve("this week", today),
            dates::resolve("last week", today),
        ) else {
            return;
        };
        let this_runs = self.period_runs(Some(&this), ctx, tz).await;
        let last_runs = self.period_runs(Some(&last), ctx, tz).await;
        match (this_runs, last_runs) {
            (Ok(this_runs), Ok(last_runs)) => {
                let this_km = this_runs.iter().map(|r| r.distance_m).sum::<f64>() / 1000.0;
                let last_km = last_runs.iter().map(|r| r.distance_m).sum::<f64>() / 1000.0;
                volume(last_km, Some(this_km), lang, f);
                f.data.insert(
                    0,
                    DataUsed::new(
                        "run.list_runs",
                        format!(
                            "weeks {} and {} ({tz})",
                            last.describe(lang),
                            this.describe(lang)
                        ),
                    )
                    .fact("last_week_km", format_km(last_km))
                    .fact("this_week_km", format_km(this_km)),
                );
            }
            (Err(why), _) | (_, Err(why)) => {
                self.missing(f, "run.list_runs", &why, lang, "your runs", "달리기")
            }
        }
    }

    async fn badges(&self, ctx: &Context, lang: Lang, f: &mut Findings) {
        match self.tools.badges(&ctx.auth).await {
            Ok(badges) => {
                f.data.push(
                    DataUsed::new("ranking.achievements", "badges earned")
                        .fact("badges", badges.count.to_string())
                        .fact("points", badges.total_points.to_string()),
                );
                let names: Vec<String> = badges
                    .recent
                    .iter()
                    .map(|(en, ko)| tr(lang, en.clone(), ko.clone()))
                    .collect();
                f.body = if badges.count == 0 {
                    tr(
                        lang,
                        "You have not earned any badges yet.",
                        "아직 받은 배지가 없습니다.",
                    )
                } else {
                    tr(
                        lang,
                        format!(
                            "You have earned {} badges ({} points). Latest: {}.",
                            badges.count,
                            badges.total_points,
                            names.join(", ")
                        ),
                        format!(
                            "배지 {}개를 받았습니다({}점). 최근: {}.",
                            badges.count,
                            badges.total_points,
                            names.join(", ")
                        ),
                    )
                };
            }
            Err(why) => self.missing(f, "ranking.achievements", &why, lang, "your badges", "배지"),
        }
    }

    async fn rank(&self, ctx: &Context, lang: Lang, f: &mut Findings) {
        match self.tools.rank(&ctx.auth).await {
            Ok(rank) => {
                let mut data =
                    DataUsed::new("ranking.my_rank", "this month's distance board, everyone")
                        .fact("total_runners", rank.total_runners.to_string());
                if let Some(r) = rank.rank {
                    data = data.fact("rank", r.to_string());
                }
                f.data.push(data);
                f.body = match (rank.rank, rank.value_m) {
                    (Some(r), Some(v)) => tr(
                        lang,
                        format!(
                            "On this month's distance leaderboard you are #{r} of {} runners with {} km.",
                            rank.total_runners,
                            format_km(v / 1000.0)
                        ),
                        format!(
                            "이번 달 거리 랭킹에서 {}명 중 {r}위입니다({} km).",
                            rank.total_runners,
                            format_km(v / 1000.0)
                        ),
                    ),
                    _ => tr(
                        lang,
                        "You are not on this month's distance leaderboard yet (no runs counted this month, or rankings are off in your settings).",
                        "아직 이번 달 거리 랭킹에 없습니다(이번 달 달리기가 없거나 랭킹 참여가 꺼져 있음).",
                    ),
                };
            }
            Err(why) => self.missing(f, "ranking.my_rank", &why, lang, "the leaderboard", "랭킹"),
        }
    }

    async fn challenges(&self, ctx: &Context, lang: Lang, f: &mut Findings) {
        match self.tools.challenges(&ctx.auth).await {
            Ok(list) => {
                let mut data = DataUsed::new("ranking.challenges", "challenges joined");
                let lines: Vec<String> = list
                    .iter()
                    .map(|c| {
                        let percent = format!("{:.0}%", c.fraction * 100.0);
                        data.facts.push((c.title.clone(), percent.clone()));
                        let (current, target) = if c.unit == "distance" {
                            (
                                format!("{} km", format_km(c.current / 1000.0)),
                                format!("{} km", format_km(c.target / 1000.0)),
                            )
                        } else {
                            (format!("{}", c.current), format!("{}", c.target))
                        };
                        let done = if c.completed {
                            tr(lang, " — completed", " — 완료")
                        } else {
                            String::new()
                        };
                        format!("- {}: {current} / {target} ({percent}){done}", c.title)
                    })
                    .collect();
                f.data.push(data);
                f.body = if lines.is_empty() {
                    tr(
                        lang,
                        "You have not joined any running challenge.",
                        "참여 중인 챌린지가 없습니다.",
                    )
                } else {
                    format!(
                        "{}\n{}",
                        tr(lang, "Your challenges:", "참여 중인 챌린지:"),
                        lines.join("\n")
                    )
                };
            }
            Err(why) => self.missing(
                f,
                "ranking.challenges",
                &why,
                lang,
                "your challenges",
                "챌린지",
            ),
        }
    }

    async fn predict(
        &self,
        from: Option<(f64, f64)>,
        target: f64,
        ctx: &Context,
        lang: Lang,
        f: &mut Findings,
    ) {
        let basis = match from {
            Some(b) => Some((b.0, b.1, tr(lang, "the time you gave", "주신 기록"))),
            None => match self.tools.records(&ctx.auth).await {
                Ok(records) => {
                    // The record nearest the target distance (5K or longer when there is one).
                    let best = records
                        .iter()
                        .filter(|r| r.distance_m >= 5000.0 && (r.distance_m - target).abs() > 1.0)
                        .min_by(|a, b| {
                            (a.distance_m.ln() - target.ln())
                                .abs()
                                .total_cmp(&(b.distance_m.ln() - target.ln()).abs())
                        });
                    let mut data = DataUsed::new("run.personal_records", "personal records");
                    for r in &records {
                        data = data.fact(&r.label, format_duration(r.seconds));
                    }
                    f.data.push(data);
                    best.map(|r| {
                        (
                            r.distance_m,
                            r.seconds,
                            tr(
                                lang,
                                format!("your {} record", r.label),
                                format!("{} 개인기록", r.label),
                            ),
                        )
                    })
                }
                Err(why) => {
                    self.missing(
                        f,
                        "run.personal_records",
                        &why,
                        lang,
                        "your personal records",
                        "개인기록",
                    );
                    return;
                }
            },
        };
        let Some((meters, seconds, label)) = basis else {
            f.answered = false;
            f.body = tr(
                lang,
                "I have no personal record of 5K or longer to predict from. Give me a recent race time, e.g. \"10K in 50:00, predict a marathon\".",
                "예측에 쓸 5 km 이상의 개인기록이 없습니다. 최근 대회 기록을 알려 주세요. 예: \"10km 50분, 마라톤 예상 기록\".",
            );
            return;
        };
        let predicted = calc::riegel(meters, seconds, target).unwrap_or(0.0);
        let pace = predicted / (target / 1000.0);
        f.data.push(
            DataUsed::new("calc.riegel", "T2 = T1 × (D2/D1)^1.06")
                .fact(
                    "from",
                    format!(
                        "{} in {}",
                        distance_label(meters, Lang::En),
                        format_duration(seconds)
                    ),
                )
                .fact("predicted", format_duration(predicted)),
        );
        f.body = tr(
            lang,
            format!(
                "From {label} ({} in {}), Riegel's formula predicts {} for the {} ({}/km). Predictions for longer races assume you trained for the distance.",
                distance_label(meters, lang),
                format_duration(seconds),
                format_duration(predicted),
                distance_label(target, lang),
                format_pace(pace)
            ),
            format!(
                "{label}({} {})로 리겔 공식은 {} 기록을 {}로 예측합니다(km당 {}). 긴 거리 예측은 그 거리에 맞게 훈련했다고 가정합니다.",
                distance_label(meters, lang),
                format_duration(seconds),
                distance_label(target, lang),
                format_duration(predicted),
                format_pace(pace)
            ),
        );
    }

    async fn training_paces(
        &self,
        from: Option<(f64, f64)>,
        ctx: &Context,
        lang: Lang,
        f: &mut Findings,
    ) {
        let basis = match from {
            Some(b) => Some((b.0, b.1)),
            None => match self.tools.records(&ctx.auth).await {
                Ok(records) => {
                    let mut data = DataUsed::new("run.personal_records", "personal records");
                    for r in &records {
                        data = data.fact(&r.label, format_duration(r.seconds));
                    }
                    f.data.push(data);
                    records
                        .iter()
                        .filter(|r| r.distance_m >= 5000.0)
                        .max_by(|a, b| {
                            calc::vdot(a.distance_m, a.seconds)
                                .unwrap_or(0.0)
                                .total_cmp(&calc::vdot(b.distance_m, b.seconds).unwrap_or(0.0))
                        })
                        .map(|r| (r.distance_m, r.seconds))
                }
                Err(why) => {
                    self.missing(
                        f,
                        "run.personal_records",
                        &why,
                        lang,
                        "your personal records",
                        "개인기록",
                    );
                    return;
                }
            },
        };
        let Some((meters, seconds)) = basis else {
            f.answered = false;
            f.body = tr(
                lang,
                "I need a race result of 5K or longer: tell me one, e.g. \"VDOT for a 10K in 45:00\".",
                "5 km 이상의 대회 기록이 필요합니다. 예: \"10km 45분 VDOT 훈련 페이스\".",
            );
            return;
        };
        let Some(paces) = calc::training_paces(meters, seconds) else {
            return;
        };
        f.data.push(
            DataUsed::new("calc.vdot", "Daniels & Gilbert VDOT")
                .fact("vdot", format!("{:.1}", paces.vdot))
                .fact("easy", format_pace(paces.easy))
                .fact("marathon", format_pace(paces.marathon))
                .fact("threshold", format_pace(paces.threshold))
                .fact("interval", format_pace(paces.interval))
                .fact("repetition", format_pace(paces.repetition)),
        );
        f.body = tr(
            lang,
            format!(
                "{} in {} gives a VDOT of {:.1}. Training paces per km:\n- Easy: {}\n- Marathon: {}\n- Threshold (tempo): {}\n- Interval: {}\n- Repetition: {}",
                distance_label(meters, lang),
                format_duration(seconds),
                paces.vdot,
                format_pace(paces.easy),
                format_pace(paces.marathon),
                format_pace(paces.threshold),
                format_pace(paces.interval),
                format_pace(paces.repetition)
            ),
            format!(
                "{} {} 기록의 VDOT은 {:.1}입니다. km당 훈련 페이스:\n- 이지: {}\n- 마라톤: {}\n- 역치(템포): {}\n- 인터벌: {}\n- 레피티션: {}",
                distance_label(meters, lang),
                format_duration(seconds),
                paces.vdot,
                format_pace(paces.easy),
                format_pace(paces.marathon),
                format_pace(paces.threshold),
                format_pace(paces.interval),
                format_pace(paces.repetition)
            ),
        );
    }

    async fn registrations(&self, ctx: &Context, lang: Lang, f: &mut Findings) {
        let tz = self.time_zone(ctx).await;
        match self.tools.registrations(&ctx.auth).await {
            Ok(list) => {
                let mut data = DataUsed::new("race.my_registrations", "your registrations");
                let lines: Vec<String> = list
                    .iter()
                    .map(|r| {
                        data.facts.push((r.race_name.clone(), r.status.clone()));
                        let status = match (r.status.as_str(), lang) {
                            ("confirmed", Lang::En) => format!(
                                "confirmed, bib {}",
                                r.bib_number
                                    .map_or_else(|| "-".to_owned(), |b| b.to_string())
                            ),
                            ("confirmed", Lang::Ko) => format!(
                                "확정, 배번 {}",
                                r.bib_number
                                    .map_or_else(|| "-".to_owned(), |b| b.to_string())
                            ),
                            ("waitlisted", Lang::En) => format!(
                                "waitlisted, position {}",
                                r.waitlist_position
                                    .map_or_else(|| "-".to_owned(), |p| p.to_string())
                            ),
                            ("waitlisted", Lang::Ko) => format!(
                                "대기, 순번 {}",
                                r.waitlist_position
                                    .map_or_else(|| "-".to_owned(), |p| p.to_string())
                            ),
                            ("cancelled", Lang::En) => "cancelled".to_owned(),
                            ("cancelled", Lang::Ko) => "취소됨".to_owned(),
                            (other, _) => other.to_owned(),
                        };
                        let when = r
                            .race_starts_at
                            .map(|t| format!(" — {}", local(t, tz)))
                            .unwrap_or_default();
                        format!("- {}{when}: {status}", r.race_name)
                    })
                    .collect();
                f.data.push(data);
                f.body = if lines.is_empty() {
                    tr(
                        lang,
                        "You have no race registrations.",
                        "대회 신청 내역이 없습니다.",
                    )
                } else {
                    format!(
                        "{}\n{}",
                        tr(lang, "Your registrations:", "내 대회 신청:"),
                        lines.join("\n")
                    )
                };
            }
            Err(why) => self.missing(
                f,
                "race.my_registrations",
                &why,
                lang,
                "your registrations",
                "대회 신청",
            ),
        }
    }

    fn race_line(race: &RaceSummary, tz: Tz, lang: Lang) -> String {
        let opens = race
            .registration_opens_at
            .map(|t| local(t, tz))
            .unwrap_or_else(|| "-".to_owned());
        let closes = race
            .registration_closes_at
            .map(|t| local(t, tz))
            .unwrap_or_else(|| "-".to_owned());
        let starts = race
            .starts_at
            .map(|t| local(t, tz))
            .unwrap_or_else(|| "-".to_owned());
        let state = match (race.registration_state.as_str(), lang) {
            ("upcoming", Lang::Ko) => "접수 전".to_owned(),
            ("open", Lang::Ko) => "접수 중".to_owned(),
            ("closed", Lang::Ko) => "접수 마감".to_owned(),
            ("upcoming", Lang::En) => "not open yet".to_owned(),
            ("open", Lang::En) => "open now".to_owned(),
            ("closed", Lang::En) => "closed".to_owned(),
            (other, _) => other.to_owned(),
        };
        tr(
            lang,
            format!(
                "{} ({}): registration opens {opens} and closes {closes} ({tz}); race day {starts}; {state}.",
                race.name, race.region
            ),
            format!(
                "{}({}): 접수 시작 {opens}, 마감 {closes} ({tz}), 대회일 {starts}, 현재 {state}.",
                race.name, race.region
            ),
        )
    }

    async fn race_opening(&self, name: &str, ctx: &Context, lang: Lang, f: &mut Findings) {
        let tz = self.time_zone(ctx).await;
        match self.tools.races(&ctx.auth, None, None).await {
            Ok(races) => {
                let wanted = normalize(name);
                let words: Vec<String> = name
                    .split_whitespace()
                    .map(normalize)
                    .filter(|w| !w.is_empty())
                    .collect();
                let mut matches: Vec<&RaceSummary> = races
                    .iter()
                    .filter(|r| {
                        let race = normalize(&r.name);
                        race.contains(&wanted)
                            || (!words.is_empty()
                                && words.iter().all(|w| race.contains(w.as_str())))
                    })
                    .collect();
                matches.sort_by_key(|r| r.registration_opens_at);
                let mut data = DataUsed::new(
                    "race.list_races",
                    format!("published races matching \"{name}\""),
                )
                .fact("matches", matches.len().to_string());
                if let Some(first) = matches.first()
                    && let Some(opens) = first.registration_opens_at
                {
                    data = data.fact("registration_opens_at", local(opens, tz));
                }
                f.data.push(data);
                if matches.is_empty() {
                    f.answered = false;
                    f.body = tr(
                        lang,
                        format!(
                            "I found no upcoming race on runmesh named \"{name}\". It may not be published yet; ask me about races opening soon, or check the race list."
                        ),
                        format!(
                            "runmesh에 \"{name}\"(이)라는 예정된 대회가 없습니다. 아직 공개되지 않았을 수 있습니다. 곧 접수가 열리는 대회를 물어보거나 대회 목록을 확인해 보세요."
                        ),
                    );
                    return;
                }
                let lines: Vec<String> = matches
                    .iter()
                    .take(3)
                    .map(|r| format!("- {}", Self::race_line(r, tz, lang)))
                    .collect();
                f.body = lines.join("\n");
            }
            Err(why) => self.missing(
                f,
                "race.list_races",
                &why,
                lang,
                "the race list",
                "대회 목록",
            ),
        }
    }

    async fn races_opening_soon(
        &self,
        region: Option<&str>,
        ctx: &Context,
        lang: Lang,
        f: &mut Findings,
    ) {
        let tz = self.time_zone(ctx).await;
        match self
            .tools
            .races(&ctx.auth, region, Some(RegistrationState::Upcoming))
            .await
        {
            Ok(mut races) => {
                races.sort_by_key(|r| r.registration_opens_at);
                f.data.push(
                    DataUsed::new(
                        "race.list_races",
                        format!(
                            "races not open yet{}",
                            region.map(|r| format!(" in {r}")).unwrap_or_default()
                        ),
                    )
                    .fact("races", races.len().to_string()),
                );
                f.body = if races.is_empty() {
                    tr(
                        lang,
                        "No race on runmesh has registration opening soon.",
                        "곧 접수가 열리는 대회가 없습니다.",
                    )
                } else {
                    let lines: Vec<String> = races
                        .iter()
                        .take(5)
                        .map(|r| format!("- {}", Self::race_line(r, tz, lang)))
                        .collect();
                    format!(
                        "{}\n{}",
                        tr(
                            lang,
                            "Races whose registration opens soon:",
                            "곧 접수가 열리는 대회:"
                        ),
                        lines.join("\n")
                    )
                };
            }
            Err(why) => self.missing(
                f,
                "race.list_races",
                &why,
                lang,
                "the race list",
                "대회 목록",
            ),
        }
    }

    async fn crews(&self, ctx: &Context, lang: Lang, f: &mut Findings) {
        match self.tools.crews(&ctx.auth).await {
            Ok(crews) => {
                f.data.push(
                    DataUsed::new("social.my_crews", "your crews")
                        .fact("crews", crews.len().to_string()),
                );
                f.body = if crews.is_empty() {
                    tr(
                        lang,
                        "You are not in any crew yet.",
                        "가입한 크루가 없습니다.",
                    )
                } else {
                    let lines: Vec<String> = crews
                        .iter()
                        .map(|(_, c)| {
                            tr(
                                lang,
                                format!("- {} ({}, {} members)", c.name, c.region, c.member_count),
                                format!("- {} ({}, 멤버 {}명)", c.name, c.region, c.member_count),
                            )
                        })
                        .collect();
                    format!(
                        "{}\n{}",
                        tr(lang, "Your crews:", "내 크루:"),
                        lines.join("\n")
                    )
                };
            }
            Err(why) => self.missing(f, "social.my_crews", &why, lang, "your crews", "크루"),
        }
    }

    async fn meetups(&self, ctx: &Context, lang: Lang, f: &mut Findings) {
        let tz = self.time_zone(ctx).await;
        match self.tools.meetups(&ctx.auth).await {
            Ok(meetups) => {
                f.data.push(
                    DataUsed::new("social.meetups", "upcoming group runs of your crews")
                        .fact("meetups", meetups.len().to_string()),
                );
                f.body = if meetups.is_empty() {
                    tr(
                        lang,
                        "Your crews have no upcoming group runs.",
                        "예정된 크루 단체런이 없습니다.",
                    )
                } else {
                    let lines: Vec<String> = meetups
                        .iter()
                        .take(5)
                        .map(|m| {
                            let when = m.starts_at.map(|t| local(t, tz)).unwrap_or_default();
                            let km = if m.planned_distance_m > 0 {
                                format!(
                                    ", {} km",
                                    format_km(f64::from(m.planned_distance_m) / 1000.0)
                                )
                            } else {
                                String::new()
                            };
                            tr(
                                lang,
                                format!(
                                    "- {when} — {} ({}{km}, {} going)",
                                    m.title, m.crew, m.going_count
                                ),
                                format!(
                                    "- {when} — {} ({}{km}, {}명 참석)",
                                    m.title, m.crew, m.going_count
                                ),
                            )
                        })
                        .collect();
                    format!(
                        "{}\n{}",
                        tr(lang, "Upcoming group runs:", "예정된 단체런:"),
                        lines.join("\n")
                    )
                };
            }
            Err(why) => self.missing(
                f,
                "social.meetups",
                &why,
                lang,
                "your crews' group runs",
                "크루 단체런",
            ),
        }
    }
}

/// Lowercase without spaces or punctuation: "서울 마라톤" meets "서울마라톤 2027".
pub fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn target_pace(meters: f64, seconds: f64, lang: Lang, f: &mut Findings) {
    let Some(pace) = calc::pace_seconds_per_km(meters, seconds) else {
        return;
    };
    let exact = format!("{}:{:04.1}", (pace / 60.0).floor() as u64, pace % 60.0);
    f.data.push(
        DataUsed::new("calc.pace", "time / distance")
            .fact("distance_km", format_km(meters / 1000.0))
            .fact("target", format_duration(seconds))
            .fact("pace_per_km", calc::format_pace_floor(pace))
            .fact("speed_kmh", kmh(pace)),
    );
    let marks: Vec<String> = calc::even_splits(meters, seconds)
        .into_iter()
        .filter(|(km, _)| (km % 5.0).abs() < 1e-9 || (*km - meters / 1000.0).abs() < 1e-9)
        .map(|(km, t)| format!("{} km {}", format_km(km), format_duration(t)))
        .collect();
    f.body = tr(
        lang,
        format!(
            "To run {} in {} you need an average pace of {}/km ({exact}/km exactly, {} km/h) or faster. Even-pace checkpoints: {}.",
            distance_label(meters, lang),
            format_duration(seconds),
            calc::format_pace_floor(pace),
            kmh(pace),
            marks.join(", ")
        ),
        format!(
            "{}를 {} 안에 달리려면 평균 km당 {} 페이스(정확히 {}/km, 시속 {} km) 이상이 필요합니다. 이븐 페이스 구간 기록: {}.",
            distance_label(meters, lang),
            format_duration(seconds),
            calc::format_pace_floor(pace),
            exact,
            kmh(pace),
            marks.join(", ")
        ),
    );
}

fn hr_zones(max: Option<u32>, rest: Option<u32>, age: Option<u32>, lang: Lang, f: &mut Findings) {
    let (max_hr, basis) = match (max, age) {
        (Some(m), _) => (
            m,
            tr(
                lang,
                format!("maximum heart rate {m} bpm"),
                format!("최대심박 {m} bpm"),
            ),
        ),
        (None, Some(a)) => {
            let m = calc::max_hr_tanaka(a);
            (
                m,
                tr(
                    lang,
                    format!(
                        "an estimated maximum of {m} bpm (Tanaka: 208 − 0.7 × {a}; 220 − age gives {})",
                        calc::max_hr_classic(a)
                    ),
                    format!(
                        "추정 최대심박 {m} bpm(타나카: 208 − 0.7 × {a}; 220 − 나이는 {})",
                        calc::max_hr_classic(a)
                    ),
                ),
            )
        }
        (None, None) => return,
    };
    let (zones, method) =
        match rest.and_then(|r| calc::hr_zones_karvonen(max_hr, r).map(|z| (z, r))) {
            Some((zones, r)) => (
                zones,
                tr(
                    lang,
                    format!("heart-rate reserve (Karvonen, resting {r} bpm)"),
                    format!("여유심박(카르보넨, 안정시 {r} bpm)"),
                ),
            ),
            None => (
                calc::hr_zones_max(max_hr),
                tr(lang, "percent of maximum", "최대심박 비율"),
            ),
        };
    let mut data =
        DataUsed::new("calc.hr_zones", method.clone()).fact("max_hr", max_hr.to_string());
    let names_en = ["very easy", "easy", "moderate", "threshold", "maximum"];
    let names_ko = ["매우 쉬움", "쉬움", "중간", "역치", "최대"];
    let lines: Vec<String> = zones
        .iter()
        .map(|z| {
            data.facts
                .push((format!("zone{}", z.zone), format!("{}-{}", z.low, z.high)));
            let i = usize::from(z.zone.saturating_sub(1)).min(4);
            tr(
                lang,
                format!(
                    "- Zone {} ({}): {}–{} bpm",
                    z.zone, names_en[i], z.low, z.high
                ),
                format!("- {}존({}): {}–{} bpm", z.zone, names_ko[i], z.low, z.high),
            )
        })
        .collect();
    f.data.push(data);
    f.body = format!(
        "{}\n{}",
        tr(
            lang,
            format!("Your heart-rate zones from {basis}, by {method}:"),
            format!("{basis} 기준 심박존({method}):")
        ),
        lines.join("\n")
    );
}

fn volume(last_km: f64, this_km: Option<f64>, lang: Lang, f: &mut Findings) {
    let this = this_km.unwrap_or(last_km * 1.1);
    let change = calc::weekly_volume(last_km, this);
    let mut data = DataUsed::new("calc.weekly_volume", "10% rule")
        .fact("last_week_km", format_km(last_km))
        .fact("next_week_max_km", format_km(change.next_week_max_km));
    if let Some(p) = change.change_percent {
        data = data.fact("change_percent", format!("{p:.1}"));
    }
    f.data.push(data);
    f.body = match (this_km, change.change_percent) {
        (Some(this), Some(p)) => tr(
            lang,
            format!(
                "From {} km to {} km is a change of {:+.1}%: {}. By the 10% rule, after {} km the next week should be at most {} km.",
                format_km(last_km),
                format_km(this),
                p,
                if change.within_rule {
                    "within the 10% rule"
                } else {
                    "more than the 10% rule allows"
                },
                format_km(last_km),
                format_km(change.next_week_max_km)
            ),
            format!(
                "{} km에서 {} km로 {:+.1}% 변화로, {}. 10% 규칙에 따르면 {} km 다음 주는 최대 {} km입니다.",
                format_km(last_km),
                format_km(this),
                p,
                if change.within_rule {
                    "10% 규칙 안입니다"
                } else {
                    "10% 규칙보다 많이 늘었습니다"
                },
                format_km(last_km),
                format_km(change.next_week_max_km)
            ),
        ),
        _ => tr(
            lang,
            format!(
                "By the 10% rule, after {} km the next week should be at most {} km.",
                format_km(last_km),
                format_km(change.next_week_max_km)
            ),
            format!(
                "10% 규칙에 따르면 {} km 다음 주는 최대 {} km입니다.",
                format_km(last_km),
                format_km(change.next_week_max_km)
            ),
        ),
    };
}

fn splits(meters: f64, seconds: f64, lang: Lang, f: &mut Findings) {
    let marks = calc::even_splits(meters, seconds);
    let every = if meters > 21_100.0 { 5.0 } else { 1.0 };
    let lines: Vec<String> = marks
        .iter()
        .filter(|(km, _)| (km % every).abs() < 1e-9 || (*km - meters / 1000.0).abs() < 1e-9)
        .map(|(km, t)| format!("- {} km: {}", format_km(*km), format_duration(*t)))
        .collect();
    let pace = seconds / (meters / 1000.0);
    f.data.push(
        DataUsed::new("calc.splits", "even splits")
            .fact("pace_per_km", format_pace(pace))
            .fact("finish", format_duration(seconds)),
    );
    f.body = format!(
        "{}\n{}",
        tr(
            lang,
            format!(
                "Even splits for {} in {} ({}/km):",
                distance_label(meters, lang),
                format_duration(seconds),
                format_pace(pace)
            ),
            format!(
                "{} {} 이븐 페이스 구간 기록(km당 {}):",
                distance_label(meters, lang),
                format_duration(seconds),
                format_pace(pace)
            )
        ),
        lines.join("\n")
    );
}
