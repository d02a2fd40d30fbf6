//! `/openapi.json` is valid OpenAPI (checked against the official schemas by an npm validator)
//! and lists every annotated route of the contracts, each under its HTTP method.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use prost_reflect::{DescriptorPool, Value};
use runmesh_proto::google::api::HttpRule;
use runmesh_proto::google::api::http_rule::Pattern;
use support::{edge_config, node, prepare_browser_dir, start_edge};

/// (method, OpenAPI path) of every `google.api.http` rule and binding, read straight from the
/// descriptor set.
fn annotated_routes() -> Vec<(String, String)> {
    let mut pool = DescriptorPool::global();
    pool.decode_file_descriptor_set(runmesh_proto::FILE_DESCRIPTOR_SET)
        .unwrap();
    let extension = pool.get_extension_by_name("google.api.http").unwrap();
    let mut routes = Vec::new();
    for service in pool.services() {
        for method in service.methods() {
            let options = method.options();
            if !options.has_extension(&extension) {
                continue;
            }
            let Value::Message(rule) = options.get_extension(&extension).into_owned() else {
                panic!("google.api.http is not a message");
            };
            let rule: HttpRule = rule.transcode_to().unwrap();
            for binding in std::iter::once(&rule).chain(&rule.additional_bindings) {
                let (verb, path) = match binding.pattern.as_ref().unwrap() {
                    Pattern::Get(path) => ("get", path.clone()),
                    Pattern::Put(path) => ("put", path.clone()),
                    Pattern::Post(path) => ("post", path.clone()),
                    Pattern::Delete(path) => ("delete", path.clone()),
                    Pattern::Patch(path) => ("patch", path.clone()),
                    Pattern::Custom(custom) => (custom.kind.as_str(), custom.path.clone()),
                };
                routes.push((verb.to_ascii_lowercase(), openapi_path(&path)));
            }
        }
    }
    routes
}

/// `/v1/{name=shelves/*}` → `/v1/{name}`.
fn openapi_path(template: &str) -> String {
    let mut out = String::new();
    let (mut in_variable, mut in_pattern) = (false, false);
    for c in template.chars() {
        match c {
            '{' => {
                in_variable = true;
                out.push(c);
            }
            '}' => {
                (in_variable, in_pattern) = (false, false);
                out.push(c);
            }
            '=' if in_variable => in_pattern = true,
            _ if in_pattern => {}
            _ => out.push(c),
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_valid_openapi_and_lists_every_annotated_route() {
    // Nothing answers upstream: the document needs only the contracts.
    let edge = start_edge(edge_config(SocketAddr::from(([127, 0, 0, 1], 1)))).await;
    let reply = edge.http.get("/openapi.json", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let document = reply.json();

    let routes = annotated_routes();
    assert!(routes.len() >= 10, "{routes:?}");
    for (method, path) in &routes {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not in /openapi.json"
        );
    }
    let documented: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    // Bindings that differ only in a variable's pattern (`{file_name=card.png}` and
    // `{file_name=card.svg}`) are one OpenAPI path.
    let distinct: std::collections::BTreeSet<_> = routes.iter().collect();
    assert_eq!(
        documented,
        distinct.len(),
        "only annotated routes are documented"
    );

    prepare_browser_dir().await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &reply.body).unwrap();
    let (valid, stdout, stderr) = node(
        "validate-openapi.mjs",
        &[file.path().to_str().unwrap()],
        Duration::from_secs(60),
    )
    .await;
    assert!(
        valid,
        "the OpenAPI document is invalid:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("\"valid\":true"), "{stdout}");
}
