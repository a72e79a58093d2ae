//! The core every route, protocol and task shares: the aggregate, the
//! rules in force, the byte budget, the self-metrics and the config. The
//! features (status page, snapshots, rules reload, remote-write) keep
//! their own state and reach the aggregate through it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{self, Config};
use crate::{aggregate, encode, idempotency, memory, rules, telemetry};

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
    /// Grouping keys pushed and refused pushes, for the status page.
    activity: crate::status::activity::Activity,
    /// The status API's own state: its cardinality counts, the bytes its
    /// answers may hold.
    views: crate::status::views::Views,
    /// How the last snapshot write went.
    last_snapshot: parking_lot::Mutex<Option<SnapshotOutcome>>,
    /// Pushes' `Idempotency-Key`s remembered (`--idempotency-window`).
    idempotency: Option<idempotency::Keys>,
}

/// How a snapshot write went, for the status API.
#[derive(Debug, Clone)]
pub struct SnapshotOutcome {
    /// When it ended (Unix seconds).
    pub time: f64,
    /// Bytes written (0 when it failed).
    pub bytes: usize,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Gateway {
    /// A gateway with an empty aggregate.
    pub fn new(config: Config) -> Gateway {
        let memory = memory::Memory::new(config.max_memory);
        let views = crate::status::views::Views::new(config.max_memory);
        let aggregator = aggregate::Aggregator::new(aggregate::Settings {
            gauge_mode: config.gauge_mode,
            max_series: config.max_series,
            memory: memory.clone(),
            max_buckets: config.limits.max_buckets,
            max_native_buckets: config.limits.max_native_buckets,
            clock: config.clock.clone(),
            series_ttl: config.series_ttl,
            journal: config.remote_write.is_some(),
            made_start_times: config.start_times == config::StartTimes::Always,
        });
        let telemetry = telemetry::Telemetry::new(config.max_series);
        let scrape_cache = encode::Cache::new(memory, config.scrape_keep_bytes);
        let built_in_rules =
            rules::RuleSet::default().with_built_in_stats(|n| telemetry.rule_stats(n));
        let idempotency = config.idempotency_window.map(|window| {
            let budget = (config.max_memory / 16).min(idempotency::MAX_BUDGET);
            idempotency::Keys::new(window, budget, config.clock.clone())
        });
        Gateway {
            inner: Arc::new(Inner {
                config,
                aggregator,
                telemetry,
                started: Instant::now(),
                saved: std::sync::atomic::AtomicU64::new(0),
                scrape_cache,
                rules: parking_lot::RwLock::new(Arc::new(built_in_rules)),
                activity: Default::default(),
                views,
                last_snapshot: Default::default(),
                idempotency,
            }),
        }
    }

    /// Grouping keys pushed and refused pushes (the status page's).
    pub fn activity(&self) -> &crate::status::activity::Activity {
        &self.inner.activity
    }

    /// The status API's own state.
    pub(crate) fn views(&self) -> &crate::status::views::Views {
        &self.inner.views
    }

    /// Pushes' idempotency keys, unless `--idempotency-window` is 0.
    pub fn idempotency(&self) -> Option<&idempotency::Keys> {
        self.inner.idempotency.as_ref()
    }

    /// How the last snapshot write went, if one was written.
    pub fn last_snapshot(&self) -> Option<SnapshotOutcome> {
        self.inner.last_snapshot.lock().clone()
    }

    /// Records how a snapshot write went.
    pub(crate) fn snapshot_written(&self, outcome: SnapshotOutcome) {
        *self.inner.last_snapshot.lock() = Some(outcome);
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
        let stats = |name: &str| self.telemetry().rule_stats(name);
        rules::parse(file, text, stats)
            .map(|rules| rules::RuleSet::new(rules).with_built_in_stats(stats))
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

    /// Records that a snapshot holds the aggregate at `generation`.
    pub fn saved_generation(&self, generation: u64) {
        self.inner
            .saved
            .store(generation, std::sync::atomic::Ordering::Relaxed);
    }
}
