//! gRPC (contract §3): the `aggregation_gateway.v1.AggregationGateway` service,
//! `grpc.health.v1` and server reflection, as tonic routes that
//! `transport::serve` merges into the HTTP router. The service only hands
//! each batch's bytes to [`Gateway::ingest`] with the same protobuf decoder
//! as the HTTP push handler.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tonic::codec::{CompressionEncoding, EnabledCompressionEncodings};
use tonic::codegen::BoxFuture;
use tonic::server::{ClientStreamingService, NamedService, UnaryService};
use tonic::{Request, Response, Status, Streaming};

pub mod codec;

use crate::decode::push_request;
use crate::error::Rejection;
use crate::gateway::Gateway;
use crate::idempotency;
use crate::ingest::{Deadline, Ingested, Ticket, run_sized};
use crate::pb::aggregation_gateway::v1::PushResponse;
use crate::routes::Protocol;
use codec::Codec;

/// The descriptor set of `proto/`, for server reflection.
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

/// The descriptor sets of every gRPC service this module serves: ours,
/// health and both reflection versions. The route table must list each of
/// their methods (the route table test checks it).
pub const SERVED_DESCRIPTORS: &[&[u8]] = &[
    DESCRIPTORS,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

const SERVICE: &str = "aggregation_gateway.v1.AggregationGateway";
const PUSH: &str = "/aggregation_gateway.v1.AggregationGateway/Push";
const PUSH_STREAM: &str = "/aggregation_gateway.v1.AggregationGateway/PushStream";
/// OTLP/gRPC metrics export (served without reflection: the OTLP protos
/// are not shipped).
const OTLP_SERVICE: &str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
const OTLP_EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// Requests larger than this are applied off the async workers.
const BLOCKING_BYTES: usize = 256 << 10;

/// The push service, written out rather than generated: tonic's generated
/// server decodes `PushRequest` into prost's owned types (two allocations
/// per label), so this one takes each message's bytes and hands them to the
/// borrowing decoder the HTTP protobuf path uses. The wire contract is the
/// generated one (`proto/aggregation_gateway/v1/gateway.proto`).
#[derive(Debug, Clone)]
pub struct PushService {
    gateway: Gateway,
}

impl PushService {
    /// Applies one `PushRequest` unless `deadline` passes first.
    async fn apply(
        &self,
        req: Bytes,
        deadline: Option<Instant>,
        method: &'static str,
        key: Option<String>,
    ) -> Result<Ingested, Rejection> {
        apply_message(
            &self.gateway,
            method,
            req,
            deadline,
            key,
            |gw, req, ticket, reservation| {
                let labels = push_request::labels(req, gw.config().limits.max_labels)?;
                gw.ingest(labels, ticket, reservation, req.len(), |opts| {
                    push_request::families(req, opts)
                })
            },
        )
        .await
    }
}

/// Applies one gRPC message of any push method unless `deadline` passes
/// first: its bytes reserved, `ingest` run (off the async workers when
/// large), the outcome recorded in the self-metrics.
async fn apply_message(
    gateway: &Gateway,
    method: &'static str,
    req: Bytes,
    deadline: Option<Instant>,
    key: Option<String>,
    ingest: impl FnOnce(
        &Gateway,
        &Bytes,
        &Ticket,
        crate::memory::Reservation,
    ) -> Result<Ingested, Rejection>
    + Send
    + 'static,
) -> Result<Ingested, Rejection> {
    let gw = gateway.clone();
    // Dropped with this future: a push not applied by then never will be.
    let (ticket, _guard) = Ticket::new(deadline);
    let push = async {
        let mut reservation = gw.memory().reservation();
        reservation.grow(req.len())?;
        // A call with the key of one applied is answered as it was.
        let key = match (gateway.idempotency(), key) {
            (Some(keys), Some(key)) => {
                let body = req.clone();
                let fingerprint = run_sized(req.len() > BLOCKING_BYTES, move || {
                    Ok(idempotency::fingerprint(
                        method,
                        "application/grpc",
                        "",
                        &body,
                    ))
                })
                .await?;
                match keys.begin(&key, fingerprint)? {
                    idempotency::Begin::Replay(series) => {
                        return Ok(Ingested { series, samples: 0 });
                    }
                    idempotency::Begin::New(guard) => Some(guard),
                }
            }
            _ => None,
        };
        let ingested = run_sized(req.len() > BLOCKING_BYTES, move || {
            ingest(&gw, &req, &ticket, reservation)
        })
        .await?;
        if let Some(key) = key {
            key.applied(ingested.series);
        }
        Ok(ingested)
    };
    gateway.recorded(Protocol::Grpc, method, push).await
}

/// OTLP `MetricsService/Export`: the request's bytes to the OTLP decoder,
/// through the same ingest as every push; answered with an empty
/// `ExportMetricsServiceResponse` (all or nothing: no partial success).
#[derive(Debug, Clone)]
pub struct OtlpExport {
    gateway: Gateway,
}

impl UnaryService<Bytes> for OtlpExport {
    type Response = Bytes;
    type Future = BoxFuture<Response<Bytes>, Status>;

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let gw = self.gateway.clone();
        let deadline = deadline_of(req.extensions());
        let key = idempotency_key(&req);
        Box::pin(async move {
            apply_message(
                &gw,
                OTLP_EXPORT,
                req.into_inner(),
                deadline,
                key?,
                |gw, req, ticket, reservation| {
                    gw.ingest(Vec::new(), ticket, reservation, req.len(), |opts| {
                        gw.decode_otlp(req, opts)
                    })
                },
            )
            .await?;
            Ok(Response::new(Bytes::new()))
        })
    }
}

impl UnaryService<Bytes> for PushService {
    type Response = PushResponse;
    type Future = BoxFuture<Response<PushResponse>, Status>;

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let this = self.clone();
        let deadline = deadline_of(req.extensions());
        let key = idempotency_key(&req);
        Box::pin(async move {
            let done = this.apply(req.into_inner(), deadline, PUSH, key?).await?;
            Ok(Response::new(PushResponse {
                series: done.series as u64,
            }))
        })
    }
}

impl ClientStreamingService<Bytes> for PushService {
    type Response = PushResponse;
    type Future = BoxFuture<Response<PushResponse>, Status>;

    fn call(&mut self, req: Request<Streaming<Bytes>>) -> Self::Future {
        let this = self.clone();
        let deadline = deadline_of(req.extensions());
        let key = idempotency_key(&req);
        Box::pin(async move {
            if key?.is_some() {
                return Err(Rejection::invalid(format!(
                    "{} is not taken on PushStream (it would name a whole stream); send each push with Push",
                    idempotency::HEADER
                ))
                .into());
            }
            let mut stream = req.into_inner();
            let mut series = 0u64;
            // Each message is applied (or not) on its own, as a push.
            while let Some(msg) = stream.message().await? {
                series += this.apply(msg, deadline, PUSH_STREAM, None).await?.series as u64;
            }
            Ok(Response::new(PushResponse { series }))
        })
    }
}

/// The call's `idempotency-key` metadata, checked as the HTTP header is.
fn idempotency_key<T>(req: &Request<T>) -> Result<Option<String>, Status> {
    req.metadata()
        .get(idempotency::HEADER)
        .map(|v| idempotency::parse_key(v.as_bytes()).map(str::to_owned))
        .transpose()
        .map_err(Status::from)
}

fn deadline_of(ext: &axum::http::Extensions) -> Option<Instant> {
    ext.get::<Deadline>().map(|d| d.0)
}

/// A gRPC request body as tonic reads it, held to the request's deadline
/// and to the byte budget:
/// - it fails with `DEADLINE_EXCEEDED` once the deadline has passed, so a
///   slow sender cannot hold a push past it (the middleware leaves pushes
///   to answer by their deadline themselves). The timer is only armed when
///   the body has nothing ready: a push whose bytes flow costs a clock read
///   per frame, not a timer registration.
/// - the bytes of the message tonic is gathering are reserved as they
///   arrive, before tonic keeps them, and refused with `RESOURCE_EXHAUSTED`
///   past `--max-memory`: a thousand calls each holding most of a large
///   message cost their bytes like HTTP bodies do. Whole messages are the
///   service's to reserve ([`apply_message`]), so what is reserved here
///   follows the message being gathered, not the call's total.
struct GuardedBody<B> {
    inner: Pin<Box<B>>,
    deadline: Option<Instant>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Where the bytes read so far leave the gRPC framing.
    framing: Framing,
    /// The gathered part of the unfinished message.
    gathering: crate::memory::Reservation,
    /// What tonic may inflate a compressed message to.
    _inflating: Option<crate::memory::Reservation>,
}

impl<B> GuardedBody<B> {
    fn new(
        inner: B,
        deadline: Option<Instant>,
        gathering: crate::memory::Reservation,
        inflating: Option<crate::memory::Reservation>,
    ) -> GuardedBody<B> {
        GuardedBody {
            inner: Box::pin(inner),
            deadline,
            timer: None,
            framing: Framing::default(),
            gathering,
            _inflating: inflating,
        }
    }

    /// Reserves the unfinished message's bytes after `data`.
    fn gather(&mut self, data: &[u8]) -> Result<(), Rejection> {
        let held = self.framing.read(data);
        let reserved = self.gathering.bytes();
        if held > reserved {
            self.gathering.grow(held - reserved)
        } else {
            self.gathering.shrink(reserved - held);
            Ok(())
        }
    }
}

/// A gRPC body's framing (a flag byte and a 4-byte big-endian length
/// before each message), followed across frames only as far as knowing how
/// many bytes of an unfinished message tonic holds.
#[derive(Debug, Default)]
struct Framing {
    /// Bytes of the current message's 5-byte prefix read so far.
    prefix: [u8; 5],
    prefix_read: usize,
    /// Bytes of the current message's payload still to come.
    payload_left: usize,
    /// Bytes of the current (unfinished) message read, prefix included.
    held: usize,
}

impl Framing {
    /// Follows `data`; gives the bytes of the unfinished message now held.
    fn read(&mut self, mut data: &[u8]) -> usize {
        while !data.is_empty() {
            if self.prefix_read < 5 {
                let n = (5 - self.prefix_read).min(data.len());
                self.prefix[self.prefix_read..self.prefix_read + n].copy_from_slice(&data[..n]);
                self.prefix_read += n;
                self.held += n;
                data = &data[n..];
                if self.prefix_read < 5 {
                    break;
                }
                let [_, a, b, c, d] = self.prefix;
                self.payload_left = u32::from_be_bytes([a, b, c, d]) as usize;
            } else {
                let n = self.payload_left.min(data.len());
                self.payload_left -= n;
                self.held += n;
                data = &data[n..];
            }
            if self.prefix_read == 5 && self.payload_left == 0 {
                // Whole: tonic hands it to the service, which reserves it.
                *self = Framing::default();
            }
        }
        self.held
    }
}

fn body_timed_out() -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(Status::deadline_exceeded(Rejection::Timeout.to_string()))
}

impl<B> http_body::Body for GuardedBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let frame = match self.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(other) => return Poll::Ready(other.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let Some(deadline) = self.deadline else {
                    return Poll::Pending;
                };
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
                return match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(body_timed_out()))),
                    Poll::Pending => Poll::Pending,
                };
            }
        };
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Poll::Ready(Some(Err(body_timed_out())));
        }
        if let Some(data) = frame.data_ref()
            && let Err(refused) = self.gather(data)
        {
            return Poll::Ready(Some(Err(Box::new(Status::from(refused)))));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The tower service tonic routes calls of `AggregationGateway` (and,
/// as [`OtlpServer`], of OTLP's `MetricsService`) to.
#[derive(Debug, Clone)]
pub struct PushServer {
    service: PushService,
    max_message_bytes: usize,
}

impl NamedService for PushServer {
    const NAME: &'static str = SERVICE;
}

/// [`PushServer`] under OTLP's service name, for tonic's routing by name.
#[derive(Debug, Clone)]
pub struct OtlpServer(PushServer);

impl NamedService for OtlpServer {
    const NAME: &'static str = OTLP_SERVICE;
}

impl<B> tower::Service<axum::http::Request<B>> for OtlpServer
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = axum::http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<axum::http::Request<B>>::poll_ready(&mut self.0, cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        self.0.call(req)
    }
}

impl PushServer {
    fn grpc<E: codec::Carried>(&self) -> tonic::server::Grpc<Codec<E, Bytes>> {
        let mut accept = EnabledCompressionEncodings::default();
        accept.enable(CompressionEncoding::Gzip);
        accept.enable(CompressionEncoding::Zstd);
        tonic::server::Grpc::new(Codec::default())
            .apply_compression_config(accept, EnabledCompressionEncodings::default())
            .apply_max_message_size_config(Some(self.max_message_bytes), None)
    }
}

impl<B> tower::Service<axum::http::Request<B>> for PushServer
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = axum::http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let service = self.service.clone();
        let deadline = deadline_of(req.extensions());
        let gw = &self.service.gateway;
        // A unary call's message must arrive by --body-read-timeout; a
        // stream's messages by the request's deadline.
        let body_by = match req.uri().path() {
            PUSH | OTLP_EXPORT => {
                let by = Instant::now() + gw.config().body_read_timeout;
                Some(deadline.map_or(by, |d| d.min(by)))
            }
            _ => deadline,
        };
        // tonic inflates a compressed message before this service sees it,
        // up to --max-body-bytes: that much is reserved while it reads.
        let compressed = req
            .headers()
            .get("grpc-encoding")
            .is_some_and(|v| v.as_bytes() != b"identity");
        let inflating = if compressed {
            let mut r = gw.memory().reservation();
            if let Err(e) = r.grow(self.max_message_bytes) {
                return Box::pin(async move { Ok(e.respond(true).map(tonic::body::Body::new)) });
            }
            Some(r)
        } else {
            None
        };
        let gathering = gw.memory().reservation();
        let req = req.map(|inner| GuardedBody::new(inner, body_by, gathering, inflating));
        match req.uri().path() {
            PUSH => {
                let mut grpc = self.grpc::<PushResponse>();
                Box::pin(async move { Ok(grpc.unary(service, req).await) })
            }
            PUSH_STREAM => {
                let mut grpc = self.grpc::<PushResponse>();
                Box::pin(async move { Ok(grpc.client_streaming(service, req).await) })
            }
            OTLP_EXPORT => {
                let mut grpc = self.grpc::<Bytes>();
                let export = OtlpExport {
                    gateway: service.gateway,
                };
                Box::pin(async move { Ok(grpc.unary(export, req).await) })
            }
            _ => Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}

/// The gRPC routes as an axum router: push service, health (reporting
/// serving) and reflection.
pub async fn router(gateway: Gateway) -> axum::Router {
    let limit = gateway.config().max_body_bytes;
    routes(gateway)
        .await
        .into_axum_router()
        .layer(axum::middleware::from_fn(move |req, next| {
            message_size_status(limit, req, next)
        }))
}

/// tonic refuses a message over `max_decoding_message_size` with
/// `OUT_OF_RANGE` and its own wording; the spec's code for a size limit is
/// `RESOURCE_EXHAUSTED`, with the same reason as an HTTP 413. This service
/// never answers `OUT_OF_RANGE` itself, so every such answer is that one.
async fn message_size_status(
    limit: usize,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let res = next.run(req).await;
    let out_of_range = res
        .headers()
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11");
    if out_of_range {
        return Rejection::BodyTooLarge { limit }.respond(true);
    }
    res
}

async fn routes(gateway: Gateway) -> tonic::service::Routes {
    let push = PushServer {
        max_message_bytes: gateway.config().max_body_bytes,
        service: PushService { gateway },
    };
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<PushServer>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTORS)
        .build_v1()
        .ok();
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTORS)
        .build_v1alpha()
        .ok();
    let otlp = OtlpServer(push.clone());
    let mut routes = tonic::service::Routes::new(push)
        .add_service(otlp)
        .add_service(health);
    if let Some(r) = reflection {
        routes = routes.add_service(r);
    }
    if let Some(r) = reflection_alpha {
        routes = routes.add_service(r);
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::Framing;

    fn message(payload: &[u8]) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        m.extend_from_slice(payload);
        m
    }

    #[test]
    fn framing_counts_only_the_unfinished_message() {
        let mut f = Framing::default();
        // A prefix split across frames, then the payload in two.
        assert_eq!(f.read(&[0, 0]), 2);
        assert_eq!(f.read(&[0, 0, 4]), 5);
        assert_eq!(f.read(b"ab"), 7);
        // The rest of it, a whole message and the start of a third.
        let mut data = b"cd".to_vec();
        data.extend(message(b"xyz"));
        data.extend(&message(b"0123456789")[..8]);
        assert_eq!(f.read(&data), 8);
        assert_eq!(f.read(&message(b"0123456789")[8..]), 0);
        // An empty message is whole at its prefix.
        assert_eq!(f.read(&message(b"")), 0);
        assert_eq!(f.read(&[]), 0);
    }
}
