//! The decoded push: what every decoder (text, OpenMetrics, protobuf; HTTP or
//! gRPC) produces and what the aggregator applies and stores (contract §4).
//!
//! Series are identified by a [`SeriesKey`]: the family's sorted label pairs,
//! after path labels and `--drop-label`, encoded once into a byte string (see
//! [`labels`]). Decoders build it directly, so a pushed series costs one
//! allocation for its identity and the aggregator hashes and compares bytes.

pub(crate) mod cost;
pub mod float;
pub mod kind;
pub(crate) mod labels;
pub mod limits;
pub mod mode;
pub(crate) mod names;
pub(crate) mod native;
pub mod value;

pub use kind::Kind;
pub use labels::{LabelRules, SeriesKey};
pub use limits::Limits;
pub use mode::{Combine, Meaning};
pub use native::NativeHistogram;
pub use value::{Bucket, Histogram, Value, is_count};

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
