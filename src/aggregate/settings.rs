//! How an aggregate is set up: limits, the byte budget, the clock, how
//! gauges combine by default, which start times it keeps.

use std::sync::Arc;
use std::time::Duration;

use crate::memory::Memory;

/// Which start times counters, histograms and summaries carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StartTimes {
    /// The earliest their senders gave, else when the gateway made them.
    #[default]
    Always,
    /// Only those their senders gave.
    Given,
}

/// How gauges pushed to the same series combine (`--gauge-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GaugeMode {
    /// Add them up, as the Go prom-aggregation-gateway does.
    #[default]
    Sum,
    /// Keep the last pushed value.
    Last,
    /// Keep the largest value.
    Max,
    /// Keep the smallest value.
    Min,
}

impl GaugeMode {
    /// How the values combine (see `model::mode`).
    pub fn combine(self) -> crate::model::Combine {
        use crate::model::Combine;
        match self {
            GaugeMode::Sum => Combine::Sum,
            GaugeMode::Last => Combine::Last,
            GaugeMode::Max => Combine::Max,
            GaugeMode::Min => Combine::Min,
        }
    }
}

/// Limits and rules of an [`Aggregator`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--gauge-mode`.
    pub gauge_mode: GaugeMode,
    /// `--max-series`.
    pub max_series: usize,
    /// The byte budget (`--max-memory`) the aggregate's bytes are charged to.
    pub memory: Arc<Memory>,
    /// `--max-buckets`: distinct classic bucket bounds in one family.
    pub max_buckets: usize,
    /// `--max-native-buckets`: buckets of one native histogram series.
    pub max_native_buckets: usize,
    /// What series ages (`--series-ttl`) are measured on.
    pub clock: crate::clock::Clock,
    /// `--series-ttl`: how long a series no rule gives a `ttl` lives
    /// without a push (`None`: for ever).
    pub series_ttl: Option<Duration>,
    /// Keep what each expiry, delete and wipe drops, for
    /// [`Aggregator::take_dropped`] (the remote-write output's staleness
    /// markers); off, nothing is kept.
    pub journal: bool,
    /// A new counter, histogram or summary no sender gave a start time
    /// starts when it is made (`--start-times always`); off, only the
    /// senders' own are kept (`given`).
    pub made_start_times: bool,
}

impl Default for Settings {
    /// Sum gauges, 1M series, no byte limit, 256 classic bounds per family,
    /// 160 native buckets per series.
    fn default() -> Settings {
        Settings {
            gauge_mode: GaugeMode::Sum,
            max_series: 1_000_000,
            memory: Memory::new(usize::MAX),
            max_buckets: 256,
            max_native_buckets: 160,
            clock: crate::clock::Clock::system(),
            series_ttl: None,
            journal: false,
            made_start_times: true,
        }
    }
}
