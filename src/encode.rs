//! Encode stage: the aggregate out, in the format the scraper asks for
//! (SPEC §2, "Scrape"). One file per format, as client_rust's `encoding`.

pub mod float;
pub mod openmetrics;
pub mod protobuf;
pub mod text;

use crate::aggregate::{Aggregator, StoredFamily};

pub use crate::format::Format;

/// Renders the whole aggregate in `format`.
pub fn render(aggregator: &Aggregator, format: Format) -> Vec<u8> {
    let _span = tracing::info_span!(
        "encode",
        format = ?format,
        series = aggregator.series_count()
    )
    .entered();
    aggregator.read(|families| render_families(families, format))
}

/// The last rendering of each format (plain and gzip), kept until the
/// aggregate changes: scrapes of an unchanged aggregate (HA Prometheus
/// pairs, several scrapers, retries) cost a copy of an `Arc`.
#[derive(Debug, Default)]
pub struct Cache {
    slots: parking_lot::Mutex<[Option<(u64, bytes::Bytes)>; 6]>,
}

impl Cache {
    fn slot(format: Format, gzip: bool) -> usize {
        (format as usize) * 2 + usize::from(gzip)
    }

    /// The aggregate in `format`, gzipped when asked, from the cache when
    /// nothing changed since it was rendered.
    pub fn render(&self, aggregator: &Aggregator, format: Format, gzip: bool) -> bytes::Bytes {
        // Plain text is not kept whole: the families keep their own text,
        // and joining them costs a copy.
        let keep = gzip || format != Format::Text;
        let slot = Self::slot(format, gzip);
        let now = aggregator.generation();
        if let Some((generation, body)) = &self.slots.lock()[slot]
            && *generation == now
        {
            return body.clone();
        }
        let _span = tracing::info_span!("encode", format = ?format, gzip, series = aggregator.series_count()).entered();
        let (generation, plain) = aggregator
            .read_at(|families, generation| (generation, render_families(families, format)));
        let body = if gzip { gzip_fast(&plain) } else { plain };
        let body = bytes::Bytes::from(body);
        if keep {
            self.slots.lock()[slot] = Some((generation, body.clone()));
        }
        body
    }
}

/// gzip at the fastest level: on 100k series (11 MB) level 6 took ~240 ms,
/// level 1 a fraction of that, for a scrape that travels over a LAN.
pub fn gzip_fast(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Renders families (sorted, as [`Aggregator::read`] gives them).
pub fn render_families(families: &[(&str, &StoredFamily)], format: Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(families.iter().map(|(_, f)| f.series().len() * 64).sum());
    match format {
        Format::Text => text::render(families, &mut out),
        Format::OpenMetrics => openmetrics::render(families, &mut out),
        Format::Protobuf => protobuf::render(families, &mut out),
    }
    out
}

/// Appends a label value (or HELP text) with the text format's escapes:
/// backslash, newline, and with `quote` also the double quote.
pub(crate) fn write_escaped(out: &mut Vec<u8>, s: &[u8], quote: bool) {
    let mut rest = s;
    loop {
        let found = if quote {
            memchr::memchr3(b'\\', b'\n', b'"', rest)
        } else {
            memchr::memchr2(b'\\', b'\n', rest)
        };
        let Some(i) = found else {
            out.extend_from_slice(rest);
            return;
        };
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(match rest[i] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            _ => b"\\\"",
        });
        rest = &rest[i + 1..];
    }
}
