//! The gateway's own metrics (`GET /-/metrics`): pushes and rejections by
//! protocol and reason, samples ingested, what is stored, push and scrape
//! durations. Kept with prometheus/client_rust, apart from the aggregate, so
//! the gateway's health never mixes with what senders pushed.

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

/// The protocol a push came over.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP (text, OpenMetrics or protobuf body).
    Http,
    /// gRPC.
    Grpc,
}

impl Protocol {
    /// The `protocol` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        }
    }
}

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
    rules_loaded: Gauge,
    rules_reloads: Family<ResultLabels, Counter>,
    rules_last_reload_ok: Gauge,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Telemetry {
    /// Registers every self-metric.
    pub fn new(max_series: usize) -> Telemetry {
        let mut registry = Registry::with_prefix("pag");
        let t = Telemetry {
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
            rules_loaded: Gauge::default(),
            rules_reloads: Family::default(),
            rules_last_reload_ok: Gauge::default(),
        };
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
            "rules" => "Rules in force", t.rules_loaded;
            "rules_reloads" => "Loads of the rules file, by result", t.rules_reloads;
            "rules_last_reload_successful" => "Whether the last load of the rules file was taken (1) or refused, keeping the rules before it (0)", t.rules_last_reload_ok;
        }
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        t.max_series.set(max_series as i64);
        Telemetry { registry, ..t }
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
        })
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
    pub fn scrape(&self, format: crate::encode::Format, elapsed: Duration) {
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
        };
        let own = Aggregator::new(crate::aggregate::Settings {
            gauge_mode: crate::aggregate::GaugeMode::Last,
            max_series: usize::MAX,
            ..Default::default()
        });
        let converted =
            crate::decode::decode(om.as_bytes(), crate::format::Format::OpenMetrics, &opts)
                .and_then(|push| own.apply(push));
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

    /// Renders the self-metrics (OpenMetrics text).
    pub fn render(&self, aggregator: &Aggregator) -> String {
        self.series.set(aggregator.series_count() as i64);
        self.families.set(aggregator.family_count() as i64);
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
