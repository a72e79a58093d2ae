//! The decoded push: what every decoder (text, OpenMetrics, protobuf; HTTP or
//! gRPC) produces and what the aggregator applies and stores (contract §4).
//!
//! Series are identified by a [`SeriesKey`]: the family's sorted label pairs,
//! after path labels and `--drop-label`, encoded once into a byte string (see
//! [`labels`]). Decoders build it directly, so a pushed series costs one
//! allocation for its identity and the aggregator hashes and compares bytes.

pub(crate) mod cost;
pub mod float;
pub(crate) mod labels;
pub mod mode;
pub(crate) mod names;
pub(crate) mod native;

pub use labels::{LabelRules, SeriesKey};
pub use mode::{Combine, Meaning};
pub use native::NativeHistogram;

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

/// Limits on what one push may hold (contract §1 and issue flags): a push over
/// any of them is refused whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `--max-labels`: labels on one series.
    pub max_labels: usize,
    /// `--max-name-length`: bytes in a metric or label name.
    pub max_name_length: usize,
    /// `--max-label-value-length`: bytes in a label value.
    pub max_label_value_length: usize,
    /// `--max-series-per-push`: series in one push.
    pub max_series_per_push: usize,
    /// `--max-label-bytes`: label names and values on one series.
    pub max_label_bytes: usize,
    /// `--max-native-buckets`: buckets of one native histogram.
    pub max_native_buckets: usize,
    /// `--max-buckets`: buckets of one classic histogram (and the
    /// distinct bounds of a family, checked when applied).
    pub max_buckets: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_labels: 64,
            max_name_length: 256,
            max_label_value_length: 4096,
            max_series_per_push: 200_000,
            max_label_bytes: 16 << 10,
            max_native_buckets: 160,
            max_buckets: 256,
        }
    }
}

/// One decoded push: families in the order they were given, each family name
/// at most once.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Push {
    /// The pushed families.
    pub families: Vec<Family>,
    /// Series whose producers the push names (OTLP): per family, per
    /// series, the producer and what its point means, `None` for a series
    /// that adds as pushed. Empty when no series of the push is such
    /// (every other decoder); else one entry per family, itself empty for a
    /// family with none.
    pub producers: Vec<Vec<Option<Produced>>>,
}

/// A pushed series' producer and what its point means to the aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    /// The producer's identity; empty for [`Meaning::Increment`] (the changes
    /// of many producers add up alike).
    pub producer: SeriesKey,
    /// What the point means.
    pub meaning: Meaning,
    /// When the point was taken (nanoseconds since the epoch; 0 unknown):
    /// a running total's point not newer than the producer's last one is a
    /// replay.
    pub time: u64,
}

impl Push {
    /// A push of these families, each series added as pushed.
    pub fn new(families: Vec<Family>) -> Push {
        Push {
            families,
            producers: Vec::new(),
        }
    }

    /// Number of series in the push.
    pub fn series_count(&self) -> usize {
        self.families.iter().map(|f| f.series.len()).sum()
    }

    /// Number of samples the push carried (a histogram bucket counts as one).
    pub fn sample_count(&self) -> usize {
        self.families
            .iter()
            .flat_map(|f| f.series.iter())
            .map(|s| s.value.sample_count())
            .sum()
    }
}

/// One metric family of a push.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family name as Prometheus stores its series (`foo_total` for a
    /// counter, `foo` for a histogram whose series are `foo_bucket`...).
    pub name: String,
    /// The `# HELP` text, unescaped; empty when none was given.
    pub help: String,
    /// The metric type.
    pub kind: Kind,
    /// The family's series; each key at most once.
    pub series: Vec<Series>,
}

/// One series of a pushed family.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' identity within its family.
    pub key: SeriesKey,
    /// The pushed value.
    pub value: Value,
    /// The creation timestamp a client library sent with it, if any.
    pub created: Option<Created>,
}

/// Moves the values of gauge families named `<base>_created` into the
/// creation timestamps of the counter, histogram or summary family `<base>`
/// (`<base>_total` for counters) of the same push, series by series, and
/// removes those gauge families; returns how many were folded. Lenient, for
/// snapshots of earlier versions, which stored text clients' creation-time
/// gauges as families of their own: a value with no series to go to, or
/// out of range, is dropped.
pub fn fold_created_families(push: &mut Push) -> usize {
    use std::collections::HashMap;
    // `<base>_created` -> the family it belongs to: one pass, so a push of
    // many families costs linear time.
    let owners: HashMap<String, usize> = push
        .families
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let base = match f.kind {
                Kind::Counter => f.name.strip_suffix("_total").unwrap_or(&f.name),
                Kind::Histogram | Kind::Summary => &f.name,
                _ => return None,
            };
            Some((format!("{base}_created"), i))
        })
        .collect();
    let mut folded = vec![false; push.families.len()];
    for (i, is_folded) in folded.iter_mut().enumerate() {
        let f = &push.families[i];
        if !matches!(f.kind, Kind::Gauge | Kind::Untyped) {
            continue;
        }
        let Some(&owner) = owners.get(&f.name) else {
            continue;
        };
        *is_folded = true;
        let gauge = std::mem::take(&mut push.families[i].series);
        let target = &mut push.families[owner];
        let at: HashMap<&[u8], usize> = target
            .series
            .iter()
            .enumerate()
            .map(|(n, t)| (&*t.key, n))
            .collect();
        let updates: Vec<(usize, Created)> = gauge
            .iter()
            .filter_map(|s| {
                let Value::Scalar(secs) = s.value else {
                    return None;
                };
                Some((*at.get(&*s.key)?, created_from_seconds(secs).ok()?))
            })
            .collect();
        for (n, created) in updates {
            let t = &mut target.series[n];
            t.created = Some(t.created.map_or(created, |c| c.min(created)));
        }
    }
    let mut keep = folded.iter().map(|f| !f);
    push.families.retain(|_| keep.next().unwrap_or(true));
    folded.iter().filter(|f| **f).count()
}

/// A creation timestamp in nanoseconds since the Unix epoch. Integral, so it
/// goes through protobuf's `Timestamp` (and so a snapshot) unchanged; the
/// earliest pushed is kept, never a sum.
pub type Created = i64;

const NANOS: i64 = 1_000_000_000;

/// A creation timestamp given in seconds (text formats); refused when not
/// finite or outside the years 1678..2262 that nanoseconds in an `i64` hold.
pub fn created_from_seconds(secs: f64) -> Result<Created, String> {
    let whole = secs.floor();
    // 9.2e9 s is the i64 nanosecond range.
    if !(-9.2e9..9.2e9).contains(&whole) {
        return Err(format!("creation timestamp {secs} is out of range"));
    }
    let nanos = ((secs - whole) * 1e9).round() as i64;
    (whole as i64)
        .checked_mul(NANOS)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(|| format!("creation timestamp {secs} is out of range"))
}

/// A creation timestamp given as protobuf `Timestamp` parts; refused when
/// the nanoseconds are outside 0..1e9 or the time outside the `i64` range.
pub fn created_from_parts(secs: i64, nanos: i64) -> Result<Created, String> {
    if !(0..NANOS).contains(&nanos) {
        return Err(format!("creation timestamp has {nanos} nanoseconds"));
    }
    secs.checked_mul(NANOS)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(|| format!("creation timestamp {secs} s is out of range"))
}

/// A creation timestamp as protobuf `Timestamp` parts `(seconds, nanos)`.
pub fn created_parts(created: Created) -> (i64, i32) {
    (created.div_euclid(NANOS), created.rem_euclid(NANOS) as i32)
}

/// A creation timestamp in seconds, for the text formats.
pub fn created_seconds(created: Created) -> f64 {
    let (secs, nanos) = created_parts(created);
    secs as f64 + f64::from(nanos) / 1e9
}

/// A series' value; which variant is fixed by the family's [`Kind`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Counter, gauge or untyped value.
    Scalar(f64),
    /// Classic histogram. Boxed, as the native one: every stored series
    /// pays for the enum's size, and a boxed histogram keeps it at 24
    /// bytes (a stored series at 40).
    Histogram(Box<Histogram>),
    /// Native (exponential) histogram; pushed as protobuf only. Boxed: it is
    /// rare and large, and every stored series pays for the enum's size.
    Native(Box<NativeHistogram>),
    /// Summary without its quantiles.
    Summary {
        /// `_count`.
        count: f64,
        /// `_sum`.
        sum: f64,
    },
}

impl Value {
    /// Bytes the value holds on the heap (buckets), for the byte budget.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Histogram(h) => {
                std::mem::size_of::<Histogram>() + h.buckets.len() * std::mem::size_of::<Bucket>()
            }
            Value::Native(n) => {
                std::mem::size_of::<NativeHistogram>()
                    + n.bucket_count() * std::mem::size_of::<(i32, f64)>()
            }
            Value::Scalar(_) | Value::Summary { .. } => 0,
        }
    }

    /// Samples this value stands for in the text format.
    pub fn sample_count(&self) -> usize {
        match self {
            Value::Scalar(_) => 1,
            Value::Histogram(h) => h.buckets.len() + 2,
            Value::Native(h) => h.positive.len() + h.negative.len() + 3,
            Value::Summary { .. } => 2,
        }
    }
}

/// A classic histogram: cumulative buckets sorted by upper bound, the last one
/// always `+Inf` with a count equal to `count`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    /// `_count`.
    pub count: f64,
    /// `_sum`.
    pub sum: f64,
    /// Cumulative buckets, strictly increasing `le`, ending with `+Inf`.
    pub buckets: Vec<Bucket>,
}

/// Whether `v` can be a count of observations: not negative, not NaN.
pub fn is_count(v: f64) -> bool {
    v >= 0.0
}

/// One cumulative histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Inclusive upper bound (`le`).
    pub le: f64,
    /// Observations `<= le`.
    pub count: f64,
}

impl Histogram {
    /// Builds a histogram from buckets in any order, checking what the text
    /// format cannot: no bound twice, counts never decreasing with `le`,
    /// `+Inf` present (added from `count` when missing) and equal to `count`.
    /// On error returns the reason, without the metric name.
    pub fn from_parts(
        mut buckets: Vec<Bucket>,
        count: Option<f64>,
        sum: Option<f64>,
    ) -> Result<Histogram, String> {
        // `-0` is a count of zero: stored as `0`, as protobuf (and so a
        // snapshot) would give it back.
        let count = count.map(|c| c + 0.0);
        for b in &mut buckets {
            b.count += 0.0;
        }
        for b in &buckets {
            if b.le.is_nan() {
                return Err("bucket bound le is NaN".into());
            }
            if !is_count(b.count) {
                return Err(format!(
                    "bucket le=\"{}\" has count {}, not a count",
                    float::go(b.le),
                    b.count
                ));
            }
        }
        buckets.sort_by(|a, b| a.le.total_cmp(&b.le));
        for w in buckets.windows(2) {
            if w[0].le == w[1].le {
                return Err(format!("bucket le=\"{}\" given twice", float::go(w[0].le)));
            }
            if w[1].count < w[0].count {
                return Err(format!(
                    "buckets decrease: le=\"{}\" has {} but le=\"{}\" has {}",
                    float::go(w[0].le),
                    w[0].count,
                    float::go(w[1].le),
                    w[1].count
                ));
            }
        }
        let inf = buckets
            .last()
            .filter(|b| b.le == f64::INFINITY)
            .map(|b| b.count);
        let count = match (inf, count) {
            (Some(i), Some(c)) if i != c => {
                return Err(format!("+Inf bucket has {i} but _count is {c}"));
            }
            (Some(i), _) => i,
            (None, Some(c)) => {
                if let Some(last) = buckets.last()
                    && last.count > c
                {
                    return Err(format!(
                        "bucket le=\"{}\" has {} but _count is only {c}",
                        float::go(last.le),
                        last.count
                    ));
                }
                buckets.push(Bucket {
                    le: f64::INFINITY,
                    count: c,
                });
                c
            }
            (None, None) => return Err("needs a +Inf bucket or a _count".into()),
        };
        if !is_count(count) {
            return Err(format!("_count is {count}, not a count"));
        }
        let sum = sum.unwrap_or(0.0);
        if sum.is_nan() {
            return Err("_sum is NaN".into());
        }
        Ok(Histogram {
            count,
            sum,
            buckets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(key: &[u8], value: Value) -> Series {
        Series {
            key: key.into(),
            value,
            created: None,
        }
    }

    /// Snapshots of earlier versions: a `<base>_created` gauge family beside
    /// its counter becomes the counter's creation times; values with no
    /// series, or out of range, are dropped; other gauges stay.
    #[test]
    fn earlier_created_gauges_fold_into_their_metrics() {
        // Families of scalar series, as (labels key, value).
        let fam = |name: &str, kind, scalars: &[(&[u8], f64)]| Family {
            name: name.into(),
            help: String::new(),
            kind,
            series: scalars
                .iter()
                .map(|&(key, v)| series(key, Value::Scalar(v)))
                .collect(),
        };
        let mut push = Push::new(vec![
            fam(
                "x_created",
                Kind::Gauge,
                &[
                    (b"a\x001\x00", 1.5),
                    (b"a\x009\x00", 2.0),
                    (b"", f64::INFINITY),
                ],
            ),
            fam(
                "x_total",
                Kind::Counter,
                &[(b"a\x001\x00", 3.0), (b"", 1.0)],
            ),
            fam("y_created", Kind::Gauge, &[(b"", 1.0)]),
        ]);
        assert_eq!(fold_created_families(&mut push), 1);
        let names: Vec<&str> = push.families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["x_total", "y_created"]);
        let x = &push.families[0];
        assert_eq!(x.series[0].created, Some(1_500_000_000));
        assert_eq!(x.series[1].created, None);
    }

    /// Found by the push_sequence fuzz target: a `-0` bucket count was
    /// written `-0` in text but `0` in protobuf, so a snapshot restored to
    /// another scrape. Counts are stored as `0`.
    #[test]
    fn negative_zero_counts_are_zero() {
        let h = Histogram::from_parts(
            vec![Bucket {
                le: 0.0,
                count: -0.0,
            }],
            Some(-0.0),
            None,
        )
        .unwrap();
        assert!(h.buckets.iter().all(|b| b.count.is_sign_positive()));
        assert!(h.count.is_sign_positive());
    }

    #[test]
    fn creation_times_round_trip_exactly() {
        for (secs, nanos) in [(0, 0), (1_700_000_000, 123_456_789), (-5, 999_999_999)] {
            let at = created_from_parts(secs, nanos).unwrap();
            assert_eq!(created_parts(at), (secs, nanos as i32));
        }
        assert!(created_from_parts(1, 1_000_000_000).is_err());
        assert!(created_from_parts(1, -1).is_err());
        assert!(created_from_parts(i64::MAX, 0).is_err());
        assert!(created_from_seconds(f64::NAN).is_err());
        assert!(created_from_seconds(1e300).is_err());
        assert_eq!(created_from_seconds(1.25), Ok(1_250_000_000));
    }
}
