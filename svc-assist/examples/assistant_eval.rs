//! Evaluates the assistant without a model: `cargo run --release -p runmesh-svc-assist --example
//! assistant_eval`. With `RUNMESH_ASSIST_EMBEDDINGS_URL` (and `_MODEL`, `_API_KEY`) set,
//! retrieval is hybrid (BM25 fused with the endpoint's embeddings, as in the service): the
//! knowledge base is embedded first (not measured), then the same questions are asked.
//!
//! Starts the real svc-run, svc-race and svc-social in process (as `runmesh up` does, embedded
//! SQLite, one loopback gRPC address), seeds runs, races, a registration and a crew with an
//! upcoming group run, starts the assistant with its tools pointed at them, asks every question
//! of `eval/questions.json` over gRPC, and prints:
//! retrieval hit@1 / hit@3 (knowledge questions: the expected article among the passages
//! retrieved), the share of numeric answers exactly right (the expected value appears in the
//! answer), the share of answers citing validly (every citation a passage of the knowledge base;
//! knowledge answers cite at least one; data answers name the data used, or say it is missing),
//! and Ask latency p50/p95. Misses are listed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/assistant_support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Datelike, Duration, Utc};
use chrono_tz::Asia::Seoul;
use runmesh_svc_assist::assistant::AssistantConfig;
use runmesh_svc_assist::assistant::calc::format_km;
use runmesh_svc_assist::assistant::text::detect;
use support::{Assist, Backend, Mesh, test_config};

#[derive(serde::Deserialize)]
struct Question {
    q: String,
    kind: String,
    #[serde(default)]
    article: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    missing: bool,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let questions: Vec<Question> = serde_json::from_str(include_str!("../eval/questions.json"))?;
    let mesh = Mesh::start_with_social().await;
    let user = "eval-runner";
    let now = Utc::now();
    let local = now.with_timezone(&Seoul);
    let runs = [
        (Duration::minutes(30), 10_000.0, 3_000, "Evening easy"),
        (Duration::minutes(90), 5_250.0, 1_700, "Lunch jog"),
        (Duration::days(3), 21_100.0, 7_000, "Half effort"),
        (Duration::days(20), 30_000.0, 10_800, "Long run"),
        (Duration::days(40), 8_000.0, 2_800, "Tempo"),
        (Duration::days(100), 15_000.0, 5_000, "Spring long"),
    ];
    let (mut month_km, mut month_runs, mut week_km, mut longest_km) = (0.0, 0, 0.0, 0.0f64);
    let week_start =
        local.date_naive() - Duration::days(i64::from(local.weekday().num_days_from_monday()));
    for (ago, meters, secs, title) in runs {
        let start = now - ago;
        mesh.run(user, start, meters, secs, title).await;
        let day = start.with_timezone(&Seoul);
        if day.year() == local.year() && day.month() == local.month() {
            month_km += meters / 1000.0;
            month_runs += 1;
        }
        if day.date_naive() >= week_start {
            week_km += meters / 1000.0;
        }
        if day.year() == local.year() {
            longest_km = longest_km.max(meters / 1000.0);
        }
    }
    let seoul_opens = now + Duration::days(10);
    let busan_opens = now + Duration::days(5);
    mesh.race(
        "organizer",
        "서울 마라톤 2027",
        "Seoul",
        seoul_opens,
        seoul_opens + Duration::days(60),
        100,
    )
    .await;
    mesh.race(
        "organizer",
        "Busan Marathon",
        "Busan",
        busan_opens,
        busan_opens + Duration::days(40),
        100,
    )
    .await;
    let open = mesh
        .race(
            "organizer",
            "JTBC Seoul Marathon",
            "Seoul",
            now - Duration::hours(1),
            now + Duration::days(30),
            100,
        )
        .await;
    let registration = mesh.register(user, &open).await;
    let crew = mesh
        .crew("crew-owner", "Han River Dawn Crew", "Seoul")
        .await;
    mesh.join(user, &crew.crew_id).await;
    let group_run = (now + Duration::days(2))
        .with_timezone(&Seoul)
        .date_naive()
        .and_hms_opt(6, 30, 0)
        .unwrap()
        .and_local_timezone(Seoul)
        .unwrap()
        .with_timezone(&Utc);
    mesh.meetup(
        "crew-owner",
        &crew.crew_id,
        "Saturday river 10K",
        group_run,
        10_000,
    )
    .await;

    // Dense retrieval as the service reads it (`RUNMESH_ASSIST_EMBEDDINGS_*`); nothing else.
    let env = AssistantConfig::from_env()?;
    let mut config = test_config();
    config.embeddings_url = env.embeddings_url;
    config.embeddings_model = env.embeddings_model;
    config.embeddings_api_key = env.embeddings_api_key;
    // Embedding the knowledge base on a shared CPU takes longer than a question's deadline.
    config.llm_timeout = StdDuration::from_secs(120);
    let mode = match &config.embeddings_url {
        Some(url) => format!("hybrid: BM25 + {} at {url}", config.embeddings_model),
        None => "BM25".to_owned(),
    };
    let assist = Assist::start(&mesh, Backend::Embedded, config).await;
    let engine = &assist.module.assistant.engine;
    let known: HashSet<String> = engine.index.chunks().iter().map(|c| c.id.clone()).collect();
    if let Some(dense) = &engine.dense {
        let started = Instant::now();
        let chunks = engine.index.chunks().len();
        while dense.ready() < chunks {
            anyhow::ensure!(
                started.elapsed() < StdDuration::from_secs(900),
                "only {} of {chunks} chunks embedded after 15 minutes",
                dense.ready()
            );
            tokio::time::sleep(StdDuration::from_millis(200)).await;
        }
        println!(
            "embedded {chunks} knowledge chunks in {:.1} s (not measured below)",
            started.elapsed().as_secs_f64()
        );
    }

    let fmt =
        |t: chrono::DateTime<Utc>| t.with_timezone(&Seoul).format("%Y-%m-%d %H:%M").to_string();
    let substitute = |text: &str| {
        text.replace("{month_km}", &format_km(month_km))
            .replace("{month_runs}", &month_runs.to_string())
            .replace("{week_km}", &format_km(week_km))
            .replace("{longest_km}", &format_km(longest_km))
            .replace("{last_km}", &format_km(10.0))
            .replace("{seoul_opens}", &fmt(seoul_opens))
            .replace("{busan_opens}", &fmt(busan_opens))
            .replace(
                "{bib}",
                &registration.bib_number.unwrap_or_default().to_string(),
            )
            .replace("{group_run}", &fmt(group_run))
    };

    // Warm the connection once (not measured).
    assist.ask(user, "What is a tempo run?").await;

    let (mut retrieval, mut hit1, mut hit3) = (0, 0, 0);
    let (mut numeric, mut numeric_ok) = (0, 0);
    let (mut cited_ok, mut language_ok) = (0, 0);
    let mut latencies = Vec::new();
    let mut misses = Vec::new();
    for question in &questions {
        let lang = detect(&question.q);
        if let Some(article) = &question.article {
            retrieval += 1;
            let hits = engine.retrieve(&question.q, lang, 3).await;
            let slugs: Vec<&str> = hits
                .iter()
                .map(|h| engine.index.chunks()[h.chunk].slug.as_str())
                .collect();
            if slugs.first() == Some(&article.as_str()) {
                hit1 += 1;
            }
            if slugs.contains(&article.as_str()) {
                hit3 += 1;
                if slugs.first() != Some(&article.as_str()) {
                    misses.push(format!(
                        "rank > 1   {:?}: expected {article}, got {slugs:?}",
                        question.q
                    ));
                }
            } else {
                misses.push(format!(
                    "retrieval  {:?}: expected {article}, got {slugs:?}",
                    question.q
                ));
            }
        }
        let started = Instant::now();
        let asked = assist.ask(user, &question.q).await;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        if asked.start.language == lang.code()
            && (lang.code() == "en")
                != asked
                    .text
                    .chars()
                    .any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
        {
            language_ok += 1;
        } else {
            misses.push(format!(
                "language   {:?}: answered {:?} in {:?}",
                question.q, asked.start.language, asked.text
            ));
        }
        if let Some(value) = &question.value {
            numeric += 1;
            let value = substitute(value);
            if asked.text.contains(&value) {
                numeric_ok += 1;
            } else {
                misses.push(format!(
                    "value      {:?}: expected {value:?} in {:?}",
                    question.q, asked.text
                ));
            }
        }
        let citations_known = asked
            .end
            .citations
            .iter()
            .all(|c| known.contains(&c.source_id));
        let grounded = match question.kind.as_str() {
            "knowledge" => !asked.end.citations.is_empty(),
            _ if question.missing => {
                asked.end.data.iter().any(|d| !d.available) && !asked.end.answered
            }
            _ => !asked.end.data.is_empty(),
        };
        if citations_known && grounded {
            cited_ok += 1;
        } else {
            misses.push(format!(
                "citation   {:?}: citations {:?}, data {:?}",
                question.q,
                asked.articles(),
                asked
                    .end
                    .data
                    .iter()
                    .map(|d| (&d.source, d.available))
                    .collect::<Vec<_>>()
            ));
        }
    }
    latencies.sort_by(f64::total_cmp);
    let total = questions.len();
    let korean = questions
        .iter()
        .filter(|q| detect(&q.q).code() == "ko")
        .count();
    println!(
        "assistant evaluation (no LLM, {mode}): {total} questions ({korean} Korean, {} English)",
        total - korean
    );
    println!(
        "  retrieval   hit@1 {:.3}  hit@3 {:.3}  ({retrieval} knowledge questions)",
        hit1 as f64 / retrieval as f64,
        hit3 as f64 / retrieval as f64
    );
    println!(
        "  numeric     {numeric_ok}/{numeric} exactly right ({:.1}%)",
        numeric_ok as f64 * 100.0 / numeric as f64
    );
    println!(
        "  citations   {cited_ok}/{total} valid and grounded ({:.1}%)",
        cited_ok as f64 * 100.0 / total as f64
    );
    println!("  language    {language_ok}/{total} answered in the question's language");
    println!(
        "  latency     p50 {:.1} ms  p95 {:.1} ms  max {:.1} ms (Ask over gRPC, end to end)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or(0.0)
    );
    if misses.is_empty() {
        println!("  misses      none");
    } else {
        println!("  misses:");
        for miss in &misses {
            println!("    {miss}");
        }
    }
    Ok(())
}
