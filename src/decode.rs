//! Decode stage: request body and push path in, [`Push`] out (SPEC §2).
//!
//! Picks the decoder by `Content-Type`, undoes `Content-Encoding` with the
//! body limit applied to the decompressed size, and holds the value checks
//! every decoder shares, so HTTP and gRPC refuse the same input the same way.

pub mod path;
pub mod protobuf;
pub mod text;

use std::io::Read;

use crate::error::Rejection;
use crate::model::{Kind, LabelRules, Push};

/// What decoding a push needs besides its bytes.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// Path labels and `--drop-label`.
    pub labels: &'a LabelRules,
    /// Whether a NaN gauge value is accepted: not when gauges are summed, as
    /// one NaN would poison the sum for good.
    pub gauge_nan_ok: bool,
}

pub use crate::format::Format;

/// Undoes a `Content-Encoding` (none, `identity`, `gzip`, `zstd`, `snappy`),
/// refusing output larger than `limit` bytes without inflating past it, so a
/// small compressed bomb costs at most `limit` bytes of memory.
pub fn decompress(
    encoding: Option<&str>,
    body: bytes::Bytes,
    limit: usize,
) -> Result<bytes::Bytes, Rejection> {
    let encoding = encoding.map(str::trim).unwrap_or("").to_ascii_lowercase();
    let reader: Box<dyn Read + '_> = match encoding.as_str() {
        "" | "identity" => return Ok(body),
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        "zstd" => Box::new(
            zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| Rejection::invalid(format!("zstd body could not be decoded: {e}")))?,
        ),
        // Snappy's framing format (what `snappy` streams use); a bare block,
        // as Prometheus remote-write sends it, is accepted too.
        "snappy" | "x-snappy-framed" => {
            if !body.starts_with(b"\xff\x06\x00\x00sNaPpY") {
                return snappy_block(&body, limit);
            }
            Box::new(snap::read::FrameDecoder::new(&body[..]))
        }
        _ => return Err(Rejection::UnsupportedEncoding(encoding)),
    };
    let mut out = Vec::with_capacity((body.len() * 4).min(limit.saturating_add(1)));
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Rejection::invalid(format!("{encoding} body could not be decoded: {e}")))?;
    if out.len() > limit {
        return Err(Rejection::BodyTooLarge { limit });
    }
    Ok(out.into())
}

fn snappy_block(body: &[u8], limit: usize) -> Result<bytes::Bytes, Rejection> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| Rejection::invalid(format!("snappy body could not be decoded: {e}")))?;
    if len > limit {
        return Err(Rejection::BodyTooLarge { limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map(Into::into)
        .map_err(|e| Rejection::invalid(format!("snappy body could not be decoded: {e}")))
}

/// Decodes a (decompressed) body in the given format.
pub fn decode(body: &[u8], format: Format, opts: &Options<'_>) -> Result<Push, Rejection> {
    match format {
        Format::Text => text::parse(body, text::Dialect::Prometheus, opts),
        Format::OpenMetrics => text::parse(body, text::Dialect::OpenMetrics, opts),
        Format::Protobuf => protobuf::delimited(body, opts),
    }
}

/// Checks a counter, gauge or untyped value (SPEC §4); returns the reason.
pub(crate) fn check_scalar(kind: Kind, v: f64, opts: &Options<'_>) -> Result<(), String> {
    match kind {
        Kind::Counter if v.is_nan() => Err("counter value is NaN".into()),
        Kind::Counter if v < 0.0 => Err(format!("counter value {v} is negative")),
        Kind::Untyped if v.is_nan() => Err("untyped value is NaN (it would poison the sum)".into()),
        Kind::Gauge if v.is_nan() && !opts.gauge_nan_ok => {
            Err("gauge value is NaN (it would poison the sum; see --gauge-mode)".into())
        }
        _ => Ok(()),
    }
}

/// Checks a summary's `_count` and `_sum`; returns the reason. The count
/// must be a whole number protobuf's `uint64` holds, as a scrape in
/// protobuf (and a snapshot) writes it so.
pub(crate) fn check_summary(count: f64, sum: f64) -> Result<(), String> {
    if !crate::model::is_count(count) || count.fract() != 0.0 || count >= 1.8446744073709552e19 {
        return Err(format!(
            "_count is {count}, not a count (a whole number of observations)"
        ));
    }
    if sum.is_nan() {
        return Err("_sum is NaN".into());
    }
    Ok(())
}
