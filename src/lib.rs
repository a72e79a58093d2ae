//! prom-aggregation-gateway: a push gateway for Prometheus that adds up what
//! many senders push (contract: `docs/contract.md`).
//!
//! A push flows `transport` (HTTP or gRPC) -> `middleware` (one tower stack
//! for both) -> `decode` (text, OpenMetrics, protobuf) -> [`model::Push`] ->
//! `aggregate` (validate all, then apply), through [`Gateway::ingest`]; a
//! scrape flows `aggregate` -> `encode` (text, OpenMetrics, protobuf).
//! [`serve`] runs it all; `main.rs` only parses flags and sets up logging.
//!
//! This file is the composition root: it builds the gateway and starts its
//! tasks, and no module imports it. The layers every module sits in, and
//! the rule that imports only go down, are in `ARCHITECTURE.md`.

#![warn(missing_docs)]

pub mod aggregate;
pub mod clock;
pub mod config;
pub mod decode;
pub mod encode;
pub mod error;
pub mod format;
pub mod gateway;
pub(crate) mod hangup;
pub mod idempotency;
pub mod ingest;
pub(crate) mod memory;
pub(crate) mod middleware;
pub mod model;
pub mod pb;
pub mod persist;
pub mod reload;
pub mod remote_write;
pub mod remote_write_pb;
pub mod routes;
pub mod rules;
pub mod secret;
pub mod status;
pub(crate) mod telemetry;
pub mod tls;
pub mod trace;
pub mod transport;
pub mod units;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
pub use gateway::{Gateway, SnapshotOutcome};

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
    // Invalid rules stop the start; later, they keep the rules in force.
    let rules_file = gateway
        .config()
        .rules_file
        .clone()
        .map(|path| Arc::new(reload::RulesFile::new(path)));
    if let Some(file) = &rules_file {
        file.load(&gateway, true).map_err(std::io::Error::other)?;
    }
    let restored = persist::restore(&gateway).map_err(std::io::Error::other)?;
    if restored > 0 {
        tracing::info!(series = restored, "snapshot restored");
        gateway.saved_generation(gateway.aggregator().generation());
    }
    let (stop, stopped) = tokio::sync::watch::channel(());
    // When the shutdown began: everything after it, the drain, the last
    // snapshot and the last remote-write send, fits in --shutdown-timeout.
    let signalled = Arc::new(std::sync::OnceLock::new());
    let shutdown = {
        let signalled = signalled.clone();
        async move {
            shutdown.await;
            let _ = signalled.set(std::time::Instant::now());
        }
    };
    let mut background = Vec::new();
    let mut remote_writes = Vec::new();
    background.push(spawn_expiry(gateway.clone(), stopped.clone()));
    if let Some(file) = rules_file {
        let period = gateway.config().rules_check_interval;
        background.push(reload::spawn(
            file,
            gateway.clone(),
            period,
            stopped.clone(),
        ));
    }
    if let Some(settings) = gateway.config().remote_write.clone() {
        remote_writes = remote_write::spawn(gateway.clone(), settings, stopped.clone())
            .map_err(std::io::Error::other)?;
    }
    if gateway.config().persistence_file.is_some() {
        background.push(persist::spawn_writer(gateway.clone(), stopped));
    }
    let served = transport::serve(gateway.clone(), listeners, shutdown).await;
    drop(stop);
    for task in background {
        let _ = task.await;
    }
    // In-flight pushes have finished: the last snapshot holds them all,
    // and is written before the last remote-write send, which may hang on
    // a receiver. If it cannot be written, the process must not exit as if
    // all was well.
    let saved = match gateway.config().persistence_file {
        Some(_) => persist::save(&gateway).await,
        None => Ok(()),
    };
    let deadline = signalled
        .get()
        .copied()
        .unwrap_or_else(std::time::Instant::now)
        + gateway.config().shutdown_timeout;
    for task in remote_writes {
        let abort = task.abort_handle();
        if tokio::time::timeout_at(deadline.into(), task)
            .await
            .is_err()
        {
            abort.abort();
            tracing::warn!("the last remote-write send did not finish within --shutdown-timeout");
        }
    }
    if let Err(e) = saved {
        served?;
        return Err(std::io::Error::other(e));
    }
    served
}

/// Drops series whose TTL ran out and forgets silent sources (`total`,
/// `latest`: a silent `latest` source's value leaves its output),
/// sweeping a few times per shortest TTL in force (`--series-ttl`, the
/// rules' `ttl` and `source_ttl`), between once a second and once a
/// minute, rather than on every scrape.
fn spawn_expiry(
    gateway: Gateway,
    mut stop: tokio::sync::watch::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let clock = gateway.config().clock.clone();
        loop {
            let rules = gateway.rules();
            let shortest = rules
                .rules()
                .iter()
                .flat_map(|r| {
                    [
                        r.ttl,
                        Some(r.source_ttl).filter(|_| r.mode.tracks_sources()),
                    ]
                })
                .chain([gateway.config().series_ttl])
                .flatten()
                .min();
            drop(rules);
            let period = shortest
                .map_or(Duration::from_secs(60), |t| t / 4)
                .clamp(Duration::from_secs(1), Duration::from_secs(60));
            tokio::select! {
                _ = stop.changed() => return,
                _ = clock.sleep(period) => {
                    let dropped = gateway.aggregator().expire();
                    gateway.telemetry().expired(dropped);
                }
            }
        }
    })
}
