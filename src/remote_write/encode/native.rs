//! Native histograms in remote-write 2.0: spans and delta-coded counts.

use crate::model::NativeHistogram;
use crate::wire::{LEN, VARINT, bytes as field_bytes, double, key, uint, varint};

/// A native histogram as the `Histogram` message (the same fields in 1.0
/// and 2.0): integer counts (`count_int`, `*_deltas`) when every count is
/// a whole number, as receivers before float histograms need; else float
/// counts.
pub(super) fn native(out: &mut Vec<u8>, h: &NativeHistogram, timestamp: i64) {
    let whole = |v: f64| v >= 0.0 && v.fract() == 0.0 && v < 9.007_199_254_740_992e15;
    let integral = whole(h.count)
        && whole(h.zero_count)
        && h.positive.iter().chain(&h.negative).all(|(_, c)| whole(*c));
    if integral {
        uint(out, 1, h.count as u64);
    } else {
        double(out, 2, h.count);
    }
    double(out, 3, h.sum);
    key(out, 4, VARINT);
    varint(out, zigzag(i64::from(h.schema)));
    double(out, 5, h.zero_threshold);
    if integral {
        uint(out, 6, h.zero_count as u64);
    } else {
        double(out, 7, h.zero_count);
    }
    buckets(out, &h.negative, 8, integral);
    buckets(out, &h.positive, 11, integral);
    uint(out, 15, timestamp as u64);
}

/// One side's buckets: spans at `spans_field`, then deltas (the field
/// after) or absolute counts (the one after that).
fn buckets(out: &mut Vec<u8>, buckets: &[(i32, f64)], spans_field: u8, integral: bool) {
    if buckets.is_empty() {
        return;
    }
    let mut span = Vec::with_capacity(12);
    let mut start = 0;
    let mut previous_end: Option<i32> = None;
    while start < buckets.len() {
        let mut end = start + 1;
        while end < buckets.len() && buckets[end].0 == buckets[end - 1].0.wrapping_add(1) {
            end += 1;
        }
        // BucketSpan { offset = 1 (sint32); length = 2 }
        let offset = match previous_end {
            None => i64::from(buckets[start].0),
            Some(p) => i64::from(buckets[start].0) - i64::from(p) - 1,
        };
        span.clear();
        key(&mut span, 1, VARINT);
        varint(&mut span, zigzag(offset));
        uint(&mut span, 2, (end - start) as u64);
        field_bytes(out, spans_field, &span);
        previous_end = Some(buckets[end - 1].0);
        start = end;
    }
    let mut packed = Vec::with_capacity(buckets.len() * 8);
    if integral {
        let mut last = 0i64;
        for (_, c) in buckets {
            let c = *c as i64;
            varint(&mut packed, zigzag(c - last));
            last = c;
        }
        field_bytes(out, spans_field + 1, &packed);
    } else {
        for (_, c) in buckets {
            packed.extend_from_slice(&c.to_le_bytes());
        }
        key(out, spans_field + 2, LEN);
        varint(out, packed.len() as u64);
        out.extend_from_slice(&packed);
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}
