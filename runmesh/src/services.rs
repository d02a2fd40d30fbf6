//! The services this binary can run. A service crate joins with one name in [`NAMES`] and one
//! arm in [`build`].

use std::sync::Arc;

use runmesh_platform::config::Settings;
use runmesh_platform::service::Service;

/// Every service, in start order.
pub const NAMES: &[&str] = &["user", "run", "social", "race", "assist"];

/// The edge runs beside the services in `up` and alone with `serve edge`; it is not a gRPC
/// service.
pub const EDGE: &str = "edge";

/// Builds one service from `settings` and its own `RUNMESH_<SERVICE>_*` variables; the error is
/// the one-line configuration message naming the variable.
pub fn build(name: &str, settings: &Settings) -> Result<Arc<dyn Service>, String> {
    match name {
        "user" => Ok(Arc::new(
            runmesh_svc_user::UserService::from_env(settings).map_err(|e| e.to_string())?,
        )),
        "run" => Ok(Arc::new(
            runmesh_svc_run::RunService::from_env().map_err(|e| e.to_string())?,
        )),
        "social" => Ok(Arc::new(
            runmesh_svc_social::SocialService::from_env().map_err(|e| e.to_string())?,
        )),
        "race" => Ok(Arc::new(
            runmesh_svc_race::RaceService::from_env().map_err(|e| e.to_string())?,
        )),
        "assist" => Ok(Arc::new(
            runmesh_svc_assist::AssistService::from_env().map_err(|e| e.to_string())?,
        )),
        other => Err(format!("no service named {other:?} (known: {NAMES:?})")),
    }
}

pub fn all(settings: &Settings) -> Result<Vec<Arc<dyn Service>>, String> {
    NAMES.iter().map(|name| build(name, settings)).collect()
}
