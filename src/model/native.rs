//! Native (exponential) histograms, pushed as protobuf only (contract §4), and
//! their sum as Prometheus computes `sum()`: reduce both to the coarser
//! schema, widen the zero bucket to the larger threshold (absorbing buckets
//! it overlaps), then add bucket by bucket.

/// Whether `v` can be a count of observations: not negative, not NaN.
pub fn is_count(v: f64) -> bool {
    v >= 0.0
}

/// A native histogram with float counts and sparse buckets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NativeHistogram {
    /// Resolution: bucket `i` has upper bound `2^(i * 2^-schema)`; -4..=8.
    pub schema: i32,
    /// Observations with `|v| <= zero_threshold` count in the zero bucket.
    pub zero_threshold: f64,
    /// Zero bucket count.
    pub zero_count: f64,
    /// All observations.
    pub count: f64,
    /// Sum of observations.
    pub sum: f64,
    /// Positive buckets `(index, count)`, indices strictly increasing.
    pub positive: Vec<(i32, f64)>,
    /// Negative buckets `(index, count)` (mirrored), indices strictly increasing.
    pub negative: Vec<(i32, f64)>,
}

/// Lowest and highest schema Prometheus accepts for exponential buckets.
pub const SCHEMAS: std::ops::RangeInclusive<i32> = -4..=8;

/// Largest bucket index magnitude accepted. Every finite observation falls
/// in a bucket within ±1075·2^8 at schema 8 (the finest); bounding indices
/// keeps every gap between two buckets, and so every span offset written in
/// a scrape, well inside `i32`, however buckets are merged later.
pub const MAX_INDEX: i32 = 1 << 20;

fn upper_bound(index: i32, schema: i32) -> f64 {
    ((index as f64) * (-schema as f64).exp2()).exp2()
}

fn lower_bound(index: i32, schema: i32) -> f64 {
    ((i64::from(index) - 1) as f64 * (-schema as f64).exp2()).exp2()
}

/// Index of bucket `idx` of `from` in the coarser schema `to` (Prometheus'
/// `targetIdx`), in `i64` so no index can wrap; the result is no farther
/// from zero than `idx`.
fn target_index(idx: i32, from: i32, to: i32) -> i32 {
    let shift = (from - to).clamp(0, 31);
    (((i64::from(idx) - 1) >> shift) + 1) as i32
}

fn reduce(buckets: &[(i32, f64)], from: i32, to: i32) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(buckets.len());
    for &(i, c) in buckets {
        let t = target_index(i, from, to);
        match out.last_mut() {
            Some((last, sum)) if *last == t => *sum += c,
            _ => out.push((t, c)),
        }
    }
    out
}

fn add_buckets(a: &[(i32, f64)], b: &[(i32, f64)]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(&(ia, ca)), Some(&(ib, cb))) if ia == ib => {
                out.push((ia, ca + cb));
                i += 1;
                j += 1;
            }
            (Some(&x), Some(&y)) if x.0 < y.0 => {
                out.push(x);
                i += 1;
            }
            (Some(_), Some(&y)) => {
                out.push(y);
                j += 1;
            }
            (Some(&x), None) => {
                out.push(x);
                i += 1;
            }
            (None, Some(&y)) => {
                out.push(y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

impl NativeHistogram {
    /// Reduces to a coarser (or equal) schema.
    fn reduce_to(&mut self, schema: i32) {
        if schema < self.schema {
            self.positive = reduce(&self.positive, self.schema, schema);
            self.negative = reduce(&self.negative, self.schema, schema);
            self.schema = schema;
        }
    }

    /// Moves every bucket overlapping `[-t, t]` into the zero bucket; returns
    /// the threshold actually needed (raised to the upper bound of a non-empty
    /// bucket that straddles `t`).
    fn widen_zero(&mut self, mut t: f64) -> f64 {
        if t <= self.zero_threshold {
            return self.zero_threshold;
        }
        for side in [&mut self.positive, &mut self.negative] {
            let mut keep = Vec::with_capacity(side.len());
            for &(i, c) in side.iter() {
                if lower_bound(i, self.schema) < t {
                    self.zero_count += c;
                    let up = upper_bound(i, self.schema);
                    if up > t && c != 0.0 {
                        t = up;
                    }
                } else {
                    keep.push((i, c));
                }
            }
            *side = keep;
        }
        self.zero_threshold = t;
        t
    }

    /// Adds `other` into `self`, as Prometheus' `FloatHistogram.Add`.
    pub fn add(&mut self, other: &NativeHistogram) {
        let mut other = other.clone();
        let schema = self.schema.min(other.schema);
        self.reduce_to(schema);
        other.reduce_to(schema);
        let mut t = self.zero_threshold.max(other.zero_threshold);
        loop {
            let a = self.widen_zero(t);
            let b = other.widen_zero(a);
            if a == b {
                break;
            }
            t = a.max(b);
        }
        self.zero_count += other.zero_count;
        self.count += other.count;
        self.sum += other.sum;
        self.positive = add_buckets(&self.positive, &other.positive);
        self.negative = add_buckets(&self.negative, &other.negative);
    }

    /// This histogram at `other`'s schema and zero threshold, when those
    /// are as coarse as its own or coarser (a running total whose producer
    /// lowered its resolution as its range grew, as OpenTelemetry SDKs do);
    /// `None` when they are finer, or a bucket straddles the new zero
    /// threshold.
    pub fn coarsened_as(&self, other: &NativeHistogram) -> Option<NativeHistogram> {
        if other.schema > self.schema
            || other
                .zero_threshold
                .partial_cmp(&self.zero_threshold)
                .is_none_or(|o| o.is_lt())
        {
            return None;
        }
        let mut out = self.clone();
        out.reduce_to(other.schema);
        (out.widen_zero(other.zero_threshold) == other.zero_threshold).then_some(out)
    }

    /// Buckets held, both sides (the zero bucket left out).
    pub fn bucket_count(&self) -> usize {
        self.positive.len() + self.negative.len()
    }

    /// Lowers the resolution, one schema at a time, until at most `limit`
    /// buckets are held (as Prometheus' `native_histogram_bucket_limit` and
    /// the client libraries' maximum bucket number do); refuses, changing
    /// nothing that matters, when even the coarsest schema holds more.
    pub fn limit_buckets(&mut self, limit: usize) -> Result<(), String> {
        while self.bucket_count() > limit && self.schema > *SCHEMAS.start() {
            self.reduce_to(self.schema - 1);
        }
        if self.bucket_count() > limit {
            return Err(format!(
                "native histogram holds {} buckets even at schema {}, over the limit of {limit}",
                self.bucket_count(),
                SCHEMAS.start()
            ));
        }
        Ok(())
    }

    /// Whether every count is a whole number and `count` is exactly the zero
    /// bucket plus all buckets: what an integer histogram must satisfy.
    pub fn counts_add_up(&self) -> bool {
        let whole = |c: f64| c.fract() == 0.0 && (0.0..1.8e19).contains(&c);
        let mut total: u128 = 0;
        for c in std::iter::once(self.zero_count)
            .chain(self.positive.iter().chain(&self.negative).map(|&(_, c)| c))
        {
            if !whole(c) {
                return false;
            }
            total += c as u128;
        }
        whole(self.count) && total == self.count as u128
    }

    /// Checks what decoding cannot: schema range, counts, sorted indices.
    pub fn validate(&self) -> Result<(), String> {
        if !SCHEMAS.contains(&self.schema) {
            return Err(format!(
                "native histogram schema {} is outside -4..=8",
                self.schema
            ));
        }
        if !is_count(self.zero_threshold) {
            return Err(format!("zero threshold {} is invalid", self.zero_threshold));
        }
        if !is_count(self.count) || !is_count(self.zero_count) {
            return Err("native histogram count is negative or NaN".into());
        }
        if self.sum.is_nan() {
            return Err("_sum is NaN".into());
        }
        for side in [&self.positive, &self.negative] {
            if side
                .iter()
                .any(|&(i, _)| !(-MAX_INDEX..=MAX_INDEX).contains(&i))
            {
                return Err(format!(
                    "native histogram bucket index outside ±{MAX_INDEX}"
                ));
            }
            if side.iter().any(|&(_, c)| !is_count(c)) {
                return Err("native histogram bucket count is negative or NaN".into());
            }
            if side.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err("native histogram buckets overlap".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(schema: i32, zt: f64, zc: f64, pos: &[(i32, f64)]) -> NativeHistogram {
        let count = zc + pos.iter().map(|p| p.1).sum::<f64>();
        NativeHistogram {
            schema,
            zero_threshold: zt,
            zero_count: zc,
            count,
            sum: 1.0,
            positive: pos.to_vec(),
            negative: vec![],
        }
    }

    #[test]
    fn same_schema_adds_buckets() {
        let mut a = h(0, 0.0, 1.0, &[(1, 2.0), (3, 1.0)]);
        a.add(&h(0, 0.0, 0.0, &[(2, 5.0), (3, 1.0)]));
        assert_eq!(a.positive, vec![(1, 2.0), (2, 5.0), (3, 2.0)]);
        assert_eq!(a.count, 10.0);
        assert_eq!(a.zero_count, 1.0);
    }

    #[test]
    fn coarser_schema_wins() {
        // Schema 1 buckets 1..=4 fall into schema 0 buckets 1, 1, 2, 2.
        let mut a = h(1, 0.0, 0.0, &[(1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0)]);
        a.add(&h(0, 0.0, 0.0, &[(1, 10.0)]));
        assert_eq!(a.schema, 0);
        assert_eq!(a.positive, vec![(1, 12.0), (2, 2.0)]);
    }

    #[test]
    fn bucket_limit_lowers_the_schema_first() {
        // Schema 2: eight buckets; at schema 0 they are buckets 1 and 2.
        let pos: Vec<(i32, f64)> = (1..=8).map(|i| (i, 1.0)).collect();
        let mut a = h(2, 0.0, 0.0, &pos);
        a.limit_buckets(4).unwrap();
        assert_eq!(a.schema, 1);
        assert_eq!(a.positive, vec![(1, 2.0), (2, 2.0), (3, 2.0), (4, 2.0)]);
        a.limit_buckets(2).unwrap();
        assert_eq!(
            (a.schema, a.positive.clone()),
            (0, vec![(1, 4.0), (2, 4.0)])
        );
        // Buckets far apart stay apart down to schema -4.
        let mut far = h(0, 0.0, 0.0, &[(-1000, 1.0), (1, 1.0), (1000, 1.0)]);
        assert!(far.limit_buckets(2).is_err());
    }

    #[test]
    fn larger_zero_threshold_absorbs_buckets() {
        // Schema 0: bucket 0 is (0.5, 1], bucket 1 is (1, 2].
        let mut a = h(0, 0.0, 0.0, &[(0, 3.0), (1, 4.0)]);
        a.add(&h(0, 1.0, 2.0, &[(1, 1.0)]));
        assert_eq!(a.zero_threshold, 1.0);
        assert_eq!(a.zero_count, 5.0);
        assert_eq!(a.positive, vec![(1, 5.0)]);
        assert_eq!(a.count, 10.0);
    }
}
