//! A generic gRPC upstream for `tests/protos/library.proto`, served from descriptors: every call
//! answers an `Echo` of what it received (the request as JSON, selected metadata), `Fail`
//! answers any status with rich details, `Slow` sleeps, `ListBooks` streams.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
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
    let app = axum::Router::new().fallback_service(service_fn(
        move |request: http::Request<axum::body::Body>| {
            let pool = pool.clone();
            async move { Ok::<_, Infallible>(handle(pool, request).await) }
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
    EchoServer { addr, shutdown }
}

async fn handle(
    pool: DescriptorPool,
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
    if method.is_server_streaming() {
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
