//! What is kept of past scrapes, and scrapes rendered through it.

use super::out::Out;
use super::render::{finish, render_family, render_streaming};
use super::sink::Sink;
use crate::aggregate::{Aggregator, FamilyView};
use crate::format::Format;

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
/// change stamp ([`FamilyView::changed`]) stays the same: a scrape
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
    pub fn walk(&mut self, families: &[(&str, &FamilyView)], mut each: impl FnMut(&bytes::Bytes)) {
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
    pub fn render(&mut self, families: &[(&str, &FamilyView)]) -> Vec<u8> {
        // Sized as the last rendering (or a guess at the first): a large
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

/// Scrapes rendered and streamed at once; more wait their turn.
pub const STREAMS: usize = 8;

/// About what a series takes in a plain rendering (a guess on the high
/// side, the largest of `render_family`'s).
pub const SERIES_BYTES: usize = 112;

/// What is kept of past scrapes. A format's kept renderings (the whole
/// scrape, and each family's) hold at most `--scrape-keep-bytes` (32 MiB by
/// default). Up to it, a scrape of an unchanged aggregate (HA Prometheus
/// pairs, several scrapers, retries) costs a copy of an `Arc`, and a scrape
/// after a push renders only the families it changed. Over it (about 300k
/// series), keeping renderings would cost more memory than the series
/// themselves: scrapes render afresh, stream as they render, and keep
/// nothing. Every byte held is charged to the byte budget (never refused:
/// a scrape must not fail for memory).
#[derive(Debug)]
pub struct Cache {
    slots: parking_lot::Mutex<[Option<Slot>; 6]>,
    /// One renderer per slot at a time, for scrapes of one [`Rendering`].
    rendering: [parking_lot::Mutex<()>; 6],
    /// Per format; taken by one renderer of that format at a time (others
    /// render without it).
    families: [parking_lot::Mutex<Charged<FamilyRenderings>>; 3],
    memory: std::sync::Arc<crate::memory::Memory>,
    /// `--scrape-keep-bytes`.
    keep_bytes: usize,
    /// Scrapes streaming at once (see [`Cache::stream_permit`]).
    streams: std::sync::Arc<tokio::sync::Semaphore>,
    /// Scrapes waiting for a turn to stream.
    waiting: std::sync::atomic::AtomicUsize,
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
    /// An empty cache charging `memory`, keeping up to `keep_bytes` of
    /// renderings per format.
    pub fn new(memory: std::sync::Arc<crate::memory::Memory>, keep_bytes: usize) -> Cache {
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
            keep_bytes,
            streams: std::sync::Arc::new(tokio::sync::Semaphore::new(STREAMS)),
            waiting: Default::default(),
        }
    }

    /// A turn to stream a scrape: at most [`STREAMS`] render at once, so
    /// what scrapes hold in flight (about 1 MiB each: the chunks queued
    /// for the socket and the one being rendered) and the cores they use
    /// stay bounded however many clients ask at once; the others wait.
    /// (`None` only if the semaphore were closed, which it never is.)
    pub async fn stream_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        use std::sync::atomic::Ordering;
        /// Counts a scrape waiting until its wait ends however it ends
        /// (a request deadline drops the future).
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        self.streams.clone().acquire_owned().await.ok()
    }

    /// Whether a scrape is waiting for a turn to stream (a stalled stream
    /// then gives its turn up).
    pub fn turn_wanted(&self) -> bool {
        self.waiting.load(std::sync::atomic::Ordering::Acquire) > 0
    }

    /// Whether a scrape of `series` series is kept once rendered (else it
    /// is streamed and forgotten).
    pub fn keeps(&self, series: usize) -> bool {
        series.saturating_mul(SERIES_BYTES) <= self.keep_bytes
    }

    fn slot(format: Format, gzip: bool) -> usize {
        (format as usize) * 2 + usize::from(gzip)
    }

    /// The kept rendering of the aggregate as it is now, if there is one.
    pub fn kept(&self, aggregator: &Aggregator, format: Format, gzip: bool) -> Option<Rendering> {
        let now = aggregator.generation();
        self.slots.lock()[Self::slot(format, gzip)]
            .as_ref()
            .filter(|s| s.generation == now)
            .map(|s| s.body.clone())
    }

    /// The aggregate in `format`, gzipped when asked, in one [`Rendering`]:
    /// the kept one when nothing changed, else rendered (scrapes arriving
    /// meanwhile wait for it and share it). `None` if the render failed.
    pub fn render(&self, aggregator: &Aggregator, format: Format, gzip: bool) -> Option<Rendering> {
        if let Some(body) = self.kept(aggregator, format, gzip) {
            return Some(body);
        }
        let _one = self.rendering[Self::slot(format, gzip)].lock();
        if let Some(body) = self.kept(aggregator, format, gzip) {
            return Some(body);
        }
        let mut chunks = Vec::new();
        let rendered = self.render_to(aggregator, format, gzip, &mut |c| {
            chunks.push(c);
            true
        });
        rendered.then(|| Rendering::new(chunks))
    }

    /// Renders the aggregate as it is now in `format`, gzipped when asked,
    /// handing `emit` chunks of about [`CHUNK`] bytes as they are made
    /// (`emit` returns false to stop: the client went away). Takes the
    /// aggregate's view under the shard locks and renders after they are
    /// released. Keeps what `--scrape-keep-bytes` allows. Blocking.
    /// Returns false if the render failed: what was emitted must not pass
    /// for a whole scrape.
    pub fn render_to(
        &self,
        aggregator: &Aggregator,
        format: Format,
        gzip: bool,
        emit: &mut dyn FnMut(bytes::Bytes) -> bool,
    ) -> bool {
        let _span = tracing::info_span!(target: crate::trace::STAGE, "encode", format = ?format, gzip, series = aggregator.series_count()).entered();
        let (views, generation) = aggregator.view();
        let families: Vec<(&str, &FamilyView)> = views.iter().map(|(n, v)| (&**n, v)).collect();
        let estimate: usize = families.iter().map(|(_, f)| f.len() * SERIES_BYTES).sum();
        // A plain rendering that will not be kept is not gathered either (a
        // gzipped one is about a twentieth: it may well be kept).
        let keep = (gzip || estimate <= self.keep_bytes).then_some(self.keep_bytes);
        let mut sink = Sink::new(gzip, emit, keep);
        let mut kept = self.families[format as usize].try_lock();
        match &mut kept {
            Some(kept) if estimate <= self.keep_bytes => {
                kept.held.walk(&families, |r| sink.shared(r));
                let now = kept.held.bytes();
                self.settle(&mut kept.charged, now);
            }
            other => {
                if let Some(kept) = other {
                    kept.held = FamilyRenderings::new(format);
                    self.settle(&mut kept.charged, 0);
                }
                drop(kept);
                let mut scratch = Vec::new();
                for (name, f) in &families {
                    if !sink.open {
                        return !sink.failed;
                    }
                    render_streaming(name, f, format, &mut sink, &mut scratch);
                }
            }
        }
        if sink.failed {
            return false;
        }
        finish(format, sink.buf());
        let Some(whole) = sink.finish() else {
            return true;
        };
        let body = Rendering::new(whole);
        let charged = body.len();
        self.memory.charge(charged);
        let old = self.slots.lock()[Self::slot(format, gzip)].replace(Slot {
            generation,
            body,
            charged,
        });
        if let Some(old) = old {
            self.memory.release(old.charged);
        }
        true
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Options, decode};
    use crate::encode::render::render_families;
    use crate::model::LabelRules;

    fn push(agg: &Aggregator, text: &str) {
        let rules = LabelRules::default();
        let opts = Options {
            labels: &rules,
            gauge_nan_ok: false,
            spend: None,
            windows: None,
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
        let cache = Cache::new(memory.clone(), 32 << 20);
        push(&agg, "a_total 1\nb_total 1\n");
        let stored = memory.used();
        let body = cache.render(&agg, Format::OpenMetrics, false).unwrap();
        assert!(memory.used() >= stored + body.len());
        agg.wipe();
        let body = cache.render(&agg, Format::OpenMetrics, false).unwrap();
        assert_eq!(memory.used(), body.len(), "only the empty scrape is held");
    }
}
