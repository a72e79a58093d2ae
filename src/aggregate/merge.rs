//! How a pushed value combines with a stored one (contract §4).

use super::GaugeMode;
use super::store::StoredSeries;
use crate::model::{Bucket, Histogram, Kind, Value};

/// The combining rule of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Counters, untyped, histograms, summaries, gauges in `sum` mode.
    Add,
    /// Gauges in `last` mode.
    Last,
    /// Gauges in `max` mode.
    Max,
    /// Gauges in `min` mode.
    Min,
}

impl Rule {
    pub(crate) fn of(kind: Kind, gauge_mode: GaugeMode) -> Rule {
        match (kind, gauge_mode) {
            (Kind::Gauge, GaugeMode::Last) => Rule::Last,
            (Kind::Gauge, GaugeMode::Max) => Rule::Max,
            (Kind::Gauge, GaugeMode::Min) => Rule::Min,
            _ => Rule::Add,
        }
    }
}

/// Merges a pushed value into a stored series of the same kind.
pub(crate) fn merge(
    rule: Rule,
    stored: &mut StoredSeries,
    pushed: Value,
    created: Option<crate::model::Created>,
    settings: &super::Settings,
) {
    stored.merge_created(created);
    match (&mut stored.value, pushed) {
        (Value::Scalar(a), Value::Scalar(b)) => {
            *a = match rule {
                Rule::Add => *a + b,
                Rule::Last => b,
                Rule::Max => a.max(b),
                Rule::Min => a.min(b),
            }
        }
        (Value::Histogram(a), Value::Histogram(b)) => merge_histogram(a, &b),
        (Value::Native(a), Value::Native(b)) => {
            a.add(&b);
            // Validation made sure this fits (see `native_refusal`).
            let _ = a.limit_buckets(settings.max_native_buckets);
        }
        (Value::Summary { count, sum }, Value::Summary { count: c, sum: s }) => {
            *count += c;
            *sum += s;
        }
        // Validation keeps kinds apart; a mismatch cannot reach here.
        _ => {}
    }
}

/// 2^64: a summary `_count` a protobuf scrape (and so a snapshot) can hold
/// is below it.
const SUMMARY_COUNT_LIMIT: f64 = 18_446_744_073_709_551_616.0;

/// Why merging `pushed` into `stored` by `rule` must be refused, if it must:
/// a sum would become NaN (`+Inf` plus `-Inf`), which no later push could
/// undo, or a summary count would outgrow what protobuf holds.
pub(crate) fn refusal(rule: Rule, stored: &Value, pushed: &Value) -> Option<&'static str> {
    let nan = |a: f64, b: f64| (a + b).is_nan();
    let poisoned = match (stored, pushed) {
        (Value::Scalar(a), Value::Scalar(b)) => rule == Rule::Add && nan(*a, *b),
        (Value::Histogram(a), Value::Histogram(b)) => nan(a.sum, b.sum),
        (Value::Native(a), Value::Native(b)) => nan(a.sum, b.sum),
        (Value::Summary { count, sum }, Value::Summary { count: c, sum: s }) => {
            if count + c >= SUMMARY_COUNT_LIMIT {
                return Some("the summary _count would exceed 2^64");
            }
            nan(*sum, *s)
        }
        _ => false,
    };
    poisoned.then_some("adding this push would make the sum NaN (+Inf and -Inf)")
}

/// Adds histogram `b` into `a`. Buckets become the union of both bounds; at
/// each bound the count is, per side, its cumulative count at its largest own
/// bound not above it (0 if none), so the result stays cumulative and every
/// observation is counted in a bucket sure to hold it.
pub(crate) fn merge_histogram(a: &mut Histogram, b: &Histogram) {
    a.count += b.count;
    a.sum += b.sum;
    let same_bounds = a.buckets.len() == b.buckets.len()
        && a.buckets.iter().zip(&b.buckets).all(|(x, y)| x.le == y.le);
    if same_bounds {
        for (x, y) in a.buckets.iter_mut().zip(&b.buckets) {
            x.count += y.count;
        }
        return;
    }
    a.buckets = union(&a.buckets, &b.buckets);
}

/// Why adding native histogram `pushed` into `stored` must be refused, if
/// it must: the sum holds more than `limit` buckets even at the coarsest
/// schema. Only sums that may go over are computed.
pub(crate) fn native_refusal(
    stored: &crate::model::NativeHistogram,
    pushed: &crate::model::NativeHistogram,
    limit: usize,
) -> Option<String> {
    if stored.bucket_count() + pushed.bucket_count() <= limit {
        return None;
    }
    let mut sum = stored.clone();
    sum.add(pushed);
    sum.limit_buckets(limit).err()
}

/// How many buckets the union of `a` and `b`'s bounds holds, without
/// building it.
pub(crate) fn union_len(a: &[Bucket], b: &[Bucket]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].le.total_cmp(&b[j].le) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
        n += 1;
    }
    n + (a.len() - i) + (b.len() - j)
}

fn union(a: &[Bucket], b: &[Bucket]) -> Vec<Bucket> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    let (mut ca, mut cb) = (0.0, 0.0);
    while i < a.len() || j < b.len() {
        let le = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.le.min(y.le),
            (Some(x), None) => x.le,
            (None, Some(y)) => y.le,
            (None, None) => break,
        };
        if let Some(x) = a.get(i).filter(|x| x.le == le) {
            ca = x.count;
            i += 1;
        }
        if let Some(y) = b.get(j).filter(|y| y.le == le) {
            cb = y.count;
            j += 1;
        }
        out.push(Bucket { le, count: ca + cb });
    }
    out
}
