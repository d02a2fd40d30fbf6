//! REST ↔ protobuf: builds the request message from the path variables, the query string and
//! the JSON body of a [`Route`], and renders responses as proto3 JSON.
//!
//! Everything goes through one JSON object that prost-reflect deserializes with the canonical
//! mapping (lowerCamelCase or proto names, int64 as strings, well-known types), rejecting unknown
//! fields.

use bytes::Bytes;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    SerializeOptions, Value,
};
use runmesh_platform::error::ApiError;
use serde_json::{Map, Value as Json};

use crate::catalog::{BodyRule, RawResponse, Route};

/// Responses name fields in lowerCamelCase and include fields at their default value (`0`, `""`,
/// `[]`), so clients see every field; fields with presence (`optional`, messages) appear only
/// when set.
pub fn response_options() -> SerializeOptions {
    SerializeOptions::new().skip_default_fields(false)
}

/// The request message of `route`.
pub fn request_message(
    route: &Route,
    captures: Vec<String>,
    query: Option<&str>,
    body: Option<Json>,
) -> Result<DynamicMessage, ApiError> {
    let input = route.rpc.input();
    let mut root = match (&route.body, body) {
        (Some(BodyRule::Whole), Some(Json::Object(object))) => object,
        (Some(BodyRule::Whole), Some(_)) => {
            return Err(ApiError::invalid_argument("body", "must be a JSON object"));
        }
        (Some(BodyRule::Field(field)), Some(value)) => {
            let mut object = Map::new();
            object.insert(field.json_name().to_owned(), value);
            object
        }
        (_, _) => Map::new(),
    };

    for (fields, value) in route.path_fields.iter().zip(captures) {
        let leaf = fields
            .last()
            .ok_or_else(|| ApiError::internal("empty path variable"))?;
        let json = scalar_json(leaf, &value)
            .map_err(|description| ApiError::invalid_argument(dotted(fields), description))?;
        set_path(&mut root, fields, json);
    }

    if let Some(query) = query.filter(|q| !q.is_empty()) {
        if matches!(route.body, Some(BodyRule::Whole | BodyRule::Raw(None))) {
            return Err(ApiError::invalid_argument(
                "query",
                "this method takes every field in the body; query parameters are not accepted",
            ));
        }
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let fields = resolve_query_field(&input, &key)
                .map_err(|description| ApiError::invalid_argument(key.as_ref(), description))?;
            if route
                .path_fields
                .iter()
                .any(|bound| same_field(bound, &fields))
                || matches!(
                    &route.body,
                    Some(BodyRule::Field(body) | BodyRule::Raw(Some(body))) if *body == fields[0]
                )
            {
                return Err(ApiError::invalid_argument(
                    key.as_ref(),
                    "is set by the path or the body, not the query",
                ));
            }
            let leaf = &fields[fields.len() - 1];
            let json = scalar_json(leaf, &value)
                .map_err(|description| ApiError::invalid_argument(key.as_ref(), description))?;
            push_query_value(&mut root, &fields, json);
        }
    }

    decode_json(&input, Json::Object(root))
}

/// A `google.api.HttpBody` of `descriptor` holding `content_type` and `data`.
pub fn http_body(descriptor: MessageDescriptor, content_type: &str, data: Bytes) -> DynamicMessage {
    let mut body = DynamicMessage::new(descriptor);
    if !content_type.is_empty() {
        body.set_field_by_name("content_type", Value::String(content_type.to_owned()));
    }
    if !data.is_empty() {
        body.set_field_by_name("data", Value::Bytes(data));
    }
    body
}

/// Puts a raw request body into `message` as the route's body rule says: into the `HttpBody`
/// field, or as the whole request when the request is an `HttpBody`.
pub fn set_raw_body(
    message: &mut DynamicMessage,
    body: &BodyRule,
    content_type: &str,
    data: Bytes,
) -> Result<(), ApiError> {
    match body {
        BodyRule::Raw(Some(field)) => {
            let Kind::Message(descriptor) = field.kind() else {
                return Err(ApiError::internal("the raw body field is not a message"));
            };
            message.set_field(
                field,
                Value::Message(http_body(descriptor, content_type, data)),
            );
        }
        BodyRule::Raw(None) => {
            *message = http_body(message.descriptor(), content_type, data);
        }
        BodyRule::Whole | BodyRule::Field(_) => {
            return Err(ApiError::internal("the route does not take a raw body"));
        }
    }
    Ok(())
}

/// The `HttpBody` of a raw response (its content type and bytes), and the sibling file name and
/// size when the route has them.
pub struct RawPart {
    pub content_type: String,
    pub data: Bytes,
    pub file_name: Option<String>,
    pub size_bytes: Option<u64>,
}

/// Reads the raw part of `message` as `raw` describes it.
pub fn raw_part(message: &DynamicMessage, raw: &RawResponse) -> RawPart {
    let body = match &raw.body {
        Some(field) => match message.get_field(field).as_message() {
            Some(body) => body.clone(),
            None => message.clone(),
        },
        None => message.clone(),
    };
    let content_type = body
        .get_field_by_name("content_type")
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    let data = body
        .get_field_by_name("data")
        .and_then(|value| value.as_bytes().cloned())
        .unwrap_or_default();
    let file_name = raw
        .file_name
        .as_ref()
        .and_then(|field| message.get_field(field).as_str().map(str::to_owned))
        .filter(|name| !name.is_empty());
    let size_bytes = raw.size_bytes.as_ref().and_then(|field| {
        let value = message.get_field(field);
        value
            .as_u64()
            .or_else(|| value.as_i64().and_then(|n| u64::try_from(n).ok()))
            .or_else(|| value.as_u32().map(u64::from))
            .or_else(|| value.as_i32().and_then(|n| u64::try_from(n).ok()))
            .filter(|size| *size > 0)
    });
    RawPart {
        content_type,
        data,
        file_name,
        size_bytes,
    }
}

/// Deserializes `json` as `message`, rejecting unknown fields.
pub fn decode_json(message: &MessageDescriptor, json: Json) -> Result<DynamicMessage, ApiError> {
    DynamicMessage::deserialize_with_options(
        message.clone(),
        json,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|error| ApiError::invalid_argument("request", error.to_string()))
}

/// The JSON of a response (or of its `response_body` field).
pub fn response_json(
    message: &DynamicMessage,
    response_body: Option<&FieldDescriptor>,
) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    match response_body {
        None => {
            let mut serializer = serde_json::Serializer::new(&mut out);
            message
                .serialize_with_options(&mut serializer, &response_options())
                .map_err(ApiError::internal)?;
        }
        Some(field) => {
            let whole = serde_json::to_value(SerializeWith(message)).map_err(ApiError::internal)?;
            let part = whole.get(field.json_name()).cloned().unwrap_or(Json::Null);
            serde_json::to_writer(&mut out, &part).map_err(ApiError::internal)?;
        }
    }
    Ok(out)
}

struct SerializeWith<'a>(&'a DynamicMessage);

impl serde::Serialize for SerializeWith<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_with_options(serializer, &response_options())
    }
}

fn dotted(fields: &[FieldDescriptor]) -> String {
    fields
        .iter()
        .map(FieldDescriptor::name)
        .collect::<Vec<_>>()
        .join(".")
}

fn same_field(a: &[FieldDescriptor], b: &[FieldDescriptor]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Sets a nested value, replacing whatever the body had under either spelling of the name.
fn set_path(root: &mut Map<String, Json>, fields: &[FieldDescriptor], value: Json) {
    let Some((leaf, parents)) = fields.split_last() else {
        return;
    };
    let mut object = root;
    for parent in parents {
        let existing = object
            .remove(parent.name())
            .or_else(|| object.remove(parent.json_name()));
        let child = match existing {
            Some(Json::Object(child)) => child,
            _ => Map::new(),
        };
        object.insert(parent.json_name().to_owned(), Json::Object(child));
        let Some(Json::Object(next)) = object.get_mut(parent.json_name()) else {
            return;
        };
        object = next;
    }
    object.remove(leaf.name());
    object.insert(leaf.json_name().to_owned(), value);
}

/// Adds a query value: repeated fields collect every occurrence, others take the last.
fn push_query_value(root: &mut Map<String, Json>, fields: &[FieldDescriptor], value: Json) {
    let Some((leaf, parents)) = fields.split_last() else {
        return;
    };
    let mut object = root;
    for parent in parents {
        let entry = object
            .entry(parent.json_name().to_owned())
            .or_insert_with(|| Json::Object(Map::new()));
        if !entry.is_object() {
            *entry = Json::Object(Map::new());
        }
        let Json::Object(next) = entry else {
            return;
        };
        object = next;
    }
    if leaf.is_list() {
        let entry = object
            .entry(leaf.json_name().to_owned())
            .or_insert_with(|| Json::Array(Vec::new()));
        if let Json::Array(items) = entry {
            items.push(value);
        }
    } else {
        object.insert(leaf.json_name().to_owned(), value);
    }
}

/// `book.author.name` (proto or JSON names) → the fields down to a scalar.
fn resolve_query_field(
    input: &MessageDescriptor,
    key: &str,
) -> Result<Vec<FieldDescriptor>, String> {
    let mut message = input.clone();
    let mut fields = Vec::new();
    let names: Vec<&str> = key.split('.').collect();
    for (index, name) in names.iter().enumerate() {
        let field = message
            .get_field_by_name(name)
            .or_else(|| message.get_field_by_json_name(name))
            .ok_or_else(|| format!("no such field in {}", message.full_name()))?;
        let last = index + 1 == names.len();
        if field.is_map() {
            return Err("map fields cannot be set from the query string".to_owned());
        }
        match field.kind() {
            Kind::Message(next) if !last => {
                if field.is_list() {
                    return Err("repeated messages cannot be set from the query string".to_owned());
                }
                message = next;
            }
            Kind::Message(inner) if !is_query_scalar_message(&inner) => {
                return Err("is a message: set its fields (e.g. field.subfield=value)".to_owned());
            }
            _ if !last => return Err(format!("{name} is not a message")),
            _ => {}
        }
        fields.push(field);
    }
    Ok(fields)
}

/// Well-known types whose JSON form is a scalar, so they can come from a path or query string.
fn is_query_scalar_message(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// The JSON for a text value of a scalar field: numbers go as strings (the JSON mapping accepts
/// them for every numeric type), booleans must be `true` or `false`.
fn scalar_json(field: &FieldDescriptor, text: &str) -> Result<Json, String> {
    let kind = match field.kind() {
        Kind::Message(message) if message.full_name() == "google.protobuf.BoolValue" => Kind::Bool,
        kind => kind,
    };
    match kind {
        Kind::Bool => match text {
            "true" => Ok(Json::Bool(true)),
            "false" => Ok(Json::Bool(false)),
            _ => Err(format!("{text:?} is not a boolean (true or false)")),
        },
        Kind::Enum(_) => Ok(text
            .parse::<i32>()
            .map_or_else(|_| Json::String(text.to_owned()), Json::from)),
        _ => Ok(Json::String(text.to_owned())),
    }
}
