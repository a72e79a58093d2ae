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
pub(crate) mod hangup;
pub mod ingest;
pub(crate) mod memory;
pub(crate) mod middleware;
pub mod model;
pub mod persist;
pub mod remote_write;
pub mod routes;
pub mod rules;
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
    /// The rules in force (`--rules`), swapped whole on reload.
    rules: parking_lot::RwLock<Arc<rules::RuleSet>>,
    /// The rules file's bytes when last read, to tell a change.
    rules_read: parking_lot::Mutex<Option<Vec<u8>>>,
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
            series_ttl: config.series_ttl,
            journal: config.remote_write.is_some(),
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
                rules: Default::default(),
                rules_read: Default::default(),
            }),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<rules::RuleSet> {
        self.inner.rules.read().clone()
    }

    /// Puts `rules` in force (tests; `--rules` files go through
    /// [`Gateway::load_rules`]).
    pub fn set_rules(&self, rules: rules::RuleSet) {
        *self.inner.rules.write() = Arc::new(rules);
    }

    /// Parses rules text in the YAML of `--rules` (`file` names it in
    /// errors), with this gateway's self-metrics.
    pub fn parse_rules(&self, file: &str, text: &str) -> Result<rules::RuleSet, rules::LoadError> {
        rules::parse(file, text, |name| self.telemetry().rule_stats(name)).map(rules::RuleSet::new)
    }

    /// Reads the `--rules` file and puts its rules in force, unless it is
    /// unchanged since the last read and `force` is false. A file that
    /// cannot be read or is invalid changes nothing; the error says why.
    /// Returns whether new rules were put in force.
    pub fn load_rules(&self, force: bool) -> Result<bool, rules::LoadError> {
        let Some(path) = &self.config().rules_file else {
            return Ok(false);
        };
        let shown = path.display().to_string();
        let bytes = read_limited(path, RULES_FILE_LIMIT)
            .map_err(|e| rules::LoadError(format!("rules file {shown}: {e}")))?;
        let mut last = self.inner.rules_read.lock();
        if !force && last.as_deref() == Some(&bytes[..]) {
            return Ok(false);
        }
        let result = std::str::from_utf8(&bytes)
            .map_err(|_| rules::LoadError(format!("rules file {shown}: not UTF-8 text")))
            .and_then(|text| self.parse_rules(&shown, text));
        // A refused file is remembered too: it is reported once, not at
        // every check, until it changes again.
        *last = Some(bytes);
        match result {
            Ok(set) => {
                self.telemetry().rules_loaded(Ok(set.rules().len()));
                tracing::info!(file = %shown, rules = set.rules().len(), "rules loaded");
                self.set_rules(set);
                Ok(true)
            }
            Err(e) => {
                self.telemetry().rules_loaded(Err(()));
                Err(e)
            }
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
    // Invalid rules stop the start; later, they keep the rules in force.
    gateway.load_rules(true).map_err(std::io::Error::other)?;
    let restored = persist::restore(&gateway).map_err(std::io::Error::other)?;
    if restored > 0 {
        tracing::info!(series = restored, "snapshot restored");
        gateway.saved_generation(gateway.aggregator().generation());
    }
    let (stop, stopped) = tokio::sync::watch::channel(());
    let mut background = Vec::new();
    background.push(spawn_expiry(gateway.clone(), stopped.clone()));
    if gateway.config().rules_file.is_some() {
        background.push(spawn_rules_reload(gateway.clone(), stopped.clone()));
    }
    if let Some(settings) = gateway.config().remote_write.clone() {
        background.extend(
            remote_write::spawn(gateway.clone(), settings, stopped.clone())
                .map_err(std::io::Error::other)?,
        );
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

/// Largest rules file read.
const RULES_FILE_LIMIT: u64 = 4 << 20;

/// Reads a file of at most `limit` bytes.
fn read_limited(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            limit >> 20
        )));
    }
    Ok(bytes)
}

/// Drops series whose TTL ran out and forgets silent `total` sources,
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
                        Some(r.source_ttl).filter(|_| r.mode == rules::Mode::Total),
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

/// Re-reads the rules file on SIGHUP and when it changes (checked every
/// `--rules-check-interval`); a refused file keeps the rules in force.
fn spawn_rules_reload(
    gateway: Gateway,
    mut stop: tokio::sync::watch::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut hangups = hangup::Hangups::new();
        let period = gateway.config().rules_check_interval;
        loop {
            let force = tokio::select! {
                _ = stop.changed() => return,
                _ = hangups.next() => true,
                _ = tokio::time::sleep(period) => false,
            };
            let gw = gateway.clone();
            let loaded = tokio::task::spawn_blocking(move || gw.load_rules(force)).await;
            if let Ok(Err(e)) = loaded {
                tracing::error!("{e}; the rules in force are kept");
            }
        }
    })
}
