//! `runmesh.assist.v1.AssistantService`: thin handlers (decode → assistant → encode) and the
//! proto conversions.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use autometrics::autometrics;
use autometrics::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
use chrono::{DateTime, Utc};
use futures::Stream;
use runmesh_platform::auth::require_caller;
use runmesh_proto::runmesh::assist::v1 as proto;
use runmesh_proto::runmesh::assist::v1::assistant_service_server::AssistantService;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::answer::{Citation, DataUsed, pieces};
use super::engine::Context;
use super::error::AssistantError;
use super::store::{NewMessage, message};
use super::text::detect;
use super::tools::RunnerAuth;
use super::{Assistant, MAX_QUESTION_CHARS};
use crate::metrics;

const ASSISTANT_OBJECTIVE: Objective = Objective::new("assistant_api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(ObjectiveLatency::Ms1000, ObjectivePercentile::P99);

/// The handlers.
#[derive(Clone)]
pub struct AssistantApi {
    assistant: Arc<Assistant>,
}

impl AssistantApi {
    pub fn new(assistant: Arc<Assistant>) -> Self {
        Self { assistant }
    }
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn citation_message(c: &Citation) -> proto::Citation {
    proto::Citation {
        source_id: c.source_id.clone(),
        article: c.article.clone(),
        title: c.title.clone(),
        heading: c.heading.clone(),
        language: c.language.clone(),
        origin: c.origin.clone(),
        excerpt: c.excerpt.clone(),
    }
}

pub fn data_message(d: &DataUsed) -> proto::DataUsed {
    proto::DataUsed {
        source: d.source.clone(),
        available: d.available,
        detail: d.detail.clone(),
        facts: d
            .facts
            .iter()
            .map(|(name, value)| proto::Fact {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    }
}

fn conversation_message(c: &super::store::conversation::Model) -> proto::Conversation {
    proto::Conversation {
        conversation_id: c.id.to_string(),
        title: c.title.clone(),
        message_count: u32::try_from(c.message_count).unwrap_or(0),
        created_at: Some(timestamp(c.created_at)),
        updated_at: Some(timestamp(c.updated_at)),
    }
}

fn stored_message(m: &message::Model) -> proto::Message {
    let citations: Vec<Citation> = serde_json::from_str(&m.citations).unwrap_or_default();
    let data: Vec<DataUsed> = serde_json::from_str(&m.data).unwrap_or_default();
    proto::Message {
        message_id: m.id.to_string(),
        role: if m.role == "assistant" {
            proto::Role::Assistant as i32
        } else {
            proto::Role::Runner as i32
        },
        text: m.text.clone(),
        language: m.language.clone(),
        intent: m.intent,
        citations: citations.iter().map(citation_message).collect(),
        data: data.iter().map(data_message).collect(),
        created_at: Some(timestamp(m.created_at)),
    }
}

fn conversation_id(text: &str) -> Result<Uuid, AssistantError> {
    Uuid::parse_str(text).map_err(|_| AssistantError::ConversationNotFound(text.to_owned()))
}

type AskStream = Pin<Box<dyn Stream<Item = Result<proto::AskResponse, Status>> + Send>>;

fn event(event: proto::ask_response::Event) -> Result<proto::AskResponse, Status> {
    Ok(proto::AskResponse { event: Some(event) })
}

impl AssistantApi {
    /// `Ask` up to the answer's stream; the question's outcome is counted when it is refused
    /// here or once the answer is stored (`runmesh_assist_answers_total`).
    async fn start_answer(
        &self,
        request: Request<proto::AskRequest>,
        started: Instant,
    ) -> Result<Response<AskStream>, Status> {
        let caller = require_caller(&request)?;
        let auth = RunnerAuth::from_metadata(request.metadata());
        let request = request.into_inner();
        let question = request.question.trim().to_owned();
        if question.is_empty() {
            return Err(
                AssistantError::InvalidInput("question", "must not be empty".into()).into(),
            );
        }
        if question.chars().count() > MAX_QUESTION_CHARS {
            return Err(AssistantError::InvalidInput(
                "question",
                format!("must be at most {MAX_QUESTION_CHARS} characters"),
            )
            .into());
        }
        let time_zone = match request.time_zone.trim() {
            "" => None,
            name => Some(name.parse::<chrono_tz::Tz>().map_err(|_| {
                AssistantError::InvalidInput(
                    "time_zone",
                    "is not an IANA time zone, e.g. Asia/Seoul".into(),
                )
            })?),
        };
        let assistant = Arc::clone(&self.assistant);
        let existing = match request.conversation_id.trim() {
            "" => None,
            id => {
                let id = conversation_id(id)?;
                Some(
                    assistant
                        .conversations
                        .get(&caller.user_id, id)
                        .await
                        .map_err(AssistantError::from)?
                        .ok_or_else(|| AssistantError::ConversationNotFound(id.to_string()))?,
                )
            }
        };
        assistant.check_rate(&caller.user_id).await?;
        let now = Utc::now();
        let conversation = match existing {
            Some(c) => c,
            None => assistant
                .conversations
                .create(&caller.user_id, &question, now)
                .await
                .map_err(AssistantError::from)?,
        };
        let lang = detect(&question);
        let history = assistant.history(&caller.user_id, conversation.id).await;
        let question_id = assistant
            .conversations
            .append(
                &caller.user_id,
                conversation.id,
                vec![NewMessage {
                    role: "runner",
                    text: question.clone(),
                    language: lang.code().to_owned(),
                    intent: super::understand::understand(&question).intent() as i32,
                    citations: "[]".to_owned(),
                    data: "[]".to_owned(),
                }],
                now,
            )
            .await
            .map_err(AssistantError::from)?
            .into_iter()
            .next()
            .unwrap_or_default();
        let ctx = Context {
            user_id: caller.user_id.clone(),
            auth,
            time_zone,
            now,
        };
        let (tx, rx) = mpsc::channel(32);
        tokio::spawn(async move {
            let intent = super::understand::understand(&question).intent();
            let start = proto::AnswerStart {
                conversation_id: conversation.id.to_string(),
                question_message_id: question_id.to_string(),
                language: lang.code().to_owned(),
                intent: intent as i32,
            };
            if tx
                .send(event(proto::ask_response::Event::Start(start)))
                .await
                .is_err()
            {
                return;
            }
            let answer = assistant.respond(&question, &ctx, &history).await;
            let stored = assistant
                .conversations
                .append(
                    &ctx.user_id,
                    conversation.id,
                    vec![NewMessage {
                        role: "assistant",
                        text: answer.text.clone(),
                        language: answer.lang.code().to_owned(),
                        intent: answer.intent as i32,
                        citations: serde_json::to_string(&answer.citations).unwrap_or_default(),
                        data: serde_json::to_string(&answer.data).unwrap_or_default(),
                    }],
                    Utc::now(),
                )
                .await;
            metrics::answered(
                match (&stored, answer.answered) {
                    (Err(_), _) => metrics::Answer::Failed,
                    (Ok(_), true) => metrics::Answer::Answered,
                    (Ok(_), false) => metrics::Answer::Unanswered,
                },
                started.elapsed(),
            );
            let answer_id = match stored {
                Ok(ids) => ids.into_iter().next().unwrap_or_default(),
                Err(error) => {
                    tracing::error!(%error, "storing the assistant's answer failed");
                    let status: Status = AssistantError::from(error).into();
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            for piece in pieces(&answer.text) {
                if tx
                    .send(event(proto::ask_response::Event::Text(piece)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let end = proto::AnswerEnd {
                answer_message_id: answer_id.to_string(),
                citations: answer.citations.iter().map(citation_message).collect(),
                data: answer.data.iter().map(data_message).collect(),
                notes: answer.notes.clone(),
                model_answered: answer.model_answered,
                answered: answer.answered,
            };
            let _ = tx.send(event(proto::ask_response::Event::End(end))).await;
        });
        let stream: AskStream = Box::pin(ReceiverStream::new(rx));
        Ok(Response::new(stream))
    }
}

#[autometrics(objective = ASSISTANT_OBJECTIVE, error_if = runmesh_platform::error::server_fault)]
#[tonic::async_trait]
impl AssistantService for AssistantApi {
    type AskStream = AskStream;

    async fn ask(
        &self,
        request: Request<proto::AskRequest>,
    ) -> Result<Response<Self::AskStream>, Status> {
        let started = Instant::now();
        let result = self.start_answer(request, started).await;
        if result.is_err() {
            let outcome = if runmesh_platform::error::server_fault(&result) {
                metrics::Answer::Failed
            } else {
                metrics::Answer::Refused
            };
            metrics::answered(outcome, started.elapsed());
        }
        result
    }

    async fn list_conversations(
        &self,
        request: Request<proto::ListConversationsRequest>,
    ) -> Result<Response<proto::ListConversationsResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let page_size = match request.page_size {
            0 => 20,
            size @ 1..=100 => u64::try_from(size).unwrap_or(20),
            _ => {
                return Err(
                    AssistantError::InvalidInput("page_size", "must be 1 to 100".into()).into(),
                );
            }
        };
        let offset = match request.page_token.as_str() {
            "" => 0,
            token => token.parse::<u64>().map_err(|_| {
                AssistantError::InvalidInput(
                    "page_token",
                    "is not a page token from this list".into(),
                )
            })?,
        };
        let mut rows = self
            .assistant
            .conversations
            .list(&caller.user_id, offset, page_size + 1)
            .await
            .map_err(AssistantError::from)?;
        let more = rows.len() as u64 > page_size;
        rows.truncate(usize::try_from(page_size).unwrap_or(20));
        Ok(Response::new(proto::ListConversationsResponse {
            conversations: rows.iter().map(conversation_message).collect(),
            next_page_token: if more {
                (offset + page_size).to_string()
            } else {
                String::new()
            },
        }))
    }

    async fn get_conversation(
        &self,
        request: Request<proto::GetConversationRequest>,
    ) -> Result<Response<proto::GetConversationResponse>, Status> {
        let caller = require_caller(&request)?;
        let id = conversation_id(&request.get_ref().conversation_id)?;
        let conversations = &self.assistant.conversations;
        let conversation = conversations
            .get(&caller.user_id, id)
            .await
            .map_err(AssistantError::from)?
            .ok_or_else(|| AssistantError::ConversationNotFound(id.to_string()))?;
        let messages = conversations
            .messages(&caller.user_id, id)
            .await
            .map_err(AssistantError::from)?;
        Ok(Response::new(proto::GetConversationResponse {
            conversation: Some(conversation_message(&conversation)),
            messages: messages.iter().map(stored_message).collect(),
        }))
    }

    async fn delete_conversation(
        &self,
        request: Request<proto::DeleteConversationRequest>,
    ) -> Result<Response<proto::DeleteConversationResponse>, Status> {
        let caller = require_caller(&request)?;
        let id = conversation_id(&request.get_ref().conversation_id)?;
        let deleted = self
            .assistant
            .conversations
            .delete(&caller.user_id, id)
            .await
            .map_err(AssistantError::from)?;
        if !deleted {
            return Err(AssistantError::ConversationNotFound(id.to_string()).into());
        }
        Ok(Response::new(proto::DeleteConversationResponse {}))
    }
}
