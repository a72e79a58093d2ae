//! gRPC (SPEC §3): the `aggregation_gateway.v1.AggregationGateway` service,
//! `grpc.health.v1` and server reflection, as tonic routes that
//! `transport::serve` merges into the HTTP router. The service only hands
//! each batch to [`Gateway::ingest`], as the HTTP push handler does.

use std::time::Instant;

use tonic::{Request, Response, Status, Streaming};

use crate::Gateway;
use crate::decode::protobuf;
use crate::error::Rejection;
use crate::ingest::{Ingested, run_sized};
use crate::pb::aggregation_gateway::v1::aggregation_gateway_server::{
    AggregationGateway, AggregationGatewayServer,
};
use crate::pb::aggregation_gateway::v1::{PushRequest, PushResponse};
use crate::telemetry::Protocol;

/// The descriptor set of `proto/`, for server reflection.
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

/// Batches with more metrics than this are applied off the async workers.
const BLOCKING_METRICS: usize = 2_000;

/// The push service: a handle on the shared gateway, nothing else.
#[derive(Debug, Clone)]
pub struct PushService {
    gateway: Gateway,
}

impl PushService {
    async fn apply(&self, req: PushRequest) -> Result<Ingested, Rejection> {
        let started = Instant::now();
        let metrics: usize = req.metric_families.iter().map(|f| f.metric.len()).sum();
        let gw = self.gateway.clone();
        let result = run_sized(metrics > BLOCKING_METRICS, move || {
            let labels = req.labels.into_iter().collect();
            gw.ingest(labels, |opts| protobuf::families(req.metric_families, opts))
        })
        .await;
        self.gateway.telemetry().push(
            Protocol::Grpc,
            result.as_ref().map(|i| i.samples),
            started.elapsed(),
        );
        result
    }
}

#[tonic::async_trait]
impl AggregationGateway for PushService {
    async fn push(&self, req: Request<PushRequest>) -> Result<Response<PushResponse>, Status> {
        let done = self.apply(req.into_inner()).await?;
        Ok(Response::new(PushResponse {
            series: done.series as u64,
        }))
    }

    async fn push_stream(
        &self,
        req: Request<Streaming<PushRequest>>,
    ) -> Result<Response<PushResponse>, Status> {
        let mut stream = req.into_inner();
        let mut series = 0u64;
        while let Some(msg) = stream.message().await? {
            series += self.apply(msg).await?.series as u64;
        }
        Ok(Response::new(PushResponse { series }))
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
    let limit = gateway.config().max_body_bytes;
    let push = AggregationGatewayServer::new(PushService { gateway })
        .max_decoding_message_size(limit)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .accept_compressed(tonic::codec::CompressionEncoding::Zstd);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<AggregationGatewayServer<PushService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTORS)
        .build_v1()
        .ok();
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTORS)
        .build_v1alpha()
        .ok();
    let mut routes = tonic::service::Routes::new(push).add_service(health);
    if let Some(r) = reflection {
        routes = routes.add_service(r);
    }
    if let Some(r) = reflection_alpha {
        routes = routes.add_service(r);
    }
    routes
}
