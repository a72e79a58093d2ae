//! Encode stage: the aggregate out, in the format the scraper asks for
//! (contract §2, "Scrape"). One file per format, as client_rust's `encoding`.

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

/// A rendered scrape: chunks of bytes, shared (reference-counted) by every
/// scrape of the same state, so a client that reads slowly or never holds
/// a handle, not a private copy of the output.
#[derive(Debug, Clone, Default)]
pub struct Rendering {
    chunks: std::sync::Arc<[bytes::Bytes]>,
    len: usize,
}

impl Rendering {
    fn new(chunks: Vec<bytes::Bytes>) -> Rendering {
        let len = chunks.iter().map(|c| c.len()).sum();
        Rendering {
            chunks: chunks.into(),
            len,
        }
    }

    /// Bytes in all.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks, in order.
    pub fn chunks(&self) -> &[bytes::Bytes] {
        &self.chunks
    }
}

/// The last rendering of each format (plain and gzip), kept until the
/// aggregate changes: scrapes of an unchanged aggregate (HA Prometheus
/// pairs, several scrapers, retries) cost a copy of an `Arc`, and scrapes
/// that arrive while one renders wait for it rather than render again.
/// Bytes the slots hold (beyond the families' own renderings) are charged
/// to the byte budget.
#[derive(Debug)]
pub struct Cache {
    slots: parking_lot::Mutex<[Option<Slot>; 6]>,
    /// One renderer per slot at a time.
    rendering: [parking_lot::Mutex<()>; 6],
    memory: std::sync::Arc<crate::memory::Memory>,
}

#[derive(Debug)]
struct Slot {
    generation: u64,
    body: Rendering,
    /// Bytes charged for it.
    charged: usize,
}

impl Cache {
    /// An empty cache charging `memory`.
    pub fn new(memory: std::sync::Arc<crate::memory::Memory>) -> Cache {
        Cache {
            slots: Default::default(),
            rendering: Default::default(),
            memory,
        }
    }

    fn slot(format: Format, gzip: bool) -> usize {
        (format as usize) * 2 + usize::from(gzip)
    }

    fn cached(&self, slot: usize, now: u64) -> Option<Rendering> {
        self.slots.lock()[slot]
            .as_ref()
            .filter(|s| s.generation == now)
            .map(|s| s.body.clone())
    }

    /// The aggregate in `format`, gzipped when asked, from the cache when
    /// nothing changed since it was rendered.
    pub fn render(&self, aggregator: &Aggregator, format: Format, gzip: bool) -> Rendering {
        let slot = Self::slot(format, gzip);
        if let Some(body) = self.cached(slot, aggregator.generation()) {
            return body;
        }
        let _one = self.rendering[slot].lock();
        if let Some(body) = self.cached(slot, aggregator.generation()) {
            return body;
        }
        let _span = tracing::info_span!("encode", format = ?format, gzip, series = aggregator.series_count()).entered();
        let (generation, body, charged) = aggregator.read_at(|families, generation| {
            if format == Format::Text && !gzip {
                // Plain text is the families' own renderings, shared; only
                // the small ones are copied together.
                let (chunks, copied) = text::chunks(families);
                (generation, Rendering::new(chunks), copied)
            } else {
                let plain = render_families(families, format);
                let body = if gzip { gzip_fast(&plain) } else { plain };
                let len = body.len();
                (generation, Rendering::new(vec![body.into()]), len)
            }
        });
        self.memory.charge(charged);
        let old = self.slots.lock()[slot].replace(Slot {
            generation,
            body: body.clone(),
            charged,
        });
        if let Some(old) = old {
            self.memory.release(old.charged);
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
