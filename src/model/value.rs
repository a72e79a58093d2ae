//! A series' value: a scalar, a classic or native histogram, a summary.

use super::float;
use super::native::NativeHistogram;
pub use super::native::is_count;

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
