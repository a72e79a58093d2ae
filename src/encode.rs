//! Encode stage: the aggregate out, in the format the scraper asks for
//! (contract §2, "Scrape"). One file per format, as client_rust's `encoding`.

pub mod float;
pub(crate) mod openmetrics;
pub mod protobuf;
pub(crate) mod text;

use crate::aggregate::{Aggregator, StoredFamily};

pub use crate::format::Format;

/// Renders the whole aggregate in `format`, every family afresh (tests,
/// tools and the self-metrics; scrapes go through [`Cache`]).
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

/// Each family's last rendering in one format, kept while the family's
/// change stamp ([`StoredFamily::changed`]) stays the same: a scrape
/// renders only the families pushed to since the last one and copies the
/// rest. Held in name order, as [`Aggregator::read`] gives families, so
/// matching the kept renderings to the families is one merge walk, no
/// hashing.
#[derive(Debug)]
pub struct FamilyRenderings {
    format: Format,
    kept: Vec<Kept>,
    /// Bytes of `kept`'s renderings.
    bytes: usize,
}

#[derive(Debug)]
struct Kept {
    name: Box<str>,
    changed: u64,
    rendering: bytes::Bytes,
}

impl FamilyRenderings {
    /// None kept yet, for `format`.
    pub fn new(format: Format) -> FamilyRenderings {
        FamilyRenderings {
            format,
            kept: Vec::new(),
            bytes: 0,
        }
    }

    /// Calls `each` with every family's rendering, in order, from the kept
    /// one when the family did not change; keeps them for the next call and
    /// forgets families that are gone.
    pub fn walk(
        &mut self,
        families: &[(&str, &StoredFamily)],
        mut each: impl FnMut(&bytes::Bytes),
    ) {
        let mut old = std::mem::take(&mut self.kept).into_iter().peekable();
        let mut kept = Vec::with_capacity(families.len());
        let mut bytes = 0;
        for &(name, f) in families {
            while old.next_if(|k| &*k.name < name).is_some() {}
            let entry = match old.next_if(|k| &*k.name == name) {
                Some(k) if k.changed == f.changed() => k,
                Some(k) => Kept {
                    name: k.name,
                    changed: f.changed(),
                    rendering: render_family(name, f, self.format),
                },
                None => Kept {
                    name: name.into(),
                    changed: f.changed(),
                    rendering: render_family(name, f, self.format),
                },
            };
            each(&entry.rendering);
            bytes += entry.rendering.len();
            kept.push(entry);
        }
        self.kept = kept;
        self.bytes = bytes;
    }

    /// The families rendered into one buffer (what [`render_families`]
    /// gives), through the kept renderings.
    pub fn render(&mut self, families: &[(&str, &StoredFamily)]) -> Vec<u8> {
        // Sized as the last rendering (or a guess at the first): an 11 MB
        // scrape grown by doubling cost as much as copying it.
        let guess = families.iter().map(|(_, f)| f.series().len() * 64).sum();
        let mut out = Vec::with_capacity(self.bytes.max(guess) + 8);
        self.walk(families, |r| out.extend_from_slice(r));
        finish(self.format, &mut out);
        out
    }

    /// Bytes the kept renderings hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The last rendering of each format (plain and gzip), kept until the
/// aggregate changes, over each family's last rendering: scrapes of an
/// unchanged aggregate (HA Prometheus pairs, several scrapers, retries)
/// cost a copy of an `Arc`, scrapes that arrive while one renders wait for
/// it rather than render again, and a scrape after a push renders only the
/// families it changed. Every byte held is charged to the byte budget
/// (never refused: a scrape must not fail for memory).
#[derive(Debug)]
pub struct Cache {
    slots: parking_lot::Mutex<[Option<Slot>; 6]>,
    /// One renderer per slot at a time.
    rendering: [parking_lot::Mutex<()>; 6],
    /// Per format; locked inside [`Aggregator::read_at`] (after the shard
    /// locks), by one renderer of that format's plain or gzip slot.
    families: [parking_lot::Mutex<Charged<FamilyRenderings>>; 3],
    memory: std::sync::Arc<crate::memory::Memory>,
}

/// Something with the bytes charged for it.
#[derive(Debug)]
struct Charged<T> {
    held: T,
    charged: usize,
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
        let families = [Format::Text, Format::OpenMetrics, Format::Protobuf].map(|f| {
            parking_lot::Mutex::new(Charged {
                held: FamilyRenderings::new(f),
                charged: 0,
            })
        });
        Cache {
            slots: Default::default(),
            rendering: Default::default(),
            families,
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
            let mut kept = self.families[format as usize].lock();
            let rendered = if format == Format::Text && !gzip {
                // Plain text is the families' own renderings, shared; only
                // the small ones are copied together.
                let (chunks, copied) = text::chunks(families, &mut kept.held);
                (generation, Rendering::new(chunks), copied)
            } else {
                let body = if gzip {
                    // Each family's rendering goes through the compressor as
                    // it is: no plain copy of the whole scrape is made.
                    let mut gz = Gzip::new(kept.held.bytes());
                    kept.held.walk(families, |r| gz.write(r));
                    let mut tail = Vec::new();
                    finish(format, &mut tail);
                    gz.write(&tail);
                    gz.finish()
                } else {
                    kept.held.render(families)
                };
                let len = body.len();
                (generation, Rendering::new(vec![body.into()]), len)
            };
            let now = kept.held.bytes();
            self.settle(&mut kept.charged, now);
            rendered
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

    /// Charges or gives back the difference between `charged` and `now`.
    fn settle(&self, charged: &mut usize, now: usize) {
        if now > *charged {
            self.memory.charge(now - *charged);
        } else {
            self.memory.release(*charged - now);
        }
        *charged = now;
    }
}

/// A gzip stream written piece by piece into memory, at the fastest level:
/// on 100k series (11 MB) level 6 took ~240 ms, level 1 a fraction of that,
/// for a scrape that travels over a LAN.
/// Small pieces (a family of a few series renders to a few hundred bytes)
/// are gathered into 64 KiB before they reach the compressor, which costs
/// per call; large ones go through as they are.
struct Gzip(std::io::BufWriter<flate2::write::GzEncoder<Vec<u8>>>);

impl Gzip {
    /// For about `plain` bytes of input.
    fn new(plain: usize) -> Gzip {
        Gzip(std::io::BufWriter::with_capacity(
            64 << 10,
            flate2::write::GzEncoder::new(
                Vec::with_capacity(plain / 8),
                flate2::Compression::fast(),
            ),
        ))
    }

    fn write(&mut self, data: &[u8]) {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = self.0.write_all(data);
    }

    fn finish(self) -> Vec<u8> {
        self.0
            .into_inner()
            .ok()
            .and_then(|gz| gz.finish().ok())
            .unwrap_or_default()
    }
}

/// Renders families (sorted, as [`Aggregator::read`] gives them).
pub fn render_families(families: &[(&str, &StoredFamily)], format: Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(families.iter().map(|(_, f)| f.series().len() * 64).sum());
    for (name, f) in families {
        out.extend_from_slice(&render_family(name, f, format));
    }
    finish(format, &mut out);
    out
}

/// One family in `format`.
fn render_family(name: &str, f: &StoredFamily, format: Format) -> bytes::Bytes {
    // About what a series takes in each format.
    let per_series = if format == Format::OpenMetrics {
        112
    } else {
        96
    };
    let mut out = Vec::with_capacity(f.series().len() * per_series + 64);
    match format {
        Format::Text => text::render_family(name, f, &mut out),
        Format::OpenMetrics => openmetrics::render_family(name, f, &mut out),
        Format::Protobuf => protobuf::write_family(name, f, &mut out),
    }
    out.into()
}

/// What a format writes after the last family.
fn finish(format: Format, out: &mut Vec<u8>) {
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Options, decode};
    use crate::model::LabelRules;

    fn push(agg: &Aggregator, text: &str) {
        let rules = LabelRules::default();
        let opts = Options {
            labels: &rules,
            gauge_nan_ok: false,
            spend: None,
        };
        agg.apply(decode(text.as_bytes(), Format::Text, &opts).unwrap())
            .unwrap();
    }

    /// Kept renderings are reused for unchanged families only, always give
    /// what a fresh render gives, and go with their family.
    #[test]
    fn family_renderings_follow_changes() {
        for format in [Format::Text, Format::OpenMetrics, Format::Protobuf] {
            let agg = Aggregator::new(Default::default());
            push(&agg, "a_total{x=\"1\"} 1\nb_total 1\n");
            let mut kept = FamilyRenderings::new(format);
            let fresh = || agg.read(|f| render_families(f, format));
            let pointers = |kept: &FamilyRenderings| {
                kept.kept
                    .iter()
                    .map(|k| k.rendering.as_ptr())
                    .collect::<Vec<_>>()
            };
            assert_eq!(agg.read(|f| kept.render(f)), fresh());
            let before = pointers(&kept);
            push(&agg, "a_total{x=\"1\"} 2\n");
            assert_eq!(agg.read(|f| kept.render(f)), fresh());
            let after = pointers(&kept);
            assert_ne!(before[0], after[0], "a changed: rendered again");
            assert_eq!(before[1], after[1], "b unchanged: kept");
            agg.delete(&[("x".into(), "1".into())]);
            push(&agg, "c_total 1\n");
            assert_eq!(agg.read(|f| kept.render(f)), fresh());
            assert_eq!(kept.kept.len(), agg.family_count());
            agg.wipe();
            assert_eq!(agg.read(|f| kept.render(f)), fresh());
            assert_eq!(kept.bytes(), 0);
        }
    }

    /// What the cache holds is charged, and given back when it holds less.
    #[test]
    fn cache_charges_what_it_holds() {
        let memory = crate::memory::Memory::new(usize::MAX);
        let agg = Aggregator::new(crate::aggregate::Settings {
            memory: memory.clone(),
            ..Default::default()
        });
        let cache = Cache::new(memory.clone());
        push(&agg, "a_total 1\nb_total 1\n");
        let stored = memory.used();
        let body = cache.render(&agg, Format::OpenMetrics, false);
        assert!(memory.used() >= stored + body.len());
        agg.wipe();
        let body = cache.render(&agg, Format::OpenMetrics, false);
        assert_eq!(memory.used(), body.len(), "only the empty scrape is held");
    }
}
