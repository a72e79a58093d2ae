//! `Content-Encoding`s undone within the byte budget.

use std::io::Read;

use crate::error::Rejection;
use crate::memory::Reservation;

/// Undoes a `Content-Encoding` (none, `identity`, `gzip`, `zstd`, `snappy`),
/// refusing output larger than `limit` bytes without inflating past it, and
/// reserving the output from `reservation` before it is allocated, so a
/// small compressed bomb costs at most `limit` bytes of memory, and only
/// when the byte budget has them.
pub fn decompress(
    encoding: Option<&str>,
    body: bytes::Bytes,
    limit: usize,
    reservation: &mut Reservation,
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
                return snappy_block(&body, limit, reservation);
            }
            Box::new(snap::read::FrameDecoder::new(&body[..]))
        }
        _ => return Err(Rejection::UnsupportedEncoding(encoding)),
    };
    let mut reader = reader.take(limit as u64 + 1);
    // Grown a step at a time, each step reserved first: the output's size
    // is known only once it is all out.
    let mut out: Vec<u8> = Vec::new();
    loop {
        let step = out.len().clamp(256 << 10, 4 << 20);
        reservation.grow(step)?;
        out.reserve_exact(step);
        let n = (&mut reader)
            .take(step as u64)
            .read_to_end(&mut out)
            .map_err(|e| {
                Rejection::invalid(format!("{encoding} body could not be decoded: {e}"))
            })?;
        if out.len() > limit {
            return Err(Rejection::BodyTooLarge { limit });
        }
        if n < step {
            break;
        }
    }
    Ok(out.into())
}

fn snappy_block(
    body: &[u8],
    limit: usize,
    reservation: &mut Reservation,
) -> Result<bytes::Bytes, Rejection> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| Rejection::invalid(format!("snappy body could not be decoded: {e}")))?;
    if len > limit {
        return Err(Rejection::BodyTooLarge { limit });
    }
    reservation.grow(len)?;
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map(Into::into)
        .map_err(|e| Rejection::invalid(format!("snappy body could not be decoded: {e}")))
}
