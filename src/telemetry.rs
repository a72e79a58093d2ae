//! The gateway's own metrics (`GET /-/metrics`): pushes and rejections by
//! protocol and reason, samples ingested, what is stored, push and scrape
//! durations. Kept with prometheus/client_rust, apart from the aggregate, so
//! the gateway's health never mixes with what senders pushed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::aggregate::Aggregator;
use crate::error::Rejection;
pub use crate::routes::Protocol;

impl EncodeLabelValue for Protocol {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: Protocol,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    protocol: Protocol,
    handler: &'static str,
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandlerLabels {
    protocol: Protocol,
    handler: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FormatLabels {
    format: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetReasonLabels {
    target: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    protocol: Protocol,
    reason: &'static str,
}

fn duration_histogram() -> Histogram {
    // 50 µs .. about 13 s.
    Histogram::new(exponential_buckets(0.00005, 4.0, 10))
}

/// The self-metrics and their registry.
pub struct Telemetry {
    registry: Registry,
    pushes: Family<ProtocolLabels, Counter>,
    rejections: Family<RejectionLabels, Counter>,
    samples: Family<ProtocolLabels, Counter>,
    push_duration: Family<ProtocolLabels, Histogram, fn() -> Histogram>,
    scrape_duration: Histogram,
    scrapes: Family<FormatLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    in_flight: Family<HandlerLabels, Gauge>,
    request_duration: Family<HandlerLabels, Histogram, fn() -> Histogram>,
    series: Gauge,
    families: Gauge,
    expired: Counter,
    snapshots: Family<ResultLabels, Counter>,
    snapshot_bytes: Gauge,
    snapshot_duration: Histogram,
    max_series: Gauge,
    memory: Gauge,
    memory_limit: Gauge,
    rule_series_in: Family<RuleLabels, Counter>,
    rule_series_out: Family<RuleLabels, Counter>,
    rule_sources: Family<RuleLabels, Gauge>,
    rule_resets: Family<RuleLabels, Counter>,
    rule_sources_expired: Family<RuleLabels, Counter>,
    rule_replays: Family<RuleLabels, Counter>,
    delta_windows: Gauge,
    delta_duplicates: Counter,
    idempotency_keys: Gauge,
    idempotency_replays: Counter,
    idempotency_evicted: Counter,
    rules_loaded: Gauge,
    rules_reloads: Family<ResultLabels, Counter>,
    rules_last_reload_ok: Gauge,
    rw_samples: Family<TargetLabels, Counter>,
    rw_bytes: Family<TargetLabels, Counter>,
    rw_retries: Family<TargetLabels, Counter>,
    rw_dropped: Family<TargetReasonLabels, Counter>,
    rw_skipped: Family<TargetLabels, Counter>,
    rw_last_success: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    rw_lag: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    rw_protocol: Family<TargetLabels, Gauge>,
    rw_snapshot_duration: Histogram,
    rw_snapshot_bytes: Gauge,
    rw_stale: Counter,
    rw_stale_lost: Counter,
}

/// One remote-write target's self-metrics (handles into the registry).
#[derive(Debug, Clone)]
pub struct RemoteWriteStats {
    target: String,
    samples: Counter,
    bytes: Counter,
    retries: Counter,
    dropped: Family<TargetReasonLabels, Counter>,
    skipped: Counter,
    last_success: Gauge<f64, AtomicU64>,
    lag: Gauge<f64, AtomicU64>,
    protocol: Gauge,
    /// Timestamp (ms) of the newest snapshot sent whole.
    sent_ms: Arc<AtomicU64>,
}

impl RemoteWriteStats {
    /// A request taken: its samples and compressed bytes.
    pub fn sent(&self, samples: usize, bytes: usize) {
        self.samples.inc_by(samples as u64);
        self.bytes.inc_by(bytes as u64);
    }

    /// A request to be retried.
    pub fn retry(&self) {
        self.retries.inc();
    }

    /// Samples not sent, by reason (`rejected`: a 4xx answer;
    /// `carry_full`: staleness markers past the carry bound).
    pub fn dropped(&self, reason: &'static str, samples: usize) {
        self.dropped
            .get_or_create(&TargetReasonLabels {
                target: self.target.clone(),
                reason,
            })
            .inc_by(samples as u64);
    }

    /// A snapshot left for a newer one before it was sent whole.
    pub fn skipped(&self) {
        self.skipped.inc();
    }

    /// The protocol sent now (1 or 2).
    pub fn protocol(&self, p: crate::remote_write::config::Protocol) {
        self.protocol.set(match p {
            crate::remote_write::config::Protocol::V1 => 1,
            crate::remote_write::config::Protocol::V2 => 2,
        });
    }

    /// A snapshot taken at `timestamp_ms` went out whole; `ok` when no
    /// request of it was refused.
    pub fn done(&self, timestamp_ms: i64, ok: bool) {
        self.sent_ms.store(timestamp_ms as u64, Ordering::Relaxed);
        if ok {
            self.last_success.set(crate::clock::unix_now());
        }
        self.lag(timestamp_ms);
    }

    /// Sets the lag: how old the newest snapshot sent whole is, seen when
    /// a snapshot taken at `newest_ms` comes.
    pub fn lag(&self, newest_ms: i64) {
        let sent = self.sent_ms.load(Ordering::Relaxed);
        let lag = if sent == 0 {
            0.0
        } else {
            (newest_ms as f64 - sent as f64).max(0.0) / 1000.0
        };
        self.lag.set(lag);
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Telemetry {
    /// Registers every self-metric.
    pub fn new(max_series: usize) -> Telemetry {
        let t = Telemetry::unregistered();
        let mut registry = Registry::with_prefix("pag");
        t.register(&mut registry);
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        t.max_series.set(max_series as i64);
        Telemetry { registry, ..t }
    }

    /// Every metric, in no registry yet.
    fn unregistered() -> Telemetry {
        Telemetry {
            registry: Registry::default(),
            pushes: Family::default(),
            rejections: Family::default(),
            samples: Family::default(),
            push_duration: Family::new_with_constructor(duration_histogram),
            scrape_duration: duration_histogram(),
            scrapes: Family::default(),
            requests: Family::default(),
            in_flight: Family::default(),
            request_duration: Family::new_with_constructor(duration_histogram),
            series: Gauge::default(),
            families: Gauge::default(),
            expired: Counter::default(),
            snapshots: Family::default(),
            snapshot_bytes: Gauge::default(),
            snapshot_duration: duration_histogram(),
            max_series: Gauge::default(),
            memory: Gauge::default(),
            memory_limit: Gauge::default(),
            rule_series_in: Family::default(),
            rule_series_out: Family::default(),
            rule_sources: Family::default(),
            rule_resets: Family::default(),
            rule_sources_expired: Family::default(),
            rule_replays: Family::default(),
            delta_windows: Gauge::default(),
            delta_duplicates: Counter::default(),
            idempotency_keys: Gauge::default(),
            idempotency_replays: Counter::default(),
            idempotency_evicted: Counter::default(),
            rules_loaded: Gauge::default(),
            rules_reloads: Family::default(),
            rules_last_reload_ok: Gauge::default(),
            rw_samples: Family::default(),
            rw_bytes: Family::default(),
            rw_retries: Family::default(),
            rw_dropped: Family::default(),
            rw_skipped: Family::default(),
            rw_last_success: Family::default(),
            rw_lag: Family::default(),
            rw_protocol: Family::default(),
            rw_snapshot_duration: duration_histogram(),
            rw_snapshot_bytes: Gauge::default(),
            rw_stale: Counter::default(),
            rw_stale_lost: Counter::default(),
        }
    }

    /// Registers every metric in `registry` under its name and help.
    fn register(&self, registry: &mut Registry) {
        let t = self;
        // name => help, metric (each registered as a clone: one handle
        // here, one in the registry).
        macro_rules! register {
            ($($name:literal => $help:literal, $metric:expr;)*) => {
                $(registry.register($name, $help, $metric.clone());)*
            };
        }
        register! {
            "pushes" => "Pushes applied", t.pushes;
            "push_rejections" => "Pushes refused, by reason", t.rejections;
            "samples_ingested" => "Samples applied", t.samples;
            "push_duration_seconds" => "Time to decode, validate and apply a push", t.push_duration;
            "scrape_duration_seconds" => "Time to render a scrape of the aggregate", t.scrape_duration;
            "scrapes" => "Scrapes of the aggregate, by the format served", t.scrapes;
            "requests" => "Requests by protocol, handler and HTTP status", t.requests;
            "requests_in_flight" => "Requests being handled now", t.in_flight;
            "request_duration_seconds" => "Request time, through every layer", t.request_duration;
            "series" => "Series stored", t.series;
            "families" => "Metric families stored", t.families;
            "max_series" => "The --max-series limit", t.max_series;
            "memory_bytes" => "Bytes held for senders' data (aggregate, kept scrape renderings, requests in progress), as charged against --max-memory", t.memory;
            "memory_limit_bytes" => "The --max-memory limit", t.memory_limit;
            "series_expired" => "Series dropped by --series-ttl", t.expired;
            "snapshot_writes" => "Snapshot writes by result", t.snapshots;
            "snapshot_size_bytes" => "Size of the last snapshot written", t.snapshot_bytes;
            "snapshot_duration_seconds" => "Time to copy, encode and write a snapshot", t.snapshot_duration;
            "rule_series_matched" => "Pushed series each rule took", t.rule_series_in;
            "rule_series_written" => "Series each rule wrote into the aggregate, after combining", t.rule_series_out;
            "rule_sources" => "Sources a total rule tracks now", t.rule_sources;
            "rule_source_resets" => "Restarts of sources a total rule detected", t.rule_resets;
            "rule_sources_expired" => "Sources a total rule forgot after its source_ttl", t.rule_sources_expired;
            "rule_source_replays" => "Points of a source not newer than its last one (a retry, a replayed export), dropped", t.rule_replays;
            "otlp_delta_windows" => "OTLP delta series whose last window counted is remembered (per producer), to drop a window sent again", t.delta_windows;
            "otlp_delta_duplicates" => "OTLP delta points dropped: their producer's window of the series was counted already (a retry, a replayed export)", t.delta_duplicates;
            "idempotency_keys" => "Idempotency-Keys of applied pushes remembered (--idempotency-window)", t.idempotency_keys;
            "idempotency_replays" => "Pushes answered as the first push of their Idempotency-Key was, applying nothing", t.idempotency_replays;
            "idempotency_keys_evicted" => "Idempotency-Keys forgotten before their window ended, to keep within their byte budget", t.idempotency_evicted;
            "rules" => "Rules in force", t.rules_loaded;
            "rules_reloads" => "Loads of the rules file, by result", t.rules_reloads;
            "rules_last_reload_successful" => "Whether the last load of the rules file was taken (1) or refused, keeping the rules before it (0)", t.rules_last_reload_ok;
            "remote_write_samples_sent" => "Samples a remote-write target took (staleness markers included)", t.rw_samples;
            "remote_write_bytes_sent" => "Compressed request bytes a remote-write target took", t.rw_bytes;
            "remote_write_retries" => "Remote-write requests retried (5xx, 429, network errors)", t.rw_retries;
            "remote_write_dropped_samples" => "Samples not remote-written, by reason (rejected: a 4xx answer; carry_full: staleness markers past the carry bound)", t.rw_dropped;
            "remote_write_snapshots_skipped" => "Snapshots a target left for a newer one before sending them whole (values are cumulative: nothing is lost)", t.rw_skipped;
            "remote_write_last_success_timestamp_seconds" => "When a target last took a whole snapshot without refusing any of it", t.rw_last_success;
            "remote_write_lag_seconds" => "How much older the newest snapshot a target took whole is than the newest taken", t.rw_lag;
            "remote_write_protocol" => "The remote-write version a target is sent (1 or 2)", t.rw_protocol;
            "remote_write_snapshot_duration_seconds" => "Time to take and encode one remote-write snapshot", t.rw_snapshot_duration;
            "remote_write_snapshot_bytes" => "Compressed bytes of the last remote-write snapshot", t.rw_snapshot_bytes;
            "remote_write_staleness_markers" => "Dropped series given staleness markers", t.rw_stale;
            "remote_write_staleness_markers_lost" => "Dropped series given no staleness marker (more than --max-series dropped between two sends)", t.rw_stale_lost;
        }
    }

    /// Records one push's outcome.
    pub fn push(&self, protocol: Protocol, result: Result<usize, &Rejection>, elapsed: Duration) {
        let labels = ProtocolLabels { protocol };
        match result {
            Ok(samples) => {
                self.pushes.get_or_create(&labels).inc();
                self.samples.get_or_create(&labels).inc_by(samples as u64);
            }
            Err(r) => {
                self.rejections
                    .get_or_create(&RejectionLabels {
                        protocol,
                        reason: r.reason(),
                    })
                    .inc();
            }
        }
        self.push_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a request in (`+1`) or out (`-1`) of flight.
    pub fn in_flight(&self, protocol: Protocol, handler: &'static str, delta: i64) {
        self.in_flight
            .get_or_create(&HandlerLabels { protocol, handler })
            .inc_by(delta);
    }

    /// Records one request as the middleware saw it.
    pub fn request(&self, protocol: Protocol, handler: &'static str, code: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                protocol,
                handler,
                code,
            })
            .inc();
        self.request_duration
            .get_or_create(&HandlerLabels { protocol, handler })
            .observe(elapsed.as_secs_f64());
    }

    /// The self-metrics of the rule named `rule`: the same handles for the
    /// same name, so counts go on across reloads.
    pub fn rule_stats(&self, rule: &str) -> std::sync::Arc<crate::rules::RuleStats> {
        let labels = RuleLabels { rule: rule.into() };
        std::sync::Arc::new(crate::rules::RuleStats {
            name: rule.into(),
            series_in: self.rule_series_in.get_or_create(&labels).clone(),
            series_out: self.rule_series_out.get_or_create(&labels).clone(),
            sources: self.rule_sources.get_or_create(&labels).clone(),
            resets: self.rule_resets.get_or_create(&labels).clone(),
            sources_expired: self.rule_sources_expired.get_or_create(&labels).clone(),
            replays: self.rule_replays.get_or_create(&labels).clone(),
        })
    }

    /// The self-metrics of the remote-write target named `target`.
    pub fn remote_write_stats(&self, target: &str) -> RemoteWriteStats {
        let labels = TargetLabels {
            target: target.into(),
        };
        RemoteWriteStats {
            target: target.into(),
            samples: self.rw_samples.get_or_create(&labels).clone(),
            bytes: self.rw_bytes.get_or_create(&labels).clone(),
            retries: self.rw_retries.get_or_create(&labels).clone(),
            dropped: self.rw_dropped.clone(),
            skipped: self.rw_skipped.get_or_create(&labels).clone(),
            last_success: self.rw_last_success.get_or_create(&labels).clone(),
            lag: self.rw_lag.get_or_create(&labels).clone(),
            protocol: self.rw_protocol.get_or_create(&labels).clone(),
            sent_ms: Arc::default(),
        }
    }

    /// Records one remote-write snapshot: time to take and encode it, its
    /// compressed bytes, the dropped series it marks stale and those lost.
    pub fn remote_write_snapshot(&self, elapsed: Duration, bytes: usize, stale: usize, lost: u64) {
        self.rw_snapshot_duration.observe(elapsed.as_secs_f64());
        self.rw_snapshot_bytes.set(bytes as i64);
        self.rw_stale.inc_by(stale as u64);
        self.rw_stale_lost.inc_by(lost);
    }

    /// Records a load of the rules file: how many rules it holds, or a
    /// refusal.
    pub fn rules_loaded(&self, result: Result<usize, ()>) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.rules_reloads
            .get_or_create(&ResultLabels { result: outcome })
            .inc();
        self.rules_last_reload_ok.set(i64::from(result.is_ok()));
        if let Ok(n) = result {
            self.rules_loaded.set(n as i64);
        }
    }

    /// Records series dropped by expiry.
    pub fn expired(&self, n: usize) {
        self.expired.inc_by(n as u64);
    }

    /// Records a snapshot write: its size, or a failure.
    pub fn snapshot(&self, result: Result<usize, ()>, elapsed: Duration) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.snapshots
            .get_or_create(&ResultLabels { result: outcome })
            .inc();
        if let Ok(len) = result {
            self.snapshot_bytes.set(len as i64);
        }
        self.snapshot_duration.observe(elapsed.as_secs_f64());
    }

    /// Records one scrape: its format and rendering time.
    pub fn scrape(&self, format: crate::format::Format, elapsed: Duration) {
        self.scrapes
            .get_or_create(&FormatLabels {
                format: format.name(),
            })
            .inc();
        self.scrape_duration.observe(elapsed.as_secs_f64());
    }

    /// Renders the self-metrics in `format`. prometheus-client writes only
    /// OpenMetrics, which text-format readers (promtool, older scrapers)
    /// refuse (`info` type, `# EOF`); for them the OpenMetrics text goes
    /// through our own decoder and encoder, as a push would. A few hundred
    /// series: the round trip is cheap.
    pub fn render_as(&self, aggregator: &Aggregator, format: crate::format::Format) -> Vec<u8> {
        let om = self.render(aggregator);
        if format == crate::format::Format::OpenMetrics {
            return om.into_bytes();
        }
        let rules = crate::model::LabelRules::default();
        let opts = crate::decode::Options {
            labels: &rules,
            gauge_nan_ok: true,
            spend: None,
            windows: None,
        };
        let own = Aggregator::new(crate::aggregate::Settings {
            gauge_mode: crate::aggregate::GaugeMode::Last,
            max_series: usize::MAX,
            ..Default::default()
        });
        // Applied as a snapshot is: no start times made up at every render
        // (a scraper would read each one as a reset).
        let converted =
            crate::decode::decode(om.as_bytes(), crate::format::Format::OpenMetrics, &opts)
                .and_then(|push| own.restore(push));
        match converted {
            Ok(_) => crate::encode::render(&own, format),
            // Our own output not parsing would be a bug; serve it as it is
            // rather than nothing.
            Err(e) => {
                tracing::error!("self-metrics did not convert: {e}");
                om.into_bytes()
            }
        }
    }

    /// Records what the idempotency keys hold and did.
    pub fn idempotency(&self, stats: crate::idempotency::Stats) {
        use std::sync::atomic::Ordering::Relaxed;
        self.idempotency_keys.set(stats.held as i64);
        self.idempotency_replays
            .inner()
            .store(stats.replays, Relaxed);
        self.idempotency_evicted
            .inner()
            .store(stats.evicted, Relaxed);
    }

    /// Renders the self-metrics (OpenMetrics text).
    pub fn render(&self, aggregator: &Aggregator) -> String {
        self.series.set(aggregator.series_count() as i64);
        self.families.set(aggregator.family_count() as i64);
        let windows = aggregator.delta_windows();
        self.delta_windows.set(windows.held() as i64);
        self.delta_duplicates
            .inner()
            .store(windows.duplicates(), std::sync::atomic::Ordering::Relaxed);
        let memory = aggregator.memory();
        self.memory
            .set(i64::try_from(memory.used()).unwrap_or(i64::MAX));
        self.memory_limit
            .set(i64::try_from(memory.limit()).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
/// Resident set size from `/proc/self/status` (Linux); `None` elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
