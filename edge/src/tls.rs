//! TLS for the edge's listener: rustls with ALPN `h2` and `http/1.1` (so gRPC clients negotiate
//! HTTP/2 and browsers either), the certificate and key read from PEM files and reloaded in
//! place when either file changes (a renewed certificate needs no restart; connections already
//! open keep theirs). A reload that fails keeps the previous certificate and logs why.

use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;

use crate::config::TlsFiles;

/// How often the files' modification times are checked.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Loads the certificate chain and key (the server's ALPN offers `h2` and `http/1.1`).
pub async fn load(files: &TlsFiles) -> std::io::Result<RustlsConfig> {
    RustlsConfig::from_pem_file(&files.cert, &files.key).await
}

/// Reloads `config` from `files` whenever one of them changes, until `shutdown`.
pub async fn reload_on_change(config: RustlsConfig, files: TlsFiles, shutdown: CancellationToken) {
    let mut seen = modified(&files);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RELOAD_CHECK_INTERVAL) => {}
        }
        let now = modified(&files);
        if now == seen {
            continue;
        }
        match config.reload_from_pem_file(&files.cert, &files.key).await {
            Ok(()) => {
                tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                seen = now;
            }
            Err(error) => tracing::warn!(
                cert = %files.cert.display(),
                key = %files.key.display(),
                %error,
                "TLS certificate changed but does not load; still serving the previous one"
            ),
        }
    }
}

fn modified(files: &TlsFiles) -> (Option<SystemTime>, Option<SystemTime>) {
    let at = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (at(&files.cert), at(&files.key))
}
