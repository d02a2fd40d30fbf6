//! What the edge serves, read from the descriptor set at start: the public services (those with
//! at least one `google.api.http` rule) and one REST route per rule and additional binding.
//! Services without annotations, and `…InternalService`s whatever their annotations, are internal
//! and never exposed.

use std::collections::BTreeMap;

use prost_reflect::{
    DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, ServiceDescriptor,
    Value,
};
use runmesh_proto::google::api::HttpRule;
use runmesh_proto::google::api::http_rule::Pattern;

use crate::template::{PathTemplate, TemplateError};

const HTTP_EXTENSION: &str = "google.api.http";
/// A raw HTTP body: request bodies and responses of this type travel as bytes, not JSON.
pub const HTTP_BODY: &str = "google.api.HttpBody";

/// Services for other services only (`…InternalService`): never reachable through the edge.
pub fn is_internal(service: &ServiceDescriptor) -> bool {
    service.name().ends_with("InternalService")
}

/// Why the descriptor set cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the descriptor set does not decode: {0}")]
    Descriptors(#[from] prost_reflect::DescriptorError),
    #[error("{method}: {reason}")]
    Rule { method: String, reason: String },
    #[error("{method}: {source}")]
    Template {
        method: String,
        source: TemplateError,
    },
}

/// Where the request body goes.
#[derive(Debug, Clone)]
pub enum BodyRule {
    /// `body: "*"`: every field not bound by the path.
    Whole,
    /// `body: "field"`: one top-level field.
    Field(FieldDescriptor),
    /// The raw request body (not JSON) into a `google.api.HttpBody`: the field `body` names, or
    /// the request itself (`None`) when it is an `HttpBody` and `body: "*"`. For a
    /// client-streaming RPC the body streams upstream in chunks.
    Raw(Option<FieldDescriptor>),
}

/// A response answered as raw bytes rather than JSON: `response_body` names a
/// `google.api.HttpBody` field, or the response is an `HttpBody` itself.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The `HttpBody` field; `None` when the response message is the `HttpBody`.
    pub body: Option<FieldDescriptor>,
    /// A sibling string field `file_name`: sets `Content-Disposition: attachment`.
    pub file_name: Option<FieldDescriptor>,
    /// A sibling integer field `size_bytes`: sets `Content-Length`.
    pub size_bytes: Option<FieldDescriptor>,
}

/// One REST binding of an RPC.
#[derive(Debug, Clone)]
pub struct Route {
    pub http_method: http::Method,
    pub template: PathTemplate,
    pub rpc: MethodDescriptor,
    pub body: Option<BodyRule>,
    /// `response_body: "field"`: answer with that field only.
    pub response_body: Option<FieldDescriptor>,
    /// Set when the answer is raw bytes (`google.api.HttpBody`), not JSON.
    pub raw_response: Option<RawResponse>,
    /// The request fields each path variable sets, in the template's order.
    pub path_fields: Vec<Vec<FieldDescriptor>>,
    /// 0 for the main rule, 1… for `additional_bindings`.
    pub binding: usize,
}

/// The pool of contracts and what of it is public.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: DescriptorPool,
    routes: Vec<Route>,
    public: BTreeMap<String, ServiceDescriptor>,
}

impl Catalog {
    /// Reads `descriptor_set` (an encoded `FileDescriptorSet` with extension options kept).
    pub fn new(descriptor_set: &[u8]) -> Result<Self, CatalogError> {
        // The well-known types, the contracts, then the `google.rpc` error model that renders
        // error details; files already present are skipped.
        let mut pool = DescriptorPool::global();
        pool.decode_file_descriptor_set(descriptor_set)?;
        pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)?;

        let mut routes = Vec::new();
        let mut public = BTreeMap::new();
        if let Some(extension) = pool.get_extension_by_name(HTTP_EXTENSION) {
            for service in pool.services().filter(|service| !is_internal(service)) {
                for method in service.methods() {
                    let options = method.options();
                    if !options.has_extension(&extension) {
                        continue;
                    }
                    let Value::Message(rule) = options.get_extension(&extension).into_owned()
                    else {
                        continue;
                    };
                    let rule: HttpRule =
                        rule.transcode_to().map_err(|error| CatalogError::Rule {
                            method: method.full_name().to_owned(),
                            reason: format!("google.api.http does not decode: {error}"),
                        })?;
                    public.insert(service.full_name().to_owned(), service.clone());
                    let mut method_routes = vec![route(&method, &rule, 0)];
                    for (index, binding) in rule.additional_bindings.iter().enumerate() {
                        if !binding.additional_bindings.is_empty() {
                            return Err(rule_error(&method, "additional_bindings may not nest"));
                        }
                        method_routes.push(route(&method, binding, index + 1));
                    }
                    for candidate in method_routes {
                        if !method.is_client_streaming() {
                            routes.push(candidate?);
                            continue;
                        }
                        // A client stream is transcoded only from a raw upload: the body streams
                        // upstream as `HttpBody` chunks.
                        match candidate {
                            Ok(route)
                                if !method.is_server_streaming()
                                    && matches!(route.body, Some(BodyRule::Raw(_))) =>
                            {
                                routes.push(route);
                            }
                            _ => tracing::warn!(
                                method = method.full_name(),
                                "client-streaming RPCs are transcoded to REST only when the body \
                                 is a google.api.HttpBody field (a raw upload); gRPC only"
                            ),
                        }
                    }
                }
            }
        }
        Ok(Self {
            pool,
            routes,
            public,
        })
    }

    /// Keeps only the public services (and their routes) for which `served` is true.
    pub fn retain_services(&mut self, served: impl Fn(&str) -> bool) {
        self.public.retain(|name, _| served(name));
        self.routes
            .retain(|route| served(route.rpc.parent_service().full_name()));
    }

    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The services browsers may call, by full name.
    pub fn public_services(&self) -> impl Iterator<Item = &ServiceDescriptor> {
        self.public.values()
    }

    /// A method of a public service, from a gRPC path (`/pkg.Service/Method`).
    pub fn public_method(&self, grpc_path: &str) -> Option<MethodDescriptor> {
        let (service, method) = grpc_path.strip_prefix('/')?.split_once('/')?;
        self.public
            .get(service)?
            .methods()
            .find(|candidate| candidate.name() == method)
    }

    /// Any method in the pool, public or not, by `pkg.Service/Method`.
    pub fn method(&self, service: &str, method: &str) -> Option<MethodDescriptor> {
        self.pool
            .get_service_by_name(service)?
            .methods()
            .find(|candidate| candidate.name() == method)
    }
}

fn rule_error(method: &MethodDescriptor, reason: impl Into<String>) -> CatalogError {
    CatalogError::Rule {
        method: method.full_name().to_owned(),
        reason: reason.into(),
    }
}

fn route(
    method: &MethodDescriptor,
    rule: &HttpRule,
    binding: usize,
) -> Result<Route, CatalogError> {
    let (http_method, path) = match &rule.pattern {
        Some(Pattern::Get(path)) => (http::Method::GET, path),
        Some(Pattern::Put(path)) => (http::Method::PUT, path),
        Some(Pattern::Post(path)) => (http::Method::POST, path),
        Some(Pattern::Delete(path)) => (http::Method::DELETE, path),
        Some(Pattern::Patch(path)) => (http::Method::PATCH, path),
        Some(Pattern::Custom(custom)) => (
            http::Method::from_bytes(custom.kind.as_bytes()).map_err(|_| {
                rule_error(method, format!("invalid custom kind {:?}", custom.kind))
            })?,
            &custom.path,
        ),
        None => return Err(rule_error(method, "no HTTP method and path")),
    };
    let template = PathTemplate::parse(path).map_err(|source| CatalogError::Template {
        method: method.full_name().to_owned(),
        source,
    })?;
    let input = method.input();
    let path_fields = template
        .variables()
        .iter()
        .map(|variable| resolve_path_field(method, &input, &variable.field_path))
        .collect::<Result<Vec<_>, _>>()?;
    let body = match rule.body.as_str() {
        "" => None,
        "*" if is_http_body(&input) => Some(BodyRule::Raw(None)),
        "*" => Some(BodyRule::Whole),
        name => {
            let field = input.get_field_by_name(name).ok_or_else(|| {
                rule_error(
                    method,
                    format!("body names no field of {}: {name:?}", input.full_name()),
                )
            })?;
            if is_http_body_field(&field) {
                Some(BodyRule::Raw(Some(field)))
            } else {
                Some(BodyRule::Field(field))
            }
        }
    };
    let output = method.output();
    let response_body = match rule.response_body.as_str() {
        "" => None,
        name => Some(output.get_field_by_name(name).ok_or_else(|| {
            rule_error(
                method,
                format!(
                    "response_body names no field of {}: {name:?}",
                    output.full_name()
                ),
            )
        })?),
    };
    let raw_response = match &response_body {
        Some(field) if is_http_body_field(field) => Some(RawResponse {
            body: Some(field.clone()),
            file_name: output
                .get_field_by_name("file_name")
                .filter(|field| field.kind() == Kind::String && !field.is_list()),
            size_bytes: output.get_field_by_name("size_bytes").filter(|field| {
                !field.is_list()
                    && matches!(
                        field.kind(),
                        Kind::Uint64 | Kind::Int64 | Kind::Uint32 | Kind::Int32 | Kind::Fixed64
                    )
            }),
        }),
        None if is_http_body(&output) => Some(RawResponse {
            body: None,
            file_name: None,
            size_bytes: None,
        }),
        _ => None,
    };
    Ok(Route {
        http_method,
        template,
        rpc: method.clone(),
        body,
        response_body,
        raw_response,
        path_fields,
        binding,
    })
}

fn is_http_body(message: &MessageDescriptor) -> bool {
    message.full_name() == HTTP_BODY
}

/// A singular `google.api.HttpBody` field.
fn is_http_body_field(field: &FieldDescriptor) -> bool {
    !field.is_list() && matches!(field.kind(), Kind::Message(message) if is_http_body(&message))
}

/// `book.name` → [book, name]: singular messages down to a singular scalar.
fn resolve_path_field(
    method: &MethodDescriptor,
    input: &MessageDescriptor,
    names: &[String],
) -> Result<Vec<FieldDescriptor>, CatalogError> {
    let mut message = input.clone();
    let mut fields = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let field = message.get_field_by_name(name).ok_or_else(|| {
            rule_error(
                method,
                format!(
                    "path variable {} names no field of {}",
                    names.join("."),
                    message.full_name()
                ),
            )
        })?;
        if field.is_list() || field.is_map() {
            return Err(rule_error(
                method,
                format!("path variable {} is a repeated field", names.join(".")),
            ));
        }
        let last = index + 1 == names.len();
        match field.kind() {
            Kind::Message(next) if !last => message = next,
            Kind::Message(_) => {
                return Err(rule_error(
                    method,
                    format!(
                        "path variable {} is a message, not a scalar",
                        names.join(".")
                    ),
                ));
            }
            _ if !last => {
                return Err(rule_error(
                    method,
                    format!("path variable {}: {name} is not a message", names.join(".")),
                ));
            }
            _ => {}
        }
        fields.push(field);
    }
    Ok(fields)
}

/// The leading comment of a descriptor (`path` as in `SourceCodeInfo`), trimmed, when the
/// descriptor set kept source info.
pub fn comment(file: &prost_reflect::FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info
        .location
        .iter()
        .find(|location| location.path == path)?;
    let text = location.leading_comments.as_deref()?;
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect();
    let joined = lines.join("\n").trim().to_owned();
    (!joined.is_empty()).then_some(joined)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_user_service_is_public_and_its_internal_twin_is_not() {
        let catalog = Catalog::new(runmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let public: Vec<&str> = catalog.public_services().map(|s| s.full_name()).collect();
        assert!(
            public.contains(&"runmesh.user.v1.UserService"),
            "{public:?}"
        );
        assert!(!public.contains(&"runmesh.user.v1.UserInternalService"));
        assert!(
            catalog
                .public_method("/runmesh.user.v1.UserService/GetMe")
                .is_some()
        );
        assert!(
            catalog
                .public_method("/runmesh.user.v1.UserInternalService/GetJwks")
                .is_none()
        );
        assert!(
            catalog
                .method("runmesh.user.v1.UserInternalService", "GetJwks")
                .is_some()
        );
        let get_me = catalog
            .routes()
            .iter()
            .find(|route| route.rpc.name() == "GetMe")
            .unwrap();
        assert_eq!(get_me.http_method, http::Method::GET);
        assert_eq!(get_me.template.to_string(), "/v1/me");
    }

    #[test]
    fn the_error_model_is_in_the_pool() {
        let catalog = Catalog::new(runmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        for name in [
            "google.rpc.Status",
            "google.rpc.ErrorInfo",
            "google.rpc.BadRequest",
            "google.rpc.RetryInfo",
        ] {
            assert!(catalog.pool().get_message_by_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn comments_come_from_source_info() {
        let catalog = Catalog::new(runmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let method = catalog
            .method("runmesh.user.v1.UserService", "GetMe")
            .unwrap();
        assert_eq!(
            comment(&method.parent_file(), method.path()).as_deref(),
            Some("The caller's account.")
        );
    }
}
