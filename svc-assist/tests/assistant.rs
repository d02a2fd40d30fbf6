//! The assistant against the real svc-run and svc-race (spawned as `runmesh up` runs them), with
//! no model and with a fake OpenAI-compatible one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod assistant_support;

use assistant_support::{Assist, Backend, FakeLlm, Mesh, Mode, test_config};
use chrono::{Datelike, Duration, Utc};
use chrono_tz::Asia::Seoul;
use runmesh_platform::testkit::{assert_status, violated_fields};
use runmesh_proto::runmesh::assist::v1 as proto;
use runmesh_svc_assist::assistant::calc::format_km;
use tonic::Code;
use tonic_types::StatusExt;

fn hangul(text: &str) -> bool {
    text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

/// Runs this month and earlier this year (in Seoul), returning (this month km, longest this year km).
async fn seed_runs(mesh: &Mesh, user: &str) -> (f64, f64) {
    let now = Utc::now();
    let local = now.with_timezone(&Seoul);
    let runs = [
        (Duration::minutes(30), 10_000.0, 3_000),
        (Duration::minutes(90), 5_250.0, 1_700),
        (Duration::days(3), 21_100.0, 7_000),
        (Duration::days(20), 30_000.0, 10_800),
        (Duration::days(40), 8_000.0, 2_800),
    ];
    let (mut month_km, mut longest_year_km) = (0.0, 0.0f64);
    for (ago, meters, secs) in runs {
        let start = now - ago;
        mesh.run(user, start, meters, secs, "Han river").await;
        let day = start.with_timezone(&Seoul);
        if day.year() == local.year() && day.month() == local.month() {
            month_km += meters / 1000.0;
        }
        if day.year() == local.year() {
            longest_year_km = longest_year_km.max(meters / 1000.0);
        }
    }
    // Another runner's run never counts.
    mesh.run(
        "someone-else",
        now - Duration::minutes(10),
        42_195.0,
        14_000,
        "Other",
    )
    .await;
    (month_km, longest_year_km)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_answers_the_done_when_questions_without_a_model() {
    let mesh = Mesh::start().await;
    let (month_km, longest_km) = seed_runs(&mesh, "runner-1").await;
    let opens = Utc::now() + Duration::days(10);
    mesh.race(
        "organizer",
        "서울 마라톤 2027",
        "Seoul",
        opens,
        opens + Duration::days(60),
        100,
    )
    .await;
    let assist = Assist::start(&mesh, Backend::Embedded, test_config()).await;

    let asked = assist.ask("runner-1", "이번 달에 몇 km 달렸어?").await;
    assert_eq!(asked.start.language, "ko");
    assert_eq!(asked.start.intent, proto::Intent::OwnData as i32);
    assert!(hangul(&asked.text), "{}", asked.text);
    assert!(
        asked.text.contains(&format!("{} km", format_km(month_km))),
        "{} ≠ {month_km}",
        asked.text
    );
    assert_eq!(
        asked.fact("run.list_runs", "distance_km"),
        Some(format_km(month_km))
    );
    assert!(asked.end.answered);
    assert!(asked.pieces >= 1);

    let asked = assist
        .ask("runner-1", "What pace do I need for a sub-4 marathon?")
        .await;
    assert_eq!(asked.start.intent, proto::Intent::Calculation as i32);
    assert!(asked.text.contains("5:41/km"), "{}", asked.text);
    assert!(asked.articles().contains(&"pacing-strategy".to_owned()));
    assert!(!hangul(&asked.text));

    let asked = assist
        .ask("runner-1", "How far was my longest run this year?")
        .await;
    assert!(
        asked
            .text
            .contains(&format!("{} km", format_km(longest_km))),
        "{}",
        asked.text
    );

    let asked = assist
        .ask("runner-1", "서울 마라톤 신청은 언제 열려?")
        .await;
    assert_eq!(asked.start.intent, proto::Intent::Race as i32);
    let local_open = opens
        .with_timezone(&Seoul)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    assert!(asked.text.contains(&local_open), "{}", asked.text);
    assert!(asked.text.contains("서울 마라톤 2027"));
    assert!(
        asked
            .articles()
            .contains(&"runmesh-registration".to_owned())
    );

    let asked = assist.ask("runner-1", "What is a tempo run?").await;
    assert_eq!(asked.start.intent, proto::Intent::Knowledge as i32);
    let first = &asked.end.citations[0];
    assert_eq!(first.article, "tempo-runs");
    assert_eq!(first.language, "en");
    assert!(!first.heading.is_empty());
    assert!(asked.text.contains(&first.heading));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_reads_own_data_by_description_registrations_and_says_what_is_missing() {
    let mesh = Mesh::start().await;
    let now = Utc::now();
    // A run on Tuesday of last week (Seoul), at 07:00 local.
    let today = now.with_timezone(&Seoul).date_naive();
    let last_week_tuesday = today
        - Duration::days(i64::from(today.weekday().num_days_from_monday()) + 7)
        + Duration::days(1);
    let start = last_week_tuesday
        .and_hms_opt(7, 0, 0)
        .unwrap()
        .and_local_timezone(Seoul)
        .unwrap()
        .with_timezone(&Utc);
    mesh.run("runner-2", start, 12_340.0, 3_900, "Tuesday tempo")
        .await;
    let race = mesh
        .race(
            "organizer",
            "JTBC Seoul Marathon",
            "Seoul",
            now - Duration::hours(1),
            now + Duration::days(30),
            100,
        )
        .await;
    let registration = mesh.register("runner-2", &race).await;
    let assist = Assist::start(&mesh, Backend::Embedded, test_config()).await;

    let asked = assist.ask("runner-2", "지난주 화요일 달리기 어땠어?").await;
    assert!(asked.text.contains("12.34 km"), "{}", asked.text);
    assert!(asked.text.contains("Tuesday tempo"));

    let asked = assist
        .ask("runner-2", "What's my registration status?")
        .await;
    assert!(asked.text.contains("JTBC Seoul Marathon"), "{}", asked.text);
    let bib = registration.bib_number.unwrap().to_string();
    assert!(asked.text.contains(&format!("bib {bib}")), "{}", asked.text);

    // svc-social is not in this mesh: the data is unavailable, never zero.
    let asked = assist.ask("runner-2", "내 크루 다음 단체런 언제야?").await;
    assert_eq!(asked.start.intent, proto::Intent::Crew as i32);
    assert!(!asked.end.answered, "{} {:?}", asked.text, asked.end.data);
    let data = &asked.end.data[0];
    assert!(!data.available, "{data:?}");
    assert!(!asked.text.contains(" 0"), "{}", asked.text);

    // Nothing relevant in the knowledge base: it says it does not know.
    let asked = assist
        .ask(
            "runner-2",
            "What is the capital of Mongolia's favourite quasar?",
        )
        .await;
    assert!(!asked.end.answered);
    assert!(asked.end.citations.is_empty());
    assert!(asked.text.contains("don't know"));

    // Health questions get a caution and the doctor article.
    let asked = assist
        .ask("runner-2", "My shin hurts after running, what should I do?")
        .await;
    assert!(
        asked.articles().contains(&"shin-splints".to_owned()),
        "{:?}",
        asked.articles()
    );
    assert!(asked.text.contains("not medical advice"));
}

/// A series' value in svc-assist's own metrics (0 when absent).
fn answers(outcome: &str) -> f64 {
    let series = format!("runmesh_assist_answers_total{{outcome=\"{outcome}\"}} ");
    runmesh_svc_assist::metrics::render()
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()).map(str::to_owned))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn conversations(backend: Backend) {
    let (answered_before, refused_before) = (answers("answered"), answers("refused"));
    let mesh = Mesh::start().await;
    let mut config = test_config();
    config.rate_limit = 4;
    config.rate_window = std::time::Duration::from_secs(600);
    let assist = Assist::start(&mesh, backend, config).await;
    let first = assist.ask("runner-3", "What is a tempo run?").await;
    let id = first.start.conversation_id.clone();
    let second = assist
        .try_ask("runner-3", "템포런은 얼마나 자주 해?", &id)
        .await
        .unwrap();
    assert_eq!(second.start.conversation_id, id);

    let mut client = assist.client().await;
    let list = client
        .list_conversations(assist.request(proto::ListConversationsRequest::default(), "runner-3"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.conversations.len(), 1);
    assert_eq!(list.conversations[0].message_count, 4);
    let got = client
        .get_conversation(assist.request(
            proto::GetConversationRequest {
                conversation_id: id.clone(),
            },
            "runner-3",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.messages.len(), 4);
    assert_eq!(got.messages[0].role, proto::Role::Runner as i32);
    assert_eq!(got.messages[1].citations[0].article, "tempo-runs");

    // Another runner's conversation does not exist for them.
    let status = client
        .get_conversation(assist.request(
            proto::GetConversationRequest {
                conversation_id: id.clone(),
            },
            "runner-4",
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "CONVERSATION_NOT_FOUND");
    let status = assist.try_ask("runner-4", "hello", &id).await.unwrap_err();
    assert_status(&status, Code::NotFound, "CONVERSATION_NOT_FOUND");
    let status = client
        .delete_conversation(assist.request(
            proto::DeleteConversationRequest {
                conversation_id: id.clone(),
            },
            "runner-4",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Bad input names the field.
    let status = assist.try_ask("runner-3", "   ", "").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["question"]);
    let status = assist
        .try_ask("runner-3", &"달리기 ".repeat(300), "")
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["question"]);

    // The owner deletes it.
    client
        .delete_conversation(assist.request(
            proto::DeleteConversationRequest {
                conversation_id: id.clone(),
            },
            "runner-3",
        ))
        .await
        .unwrap();
    let status = client
        .get_conversation(assist.request(
            proto::GetConversationRequest {
                conversation_id: id,
            },
            "runner-3",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Four questions per window: the third and fourth pass, the fifth is refused with RetryInfo.
    assist.ask("runner-3", "What is an easy run?").await;
    assist.ask("runner-3", "What is a long run?").await;
    let status = assist
        .try_ask("runner-3", "What is a taper?", "")
        .await
        .unwrap_err();
    assert_status(&status, Code::ResourceExhausted, "TOO_MANY_QUESTIONS");
    assert!(status.get_details_retry_info().is_some());
    // Other runners have their own limit.
    assist.ask("runner-4", "What is a taper?").await;
    // The metrics count them (at least: other tests in this process may ask too): knowledge
    // questions answered, and the unknown conversation, two bad questions and the fifth refused.
    assert!(answers("answered") - answered_before >= 4.0);
    assert!(answers("refused") - refused_before >= 4.0);
    assert!(
        runmesh_svc_assist::metrics::render()
            .contains("runmesh_assist_answer_duration_seconds_count{outcome=\"answered\"}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_conversations_on_postgres() {
    conversations(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_conversations_on_sqlite() {
    conversations(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_with_a_model_streams_cites_and_falls_back() {
    let mesh = Mesh::start().await;
    let (month_km, _) = seed_runs(&mesh, "runner-5").await;
    let fake = FakeLlm::start(Mode::Cite).await;
    let mut config = test_config();
    config.llm_url = Some(fake.url.clone());
    config.llm_personal_data = true;
    config.llm_timeout = std::time::Duration::from_secs(2);
    let assist = Assist::start(&mesh, Backend::Embedded, config).await;

    // A cited, streamed answer from the model.
    let asked = assist.ask("runner-5", "What is a tempo run?").await;
    assert!(asked.end.model_answered, "{:?}", asked.end.notes);
    assert!(asked.text.starts_with("A tempo run is a sustained"));
    assert_eq!(asked.end.citations.len(), 1);
    assert_eq!(asked.end.citations[0].article, "tempo-runs");

    // Tool calls act as the caller only, whatever the arguments say.
    fake.set(Mode::Tool);
    let asked = assist
        .ask("runner-5", "How far did I run this month?")
        .await;
    assert!(asked.end.model_answered, "{:?}", asked.end.notes);
    assert!(
        asked.text.contains(&format!("{} km", format_km(month_km))),
        "{}",
        asked.text
    );

    // Failures give the answer without the model, with a note; never an error.
    for mode in [
        Mode::Error,
        Mode::Garbage,
        Mode::Ungiven,
        Mode::BadTool,
        Mode::Invent,
        Mode::Hang,
    ] {
        fake.set(mode);
        let asked = assist.ask("runner-5", "What is a tempo run?").await;
        assert!(!asked.end.model_answered, "{mode:?}: {}", asked.text);
        assert_eq!(asked.end.notes.len(), 1, "{mode:?}");
        assert_eq!(asked.end.citations[0].article, "tempo-runs", "{mode:?}");
        assert!(
            !asked.text.contains("[S9]") && !asked.text.contains("77"),
            "{mode:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_keeps_personal_data_from_the_model_unless_allowed() {
    let mesh = Mesh::start().await;
    let (month_km, _) = seed_runs(&mesh, "runner-6").await;
    let fake = FakeLlm::start(Mode::Tool).await;
    let mut config = test_config();
    config.llm_url = Some(fake.url.clone());
    let assist = Assist::start(&mesh, Backend::Embedded, config).await;
    let asked = assist
        .ask("runner-6", "How far did I run this month?")
        .await;
    assert!(!asked.end.model_answered);
    assert!(asked.text.contains(&format!("{} km", format_km(month_km))));
    assert_eq!(asked.end.notes.len(), 1);
    assert!(
        fake.requests.lock().is_empty(),
        "personal data went to the model"
    );
}
