//! The assistant: answers running questions in Korean and English from a knowledge base and the
//! runner's own data, cited, with or without a language model.
//!
//! - [`knowledge`]: the built-in articles (both languages, embedded) and an operator's folder,
//!   chunked by heading; [`retrieval`]: BM25 over Hangul bigrams and Latin words with
//!   Korean↔English expansion, fused with [`dense`] retrieval when an embeddings endpoint is set;
//! - [`understand`] reads the question (intent, numbers), [`dates`] resolves periods in the
//!   runner's time zone, [`tools`] read the runner's data from svc-run, svc-race and svc-social
//!   with the runner's own token, [`calc`] computes every number;
//! - [`engine`] writes the answer without a model; [`llm`] with one, falling back to the engine;
//! - [`grpc`] serves `runmesh.assist.v1.AssistantService`, [`store`] keeps conversations.

pub mod answer;
mod builtin;
pub mod calc;
pub mod config;
pub mod dates;
pub mod dense;
pub mod engine;
pub mod error;
pub mod grpc;
pub mod knowledge;
pub mod llm;
pub mod retrieval;
pub mod store;
pub mod text;
pub mod tools;
pub mod understand;

use std::sync::Arc;

use runmesh_platform::cache::SharedCache;
use runmesh_platform::server::GrpcServerBuilder;
use runmesh_platform::service::ServiceContext;
use runmesh_proto::runmesh::assist::v1::assistant_service_server::AssistantServiceServer;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{AssistantConfig, AssistantConfigError, Peers};

use self::answer::{Answer, tr};
use self::dense::{Dense, Embedder};
use self::engine::{Context, Engine};
use self::error::AssistantError;
use self::llm::Llm;
use self::retrieval::Bm25;
use self::store::Conversations;
use self::tools::Tools;

/// Longest question accepted, in characters.
pub const MAX_QUESTION_CHARS: usize = 1000;
/// Earlier messages of the conversation given to the model.
const HISTORY: u64 = 6;

/// The assistant assembled.
pub struct Assistant {
    pub engine: Engine,
    pub llm: Option<Llm>,
    pub conversations: Conversations,
    cache: SharedCache,
    config: AssistantConfig,
}

impl Assistant {
    /// `TOO_MANY_QUESTIONS` past the runner's limit. A cache failure lets the question through
    /// (the limit protects the service, it must not take the assistant down).
    pub async fn check_rate(&self, user_id: &str) -> Result<(), AssistantError> {
        let key = format!("assistant:ask:{user_id}");
        match self
            .cache
            .rate_limit(&key, self.config.rate_limit, self.config.rate_window)
            .await
        {
            Ok(decision) if !decision.allowed => {
                Err(AssistantError::TooManyQuestions(decision.retry_after))
            }
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, "assistant rate limit unavailable; letting the question through");
                Ok(())
            }
        }
    }

    /// The conversation so far, for the model: `(role, text)`.
    pub async fn history(&self, user_id: &str, conversation: uuid::Uuid) -> Vec<(String, String)> {
        if self.llm.is_none() {
            return Vec::new();
        }
        self.conversations
            .recent_messages(user_id, conversation, HISTORY)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let role = if m.role == "assistant" {
                    "assistant"
                } else {
                    "user"
                };
                (role.to_owned(), m.text)
            })
            .collect()
    }

    /// The answer: with the model when one is configured and may see what the question needs,
    /// else (or when the model fails) without it.
    pub async fn respond(
        &self,
        question: &str,
        ctx: &Context,
        history: &[(String, String)],
    ) -> Answer {
        let findings = self.engine.gather(question, ctx).await;
        let Some(llm) = &self.llm else {
            return self.engine.render(findings);
        };
        let lang = findings.lang;
        if findings.ask.personal() && !llm.personal_data() {
            let mut answer = self.engine.render(findings);
            answer.notes.push(tr(
                lang,
                "Your personal data is not sent to the language model on this server, so this answer was written without it.",
                "이 서버에서는 개인 데이터를 언어 모델에 보내지 않으므로 모델 없이 답했습니다.",
            ));
            return answer;
        }
        let attempt = tokio::time::timeout(
            self.config.llm_timeout,
            llm::answer(llm, &self.engine, question, ctx, &findings, history),
        )
        .await
        .unwrap_or(Err(llm::LlmFailure::Timeout));
        match attempt {
            Ok(answer) => answer,
            Err(failure) => {
                tracing::warn!(%failure, "the language model's answer was not used; answering without it");
                let note = failure.note(lang);
                let mut answer = self.engine.render(findings);
                answer.notes.push(note);
                answer
            }
        }
    }
}

/// The assistant assembled: its parts and the tonic service to mount.
#[derive(Clone)]
pub struct AssistantModule {
    pub assistant: Arc<Assistant>,
}

impl AssistantModule {
    /// Loads the knowledge base, connects the tools to `peers`, and sets up the model and the
    /// embeddings when configured (chunk vectors are prepared on `tasks`).
    pub fn assemble(
        db: DatabaseConnection,
        cache: SharedCache,
        config: AssistantConfig,
        peers: &Peers,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let mut chunks = knowledge::builtin_chunks();
        if let Some(dir) = &config.knowledge_dir {
            let extra = knowledge::load_dir(dir).map_err(|e| {
                anyhow::anyhow!("RUNMESH_ASSIST_KNOWLEDGE_DIR {}: {e}", dir.display())
            })?;
            tracing::info!(dir = %dir.display(), chunks = extra.len(), "operator knowledge loaded");
            chunks.extend(extra);
        }
        let index = Arc::new(Bm25::new(chunks));
        let dense = match &config.embeddings_url {
            Some(url) => {
                let embedder = Embedder::new(
                    url,
                    &config.embeddings_model,
                    config.embeddings_api_key.clone(),
                    config.llm_timeout,
                )?;
                let dense = Arc::new(Dense::new(embedder, index.chunks().len()));
                let (prepare, index, db, shutdown) = (
                    Arc::clone(&dense),
                    Arc::clone(&index),
                    db.clone(),
                    shutdown.clone(),
                );
                tasks.spawn(async move {
                    tokio::select! {
                        result = prepare.prepare(index.chunks(), &db) => match result {
                            Ok(count) => tracing::info!(count, "knowledge vectors ready"),
                            Err(error) => tracing::warn!(%error, "embedding the knowledge base failed; BM25 only until restart"),
                        },
                        () = shutdown.cancelled() => {}
                    }
                });
                Some(dense)
            }
            None => None,
        };
        let tools = Tools::connect(peers, config.tool_timeout)?;
        let llm = match &config.llm_url {
            Some(url) => {
                tracing::info!(model = %config.llm_model, personal_data = config.llm_personal_data, "assistant language model on");
                Some(Llm::new(
                    url,
                    &config.llm_model,
                    config.llm_api_key.clone(),
                    config.llm_timeout,
                    config.llm_personal_data,
                )?)
            }
            None => None,
        };
        tracing::info!(
            articles = knowledge::builtin_article_count(),
            chunks = index.chunks().len(),
            dense = dense.is_some(),
            llm = llm.is_some(),
            "assistant ready"
        );
        let engine = Engine::new(index, dense, tools, db.clone());
        Ok(Self {
            assistant: Arc::new(Assistant {
                engine,
                llm,
                conversations: Conversations::new(db),
                cache,
                config,
            }),
        })
    }

    /// `runmesh.assist.v1.AssistantService`.
    pub fn server(&self) -> AssistantServiceServer<grpc::AssistantApi> {
        AssistantServiceServer::new(grpc::AssistantApi::new(Arc::clone(&self.assistant)))
    }
}

/// Adds the assistant to svc-assist's server in the runtime (`RUNMESH_ASSIST_*` and
/// `RUNMESH_PEER_*` from the environment; peers default to this process's gRPC address).
pub fn mount(ctx: &ServiceContext, server: GrpcServerBuilder) -> anyhow::Result<GrpcServerBuilder> {
    let config = AssistantConfig::from_env()?;
    let peers = config.peers(ctx.settings.grpc_addr);
    let module = AssistantModule::assemble(
        ctx.db.clone(),
        ctx.cache.clone(),
        config,
        &peers,
        &ctx.tasks,
        &ctx.shutdown,
    )?;
    let max_message_bytes = server.max_message_bytes();
    Ok(server.add_service(
        module
            .server()
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes),
        ctx.probes(),
    ))
}
