//! A generic gRPC upstream for `tests/protos/library.proto`, served from descriptors: every call
//! answers an `Echo` of what it received (the request as JSON, selected metadata), `Fail`
//! answers any status with rich details, `Slow` sleeps, `ListBooks` streams. The raw-body
//! methods (`UploadScan`, `PutCover`, `DownloadScan`, `GetCover`) tally or produce
//! `google.api.HttpBody` bytes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{DefaultHasher, Hasher};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost_reflect::{
    DescriptorPool, DynamicMessage, MapKey, MethodDescriptor, SerializeOptions, Value,
};
use runmesh_edge::codec::DynamicCodec;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::service_fn;

/// Request headers the echo reports back.
const ECHOED: [&str; 9] = [
    "authorization",
    "x-request-id",
    "traceparent",
    "tracestate",
    "grpc-timeout",
    "x-forwarded-for",
    "cookie",
    "x-grpc-web",
    "content-type",
];

/// 2^53 + 1: not representable as a JSON (double) number.
pub const BIG: i64 = 9_007_199_254_740_993;

/// `tests/protos/library.proto` (with `google/api` from the contracts) as an encoded descriptor
/// set, extension options kept.
pub fn descriptor_set() -> Vec<u8> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut compiler =
        protox::Compiler::new([manifest.join("tests/protos"), manifest.join("../proto")]).unwrap();
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(["library.proto"]).unwrap();
    compiler.encode_file_descriptor_set()
}

pub struct EchoServer {
    pub addr: SocketAddr,
    /// How each `UploadScan` call ended: `completed <bytes>` or `failed <code>: <message>`.
    pub uploads: Arc<Mutex<Vec<String>>>,
    shutdown: CancellationToken,
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start() -> EchoServer {
    let mut pool = DescriptorPool::global();
    pool.decode_file_descriptor_set(descriptor_set().as_slice())
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let uploads = Arc::new(Mutex::new(Vec::new()));
    let log = uploads.clone();
    let app = axum::Router::new().fallback_service(service_fn(
        move |request: http::Request<axum::body::Body>| {
            let pool = pool.clone();
            let log = log.clone();
            async move { Ok::<_, Infallible>(handle(pool, log, request).await) }
        },
    ));
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap();
    });
    EchoServer {
        addr,
        uploads,
        shutdown,
    }
}

async fn handle(
    pool: DescriptorPool,
    uploads: Arc<Mutex<Vec<String>>>,
    request: http::Request<axum::body::Body>,
) -> http::Response<Body> {
    let path = request.uri().path().to_owned();
    let method = path
        .strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(service, method)| {
            pool.get_service_by_name(service)?
                .methods()
                .find(|candidate| candidate.name() == method)
        });
    let Some(method) = method else {
        return Status::unimplemented(format!("{path} is not served")).into_http();
    };
    let mut grpc = tonic::server::Grpc::new(DynamicCodec::new(method.input()));
    if method.name() == "DownloadScan" {
        let output = method.output();
        grpc.server_streaming(
            service_fn(move |request: tonic::Request<DynamicMessage>| {
                let output = output.clone();
                async move { download_scan(&output, request.get_ref()) }
            }),
            request,
        )
        .await
    } else if method.name() == "UploadScan" {
        let output = method.output();
        grpc.client_streaming(
            service_fn(
                move |request: tonic::Request<tonic::Streaming<DynamicMessage>>| {
                    let output = output.clone();
                    let uploads = uploads.clone();
                    async move {
                        let mut messages = request.into_inner();
                        let mut tally = ScanTally::new("scan");
                        let mut reject_after = i64::MAX;
                        loop {
                            match messages.message().await {
                                Ok(Some(message)) => {
                                    if tally.messages == 0 {
                                        reject_after = message
                                            .get_field_by_name("reject_after_bytes")
                                            .and_then(|v| v.as_i64())
                                            .filter(|limit| *limit > 0)
                                            .unwrap_or(i64::MAX);
                                    }
                                    tally.add(&message);
                                    if tally.bytes > reject_after {
                                        uploads
                                            .lock()
                                            .unwrap()
                                            .push(format!("rejected {}", tally.bytes));
                                        return Err(Status::invalid_argument(
                                            "the scan is too long",
                                        ));
                                    }
                                }
                                Ok(None) => break,
                                Err(status) => {
                                    uploads.lock().unwrap().push(format!(
                                        "failed {:?}: {}",
                                        status.code(),
                                        status.message()
                                    ));
                                    return Err(status);
                                }
                            }
                        }
                        uploads
                            .lock()
                            .unwrap()
                            .push(format!("completed {}", tally.bytes));
                        Ok::<_, Status>(tonic::Response::new(tally.summary(output)))
                    }
                },
            ),
            request,
        )
        .await
    } else if method.is_server_streaming() {
        let handler = method.clone();
        grpc.server_streaming(
            service_fn(move |request: tonic::Request<DynamicMessage>| {
                let method = handler.clone();
                async move {
                    let count = field_i32(request.get_ref(), "count");
                    let fail = request
                        .get_ref()
                        .get_field_by_name("fail_at_end")
                        .is_some_and(|v| v.as_bool() == Some(true));
                    let mut items: Vec<Result<DynamicMessage, Status>> = (0..count)
                        .map(|index| Ok(echo(&method, &request, index)))
                        .collect();
                    if fail {
                        items.push(Err(Status::aborted("the shelf moved")));
                    }
                    let delay = Duration::from_millis(
                        field_i32(request.get_ref(), "delay_ms")
                            .unsigned_abs()
                            .into(),
                    );
                    let items = futures::StreamExt::then(
                        futures::stream::iter(items),
                        move |item| async move {
                            tokio::time::sleep(delay).await;
                            item
                        },
                    );
                    Ok::<_, Status>(tonic::Response::new(Box::pin(items)))
                }
            }),
            request,
        )
        .await
    } else if method.is_client_streaming() {
        let output = method.output();
        grpc.client_streaming(
            service_fn(
                move |request: tonic::Request<tonic::Streaming<DynamicMessage>>| {
                    let output = output.clone();
                    async move {
                        let mut pages = request.into_inner();
                        let (mut count, mut bytes) = (0_i64, 0_i64);
                        while let Some(page) = pages.message().await? {
                            count += 1;
                            bytes += page
                                .get_field_by_name("data")
                                .and_then(|v| v.as_bytes().map(|b| b.len() as i64))
                                .unwrap_or_default();
                        }
                        let mut summary = DynamicMessage::new(output);
                        summary.set_field_by_name("pages", Value::I64(count));
                        summary.set_field_by_name("bytes", Value::I64(bytes));
                        Ok::<_, Status>(tonic::Response::new(summary))
                    }
                },
            ),
            request,
        )
        .await
    } else {
        let handler = method.clone();
        grpc.unary(
            service_fn(move |request: tonic::Request<DynamicMessage>| {
                let method = handler.clone();
                async move { unary(&method, request).await.map(tonic::Response::new) }
            }),
            request,
        )
        .await
    }
}

async fn unary(
    method: &MethodDescriptor,
    request: tonic::Request<DynamicMessage>,
) -> Result<DynamicMessage, Status> {
    match method.name() {
        "Fail" => {
            let message = request.get_ref();
            let code = Code::from(field_i32(message, "code"));
            let reason = message
                .get_field_by_name("reason")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut details = ErrorDetails::new();
            details.set_error_info(reason, "library.test", HashMap::new());
            if code == Code::InvalidArgument {
                details.add_bad_request_violation("name", "is required");
            }
            let retry = field_i32(message, "retry_after_ms");
            if retry > 0 {
                details.set_retry_info(Some(Duration::from_millis(retry.unsigned_abs().into())));
            }
            Err(Status::with_error_details(
                code,
                format!("failed with {code:?}"),
                details,
            ))
        }
        "Slow" => {
            let delay = field_i32(request.get_ref(), "delay_ms");
            tokio::time::sleep(Duration::from_millis(delay.unsigned_abs().into())).await;
            Ok(echo(method, &request, 0))
        }
        "PutCover" => {
            let mut tally = ScanTally::new("cover");
            tally.add(request.get_ref());
            Ok(tally.summary(method.output()))
        }
        "GetCover" => {
            let mut cover = DynamicMessage::new(method.output());
            cover.set_field_by_name("content_type", Value::String("image/png".into()));
            cover.set_field_by_name("data", Value::Bytes(COVER.to_vec().into()));
            Ok(cover)
        }
        "Answer" => {
            let mut answer = DynamicMessage::new(method.output());
            answer.set_field_by_name("value", Value::I32(42));
            answer.set_field_by_name("note", Value::String("only the value is sent".into()));
            Ok(answer)
        }
        _ => Ok(echo(method, &request, 0)),
    }
}

fn field_i32(message: &DynamicMessage, name: &str) -> i32 {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_i32())
        .unwrap_or_default()
}

fn echo(
    method: &MethodDescriptor,
    request: &tonic::Request<DynamicMessage>,
    index: i32,
) -> DynamicMessage {
    let pool = method.parent_pool();
    let mut echo = DynamicMessage::new(method.output());
    echo.set_field_by_name("method", Value::String(method.name().to_owned()));
    let mut json = Vec::new();
    request
        .get_ref()
        .serialize_with_options(
            &mut serde_json::Serializer::new(&mut json),
            &SerializeOptions::new().use_proto_field_name(true),
        )
        .unwrap();
    echo.set_field_by_name(
        "request_json",
        Value::String(String::from_utf8(json).unwrap()),
    );
    let headers = request.metadata().clone().into_headers();
    let metadata: HashMap<MapKey, Value> = ECHOED
        .iter()
        .filter_map(|name| {
            let values: Vec<&str> = headers
                .get_all(*name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| {
                (
                    MapKey::String((*name).to_owned()),
                    Value::String(values.join(", ")),
                )
            })
        })
        .collect();
    echo.set_field_by_name("metadata", Value::Map(metadata));
    echo.set_field_by_name("big", Value::I64(BIG));
    let mut at = DynamicMessage::new(
        pool.get_message_by_name("google.protobuf.Timestamp")
            .unwrap(),
    );
    at.set_field_by_name("seconds", Value::I64(1_714_557_600));
    echo.set_field_by_name("at", Value::Message(at));
    echo.set_field_by_name("index", Value::I32(index));
    echo
}

/// `GetCover`'s bytes.
pub const COVER: &[u8] = b"\x89PNG\r\n\x1a\n not really a cover";

/// Byte `index` of every `DownloadScan` answer.
pub fn scan_byte(index: u64) -> u8 {
    ((index * 7 + index / 256) % 251) as u8
}

/// std's SipHash of `bytes`, as hex: what `UploadScanSummary.hash` holds for them.
pub fn hash_hex(hasher: &DefaultHasher) -> String {
    format!("{:016x}", hasher.finish())
}

/// What arrived of a raw upload (`UploadScan` or `PutCover`).
struct ScanTally {
    field: &'static str,
    messages: i64,
    bytes: i64,
    first_json: String,
    hasher: DefaultHasher,
    largest_chunk: i64,
    later_fields_set: bool,
}

impl ScanTally {
    fn new(field: &'static str) -> Self {
        Self {
            field,
            messages: 0,
            bytes: 0,
            first_json: String::new(),
            hasher: DefaultHasher::new(),
            largest_chunk: 0,
            later_fields_set: false,
        }
    }

    fn add(&mut self, message: &DynamicMessage) {
        let body = message
            .get_field_by_name(self.field)
            .and_then(|value| value.as_message().cloned());
        let data = body
            .as_ref()
            .and_then(|body| body.get_field_by_name("data"))
            .and_then(|value| value.as_bytes().cloned())
            .unwrap_or_default();
        if self.messages == 0 {
            let mut first = message.clone();
            if let Some(mut body) = body.clone() {
                body.clear_field_by_name("data");
                first.set_field_by_name(self.field, Value::Message(body));
            }
            let mut json = Vec::new();
            first
                .serialize_with_options(
                    &mut serde_json::Serializer::new(&mut json),
                    &SerializeOptions::new().use_proto_field_name(true),
                )
                .unwrap();
            self.first_json = String::from_utf8(json).unwrap();
        } else {
            let other_fields = message
                .fields()
                .any(|(field, _)| field.name() != self.field);
            let content_type = body
                .as_ref()
                .is_some_and(|body| body.has_field_by_name("content_type"));
            self.later_fields_set |= other_fields || content_type;
        }
        self.messages += 1;
        self.bytes += data.len() as i64;
        self.largest_chunk = self.largest_chunk.max(data.len() as i64);
        self.hasher.write(&data);
    }

    fn summary(&self, output: prost_reflect::MessageDescriptor) -> DynamicMessage {
        let mut summary = DynamicMessage::new(output);
        summary.set_field_by_name("messages", Value::I64(self.messages));
        summary.set_field_by_name("bytes", Value::I64(self.bytes));
        summary.set_field_by_name("first_json", Value::String(self.first_json.clone()));
        summary.set_field_by_name("hash", Value::String(hash_hex(&self.hasher)));
        summary.set_field_by_name("largest_chunk", Value::I64(self.largest_chunk));
        summary.set_field_by_name("later_fields_set", Value::Bool(self.later_fields_set));
        summary
    }
}

type ScanStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<DynamicMessage, Status>> + Send>>;

/// `DownloadScan`: `size` bytes of [`scan_byte`] in `chunk`-byte messages, failing as asked.
fn download_scan(
    output: &prost_reflect::MessageDescriptor,
    request: &DynamicMessage,
) -> Result<tonic::Response<ScanStream>, Status> {
    let text = |name: &str| {
        request
            .get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let flag = |name: &str| {
        request
            .get_field_by_name(name)
            .is_some_and(|v| v.as_bool() == Some(true))
    };
    let fail_code = field_i32(request, "fail_code");
    if fail_code != 0 {
        let status = Status::new(Code::from(fail_code), "the scan is not available");
        if !flag("fail_in_stream") {
            return Err(status);
        }
        let stream: ScanStream = Box::pin(futures::stream::iter([Err(status)]));
        return Ok(tonic::Response::new(stream));
    }
    let size = request
        .get_field_by_name("size")
        .and_then(|v| v.as_i64())
        .unwrap_or_default()
        .max(0) as u64;
    let chunk = match field_i32(request, "chunk") {
        0 => 64 * 1024,
        n => u64::from(n.unsigned_abs()),
    };
    let fail_after = field_i32(request, "fail_after");
    let (file_name, content_type) = (text("file_name"), text("content_type"));
    let omit_size = flag("omit_size");
    let body_descriptor = match output.get_field_by_name("body").unwrap().kind() {
        prost_reflect::Kind::Message(message) => message,
        _ => unreachable!("body is an HttpBody"),
    };
    let output = output.clone();
    let count = size.div_ceil(chunk).max(1);
    let messages = futures::StreamExt::map(futures::stream::iter(0..count), move |index| {
        if fail_after > 0 && index >= u64::from(fail_after.unsigned_abs()) {
            return Err(Status::aborted("the scanner jammed"));
        }
        let start = index * chunk;
        let end = (start + chunk).min(size);
        let data: Vec<u8> = (start..end).map(scan_byte).collect();
        let mut body = DynamicMessage::new(body_descriptor.clone());
        body.set_field_by_name("data", Value::Bytes(data.into()));
        let mut message = DynamicMessage::new(output.clone());
        if index == 0 {
            body.set_field_by_name("content_type", Value::String(content_type.clone()));
            message.set_field_by_name("file_name", Value::String(file_name.clone()));
            if !omit_size {
                message.set_field_by_name("size_bytes", Value::U64(size));
            }
        }
        message.set_field_by_name("body", Value::Message(body));
        Ok(message)
    });
    let delay = Duration::from_millis(field_i32(request, "delay_ms").unsigned_abs().into());
    let messages = futures::StreamExt::then(messages, move |item| async move {
        tokio::time::sleep(delay).await;
        item
    });
    // Stop after the first error, as a server does.
    let messages = futures::StreamExt::scan(messages, false, |failed, item| {
        let next = if *failed {
            None
        } else {
            *failed = item.is_err();
            Some(item)
        };
        futures::future::ready(next)
    });
    let stream: ScanStream = Box::pin(messages);
    Ok(tonic::Response::new(stream))
}
