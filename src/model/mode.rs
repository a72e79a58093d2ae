//! The one vocabulary of how pushes add up. A mode says two things:
//!
//! - what a source's push **means** ([`Meaning`]): an increment (what
//!   happened since the last push: add it), a running total (since the
//!   source started: add what grew), or a level (what it is now: it
//!   replaces the source's last one);
//! - how values **combine** ([`Combine`]): sum, max, min, mean, count,
//!   last; over every push ever, or over the live sources only.
//!
//! Every mode of the rules file and of `--gauge-mode` is one such pair:
//!
//! | mode | meaning | combines | over |
//! |---|---|---|---|
//! | `sum` (the default; `--gauge-mode sum`) | increment | sum | every push |
//! | `total` | running total | sum of increases | every source, each tracked |
//! | `last` (`--gauge-mode last`) | level | last | every push |
//! | `max`, `min` (`--gauge-mode max|min`) | level | max, min | every push |
//! | `latest` + `combine` | level | `combine` | the live sources, each tracked |
//!
//! An OTLP point carries its meaning ([`Meaning`] in `Push::producers`): a
//! cumulative sum's point is a running total, a gauge's a level, a delta
//! UpDownCounter's an increment of a level; the rules then pick a mode of
//! that meaning (`RuleSet::route`).

/// What a source's push means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// A running total since the producer started (cumulative sums,
    /// histograms, summaries): only what grew since its last point adds.
    Total,
    /// The producer's level now (gauges, cumulative non-monotonic sums):
    /// it replaces the producer's last one, and the levels of the live
    /// producers combine (`latest`).
    Level,
    /// An increment of a level (delta non-monotonic sums): added, whatever
    /// `--gauge-mode` says. (A point no producer names is an increment
    /// too, combined as its family's mode says.)
    Increment,
}

/// How values combine: a stored value with a pushed one (`sum`, `last`,
/// `max`, `min`), or the values of the live sources of a `latest` output
/// (all six).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// Their sum (the default).
    #[default]
    Sum,
    /// The largest.
    Max,
    /// The smallest.
    Min,
    /// Their mean.
    Mean,
    /// How many sources are alive.
    Count,
    /// The value of the source pushed to last.
    Last,
}

impl Combine {
    /// The name in the rules file.
    pub fn as_str(self) -> &'static str {
        match self {
            Combine::Sum => "sum",
            Combine::Max => "max",
            Combine::Min => "min",
            Combine::Mean => "mean",
            Combine::Count => "count",
            Combine::Last => "last",
        }
    }

    /// The combination of `values` (none: `None`, the output goes).
    /// `values` are in the order the sources were last pushed to.
    pub fn of(self, values: impl Iterator<Item = f64>) -> Option<f64> {
        let mut n = 0usize;
        let mut acc: Option<f64> = None;
        for v in values {
            n += 1;
            acc = Some(match (self, acc) {
                (_, None) => v,
                (Combine::Sum | Combine::Mean, Some(a)) => a + v,
                (Combine::Max, Some(a)) => a.max(v),
                (Combine::Min, Some(a)) => a.min(v),
                (Combine::Last, Some(_)) => v,
                (Combine::Count, Some(a)) => a,
            });
        }
        match self {
            Combine::Count => (n > 0).then_some(n as f64),
            Combine::Mean => acc.map(|a| a / n as f64),
            _ => acc,
        }
    }

    /// A stored scalar `a` and a pushed `b` combined. `mean` and `count`
    /// are of live sources, computed from them and written as the value
    /// (`last`).
    pub fn pair(self, a: f64, b: f64) -> f64 {
        match self {
            Combine::Sum => a + b,
            Combine::Max => a.max(b),
            Combine::Min => a.min(b),
            Combine::Last | Combine::Mean | Combine::Count => b,
        }
    }
}
