//! prom-aggregation-gateway: a push gateway for Prometheus that adds up what
//! many senders push (SPEC: `shared/SPEC.md`).
//!
//! A push flows `transport` (HTTP or gRPC) -> `middleware` (one tower stack
//! for both) -> `decode` (text, OpenMetrics, protobuf) -> [`model::Push`] ->
//! `aggregate` (validate all, then apply), through [`Gateway::ingest`]; a
//! scrape flows `aggregate` -> `encode` (text, OpenMetrics, protobuf).
//! [`serve`] runs it all; `main.rs` only parses flags and sets up logging.

#![warn(missing_docs)]

pub mod aggregate;
pub mod config;
pub mod decode;
pub mod encode;
pub mod error;
pub mod ingest;
pub mod middleware;
pub mod model;
pub mod telemetry;
pub mod trace;
pub mod transport;

/// Code generated from `proto/` by `build.rs`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/pb.rs"));
}

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::Config;

/// The gateway's shared state: one aggregate, its self-metrics and config.
/// Cheap to clone; every route and protocol holds the same one.
#[derive(Clone, Debug)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    aggregator: aggregate::Aggregator,
    telemetry: telemetry::Telemetry,
    started: Instant,
}

impl Gateway {
    /// A gateway with an empty aggregate.
    pub fn new(config: Config) -> Gateway {
        let aggregator = aggregate::Aggregator::new(aggregate::Settings {
            gauge_mode: config.gauge_mode,
            max_series: config.max_series,
        });
        let telemetry = telemetry::Telemetry::new(config.max_series);
        Gateway {
            inner: Arc::new(Inner {
                config,
                aggregator,
                telemetry,
                started: Instant::now(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The aggregate.
    pub fn aggregator(&self) -> &aggregate::Aggregator {
        &self.inner.aggregator
    }

    /// The self-metrics.
    pub fn telemetry(&self) -> &telemetry::Telemetry {
        &self.inner.telemetry
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }
}

/// Serves a new gateway with `config` on the given listeners until
/// `shutdown` completes. Tests call this with ephemeral loopback listeners.
pub async fn serve(
    config: Config,
    listeners: transport::Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    transport::serve(Gateway::new(config), listeners, shutdown).await
}
