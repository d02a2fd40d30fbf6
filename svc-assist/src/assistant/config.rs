//! The assistant's settings: `RUNMESH_ASSIST_*` (durations in humantime form, e.g. `3s`) and the
//! peers it reads the runner's data from (`RUNMESH_PEER_RUN`, `RUNMESH_PEER_RACE`,
//! `RUNMESH_PEER_SOCIAL`; in `runmesh up` every service answers on the process's own gRPC
//! address, which is the default). API keys are secrets: `Debug` never shows them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::Env;
use runmesh_platform::config;
use serde::{Deserialize, Deserializer};

use crate::config::Secret;

const PREFIX: &str = "RUNMESH_";
const PEERS: [&str; 3] = ["peer_run", "peer_race", "peer_social"];

fn de_secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    let value = Option::<String>::deserialize(deserializer)?;
    Ok(value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(Secret::new))
}

fn de_optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(deserializer)?;
    Ok(value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
}

/// Settings of the assistant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct AssistantConfig {
    /// An operator's folder of Markdown articles added to the built-in ones
    /// (`RUNMESH_ASSIST_KNOWLEDGE_DIR`; `ko/` and `en/` subfolders name the language).
    #[serde(rename = "assist_knowledge_dir")]
    pub knowledge_dir: Option<PathBuf>,
    /// An OpenAI-compatible chat-completions base URL, e.g. `http://127.0.0.1:11434/v1`
    /// (`RUNMESH_ASSIST_LLM_URL`); unset: answers without a language model.
    #[serde(rename = "assist_llm_url", deserialize_with = "de_optional")]
    pub llm_url: Option<String>,
    /// `RUNMESH_ASSIST_LLM_MODEL`.
    #[serde(rename = "assist_llm_model")]
    pub llm_model: String,
    /// `RUNMESH_ASSIST_LLM_API_KEY`, sent as a bearer token.
    #[serde(rename = "assist_llm_api_key", deserialize_with = "de_secret")]
    pub llm_api_key: Option<Secret>,
    /// Whether the runner's own data (tool results) may be sent to the model
    /// (`RUNMESH_ASSIST_LLM_PERSONAL_DATA`, default false: such questions are answered without
    /// the model).
    #[serde(rename = "assist_llm_personal_data")]
    pub llm_personal_data: bool,
    /// Deadline of one model call (`RUNMESH_ASSIST_LLM_TIMEOUT`, default 20s); past it the answer
    /// is the one without the model.
    #[serde(
        rename = "assist_llm_timeout",
        deserialize_with = "config::positive_duration"
    )]
    pub llm_timeout: Duration,
    /// An OpenAI-compatible `/v1/embeddings` base URL (`RUNMESH_ASSIST_EMBEDDINGS_URL`); unset:
    /// BM25 only.
    #[serde(rename = "assist_embeddings_url", deserialize_with = "de_optional")]
    pub embeddings_url: Option<String>,
    /// `RUNMESH_ASSIST_EMBEDDINGS_MODEL`.
    #[serde(rename = "assist_embeddings_model")]
    pub embeddings_model: String,
    /// `RUNMESH_ASSIST_EMBEDDINGS_API_KEY`.
    #[serde(rename = "assist_embeddings_api_key", deserialize_with = "de_secret")]
    pub embeddings_api_key: Option<Secret>,
    /// Deadline of one call to another service (`RUNMESH_ASSIST_TOOL_TIMEOUT`, default 3s).
    #[serde(
        rename = "assist_tool_timeout",
        deserialize_with = "config::positive_duration"
    )]
    pub tool_timeout: Duration,
    /// Questions per runner per window (`RUNMESH_ASSIST_RATE_LIMIT`, default 30).
    #[serde(
        rename = "assist_rate_limit",
        deserialize_with = "config::positive_count"
    )]
    pub rate_limit: u64,
    /// `RUNMESH_ASSIST_RATE_WINDOW`, default 1m.
    #[serde(
        rename = "assist_rate_window",
        deserialize_with = "config::positive_duration"
    )]
    pub rate_window: Duration,
    /// svc-run's gRPC address, e.g. `http://run:50051` (`RUNMESH_PEER_RUN`).
    #[serde(deserialize_with = "de_optional")]
    pub peer_run: Option<String>,
    /// svc-race's (`RUNMESH_PEER_RACE`).
    #[serde(deserialize_with = "de_optional")]
    pub peer_race: Option<String>,
    /// svc-social's (`RUNMESH_PEER_SOCIAL`).
    #[serde(deserialize_with = "de_optional")]
    pub peer_social: Option<String>,
}

impl Default for AssistantConfig {
    fn default() -> Self {
        Self {
            knowledge_dir: None,
            llm_url: None,
            llm_model: "gpt-4o-mini".to_owned(),
            llm_api_key: None,
            llm_personal_data: false,
            llm_timeout: Duration::from_secs(20),
            embeddings_url: None,
            embeddings_model: "multilingual-e5-small".to_owned(),
            embeddings_api_key: None,
            tool_timeout: Duration::from_secs(3),
            rate_limit: 30,
            rate_window: Duration::from_secs(60),
            peer_run: None,
            peer_race: None,
            peer_social: None,
        }
    }
}

/// A bad value; `Display` names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct AssistantConfigError {
    pub variable: String,
    pub message: String,
}

impl AssistantConfig {
    pub fn from_env() -> Result<Self, AssistantConfigError> {
        Self::from_figment(Figment::new().merge(Env::prefixed(PREFIX).filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            key.starts_with("assist_") || PEERS.contains(&key.as_str())
        })))
    }

    pub fn from_figment(figment: Figment) -> Result<Self, AssistantConfigError> {
        let config: Self = figment.extract().map_err(|err| {
            let (variable, message) = runmesh_platform::config::env_setting_error(PREFIX, &err);
            AssistantConfigError { variable, message }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), AssistantConfigError> {
        let refuse = |name: &str, message: &str| {
            Err(AssistantConfigError {
                variable: format!("{PREFIX}{name}"),
                message: message.to_owned(),
            })
        };
        for (name, value) in [
            ("ASSIST_LLM_URL", &self.llm_url),
            ("ASSIST_EMBEDDINGS_URL", &self.embeddings_url),
        ] {
            if let Some(value) = value {
                match url::Url::parse(value) {
                    Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                    _ => {
                        return refuse(
                            name,
                            "must be an http(s) URL, e.g. http://127.0.0.1:11434/v1",
                        );
                    }
                }
            }
        }
        for (name, value) in [
            ("PEER_RUN", &self.peer_run),
            ("PEER_RACE", &self.peer_race),
            ("PEER_SOCIAL", &self.peer_social),
        ] {
            if let Some(value) = value
                && !value.starts_with("http://")
            {
                return refuse(
                    name,
                    "must be a plain http:// gRPC address, e.g. http://run:50051",
                );
            }
        }
        if let Some(dir) = &self.knowledge_dir
            && !dir.is_dir()
        {
            return refuse("ASSIST_KNOWLEDGE_DIR", "must be an existing directory");
        }
        Ok(())
    }

    /// The peers' addresses, each defaulting to this process's own gRPC address (`runmesh up`).
    pub fn peers(&self, own: SocketAddr) -> Peers {
        let own = if own.ip().is_unspecified() {
            let loopback: std::net::IpAddr = if own.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            SocketAddr::new(loopback, own.port())
        } else {
            own
        };
        let own = format!("http://{own}");
        Peers {
            run: self.peer_run.clone().unwrap_or_else(|| own.clone()),
            race: self.peer_race.clone().unwrap_or_else(|| own.clone()),
            social: self.peer_social.clone().unwrap_or(own),
        }
    }
}

/// Where the tools call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers {
    pub run: String,
    pub race: String,
    pub social: String,
}

impl Peers {
    /// Every peer at one address (tests, `runmesh up`).
    pub fn all(addr: SocketAddr) -> Self {
        let url = format!("http://{addr}");
        Self {
            run: url.clone(),
            race: url.clone(),
            social: url,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use figment::providers::Serialized;

    use super::*;

    #[test]
    fn defaults_and_bad_values_name_the_variable() {
        let config = AssistantConfig::from_figment(Figment::new()).unwrap();
        assert_eq!(config, AssistantConfig::default());
        let err = AssistantConfig::from_figment(
            Figment::new().merge(Serialized::default("assist_llm_url", "ftp://x")),
        )
        .unwrap_err();
        assert_eq!(err.variable, "RUNMESH_ASSIST_LLM_URL");
        let err = AssistantConfig::from_figment(
            Figment::new().merge(Serialized::default("assist_tool_timeout", "0s")),
        )
        .unwrap_err();
        assert_eq!(err.variable, "RUNMESH_ASSIST_TOOL_TIMEOUT");
        let config = AssistantConfig::from_figment(
            Figment::new()
                .merge(Serialized::default("assist_llm_api_key", "sk-secret"))
                .merge(Serialized::default("peer_run", "http://run:50051")),
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("sk-secret"));
        let peers = config.peers("0.0.0.0:50051".parse().unwrap());
        assert_eq!(peers.run, "http://run:50051");
        assert_eq!(peers.race, "http://127.0.0.1:50051");
    }
}
