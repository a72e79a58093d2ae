//! How a pushed value combines with a stored one (contract §4).

use super::settings::{GaugeMode, Settings};
use super::stored::StoredSeries;
use crate::model::{Bucket, Combine, Histogram, Kind, Value};

/// How a family's pushes combine without a rule: gauges as `--gauge-mode`
/// says, every other type added. Histograms and summaries are always
/// added, whatever the combine (their parts are counts).
pub(crate) fn default_combine(kind: Kind, gauge_mode: GaugeMode) -> Combine {
    match kind {
        Kind::Gauge => gauge_mode.combine(),
        _ => Combine::Sum,
    }
}

/// Merges a pushed value into a stored series of the same kind.
pub(crate) fn merge(
    rule: Combine,
    stored: &mut StoredSeries,
    pushed: Value,
    created: Option<crate::model::Created>,
    settings: &Settings,
) {
    stored.merge_created(created);
    merge_value(rule, &mut stored.value, pushed, settings.max_native_buckets);
}

/// Combines `pushed` into `into` by `rule` (values of one kind; a
/// mismatch, which validation refuses, changes nothing). A native sum is
/// lowered to `max_native` buckets where it can be.
pub(crate) fn merge_value(rule: Combine, into: &mut Value, pushed: Value, max_native: usize) {
    match (into, pushed) {
        (Value::Scalar(a), Value::Scalar(b)) => {
            *a = rule.pair(*a, b);
        }
        (Value::Histogram(a), Value::Histogram(b)) => merge_histogram(a, &b),
        (Value::Native(a), Value::Native(b)) => {
            a.add(&b);
            // Validation made sure this fits (see `native_refusal`).
            let _ = a.limit_buckets(max_native);
        }
        (Value::Summary { count, sum }, Value::Summary { count: c, sum: s }) => {
            *count += c;
            *sum += s;
        }
        // Validation keeps kinds apart; a mismatch cannot reach here.
        _ => {}
    }
}

/// Combines `pushed` into `into` by `rule` as [`merge_value`] does, or
/// refuses (changing nothing) what could not be stored: the two flavours
/// of histogram, a sum that would become NaN, a summary count past 2^64, a
/// native sum over `max_native` buckets. Every merge of two pushed values
/// (points of one request, series a rule folds) goes through here, so a
/// value no push could store is never made inside one.
pub(crate) fn combine(
    rule: Combine,
    into: &mut Value,
    pushed: Value,
    max_native: usize,
) -> Result<(), String> {
    if std::mem::discriminant(into) != std::mem::discriminant(&pushed) {
        return Err("classic and native histograms combined into one series".into());
    }
    if let Some(why) = refusal(rule, into, &pushed) {
        return Err(why.into());
    }
    if let (Value::Native(a), Value::Native(b)) = (&*into, &pushed)
        && let Some(why) = native_refusal(a, b, max_native)
    {
        return Err(why);
    }
    merge_value(rule, into, pushed, max_native);
    Ok(())
}

/// What a cumulative sender's new value `now` adds since its last value
/// `last` (`total` mode), and whether the source restarted: a value below
/// the last one (any bucket, the count), a creation time later than the
/// last one's, or a different bucket layout all mean a restart, and the
/// new value is then counted in full. A native histogram that went to a
/// coarser schema or a wider zero bucket is compared with the last value
/// brought to the same: a producer lowering its resolution goes on.
pub(crate) fn increase(
    last: &Value,
    last_created: Option<crate::model::Created>,
    now: &Value,
    now_created: Option<crate::model::Created>,
) -> (Value, bool) {
    let restarted_later = matches!((last_created, now_created), (Some(a), Some(b)) if b > a);
    let delta = if restarted_later {
        None
    } else {
        difference(last, now)
    };
    match delta {
        Some(d) => (d, false),
        None => (now.clone(), true),
    }
}

/// `now - last` when no part of it decreased; `None` otherwise.
fn difference(last: &Value, now: &Value) -> Option<Value> {
    // Equal values (infinities included) add nothing; a lower one is a
    // restart.
    let step = |a: f64, b: f64| -> Option<f64> {
        if a == b {
            Some(0.0)
        } else if b > a {
            Some(b - a)
        } else {
            None
        }
    };
    Some(match (last, now) {
        (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(step(*a, *b)?),
        (Value::Summary { count: c0, sum: s0 }, Value::Summary { count: c1, sum: s1 }) => {
            Value::Summary {
                count: step(*c0, *c1)?,
                // A sum may go down (negative observations): only the
                // count tells a restart.
                sum: if s0 == s1 { 0.0 } else { s1 - s0 },
            }
        }
        (Value::Histogram(a), Value::Histogram(b)) => {
            if a.buckets.len() != b.buckets.len()
                || a.buckets.iter().zip(&b.buckets).any(|(x, y)| x.le != y.le)
            {
                return None;
            }
            let mut buckets = Vec::with_capacity(b.buckets.len());
            for (x, y) in a.buckets.iter().zip(&b.buckets) {
                buckets.push(Bucket {
                    le: y.le,
                    count: step(x.count, y.count)?,
                });
            }
            // Differences of cumulative counts that all grew may still
            // shrink with `le` (a bucket re-read between two pushes);
            // refuse to make a histogram that is not cumulative.
            if buckets.windows(2).any(|w| w[1].count < w[0].count) {
                return None;
            }
            Value::Histogram(Box::new(Histogram {
                count: step(a.count, b.count)?,
                sum: if a.sum == b.sum { 0.0 } else { b.sum - a.sum },
                buckets,
            }))
        }
        (Value::Native(a), Value::Native(b)) => Value::Native(Box::new(native_difference(a, b)?)),
        _ => return None,
    })
}

fn native_difference(
    a: &crate::model::NativeHistogram,
    b: &crate::model::NativeHistogram,
) -> Option<crate::model::NativeHistogram> {
    let coarsened;
    let a = if a.schema != b.schema || a.zero_threshold != b.zero_threshold {
        coarsened = a.coarsened_as(b)?;
        &coarsened
    } else {
        a
    };
    let side = |x: &[(i32, f64)], y: &[(i32, f64)]| -> Option<Vec<(i32, f64)>> {
        let mut out = Vec::with_capacity(y.len());
        let (mut i, mut j) = (0, 0);
        while i < x.len() || j < y.len() {
            let (index, was, is) = match (x.get(i), y.get(j)) {
                (Some(&(ix, cx)), Some(&(iy, cy))) if ix == iy => {
                    i += 1;
                    j += 1;
                    (ix, cx, cy)
                }
                (Some(&(ix, cx)), Some(&(iy, _))) if ix < iy => {
                    i += 1;
                    (ix, cx, 0.0)
                }
                (Some(&(ix, cx)), None) => {
                    i += 1;
                    (ix, cx, 0.0)
                }
                (_, Some(&(iy, cy))) => {
                    j += 1;
                    (iy, 0.0, cy)
                }
                (None, None) => break,
            };
            if is < was {
                return None;
            }
            if is > was {
                out.push((index, is - was));
            }
        }
        Some(out)
    };
    if b.count < a.count || b.zero_count < a.zero_count {
        return None;
    }
    Some(crate::model::NativeHistogram {
        schema: b.schema,
        zero_threshold: b.zero_threshold,
        zero_count: b.zero_count - a.zero_count,
        count: b.count - a.count,
        sum: if a.sum == b.sum { 0.0 } else { b.sum - a.sum },
        positive: side(&a.positive, &b.positive)?,
        negative: side(&a.negative, &b.negative)?,
    })
}

/// 2^64: a summary `_count` a protobuf scrape (and so a snapshot) can hold
/// is below it.
const SUMMARY_COUNT_LIMIT: f64 = 18_446_744_073_709_551_616.0;

/// Why merging `pushed` into `stored` by `rule` must be refused, if it must:
/// a sum would become NaN (`+Inf` plus `-Inf`), which no later push could
/// undo, or a summary count would outgrow what protobuf holds.
pub(crate) fn refusal(rule: Combine, stored: &Value, pushed: &Value) -> Option<&'static str> {
    let nan = |a: f64, b: f64| (a + b).is_nan();
    let poisoned = match (stored, pushed) {
        (Value::Scalar(a), Value::Scalar(b)) => rule == Combine::Sum && nan(*a, *b),
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
