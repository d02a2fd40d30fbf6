//! The edge over TLS (`RUNMESH_EDGE_TLS_CERT`/`_KEY`): ALPN negotiates HTTP/2, native gRPC and
//! REST answer on the one port, and a replaced certificate is served without a restart. Drives
//! the edge with `curl` (Debian's, HTTP/2 through nghttp2) and makes certificates with `openssl`,
//! as an operator would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use runmesh_edge::config::TlsFiles;
use support::{edge_config, start_edge};

/// A self-signed certificate for 127.0.0.1 with `common_name`, written to `dir`.
fn make_certificate(dir: &Path, common_name: &str) -> TlsFiles {
    let files = TlsFiles {
        cert: dir.join(format!("{common_name}.crt")),
        key: dir.join(format!("{common_name}.key")),
    };
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj"])
        .arg(format!("/CN={common_name}"))
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&files.key)
        .arg("-out")
        .arg(&files.cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl could not make a certificate");
    files
}

/// `curl -v` over HTTP/2 against the edge: (stdout, stderr).
fn curl(args: &[&str]) -> (String, String) {
    let output = Command::new("curl")
        .args(["-sS", "-v", "--http2", "--insecure", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_negotiates_http2_serves_grpc_and_rest_and_reloads_a_replaced_certificate() {
    let upstream = support::echo::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = make_certificate(dir.path(), "edge-first");
    let served = TlsFiles {
        cert: dir.path().join("edge.crt"),
        key: dir.path().join("edge.key"),
    };
    std::fs::copy(&first.cert, &served.cert).unwrap();
    std::fs::copy(&first.key, &served.key).unwrap();
    let mut config = edge_config(upstream.addr);
    config.descriptor_set = std::borrow::Cow::Owned(support::echo::descriptor_set());
    config.tls = Some(served.clone());
    let edge = start_edge(config).await;
    let base = format!("https://{}", edge.addr);

    // REST over TLS, HTTP/2 by ALPN.
    let (body, trace) = tokio::task::spawn_blocking({
        let url = format!("{base}/healthz");
        move || curl(&[&url])
    })
    .await
    .unwrap();
    assert!(body.contains("SERVING"), "{body}\n{trace}");
    assert!(trace.contains("ALPN: server accepted h2"), "{trace}");
    assert!(trace.contains("CN=edge-first"), "{trace}");

    // Native gRPC over TLS: an empty `Ping` (one uncompressed, empty message).
    let frame = dir.path().join("ping.grpc");
    std::fs::write(&frame, [0_u8, 0, 0, 0, 0]).unwrap();
    let (_, trace) = tokio::task::spawn_blocking({
        let url = format!("{base}/edge.test.v1.LibraryService/Ping");
        let data = format!("@{}", frame.display());
        move || {
            curl(&[
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                "--data-binary",
                &data,
                "-o",
                "/dev/null",
                &url,
            ])
        }
    })
    .await
    .unwrap();
    assert!(trace.contains("< grpc-status: 0"), "{trace}");

    // A renewed certificate replaces the old one in place; the edge picks it up.
    let second = make_certificate(dir.path(), "edge-second");
    std::fs::copy(&second.key, &served.key).unwrap();
    std::fs::copy(&second.cert, &served.cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, trace) = tokio::task::spawn_blocking({
            let url = format!("{base}/healthz");
            move || curl(&[&url])
        })
        .await
        .unwrap();
        if trace.contains("CN=edge-second") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edge still serves the old certificate:\n{trace}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
