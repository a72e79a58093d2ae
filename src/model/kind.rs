//! The metric types.

/// The metric type of a family, as the text format's `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Monotonic counter: values are added.
    Counter,
    /// Gauge: merged by `--gauge-mode`.
    Gauge,
    /// Classic histogram: `_count`, `_sum` and buckets are added.
    Histogram,
    /// Summary: `_count` and `_sum` are added, quantiles dropped.
    Summary,
    /// Untyped (OpenMetrics `unknown`): values are added.
    Untyped,
}

impl Kind {
    /// The name the Prometheus text format uses in `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Untyped => "untyped",
        }
    }
}
