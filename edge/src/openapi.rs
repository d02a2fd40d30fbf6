//! The OpenAPI 3.1 document of the REST routes, generated from the descriptor set: one operation
//! per HTTP rule, schemas in the proto3 JSON shape the edge speaks, the bearer scheme, and
//! `google.rpc.Status` as the error body.

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value as Json, json};

use crate::catalog::{BodyRule, Catalog, RawResponse, Route, comment};

const STATUS: &str = "google.rpc.Status";
/// How deep nested messages are flattened into `a.b.c` query parameters.
const MAX_QUERY_DEPTH: usize = 4;

/// The whole document.
pub fn document(catalog: &Catalog) -> Json {
    let mut schemas = Schemas::default();
    let mut paths: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    let mut operation_ids = BTreeSet::new();
    for route in catalog.routes() {
        let path = route.template.openapi_path();
        let method = route.http_method.as_str().to_ascii_lowercase();
        let item = paths.entry(path).or_default();
        if item.contains_key(&method) {
            tracing::warn!(route = %route.template, "two rules share a path and method; documenting the first");
            continue;
        }
        let operation = operation(route, &mut schemas, &mut operation_ids);
        item.insert(method, operation);
    }
    let status = match catalog.pool().get_message_by_name(STATUS) {
        Some(message) => schemas.message_ref(&message),
        None => json!({"type": "object"}),
    };
    let tags: Vec<Json> = catalog
        .public_services()
        .map(|service| {
            let mut tag = json!({"name": service.name()});
            if let Some(text) = comment(&service.parent_file(), service.path()) {
                tag["description"] = Json::String(text);
            }
            tag
        })
        .collect();

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "runmesh API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST/JSON for runmesh's public gRPC services, derived from their \
                `google.api.http` annotations. Bodies use the canonical proto3 JSON mapping: \
                lowerCamelCase names (proto names are accepted too), 64-bit integers as strings, \
                Timestamps as RFC 3339. Unknown fields are rejected with 400. Errors are \
                `google.rpc.Status` objects.",
        },
        "tags": tags,
        "paths": paths,
        "security": [{}, {"bearerAuth": []}],
        "components": {
            "schemas": schemas.defined,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from /v1/auth/sign-in, /v1/auth/sign-up or /v1/auth/refresh.",
                },
            },
            "responses": {
                "Error": {
                    "description": "The call failed: a google.rpc.Status whose details say why \
                        (ErrorInfo.reason, BadRequest.fieldViolations, RetryInfo.retryDelay).",
                    "content": {"application/json": {"schema": status}},
                },
            },
        },
    })
}

fn operation(route: &Route, schemas: &mut Schemas, ids: &mut BTreeSet<String>) -> Json {
    let rpc = &route.rpc;
    let service = rpc.parent_service();
    let mut id = format!("{}_{}", service.name(), rpc.name());
    if route.binding > 0 {
        id = format!("{id}_{}", route.binding);
    }
    while !ids.insert(id.clone()) {
        id.push('_');
    }
    let mut operation = Map::new();
    operation.insert("operationId".into(), Json::String(id));
    operation.insert("tags".into(), json!([service.name()]));
    if let Some(text) = comment(&rpc.parent_file(), rpc.path()) {
        let summary = text
            .split("\n\n")
            .next()
            .unwrap_or(&text)
            .replace('\n', " ");
        operation.insert("summary".into(), Json::String(summary));
        operation.insert("description".into(), Json::String(text));
    }
    operation.insert(
        "x-grpc-method".into(),
        Json::String(format!("{}/{}", service.full_name(), rpc.name())),
    );

    let mut parameters = Vec::new();
    for (variable, fields) in route.template.variables().iter().zip(&route.path_fields) {
        let Some(leaf) = fields.last() else { continue };
        let mut schema = schemas.kind(&leaf.kind());
        if variable.pattern != "*" {
            schema["description"] = Json::String(format!(
                "Matches `{}` (slashes included).",
                variable.pattern
            ));
        }
        parameters.push(json!({
            "name": variable.field_path.join("."),
            "in": "path",
            "required": true,
            "schema": schema,
        }));
    }
    if !matches!(route.body, Some(BodyRule::Whole | BodyRule::Raw(None))) {
        let mut excluded: Vec<Vec<FieldDescriptor>> = route.path_fields.clone();
        if let Some(BodyRule::Field(field) | BodyRule::Raw(Some(field))) = &route.body {
            excluded.push(vec![field.clone()]);
        }
        query_parameters(
            &rpc.input(),
            &mut Vec::new(),
            &excluded,
            schemas,
            &mut parameters,
        );
    }
    if !parameters.is_empty() {
        operation.insert("parameters".into(), Json::Array(parameters));
    }

    match &route.body {
        Some(BodyRule::Raw(_)) => {
            let description = if rpc.is_client_streaming() {
                "The raw bytes (not JSON), streamed to the service in chunks; `Content-Type` is \
                 passed on. At most RUNMESH_EDGE_MAX_UPLOAD_BYTES."
            } else {
                "The raw bytes (not JSON); `Content-Type` is passed on."
            };
            operation.insert(
                "requestBody".into(),
                json!({
                    "required": true,
                    "description": description,
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                }),
            );
        }
        Some(body) => {
            let schema = match body {
                BodyRule::Field(field) => schemas.field(field),
                _ => {
                    let top_level_path_fields: Vec<&FieldDescriptor> = route
                        .path_fields
                        .iter()
                        .filter(|fields| fields.len() == 1)
                        .filter_map(|fields| fields.first())
                        .collect();
                    if top_level_path_fields.is_empty() {
                        schemas.message_ref(&rpc.input())
                    } else {
                        schemas.object(&rpc.input(), &top_level_path_fields)
                    }
                }
            };
            operation.insert(
                "requestBody".into(),
                json!({"required": false, "content": {"application/json": {"schema": schema}}}),
            );
        }
        None => {}
    }

    if let Some(raw) = &route.raw_response {
        operation.insert(
            "responses".into(),
            json!({
                "200": raw_response(raw, rpc.is_server_streaming()),
                "default": {"$ref": "#/components/responses/Error"},
            }),
        );
        return Json::Object(operation);
    }
    let result = match &route.response_body {
        Some(field) => schemas.field(field),
        None => schemas.message_ref(&rpc.output()),
    };
    let content = if rpc.is_server_streaming() {
        let status = schemas.named_ref(STATUS);
        json!({
            "application/x-ndjson": {"schema": {
                "description": "One JSON object per line: {\"result\": …} per message, {\"error\": …} if the stream fails.",
                "type": "object",
                "properties": {"result": result, "error": status},
            }},
            "text/event-stream": {"schema": {
                "type": "string",
                "description": "With `Accept: text/event-stream`: one `data:` event per message, an `error` event if the stream fails.",
            }},
        })
    } else {
        json!({"application/json": {"schema": result}})
    };
    operation.insert(
        "responses".into(),
        json!({
            "200": {"description": "OK", "content": content},
            "default": {"$ref": "#/components/responses/Error"},
        }),
    );
    Json::Object(operation)
}

/// A `google.api.HttpBody` answer: binary, with `Content-Disposition` when the route has a file
/// name.
fn raw_response(raw: &RawResponse, streaming: bool) -> Json {
    let mut description = "The raw bytes, with the service's content type.".to_owned();
    if streaming {
        description.push_str(
            " Sent as the service streams them; an error after the first bytes aborts the \
             response.",
        );
    }
    let mut ok = json!({
        "description": description,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    });
    if raw.file_name.is_some() {
        ok["headers"] = json!({"Content-Disposition": {
            "description": "`attachment` with the file's name, when it has one.",
            "schema": {"type": "string"},
        }});
    }
    ok
}

/// Every scalar reachable from `message` through singular messages, as `a.b` query parameters.
fn query_parameters(
    message: &MessageDescriptor,
    prefix: &mut Vec<FieldDescriptor>,
    excluded: &[Vec<FieldDescriptor>],
    schemas: &mut Schemas,
    out: &mut Vec<Json>,
) {
    for field in message.fields() {
        prefix.push(field.clone());
        let is_excluded = excluded.iter().any(|path| {
            path.len() <= prefix.len() && path.iter().zip(prefix.iter()).all(|(a, b)| a == b)
        });
        let name = prefix
            .iter()
            .map(FieldDescriptor::json_name)
            .collect::<Vec<_>>()
            .join(".");
        match field.kind() {
            _ if is_excluded || field.is_map() => {}
            Kind::Message(inner) if !is_scalar_message(&inner) => {
                if !field.is_list() && prefix.len() < MAX_QUERY_DEPTH {
                    query_parameters(&inner, prefix, excluded, schemas, out);
                }
            }
            _ => {
                let mut parameter = json!({
                    "name": name,
                    "in": "query",
                    "schema": schemas.field(&field),
                });
                if field.is_list() {
                    parameter["explode"] = Json::Bool(true);
                }
                if let Some(text) = comment(&field.parent_file(), field.path()) {
                    parameter["description"] = Json::String(text);
                }
                out.push(parameter);
            }
        }
        prefix.pop();
    }
}

fn is_scalar_message(message: &MessageDescriptor) -> bool {
    well_known(message).is_some_and(|schema| schema.get("type") != Some(&json!("object")))
}

/// The JSON shape of the well-known types that are not plain objects.
fn well_known(message: &MessageDescriptor) -> Option<Json> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$", "examples": ["1.5s"]})
        }
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "Comma-separated field paths in lowerCamelCase.",
        }),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array", "items": {}}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
            "additionalProperties": true,
        }),
        "google.protobuf.DoubleValue" => json!({"type": "number", "format": "double"}),
        "google.protobuf.FloatValue" => json!({"type": "number", "format": "float"}),
        "google.protobuf.Int64Value" => json!({"type": "string", "format": "int64"}),
        "google.protobuf.UInt64Value" => json!({"type": "string", "format": "uint64"}),
        "google.protobuf.Int32Value" => json!({"type": "integer", "format": "int32"}),
        "google.protobuf.UInt32Value" => {
            json!({"type": "integer", "minimum": 0, "maximum": 4_294_967_295_u64})
        }
        "google.protobuf.BoolValue" => json!({"type": "boolean"}),
        "google.protobuf.StringValue" => json!({"type": "string"}),
        "google.protobuf.BytesValue" => json!({"type": "string", "format": "byte"}),
        _ => return None,
    })
}

/// Component schemas, defined on first reference.
#[derive(Default)]
struct Schemas {
    defined: BTreeMap<String, Json>,
}

impl Schemas {
    fn named_ref(&self, name: &str) -> Json {
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    fn message_ref(&mut self, message: &MessageDescriptor) -> Json {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        let name = message.full_name().to_owned();
        if !self.defined.contains_key(&name) {
            // Reserve the name first: messages may refer to themselves.
            self.defined.insert(name.clone(), json!({}));
            let schema = self.object(message, &[]);
            self.defined.insert(name.clone(), schema);
        }
        self.named_ref(&name)
    }

    fn enum_ref(&mut self, descriptor: &EnumDescriptor) -> Json {
        let name = descriptor.full_name().to_owned();
        if !self.defined.contains_key(&name) {
            let values: Vec<String> = descriptor
                .values()
                .map(|value| value.name().to_owned())
                .collect();
            let mut schema = json!({"type": "string", "enum": values});
            if let Some(text) = comment(&descriptor.parent_file(), descriptor.path()) {
                schema["description"] = Json::String(text);
            }
            self.defined.insert(name.clone(), schema);
        }
        self.named_ref(&name)
    }

    /// `message` as an inline object, without the `skip` fields.
    fn object(&mut self, message: &MessageDescriptor, skip: &[&FieldDescriptor]) -> Json {
        let mut properties = Map::new();
        for field in message.fields() {
            if skip.contains(&&field) {
                continue;
            }
            let schema = self.field(&field);
            properties.insert(field.json_name().to_owned(), schema);
        }
        let mut schema = json!({"type": "object", "properties": properties});
        if let Some(text) = comment(&message.parent_file(), message.path()) {
            schema["description"] = Json::String(text);
        }
        schema
    }

    fn field(&mut self, field: &FieldDescriptor) -> Json {
        let mut schema = if field.is_map() {
            let value = match field.kind() {
                Kind::Message(entry) => self.kind(&entry.map_entry_value_field().kind()),
                other => self.kind(&other),
            };
            json!({"type": "object", "additionalProperties": value})
        } else if field.is_list() {
            json!({"type": "array", "items": self.kind(&field.kind())})
        } else {
            self.kind(&field.kind())
        };
        if let Some(text) = comment(&field.parent_file(), field.path())
            && let Json::Object(object) = &mut schema
        {
            object.insert("description".into(), Json::String(text));
        }
        schema
    }

    fn kind(&mut self, kind: &Kind) -> Json {
        match kind {
            Kind::Double => json!({"type": "number", "format": "double"}),
            Kind::Float => json!({"type": "number", "format": "float"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "minimum": 0, "maximum": 4_294_967_295_u64})
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "string", "format": "int64"})
            }
            Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "format": "byte"}),
            Kind::Enum(descriptor) => self.enum_ref(descriptor),
            Kind::Message(message) => self.message_ref(message),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn every_user_route_is_documented() {
        let catalog = Catalog::new(runmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let document = document(&catalog);
        for route in catalog.routes() {
            let method = route.http_method.as_str().to_ascii_lowercase();
            assert!(
                document["paths"][route.template.openapi_path()][&method].is_object(),
                "{} {}",
                route.http_method,
                route.template
            );
        }
        let grant = &document["paths"]["/v1/users/{user_id}/roles:grant"]["post"];
        assert_eq!(grant["parameters"][0]["name"], "user_id");
        // The path field is not part of the body.
        let body = &grant["requestBody"]["content"]["application/json"]["schema"];
        assert!(body["properties"].get("userId").is_none(), "{body}");
        assert!(body["properties"].get("role").is_some(), "{body}");
        let user = &document["components"]["schemas"]["runmesh.user.v1.User"];
        assert_eq!(user["properties"]["createdAt"]["format"], "date-time");
        assert_eq!(
            document["components"]["schemas"]["runmesh.user.v1.Role"]["enum"][1],
            "ROLE_RUNNER"
        );
        assert!(document["components"]["schemas"][STATUS].is_object());
        assert!(
            document["paths"]
                .as_object()
                .unwrap()
                .keys()
                .all(|path| !path.contains("Internal"))
        );
    }
}
