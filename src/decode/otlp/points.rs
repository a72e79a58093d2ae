//! Data points: their times and values, read off the wire.

use super::attributes::{Attributes, attribute, walk};
use crate::model::{Bucket, Histogram, NativeHistogram};
use crate::wire::{Reader, Wire};

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the point holds no value.
const NO_RECORDED_VALUE: u64 = 1;

/// The times of one data point (nanoseconds since the epoch, 0 unset).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Times {
    /// `start_time_unix_nano`: when a running total started.
    pub(super) start: u64,
    /// `time_unix_nano`: when the point was taken.
    pub(super) time: u64,
}

impl Times {
    /// Takes `field` of a data point when it is one of its times (fields 2
    /// and 3 in every kind of point); whether it was.
    pub(super) fn take(&mut self, field: u32, w: Wire<'_>) -> bool {
        match (field, w) {
            (2, Wire::Fixed64(t)) => self.start = t,
            (3, Wire::Fixed64(t)) => self.time = t,
            _ => return false,
        }
        true
    }
}

/// A data point's value, before it is named.
pub(super) enum Point {
    Number(f64),
    Histogram(Histogram),
    Native(NativeHistogram),
    Summary { count: f64, sum: f64 },
}

/// Whether a point's flags say it holds no value.
pub(super) fn no_value(flags: u64) -> bool {
    flags & NO_RECORDED_VALUE != 0
}

/// A `NumberDataPoint`: its value, or `None` for a point without one.
pub(super) fn number_point<'a>(
    bytes: &'a [u8],
    attrs: &mut Attributes<'_, 'a>,
    times: &mut Times,
) -> Result<Option<Point>, &'static str> {
    let mut value = None;
    for item in walk(bytes) {
        let (field, w) = item?;
        match (field, w) {
            (7, Wire::Bytes(kv)) => attribute(kv, attrs)?,
            (f, w) if times.take(f, w) => {}
            (4, Wire::Fixed64(v)) => value = Some(f64::from_bits(v)),
            (6, Wire::Fixed64(v)) => value = Some(v as i64 as f64),
            (8, Wire::Varint(f)) if no_value(f) => return Ok(None),
            _ => {}
        }
    }
    Ok(Some(Point::Number(value.unwrap_or(0.0))))
}

/// Packed `fixed64`/`double` values (or one unpacked).
pub(super) fn packed64(w: Wire<'_>, out: &mut Vec<u64>, most: usize) -> Result<(), &'static str> {
    match w {
        Wire::Fixed64(v) => out.push(v),
        Wire::Bytes(b) => {
            if b.len() % 8 != 0 {
                return Err("packed 64-bit values of a length not a multiple of 8");
            }
            out.extend(
                b.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
            );
        }
        _ => return Err("64-bit values with another wire type"),
    }
    if out.len() > most {
        return Err("more buckets than --max-buckets");
    }
    Ok(())
}

/// A `HistogramDataPoint` as a classic histogram.
pub(super) fn histogram_point<'a>(
    bytes: &'a [u8],
    attrs: &mut Attributes<'_, 'a>,
    times: &mut Times,
    max_buckets: usize,
) -> Result<Option<Point>, String> {
    let (mut count, mut sum) = (0u64, 0.0);
    let (mut counts, mut bounds) = (Vec::new(), Vec::new());
    for item in walk(bytes) {
        let (field, w) = item?;
        match (field, w) {
            (9, Wire::Bytes(kv)) => attribute(kv, attrs)?,
            (f, w) if times.take(f, w) => {}
            (4, Wire::Fixed64(v)) => count = v,
            (5, Wire::Fixed64(v)) => sum = f64::from_bits(v),
            (6, w) => packed64(w, &mut counts, max_buckets + 1)?,
            (7, w) => packed64(w, &mut bounds, max_buckets)?,
            (10, Wire::Varint(f)) if no_value(f) => return Ok(None),
            _ => {}
        }
    }
    let bounds: Vec<f64> = bounds.into_iter().map(f64::from_bits).collect();
    if !counts.is_empty() && counts.len() != bounds.len() + 1 {
        return Err(format!(
            "{} bucket counts for {} bounds (must be one more)",
            counts.len(),
            bounds.len()
        ));
    }
    let increasing = bounds.windows(2).all(|w| w[0] < w[1]);
    if !increasing || bounds.iter().any(|b| b.is_nan()) {
        return Err("explicit bounds are not strictly increasing".into());
    }
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    if !counts.is_empty() && total != u128::from(count) {
        return Err(format!(
            "bucket counts add up to {total}, not the count {count}"
        ));
    }
    let mut running = 0u64;
    let mut buckets: Vec<Bucket> = Vec::with_capacity(bounds.len() + 1);
    for (le, c) in bounds.iter().zip(&counts) {
        running += c;
        if le.is_infinite() && *le > 0.0 {
            break;
        }
        buckets.push(Bucket {
            le: *le,
            count: running as f64,
        });
    }
    let h = Histogram::from_parts(buckets, Some(count as f64), Some(sum))?;
    Ok(Some(Point::Histogram(h)))
}

/// The buckets of an exponential histogram side: offset and counts, as
/// native (index, count) pairs, merged down `shift` scales.
pub(super) fn exponential_buckets(
    bytes: &[u8],
    shift: u32,
    most: usize,
) -> Result<Vec<(i32, f64)>, String> {
    let mut offset: i64 = 0;
    let mut counts: Vec<u64> = Vec::new();
    for item in walk(bytes) {
        let (field, w) = item?;
        match (field, w) {
            (1, Wire::Varint(v)) => offset = i64::from((v as u32 >> 1) as i32 ^ -((v & 1) as i32)),
            (2, Wire::Varint(v)) => counts.push(v),
            (2, Wire::Bytes(b)) => {
                let mut r = Reader::new(b);
                while !r.is_empty() {
                    counts.push(r.varint()?);
                    if counts.len() > most {
                        return Err("more buckets than --max-native-buckets allows to merge".into());
                    }
                }
            }
            _ => {}
        }
        if counts.len() > most {
            return Err("more buckets than --max-native-buckets allows to merge".into());
        }
    }
    let mut out: Vec<(i32, f64)> = Vec::new();
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        // OTLP bucket i is (base^i, base^(i+1)]: Prometheus' i + 1.
        let index = offset + i as i64 + 1;
        let limit = i64::from(crate::model::native::MAX_INDEX) << shift;
        if index.abs() > limit {
            return Err(format!("bucket index {index} out of range"));
        }
        // Merging down: Prometheus index j at schema s holds indices
        // (j-1)*2^k+1 ..= j*2^k at schema s+k.
        let index = if shift == 0 {
            index
        } else {
            (index - 1).div_euclid(1 << shift) + 1
        };
        let index = index as i32;
        match out.last_mut() {
            Some((last, n)) if *last == index => *n += c as f64,
            _ => out.push((index, c as f64)),
        }
    }
    Ok(out)
}

/// An `ExponentialHistogramDataPoint` as a native histogram.
pub(super) fn exponential_point<'a>(
    bytes: &'a [u8],
    attrs: &mut Attributes<'_, 'a>,
    times: &mut Times,
    max_native: usize,
) -> Result<Option<Point>, String> {
    let (mut count, mut sum, mut scale, mut zero_count, mut zero_threshold) =
        (0u64, 0.0, 0i32, 0u64, 0.0);
    let (mut positive, mut negative) = (None, None);
    for item in walk(bytes) {
        let (field, w) = item?;
        match (field, w) {
            (1, Wire::Bytes(kv)) => attribute(kv, attrs)?,
            (f, w) if times.take(f, w) => {}
            (4, Wire::Fixed64(v)) => count = v,
            (5, Wire::Fixed64(v)) => sum = f64::from_bits(v),
            (6, Wire::Varint(v)) => scale = (v as u32 >> 1) as i32 ^ -((v & 1) as i32),
            (7, Wire::Fixed64(v)) => zero_count = v,
            (8, Wire::Bytes(b)) => positive = Some(b),
            (9, Wire::Bytes(b)) => negative = Some(b),
            (10, Wire::Varint(f)) if no_value(f) => return Ok(None),
            (14, Wire::Fixed64(v)) => zero_threshold = f64::from_bits(v),
            _ => {}
        }
    }
    if scale < *crate::model::native::SCHEMAS.start() {
        return Err(format!(
            "scale {scale} is below -4, the coarsest Prometheus takes"
        ));
    }
    let schema_max = *crate::model::native::SCHEMAS.end();
    // Scales finer than 8 are merged down to 8, as Prometheus does.
    let shift = u32::try_from(scale - schema_max).unwrap_or(0).min(40);
    // Before merging down (to the scale given, then as far as
    // --max-native-buckets needs), at most this many buckets.
    let most = max_native.saturating_mul(16);
    let side = |b: Option<&[u8]>| b.map_or(Ok(Vec::new()), |b| exponential_buckets(b, shift, most));
    let mut h = NativeHistogram {
        schema: scale.min(schema_max),
        zero_threshold,
        zero_count: zero_count as f64,
        count: count as f64,
        sum,
        positive: side(positive)?,
        negative: side(negative)?,
    };
    h.validate()?;
    // OTLP counts are integers: Prometheus refuses an integer histogram
    // whose count is not its buckets' sum (and so would refuse a scrape).
    if !h.counts_add_up() {
        return Err(format!(
            "count {count} is not the sum of the bucket and zero counts"
        ));
    }
    h.limit_buckets(max_native)?;
    Ok(Some(Point::Native(h)))
}

/// A `SummaryDataPoint` as its `_count` and `_sum` (quantiles are not
/// kept: they do not add up), checked as any push's summary is.
pub(super) fn summary_point<'a>(
    bytes: &'a [u8],
    attrs: &mut Attributes<'_, 'a>,
    times: &mut Times,
) -> Result<Option<Point>, String> {
    let (mut count, mut sum) = (0u64, 0.0);
    for item in walk(bytes) {
        let (field, w) = item?;
        match (field, w) {
            (7, Wire::Bytes(kv)) => attribute(kv, attrs)?,
            (f, w) if times.take(f, w) => {}
            (4, Wire::Fixed64(v)) => count = v,
            (5, Wire::Fixed64(v)) => sum = f64::from_bits(v),
            (8, Wire::Varint(f)) if no_value(f) => return Ok(None),
            _ => {}
        }
    }
    let count = count as f64;
    crate::decode::options::check_summary(count, sum).map_err(|e| format!("summary {e}"))?;
    Ok(Some(Point::Summary { count, sum }))
}
