//! The services this binary can run. A service crate joins by adding one line to [`all`].

use std::sync::Arc;

use anyhow::anyhow;
use runmesh_platform::service::Service;

pub fn all() -> Vec<Arc<dyn Service>> {
    vec![]
}

/// Names for the command line's value parser.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|service| service.name()).collect()
}

pub fn by_name(name: &str) -> anyhow::Result<Arc<dyn Service>> {
    all()
        .into_iter()
        .find(|service| service.name() == name)
        .ok_or_else(|| anyhow!("no service named {name:?} (known: {:?})", names()))
}
