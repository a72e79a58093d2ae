//! One rule: what it selects, how pushes combine under it, what it keeps.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use foldhash::fast::RandomState;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use promql_parser::label::Matcher;

use crate::model::{Kind, Meaning, labels};

/// How the pushes a rule takes combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each push is added (delta semantics): every type.
    Sum,
    /// Pushes are cumulative per source: the increase since the source's
    /// last push is added; a decrease is a restart. Counters, untyped,
    /// histograms and summaries.
    Total,
    /// The last pushed value: gauges and untyped.
    Last,
    /// The largest pushed value: gauges and untyped.
    Max,
    /// The smallest pushed value: gauges and untyped.
    Min,
    /// Each source's latest value (a level: "connections open now"),
    /// combined over the sources alive ([`Combine`]): a source's new
    /// value replaces its old one, and a source silent for `source_ttl`
    /// leaves the output. Gauges and untyped.
    Latest,
}

impl Mode {
    /// The mode's name in the rules file.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sum => "sum",
            Mode::Total => "total",
            Mode::Last => "last",
            Mode::Max => "max",
            Mode::Min => "min",
            Mode::Latest => "latest",
        }
    }

    /// What a push means to the mode (see `model::mode`).
    pub fn meaning(self) -> Meaning {
        match self {
            Mode::Sum => Meaning::Increment,
            Mode::Total => Meaning::Total,
            Mode::Last | Mode::Max | Mode::Min | Mode::Latest => Meaning::Level,
        }
    }

    /// How what the mode makes of a push combines with the stored output
    /// series: an increment or a total's increase is added; a level is
    /// kept by `last`, `max` or `min`; a `latest` output is replaced by its
    /// live sources' combination.
    pub fn stored(self) -> Combine {
        match self {
            Mode::Sum | Mode::Total => Combine::Sum,
            Mode::Last | Mode::Latest => Combine::Last,
            Mode::Max => Combine::Max,
            Mode::Min => Combine::Min,
        }
    }

    /// Whether the mode takes a producer's point of this meaning: of the
    /// same meaning, and for a running total or a level, each source
    /// tracked (`total`, `latest`: `last`/`max`/`min` would mix one
    /// producer's old levels with the others').
    pub fn takes(self, meaning: Meaning) -> bool {
        self.meaning() == meaning && (meaning == Meaning::Increment || self.tracks_sources())
    }

    /// Whether the aggregate keeps each source's last value (`total`,
    /// `latest`): the rule's series carry a source.
    pub fn tracks_sources(self) -> bool {
        matches!(self, Mode::Total | Mode::Latest)
    }

    /// Whether the mode applies to series of `kind`. A rule whose mode does
    /// not fit a series' type is passed over for it, as if it did not match.
    pub fn fits(self, kind: Kind) -> bool {
        match self {
            Mode::Sum => true,
            Mode::Total => kind != Kind::Gauge,
            Mode::Last | Mode::Max | Mode::Min | Mode::Latest => {
                matches!(kind, Kind::Gauge | Kind::Untyped)
            }
        }
    }
}

pub use crate::model::Combine;

/// The labels a rule's output keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// All of them.
    All,
    /// Only these (sorted).
    By(Vec<String>),
    /// All but these (sorted).
    Without(Vec<String>),
}

impl Keep {
    pub(super) fn keeps(&self, name: &[u8]) -> bool {
        let listed = |names: &[String]| names.binary_search_by(|n| n.as_bytes().cmp(name)).is_ok();
        match self {
            Keep::All => true,
            Keep::By(names) => listed(names),
            Keep::Without(names) => !listed(names),
        }
    }
}

/// A rule's self-metrics: handles on the telemetry's families, labelled
/// with the rule's name, kept across reloads by name.
#[derive(Debug, Clone, Default)]
pub struct RuleStats {
    /// The rule's name.
    pub name: String,
    /// Pushed series the rule took.
    pub series_in: Counter,
    /// Series the rule wrote into the aggregate (after combining).
    pub series_out: Counter,
    /// Sources tracked now (`total` mode).
    pub sources: Gauge,
    /// Restarts of sources detected (`total` mode).
    pub resets: Counter,
    /// Sources forgotten after `source_ttl` (`total` mode).
    pub sources_expired: Counter,
    /// Points of a source not newer than its last one, dropped (`total`
    /// mode, producers that time their points: OTLP).
    pub replays: Counter,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name (`name:`, or the selector as written): the `rule` label of
    /// its self-metrics.
    pub name: String,
    /// How pushes combine.
    pub mode: Mode,
    /// `latest` mode: how the live sources' values combine.
    pub combine: Combine,
    /// Matchers on `__name__` (the family name).
    pub(super) name_matchers: Vec<Matcher>,
    /// Matchers on other labels.
    pub(super) label_matchers: Vec<Matcher>,
    /// The labels the output keeps.
    pub keep: Keep,
    /// `total` and `latest` modes: the labels naming a source
    /// (`source_labels`, as `Keep::By`); `Keep::All`: every label of the
    /// pushed series.
    pub source: Keep,
    /// How long the rule's series live without a push (`None`:
    /// `--series-ttl`).
    pub ttl: Option<Duration>,
    /// `total` and `latest` modes: how long a silent source's last value
    /// is kept.
    pub source_ttl: Duration,
    /// Its self-metrics.
    pub stats: Arc<RuleStats>,
}

/// Default `source_ttl`: long enough for services pushing every few
/// minutes through a long outage; a source silent longer is counted anew
/// when it comes back (`docs/rules.md`, "Which mode for which sender").
pub const DEFAULT_SOURCE_TTL: Duration = Duration::from_secs(3600);

/// Default `source_ttl` of `latest` rules (and of OTLP producers'
/// levels): a level is about now, so a sender silent for five minutes
/// (five of OpenTelemetry's default export intervals, twenty of a 15 s
/// push loop) is taken as gone and its value leaves the output.
pub const DEFAULT_LEVEL_TTL: Duration = Duration::from_secs(300);

/// A series selector: matchers on the metric name and on other labels.
#[derive(Debug, Clone)]
pub struct Selector {
    pub(super) names: Vec<promql_parser::label::Matcher>,
    pub(super) labels: Vec<promql_parser::label::Matcher>,
}

impl Selector {
    /// Whether a family of this name may hold matching series.
    pub fn matches_name(&self, name: &str) -> bool {
        self.names.iter().all(|m| m.is_match(name))
    }

    /// Whether a series of this key matches (a missing label matches as
    /// the empty value, as in PromQL).
    pub fn matches_key(&self, key: &[u8]) -> bool {
        self.labels.iter().all(|m| {
            let raw = labels::raw_value(key, m.name.as_bytes()).unwrap_or(b"");
            let value = labels::unescape(raw);
            m.is_match(std::str::from_utf8(&value).unwrap_or(""))
        })
    }
}

/// Label matcher results by label value, for one family of one push:
/// values repeat (a handful of jobs or instances over thousands of
/// series) and a regex costs several times a lookup here. One table per
/// rule and matcher (a few per family: found by a scan); at most
/// `SEEN_LIMIT` values each, then matched directly.
#[derive(Default)]
pub(super) struct Seen {
    pub(super) by_matcher: Vec<((u16, u16), SeenValues)>,
}

/// One matcher's results by raw label value.
pub(super) type SeenValues = HashMap<Box<[u8]>, bool, RandomState>;

pub(super) const SEEN_LIMIT: usize = 1024;

impl Seen {
    pub(super) fn table(&mut self, at: (u16, u16)) -> &mut SeenValues {
        let i = match self.by_matcher.iter().position(|(k, _)| *k == at) {
            Some(i) => i,
            None => {
                self.by_matcher.push((at, HashMap::default()));
                self.by_matcher.len() - 1
            }
        };
        &mut self.by_matcher[i].1
    }
}

impl Rule {
    /// A rule the gateway applies itself (never by matching): every label
    /// kept, the default `source_ttl`, its own uncounted self-metrics.
    pub(super) fn built_in(name: &str, mode: Mode) -> Rule {
        Rule {
            name: name.into(),
            mode,
            combine: Combine::Sum,
            name_matchers: Vec::new(),
            label_matchers: Vec::new(),
            keep: Keep::All,
            source: Keep::All,
            ttl: None,
            source_ttl: DEFAULT_SOURCE_TTL,
            stats: Arc::new(RuleStats {
                name: name.into(),
                ..RuleStats::default()
            }),
        }
    }

    /// Whether the rule's label matchers accept these series labels (a
    /// missing label matches as the empty value, as in PromQL).
    pub(super) fn matches_labels(&self, index: u16, key: &[u8], seen: &mut Seen) -> bool {
        self.label_matchers.iter().enumerate().all(|(m_index, m)| {
            let raw = labels::raw_value(key, m.name.as_bytes()).unwrap_or(b"");
            let seen = seen.table((index, m_index as u16));
            if let Some(&hit) = seen.get(raw) {
                return hit;
            }
            // Keys are built from `&str`: the value is UTF-8.
            let value = labels::unescape(raw);
            let hit = m.is_match(std::str::from_utf8(&value).unwrap_or(""));
            if seen.len() < SEEN_LIMIT {
                seen.insert(raw.into(), hit);
            }
            hit
        })
    }

    pub(super) fn matches_name(&self, name: &str) -> bool {
        self.name_matchers.iter().all(|m| m.is_match(name))
    }
}
