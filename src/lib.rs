//! prom-aggregation-gateway: a push gateway for Prometheus that adds up what
//! many senders push (contract: `docs/contract.md`).
//!
//! A push flows `transport` (HTTP or gRPC) -> `middleware` (one tower stack
//! for both) -> `decode` (text, OpenMetrics, protobuf) -> [`model::Push`] ->
//! `aggregate` (validate all, then apply), through [`Gateway::ingest`]; a
//! scrape flows `aggregate` -> `encode` (text, OpenMetrics, protobuf).
//! [`serve`] runs it all; `main.rs` only parses flags and sets up logging.

#![warn(missing_docs)]

pub mod aggregate;
pub mod clock;
pub mod config;
pub mod decode;
pub mod encode;
pub mod error;
pub(crate) mod format;
pub mod ingest;
pub(crate) mod memory;
pub(crate) mod middleware;
pub mod model;
pub mod persist;
pub mod routes;
pub(crate) mod telemetry;
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
    /// Aggregate generation of the last snapshot written.
    saved: std::sync::atomic::AtomicU64,
    scrape_cache: encode::Cache,
}

impl Gateway {
    /// A gateway with an empty aggregate.
    pub fn new(config: Config) -> Gateway {
        let memory = memory::Memory::new(config.max_memory);
        let aggregator = aggregate::Aggregator::new(aggregate::Settings {
            gauge_mode: config.gauge_mode,
            max_series: config.max_series,
            memory: memory.clone(),
            max_buckets: config.limits.max_buckets,
            max_native_buckets: config.limits.max_native_buckets,
            clock: config.clock.clone(),
        });
        let telemetry = telemetry::Telemetry::new(config.max_series);
        let scrape_cache = encode::Cache::new(memory, config.scrape_keep_bytes);
        Gateway {
            inner: Arc::new(Inner {
                config,
                aggregator,
                telemetry,
                started: Instant::now(),
                saved: std::sync::atomic::AtomicU64::new(0),
                scrape_cache,
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

    /// Renderings of the aggregate kept until it changes.
    pub fn scrape_cache(&self) -> &encode::Cache {
        &self.inner.scrape_cache
    }

    /// The byte budget (`--max-memory`) everything senders cost is charged to.
    pub fn memory(&self) -> &Arc<memory::Memory> {
        self.aggregator().memory()
    }

    /// The self-metrics.
    pub fn telemetry(&self) -> &telemetry::Telemetry {
        &self.inner.telemetry
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Whether the aggregate changed since the last snapshot was written.
    pub fn unsaved_changes(&self) -> bool {
        self.aggregator().generation()
            != self.inner.saved.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn saved_generation(&self, generation: u64) {
        self.inner
            .saved
            .store(generation, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Serves a new gateway with `config` on the given listeners until
/// `shutdown` completes: restores the snapshot first, runs expiry and the
/// snapshot writer beside the listeners, and at shutdown lets in-flight
/// requests finish before writing the last snapshot. Tests call this with
/// ephemeral loopback listeners.
pub async fn serve(
    config: Config,
    listeners: transport::Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let gateway = Gateway::new(config);
    let restored = persist::restore(&gateway).map_err(std::io::Error::other)?;
    if restored > 0 {
        tracing::info!(series = restored, "snapshot restored");
        gateway.saved_generation(gateway.aggregator().generation());
    }
    let (stop, stopped) = tokio::sync::watch::channel(());
    let mut background = Vec::new();
    if let Some(ttl) = gateway.config().series_ttl {
        background.push(spawn_expiry(gateway.clone(), ttl, stopped.clone()));
    }
    if gateway.config().persistence_file.is_some() {
        background.push(persist::spawn_writer(gateway.clone(), stopped));
    }
    let served = transport::serve(gateway.clone(), listeners, shutdown).await;
    drop(stop);
    for task in background {
        let _ = task.await;
    }
    // In-flight pushes have finished: the last snapshot holds them all. If
    // it cannot be written, the process must not exit as if all was well.
    if gateway.config().persistence_file.is_some()
        && let Err(e) = persist::save(&gateway).await
    {
        served?;
        return Err(std::io::Error::other(e));
    }
    served
}

/// Drops series older than `ttl`, sweeping a few times per `ttl` (at most
/// once a second) rather than on every scrape.
fn spawn_expiry(
    gateway: Gateway,
    ttl: Duration,
    mut stop: tokio::sync::watch::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let clock = gateway.config().clock.clone();
        let period = (ttl / 4).max(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = clock.sleep(period) => {
                    let dropped = gateway.aggregator().expire(ttl);
                    gateway.telemetry().expired(dropped);
                }
            }
        }
    })
}
