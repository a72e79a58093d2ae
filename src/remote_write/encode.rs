//! A view of the aggregate as remote-write requests: snappy-compressed
//! protobuf bodies of at most `max_samples` samples each.
//!
//! Series are named as a Prometheus scraping the text format would store
//! them (`x`, `x_bucket{le=...}`, `x_sum`, `x_count`), native histograms
//! as histogram samples; every sample of one send has the same timestamp.
//! Dropped series (expired, deleted, wiped) get a staleness marker (the
//! special NaN Prometheus itself writes) two milliseconds before it, in
//! requests sent first: a series dropped and pushed again within one
//! interval is then stale, then back, in time order.
//!
//! A counter, histogram or summary series the receiver has not had from
//! this process (new since the last send, or every series after a start
//! without a snapshot) gets a zero one millisecond before its value, in
//! requests sent before the values (and carried, as staleness markers
//! are, by a target that moves to a newer snapshot before sending them), as
//! Prometheus' own created-timestamp zero injection does: a replica that
//! restarted empty then reads as a counter reset even when its new total
//! has already passed the old one, so `increase()` and `rate()` stay
//! exact.
//!
//! The messages are written by hand rather than built as `prost` structs:
//! a send of a million series would otherwise allocate a string per label
//! and a struct per sample (see `bench/remote_write.sh` for the cost).

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;

pub use super::config::Protocol;
use crate::aggregate::{Dropped, FamilyView};
use crate::model::{Kind, NativeHistogram, Value, labels};
use crate::wire::{LEN, bytes as field_bytes, double, key, uint, varint};

/// The NaN Prometheus marks a series stale with.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// One request's body, compressed.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Snappy (block format) of the protobuf message.
    pub body: Bytes,
    /// Samples in it (a histogram counts one).
    pub samples: usize,
}

/// A snapshot as the requests of one protocol.
#[derive(Debug, Default)]
pub struct Encoded {
    /// Staleness markers, sent first.
    pub stale: Vec<Batch>,
    /// Zeros before the series new to the receiver, sent next.
    pub zeros: Vec<Batch>,
    /// The values.
    pub values: Vec<Batch>,
}

impl Encoded {
    /// Compressed bytes held.
    pub fn bytes(&self) -> usize {
        self.stale
            .iter()
            .chain(&self.zeros)
            .chain(&self.values)
            .map(|b| b.body.len())
            .sum()
    }
}

/// What every request of one snapshot shares.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The message.
    pub protocol: Protocol,
    /// Most samples in one request.
    pub max_samples: usize,
    /// The replica label and its value, added to every series.
    pub replica: Option<(&'a str, &'a str)>,
    /// The samples' timestamp, in milliseconds since the epoch.
    pub timestamp_ms: i64,
}

/// Identities of series (family name and key, hashed), to tell which
/// series a receiver has had.
pub type SeriesIds = hashbrown::HashSet<u64, foldhash::fast::FixedState>;

/// One series' identity in [`SeriesIds`].
pub fn series_id(family: &str, key: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x7061_675f_7277).hash_one((family, key))
}

/// Every series of `families`.
pub fn series_ids(families: &[(&str, &FamilyView)]) -> SeriesIds {
    let mut ids = SeriesIds::with_capacity_and_hasher(
        families.iter().map(|(_, f)| f.len()).sum(),
        foldhash::fast::FixedState::default(),
    );
    for (name, view) in families {
        ids.extend(view.series().map(|(key, _)| series_id(name, key)));
    }
    ids
}

/// The requests of one snapshot: `families` (sorted by name, as a view
/// gives them), a staleness marker for every `dropped` series, and a zero
/// for each counter-like series not in `sent` (those the receiver had
/// before).
pub fn encode(
    families: &[(&str, &FamilyView)],
    dropped: &[Dropped],
    sent: &SeriesIds,
    opts: Options<'_>,
) -> Encoded {
    let mut w = Writer::new(opts);
    w.timestamp = opts.timestamp_ms - 2;
    let mut key_pairs: Vec<(&[u8], Cow<'_, [u8]>)> = Vec::new();
    for d in dropped {
        key_pairs.clear();
        key_pairs.extend(labels::pairs(&d.key));
        let family = Family {
            name: &d.family,
            kind: d.kind,
            help: "",
        };
        let samples = Samples::Stale {
            bounds: d.bounds.as_deref(),
        };
        write_samples(&mut w, &family, &key_pairs, samples, None);
    }
    let stale = w.finish();
    let mut zeros = Writer::new(opts);
    zeros.timestamp = opts.timestamp_ms - 1;
    let mut w = Writer::new(opts);
    for (name, view) in families {
        let family = Family {
            name,
            kind: view.kind,
            help: &view.help,
        };
        let cumulative = matches!(view.kind, Kind::Counter | Kind::Histogram | Kind::Summary);
        for (key, series) in view.series() {
            key_pairs.clear();
            key_pairs.extend(labels::pairs(key));
            let created = series
                .created()
                .map(|c| c.div_euclid(1_000_000))
                .filter(|_| cumulative);
            if cumulative && !sent.contains(&series_id(name, key)) {
                let samples = Samples::Zero(&series.value);
                write_samples(&mut zeros, &family, &key_pairs, samples, created);
            }
            let samples = Samples::Value(&series.value);
            write_samples(&mut w, &family, &key_pairs, samples, created);
        }
    }
    Encoded {
        stale,
        zeros: zeros.finish(),
        values: w.finish(),
    }
}

struct Family<'a> {
    name: &'a str,
    kind: Kind,
    help: &'a str,
}

/// The samples of one stored series: its value, a zero of its shape, or
/// staleness markers for every sample it had (`bounds` as
/// [`Dropped::bounds`]: `None` for a native histogram, which gets one
/// float marker, as Prometheus writes).
enum Samples<'a> {
    Value(&'a Value),
    Zero(&'a Value),
    Stale { bounds: Option<&'a [f64]> },
}

/// What one output series carries.
#[derive(Clone, Copy)]
enum Out<'a> {
    Float(f64),
    Native(&'a NativeHistogram),
}

/// Writes every output series of one stored series.
fn write_samples(
    w: &mut Writer<'_>,
    family: &Family<'_>,
    key_pairs: &[(&[u8], Cow<'_, [u8]>)],
    samples: Samples<'_>,
    created: Option<i64>,
) {
    let name = family.name;
    let stale = f64::from_bits(STALE_NAN);
    let empty;
    let (sum, count, buckets): (f64, f64, Vec<(f64, f64)>) = match samples {
        Samples::Value(Value::Scalar(v)) => {
            return w.series(family, (name, ""), key_pairs, Out::Float(*v), created);
        }
        Samples::Zero(Value::Scalar(_)) => {
            return w.series(family, (name, ""), key_pairs, Out::Float(0.0), created);
        }
        Samples::Value(Value::Native(h)) => {
            return w.series(family, (name, ""), key_pairs, Out::Native(h), created);
        }
        Samples::Zero(Value::Native(h)) => {
            empty = NativeHistogram {
                schema: h.schema,
                zero_threshold: h.zero_threshold,
                ..NativeHistogram::default()
            };
            return w.series(family, (name, ""), key_pairs, Out::Native(&empty), created);
        }
        Samples::Value(Value::Summary { count, sum }) => (*sum, *count, Vec::new()),
        Samples::Zero(Value::Summary { .. }) => (0.0, 0.0, Vec::new()),
        Samples::Value(Value::Histogram(h)) => (
            h.sum,
            h.count,
            h.buckets.iter().map(|b| (b.le, b.count)).collect(),
        ),
        Samples::Zero(Value::Histogram(h)) => {
            (0.0, 0.0, h.buckets.iter().map(|b| (b.le, 0.0)).collect())
        }
        Samples::Stale {
            bounds: Some(bounds),
        } if matches!(family.kind, Kind::Histogram | Kind::Summary) => {
            (stale, stale, bounds.iter().map(|le| (*le, stale)).collect())
        }
        Samples::Stale { .. } => {
            return w.series(family, (name, ""), key_pairs, Out::Float(stale), None);
        }
    };
    let bucket = format!("{name}_bucket");
    for (le, v) in buckets {
        let le = crate::model::float::go(le);
        w.series(family, (&bucket, &le), key_pairs, Out::Float(v), created);
    }
    for (suffix, v) in [("_sum", sum), ("_count", count)] {
        let sample = format!("{name}{suffix}");
        w.series(family, (&sample, ""), key_pairs, Out::Float(v), created);
    }
}

/// The label the format adds to a sample: `le` on buckets.
const LE: &[u8] = b"le";
const NAME: &[u8] = b"__name__";

/// Builds the requests of one protocol, one batch at a time.
struct Writer<'a> {
    opts: Options<'a>,
    timestamp: i64,
    /// The batch's `timeseries` entries.
    body: Vec<u8>,
    samples: usize,
    /// 1.0: the batch's `metadata` entries; the family last given one.
    metadata: Vec<u8>,
    metadata_of: String,
    /// 2.0: the batch's symbols, by their bytes, and as `symbols` entries.
    symbols: HashMap<Vec<u8>, u32, foldhash::fast::RandomState>,
    symbol_entries: Vec<u8>,
    /// Scratch for one series.
    series: Vec<u8>,
    refs: Vec<u8>,
    inner: Vec<u8>,
    done: Vec<Batch>,
    /// `__name__` (0), `le` (1) and the replica label (2) in label order.
    added_order: [u8; 3],
    compressor: snap::raw::Encoder,
    /// The batch's message, and its compression, kept between batches.
    message: Vec<u8>,
    compressed: Vec<u8>,
}

impl<'a> Writer<'a> {
    fn new(opts: Options<'a>) -> Writer<'a> {
        let mut w = Writer {
            opts,
            timestamp: opts.timestamp_ms,
            body: Vec::new(),
            samples: 0,
            metadata: Vec::new(),
            metadata_of: String::new(),
            symbols: HashMap::default(),
            symbol_entries: Vec::new(),
            series: Vec::with_capacity(256),
            refs: Vec::with_capacity(64),
            inner: Vec::with_capacity(256),
            done: Vec::new(),
            added_order: {
                let replica = opts.replica.map_or(&b""[..], |(l, _)| l.as_bytes());
                let mut order = [0u8, 1, 2];
                order.sort_by_key(|&i| [NAME, LE, replica][usize::from(i)]);
                order
            },
            compressor: snap::raw::Encoder::new(),
            message: Vec::new(),
            compressed: Vec::new(),
        };
        w.reset_symbols();
        w
    }

    fn reset_symbols(&mut self) {
        self.symbols.clear();
        self.symbol_entries.clear();
        if self.opts.protocol == Protocol::V2 {
            // 2.0: symbols[0] is the empty string.
            self.symbol(b"");
        }
    }

    fn symbol(&mut self, s: &[u8]) -> u32 {
        if let Some(&r) = self.symbols.get(s) {
            return r;
        }
        let r = self.symbols.len() as u32;
        self.symbols.insert(s.to_vec(), r);
        field_bytes(&mut self.symbol_entries, 4, s);
        r
    }

    /// Writes one output series: its sample name and `le` (empty: none),
    /// the labels the format adds, beside `key_pairs`, the stored ones,
    /// sorted.
    fn series(
        &mut self,
        family: &Family<'_>,
        (sample_name, le): (&str, &str),
        key_pairs: &[(&[u8], Cow<'_, [u8]>)],
        out: Out<'_>,
        created: Option<i64>,
    ) {
        // The labels the format adds, in the order fixed when the writer
        // was made: no sort per series.
        let mut added: [(&[u8], &[u8]); 3] = [(b"", b""); 3];
        let mut n = 0;
        for slot in self.added_order {
            let pair: (&[u8], &[u8]) = match slot {
                0 => (NAME, sample_name.as_bytes()),
                1 if !le.is_empty() => (LE, le.as_bytes()),
                2 => match self.opts.replica {
                    Some((rname, rvalue)) => (rname.as_bytes(), rvalue.as_bytes()),
                    None => continue,
                },
                _ => continue,
            };
            added[n] = pair;
            n += 1;
        }
        let added = &added[..n];
        self.series.clear();
        self.refs.clear();
        // Merge the two sorted label lists.
        let (mut i, mut j) = (0, 0);
        while i < key_pairs.len() || j < added.len() {
            let take_key = j >= added.len() || (i < key_pairs.len() && key_pairs[i].0 < added[j].0);
            let (name, value): (&[u8], &[u8]) = if take_key {
                i += 1;
                (key_pairs[i - 1].0, &key_pairs[i - 1].1)
            } else {
                j += 1;
                added[j - 1]
            };
            self.label(name, value);
        }
        match self.opts.protocol {
            Protocol::V1 => self.finish_v1(family, out),
            Protocol::V2 => self.finish_v2(family, out, created),
        }
        self.samples += 1;
        if self.samples >= self.opts.max_samples {
            self.flush();
        }
    }

    fn label(&mut self, name: &[u8], value: &[u8]) {
        match self.opts.protocol {
            Protocol::V1 => {
                // Label { name = 1; value = 2 }, written in place: its
                // length is known (this runs for every label of every
                // series of every send).
                let len = 2
                    + prost::encoding::encoded_len_varint(name.len() as u64)
                    + name.len()
                    + prost::encoding::encoded_len_varint(value.len() as u64)
                    + value.len();
                let out = &mut self.series;
                out.reserve(len + 6);
                out.push(1 << 3 | LEN);
                varint(out, len as u64);
                field_bytes(out, 1, name);
                field_bytes(out, 2, value);
            }
            Protocol::V2 => {
                let n = self.symbol(name);
                let v = self.symbol(value);
                varint(&mut self.refs, u64::from(n));
                varint(&mut self.refs, u64::from(v));
            }
        }
    }

    /// The series' one sample (or histogram) into `self.series`.
    fn write_point(&mut self, out: Out<'_>, sample_field: u8, histogram_field: u8) {
        self.inner.clear();
        match out {
            Out::Float(v) => {
                double(&mut self.inner, 1, v);
                uint(&mut self.inner, 2, self.timestamp as u64);
                field_bytes(&mut self.series, sample_field, &self.inner);
            }
            Out::Native(h) => {
                native::native(&mut self.inner, h, self.timestamp);
                field_bytes(&mut self.series, histogram_field, &self.inner);
            }
        }
    }

    fn finish_v1(&mut self, family: &Family<'_>, out: Out<'_>) {
        // TimeSeries { labels = 1; samples = 2; histograms = 4 }
        self.write_point(out, 2, 4);
        field_bytes(&mut self.body, 1, &self.series);
        if (!family.help.is_empty() || family.kind != Kind::Untyped)
            && self.metadata_of != family.name
        {
            {
                self.metadata_of.clear();
                self.metadata_of.push_str(family.name);
                // MetricMetadata { type = 1; metric_family_name = 2; help = 4 }
                self.inner.clear();
                uint(&mut self.inner, 1, metric_type(family.kind));
                field_bytes(&mut self.inner, 2, family.name.as_bytes());
                if !family.help.is_empty() {
                    field_bytes(&mut self.inner, 4, family.help.as_bytes());
                }
                field_bytes(&mut self.metadata, 3, &self.inner);
            }
        }
    }

    fn finish_v2(&mut self, family: &Family<'_>, out: Out<'_>, created: Option<i64>) {
        // TimeSeries { labels_refs = 1 (packed); samples = 2;
        //   histograms = 3; metadata = 5; created_timestamp = 6 }
        key(&mut self.series, 1, LEN);
        varint(&mut self.series, self.refs.len() as u64);
        self.series.extend_from_slice(&self.refs);
        self.write_point(out, 2, 3);
        let help = if family.help.is_empty() {
            0
        } else {
            self.symbol(family.help.as_bytes())
        };
        // Metadata { type = 1; help_ref = 3 }
        self.inner.clear();
        uint(&mut self.inner, 1, metric_type(family.kind));
        if help != 0 {
            uint(&mut self.inner, 3, u64::from(help));
        }
        field_bytes(&mut self.series, 5, &self.inner);
        if let Some(c) = created.filter(|c| *c != 0) {
            uint(&mut self.series, 6, c as u64);
        }
        field_bytes(&mut self.body, 5, &self.series);
    }

    /// Closes the batch: compresses it and starts the next.
    fn flush(&mut self) {
        if self.samples == 0 {
            return;
        }
        // Both buffers are kept from batch to batch; the batch keeps an
        // exact copy (a compressed `Vec` would keep the capacity of the
        // uncompressed bound, several times its size).
        let message = &mut self.message;
        message.clear();
        match self.opts.protocol {
            Protocol::V1 => {
                message.extend_from_slice(&self.body);
                message.extend_from_slice(&self.metadata);
            }
            Protocol::V2 => {
                message.extend_from_slice(&self.symbol_entries);
                message.extend_from_slice(&self.body);
            }
        }
        self.compressed
            .resize(snap::raw::max_compress_len(message.len()), 0);
        let n = self
            .compressor
            .compress(message, &mut self.compressed)
            .expect("snappy compresses any input below 4 GiB");
        let body = Bytes::copy_from_slice(&self.compressed[..n]);
        self.done.push(Batch {
            body,
            samples: self.samples,
        });
        self.body.clear();
        self.metadata.clear();
        self.metadata_of.clear();
        self.samples = 0;
        self.reset_symbols();
    }

    fn finish(mut self) -> Vec<Batch> {
        self.flush();
        self.done
    }
}

/// The remote-write metric type of a family (1.0's `MetricType` and
/// 2.0's `Metadata.MetricType` share their numbers).
fn metric_type(kind: Kind) -> u64 {
    match kind {
        Kind::Untyped => 0,
        Kind::Counter => 1,
        Kind::Gauge => 2,
        Kind::Histogram => 3,
        Kind::Summary => 5,
    }
}

mod native;

#[cfg(test)]
mod tests;
