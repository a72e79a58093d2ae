//! OTLP metrics in: an `ExportMetricsServiceRequest` (protobuf) to a
//! [`Push`], walked straight off the wire as the Prometheus protobuf
//! decoder is, so a request costs the series it holds (charged as each is
//! built), never a copy of every message first.
//!
//! What becomes what (the README has the table):
//! - a monotonic delta sum adds to a counter (`_total`); a non-monotonic
//!   sum and a gauge are gauges;
//! - a delta histogram is a classic histogram (per-bucket counts made
//!   cumulative, `le` the explicit bounds and `+Inf`);
//! - a delta exponential histogram is a native histogram (scale as schema,
//!   finer scales than 8 merged down to 8, OTLP bucket `i` as Prometheus
//!   bucket `i + 1`: both cover `(base^i, base^(i+1)]`);
//! - a summary keeps its `_sum` and `_count` (quantiles do not add up);
//! - cumulative sums, histograms and exponential histograms, and summaries
//!   (always cumulative), are running totals: each series is given its
//!   producer's identity ([`Push::producers`]: a digest of the resource's
//!   attributes and the instrumentation scope), and the rules stage takes
//!   them as `total`, adding only what grew since that producer's last
//!   export (`start_time_unix_nano` as the creation time tells a restart).
//!
//! Names and labels follow [`names`]; the resource gives `job`
//! (`service.namespace/service.name`), and nothing else of it: the
//! attributes that name one producer (`service.instance.id`, host,
//! process) would keep every producer's points apart, and summing across
//! producers is the point. Points of one request that meet in one series
//! (two producers' deltas) are combined as a later push would be. The
//! request is applied whole or not at all.

pub mod json;
pub mod names;

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;

use super::options::Options;
use crate::aggregate::GaugeMode;
use crate::error::Rejection;
use crate::model::{
    Bucket, Family, Histogram, Kind, Meaning, NativeHistogram, Produced, Push, Series, SeriesKey,
    Value,
};
use crate::wire::{self, Reader, Wire};
use names::Suffix;

/// `AggregationTemporality`.
const DELTA: u64 = 1;
const CUMULATIVE: u64 = 2;
/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the point holds no value.
const NO_RECORDED_VALUE: u64 = 1;
/// What one entry of a request's series index costs (a position and its
/// control byte, with the table's slack).
const INDEX_ENTRY_BYTES: usize = 16;
/// Most points of one metric room is made for up front; more grow the
/// series as they come.
const MAX_RESERVED_POINTS: usize = 1 << 16;
/// Deepest nesting of array and map attribute values rendered.
const MAX_DEPTH: usize = 8;

/// How exports are read, from the gateway's flags.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'s> {
    /// How gauges of one request that meet in one series combine
    /// (`--gauge-mode`).
    pub gauge_mode: GaugeMode,
    /// Resource attributes given to every point as labels
    /// (`--otlp-promote-resource-attributes`).
    pub promote: &'s [String],
}

/// Decodes an `ExportMetricsServiceRequest`.
pub fn request(
    body: &[u8],
    opts: &Options<'_>,
    settings: &Settings<'_>,
) -> Result<Push, Rejection> {
    let malformed =
        |e: &str| Rejection::invalid(format!("not a valid OTLP ExportMetricsServiceRequest: {e}"));
    let mut out = Builder {
        opts,
        settings,
        gauge_mode: settings.gauge_mode,
        families: Vec::new(),
        by_name: HashMap::new(),
        key: Vec::new(),
        hasher: Default::default(),
    };
    let mut r = Reader::new(body);
    while let Some((field, w)) = r.field().map_err(malformed)? {
        if let (1, Wire::Bytes(rm)) = (field, w) {
            out.resource_metrics(rm)?;
        }
    }
    let cumulative = out.families.iter().any(|f| !f.producers.is_empty());
    let (families, producers) = out
        .families
        .into_iter()
        .filter(|f| !f.family.series.is_empty())
        .map(|f| (f.family, f.producers))
        .unzip();
    Ok(Push {
        families,
        producers: if cumulative { producers } else { Vec::new() },
    })
}

struct FamilyBuilder {
    family: Family,
    /// The family's series by key and producer (positions in
    /// `family.series`, hashed with `Builder::hasher`): the key is kept
    /// once, in the series.
    at: hashbrown::HashTable<usize>,
    /// Per series, its producer and what its point means (empty until the
    /// first one): see [`Push::producers`].
    producers: Vec<Option<Produced>>,
    /// Per series with a producer, its point's time: of one stream's two
    /// points in a request the later one is kept.
    times: Vec<u64>,
}

/// A resource's attributes, digested once when a cumulative metric of it
/// first needs its producer (not once per scope: a resource of many
/// attributes and many scopes costs its attributes once).
struct ResourceIdentity<'b> {
    attributes: Vec<&'b [u8]>,
    digest: Option<ring::digest::Context>,
}

impl ResourceIdentity<'_> {
    fn digest(&mut self) -> &ring::digest::Context {
        self.digest.get_or_insert_with(|| {
            // Sorted: the same attributes name the same producer in any
            // order.
            self.attributes.sort_unstable();
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            for a in &self.attributes {
                digest.update(&(a.len() as u64).to_le_bytes());
                digest.update(a);
            }
            digest
        })
    }
}

/// A running total's producer: the resource's attributes and the scope,
/// digested when a cumulative metric first needs it.
struct Producer<'r, 'b> {
    resource: &'r mut ResourceIdentity<'b>,
    scope: &'b [u8],
    id: Option<SeriesKey>,
}

/// Bytes of a producer's identity: a SHA-256 digest cut to 128 bits, so a
/// collision between producers is out of reach by chance (and a sender
/// able to craft one could as well push into the series directly).
const PRODUCER_ID_BYTES: usize = 16;

impl Producer<'_, '_> {
    fn id(&mut self) -> &SeriesKey {
        self.id.get_or_insert_with(|| {
            let mut digest = self.resource.digest().clone();
            digest.update(&[0xFF]);
            digest.update(self.scope);
            digest.finish().as_ref()[..PRODUCER_ID_BYTES].into()
        })
    }
}

/// The times of one data point (nanoseconds since the epoch, 0 unset).
#[derive(Debug, Clone, Copy, Default)]
struct Times {
    /// `start_time_unix_nano`: when a running total started.
    start: u64,
    /// `time_unix_nano`: when the point was taken.
    time: u64,
}

/// The labels of one point: borrowed from the request where they can be.
type Labels<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

struct Builder<'o, 'a> {
    opts: &'o Options<'a>,
    settings: &'o Settings<'o>,
    gauge_mode: GaugeMode,
    families: Vec<FamilyBuilder>,
    by_name: HashMap<String, usize>,
    key: Vec<u8>,
    hasher: foldhash::fast::RandomState,
}

impl Times {
    /// Takes `field` of a data point when it is one of its times (fields 2
    /// and 3 in every kind of point); whether it was.
    fn take(&mut self, field: u32, w: Wire<'_>) -> bool {
        match (field, w) {
            (2, Wire::Fixed64(t)) => self.start = t,
            (3, Wire::Fixed64(t)) => self.time = t,
            _ => return false,
        }
        true
    }
}

/// A data point's value, before it is named.
enum Point {
    Number(f64),
    Histogram(Histogram),
    Native(NativeHistogram),
    Summary { count: f64, sum: f64 },
}

/// What a resource gives each of its points.
struct ResourceLabels<'b> {
    /// `job`, from `service.namespace/service.name`.
    job: Option<String>,
    /// The attributes `--otlp-promote-resource-attributes` names, as labels.
    promoted: Labels<'b>,
}

impl Builder<'_, '_> {
    fn resource_metrics(&mut self, bytes: &[u8]) -> Result<(), Rejection> {
        let malformed = |e: &str| Rejection::invalid(format!("malformed ResourceMetrics: {e}"));
        let mut resource = ResourceLabels {
            job: None,
            promoted: Vec::new(),
        };
        let (mut name, mut namespace) = (None, None);
        let mut identity = ResourceIdentity {
            attributes: Vec::new(),
            digest: None,
        };
        let most = self.opts.labels.limits().max_label_value_length;
        for item in walk(bytes) {
            let (field, w) = item.map_err(malformed)?;
            if let (1, Wire::Bytes(attrs)) = (field, w) {
                for item in walk(attrs) {
                    let (f, w) = item.map_err(malformed)?;
                    if let (1, Wire::Bytes(kv)) = (f, w) {
                        // The producer's list holds a reference per
                        // attribute: an export of millions of empty ones
                        // pays for it.
                        self.opts.charge_bytes(std::mem::size_of::<&[u8]>(), 0)?;
                        identity.attributes.push(kv);
                        let (key, value) = key_and_value(kv).map_err(malformed)?;
                        let promoted = self.settings.promote.iter().any(|p| p == key);
                        // Only what becomes a label is rendered: the
                        // others are dropped, and rendering them would
                        // cost what nobody keeps.
                        if !promoted && !matches!(key, "service.name" | "service.namespace") {
                            continue;
                        }
                        let value = any_value(value, 0, most).map_err(|e| {
                            Rejection::invalid(format!("resource attribute {key:?}: {e}"))
                        })?;
                        if promoted {
                            resource
                                .promoted
                                .push((names::label_name(key), value.clone()));
                        }
                        match key {
                            "service.name" => name = Some(value),
                            "service.namespace" => namespace = Some(value),
                            _ => {}
                        }
                    }
                }
            }
        }
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            resource.job = Some(match namespace.filter(|n| !n.is_empty()) {
                Some(ns) => format!("{ns}/{name}"),
                None => name.into_owned(),
            });
        }
        for item in walk(bytes) {
            let (field, w) = item.map_err(malformed)?;
            if let (2, Wire::Bytes(scope_metrics)) = (field, w) {
                let mut producer = Producer {
                    resource: &mut identity,
                    scope: &[],
                    id: None,
                };
                for item in walk(scope_metrics) {
                    let (f, w) = item.map_err(malformed)?;
                    match (f, w) {
                        (1, Wire::Bytes(scope)) => producer.scope = scope,
                        (2, Wire::Bytes(metric)) => {
                            self.metric(metric, &resource, &mut producer)?;
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn metric<'r, 'b: 'r>(
        &mut self,
        bytes: &'b [u8],
        resource: &'r ResourceLabels<'b>,
        producer: &mut Producer<'_, '_>,
    ) -> Result<(), Rejection> {
        let (mut name, mut help, mut unit) = ("", "", "");
        let mut data: Option<(u32, &[u8])> = None;
        let malformed = |e: &str| Rejection::invalid(format!("malformed Metric: {e}"));
        for item in walk(bytes) {
            let (field, w) = item.map_err(malformed)?;
            match (field, w) {
                (1, w) => name = wire::string(w).map_err(malformed)?,
                (2, w) => help = wire::string(w).map_err(malformed)?,
                (3, w) => unit = wire::string(w).map_err(malformed)?,
                (5 | 7 | 9 | 10 | 11, Wire::Bytes(b)) => data = Some((field, b)),
                _ => {}
            }
        }
        let fail = |reason: String| Rejection::invalid(format!("OTLP metric {name:?}: {reason}"));
        let Some((kind_field, data)) = data else {
            return Err(fail(
                "no data (gauge, sum, histogram, exponential histogram or summary)".into(),
            ));
        };
        let (mut temporality, mut monotonic) = (0, false);
        for item in walk(data) {
            let (field, w) = item.map_err(malformed)?;
            match (field, w) {
                (2, Wire::Varint(v)) => temporality = v,
                (3, Wire::Varint(v)) => monotonic = v != 0,
                _ => {}
            }
        }
        let (kind, suffix) = match kind_field {
            5 => (Kind::Gauge, gauge_suffix(unit)),
            7 if monotonic => (Kind::Counter, Suffix::Total),
            7 => (Kind::Gauge, gauge_suffix(unit)),
            9 | 10 => (Kind::Histogram, Suffix::None),
            _ => (Kind::Summary, Suffix::None),
        };
        // What a point means: gauges, and non-monotonic sums but delta
        // ones, are each producer's level; a delta non-monotonic sum is a
        // change of one; other cumulative points (and summaries, always)
        // are running totals; other deltas add as pushed.
        let meaning = match (kind_field, monotonic, temporality) {
            (5, ..) => Some(Meaning::Level),
            (7, false, DELTA) => Some(Meaning::Increment),
            (7, false, _) => Some(Meaning::Level),
            (11, ..) => Some(Meaning::Total),
            (_, _, DELTA) => None,
            (_, _, CUMULATIVE) => Some(Meaning::Total),
            (_, _, t) => {
                return Err(fail(format!(
                    "aggregation temporality {t} is not DELTA or CUMULATIVE"
                )));
            }
        };
        let stream_of = matches!(meaning, Some(Meaning::Total | Meaning::Level));
        let prom_name = names::metric_name(name, unit, suffix)
            .ok_or_else(|| fail("no valid character in the name".into()))?;
        let family = self.family(&prom_name, help, kind)?;
        self.reserve(family, data)?;
        let mut labels: Labels<'r> = Vec::new();
        for item in walk(data) {
            let (field, w) = item.map_err(malformed)?;
            let (1, Wire::Bytes(point)) = (field, w) else {
                continue;
            };
            labels.clear();
            let limits = self.opts.labels.limits();
            let mut times = Times::default();
            let mut attrs = Attributes {
                labels: &mut labels,
                most: limits.max_label_value_length,
            };
            let value = match kind_field {
                5 | 7 => number_point(point, &mut attrs, &mut times).map_err(String::from),
                9 => histogram_point(point, &mut attrs, &mut times, limits.max_buckets),
                10 => exponential_point(point, &mut attrs, &mut times, limits.max_native_buckets),
                _ => summary_point(point, &mut attrs, &mut times),
            }
            .map_err(fail)?;
            let Some(value) = value else { continue };
            // A point's own attribute wins over a promoted one of its name;
            // the resource's job wins over both.
            for (name, value) in &resource.promoted {
                if !labels.iter().any(|(n, _)| n == name) {
                    labels.push((name.clone(), value.clone()));
                }
            }
            if let Some(job) = &resource.job {
                labels.retain(|(n, _)| n != "job");
                labels.push((Cow::Borrowed("job"), Cow::Borrowed(job)));
            }
            let stream = stream_of.then(|| (producer.id().clone(), times));
            // A delta's window, checked against those counted already.
            let window =
                (!stream_of && self.opts.windows.is_some()).then(|| (&**producer.id(), times));
            self.series(family, value, &mut labels, stream, meaning, window)
                .map_err(|e| match e {
                    Refused::Why(e) => Rejection::invalid(format!("metric {prom_name}: {e}")),
                    Refused::Limit(r) => r,
                })?;
        }
        Ok(())
    }

    /// Room in family `at` for the points of `data`, so that thousands of
    /// points do not grow the series and their index step by step
    /// (measured: a tenth of the instructions). The room is charged first:
    /// points that make no series (no value, or repeated) must not reserve
    /// memory nobody pays for.
    fn reserve(&mut self, at: usize, data: &[u8]) -> Result<(), Rejection> {
        let points = Reader::new(data)
            .fields()
            .filter(|(f, _)| *f == 1)
            .count()
            .min(self.opts.labels.limits().max_series_per_push)
            .min(MAX_RESERVED_POINTS);
        let room = std::mem::size_of::<Series>() + INDEX_ENTRY_BYTES;
        self.opts.charge_bytes(points.saturating_mul(room), 0)?;
        let FamilyBuilder {
            family,
            at,
            producers,
            ..
        } = &mut self.families[at];
        family.series.reserve(points);
        let hasher = &self.hasher;
        at.reserve(points, |&i| index_hash(hasher, family, producers, i));
        Ok(())
    }

    /// The family named `name`, made on first use; a second metric of
    /// another type under the same name is refused.
    fn family(&mut self, name: &str, help: &str, kind: Kind) -> Result<usize, Rejection> {
        if let Some(&i) = self.by_name.get(name) {
            let stored = self.families[i].family.kind;
            if stored != kind {
                return Err(Rejection::invalid(format!(
                    "metric {name}: sent as {} and as {} in one request",
                    stored.as_str(),
                    kind.as_str()
                )));
            }
            return Ok(i);
        }
        self.opts.charge_family(name, help)?;
        self.by_name.insert(name.to_string(), self.families.len());
        self.families.push(FamilyBuilder {
            family: Family {
                name: name.to_string(),
                help: help.to_string(),
                kind,
                series: Vec::new(),
            },
            at: hashbrown::HashTable::new(),
            producers: Vec::new(),
            times: Vec::new(),
        });
        Ok(self.families.len() - 1)
    }

    /// Adds one point's series to family `at`, combined with a point of
    /// the request already in that series: deltas (`stream` is `None`) are
    /// added (or kept by the gauge mode; changes of a level always added)
    /// unless their `window` (producer and times) was counted already;
    /// of one producer's running total or level (`stream`: the producer
    /// and the point's times) the later point is kept.
    fn series(
        &mut self,
        at: usize,
        value: Point,
        labels: &mut Labels<'_>,
        stream: Option<(SeriesKey, Times)>,
        meaning: Option<Meaning>,
        window: Option<(&[u8], Times)>,
    ) -> Result<(), Refused> {
        let fb = &mut self.families[at];
        let kind = fb.family.kind;
        let value = match value {
            Point::Number(v) => {
                if kind == Kind::Counter && !crate::model::is_count(v) {
                    let what = if stream.is_some() { "total" } else { "delta" };
                    return Err(Refused::Why(format!(
                        "a monotonic sum's {what} must be a count, not {v}"
                    )));
                }
                if kind == Kind::Gauge && v.is_nan() && self.gauge_mode == GaugeMode::Sum {
                    return Err(Refused::Why(
                        "NaN gauge value while gauges are summed (--gauge-mode sum)".into(),
                    ));
                }
                if meaning == Some(Meaning::Increment) && !v.is_finite() {
                    return Err(Refused::Why(format!(
                        "a delta non-monotonic sum's change must be finite, not {v}"
                    )));
                }
                Value::Scalar(v)
            }
            Point::Histogram(h) => Value::Histogram(Box::new(h)),
            Point::Native(h) => Value::Native(Box::new(h)),
            Point::Summary { count, sum } => Value::Summary { count, sum },
        };
        self.opts
            .labels
            .write_key(kind, labels, &mut self.key)
            .map_err(Refused::Why)?;
        if let (Some((producer, t)), Some(claims)) = (window, self.opts.windows) {
            let name = &fb.family.name;
            let new = claims
                .admit(producer, name, &self.key, t.start, t.time)
                .map_err(Refused::Limit)?;
            if !new {
                return Ok(());
            }
        }
        let producer = stream.as_ref().map(|(p, _)| p);
        let hash = series_hash(&self.hasher, &self.key, producer);
        let FamilyBuilder {
            family,
            at,
            producers,
            times,
        } = fb;
        let producer_of = |i: usize| stream_producer(producers, i);
        let found = at
            .find(hash, |&i| {
                *family.series[i].key == *self.key && producer_of(i) == producer
            })
            .copied();
        if let Some(i) = found {
            let stored = &mut family.series[i].value;
            let describe = || crate::model::labels::describe(&self.key);
            if std::mem::discriminant(stored) != std::mem::discriminant(&value) {
                return Err(Refused::Why(format!(
                    "series {} sent as a classic and a native histogram in one request",
                    describe()
                )));
            }
            if let Some((_, t)) = stream {
                // One stream twice (a batch of two exports): the later
                // running total holds the earlier.
                if t.time >= times[i] {
                    self.opts.charge(0, &value).map_err(Refused::Limit)?;
                    *stored = value;
                    if meaning == Some(Meaning::Total) {
                        family.series[i].created = created(t.start);
                    }
                    times[i] = t.time;
                    if let Some(Some(p)) = producers.get_mut(i) {
                        p.time = t.time;
                    }
                }
                return Ok(());
            }
            // The same checks as a merge across requests: points of one
            // request must not make what no push could store.
            let rule = match meaning {
                // Changes of a level add up, as gauges summed do.
                Some(Meaning::Increment) => crate::aggregate::merge_rule(kind, GaugeMode::Sum),
                _ => crate::aggregate::merge_rule(kind, self.gauge_mode),
            };
            let max_native = self.opts.labels.limits().max_native_buckets;
            return crate::aggregate::combine(rule, stored, value, max_native)
                .map_err(|e| Refused::Why(format!("series {}: {e}", describe())));
        }
        self.opts
            .charge(self.key.len(), &value)
            .map_err(Refused::Limit)?;
        // The request's own index of its series: a table slot, and a
        // running total's producer.
        let extra = if stream.is_some() {
            PRODUCER_ID_BYTES + 16
        } else {
            0
        };
        self.opts
            .charge_bytes(INDEX_ENTRY_BYTES + extra, 0)
            .map_err(Refused::Limit)?;
        let hasher = &self.hasher;
        at.insert_unique(hash, family.series.len(), |&i| {
            index_hash(hasher, family, producers, i)
        });
        let mut created_at = None;
        match (stream, meaning) {
            (Some((p, t)), Some(meaning)) => {
                producers.resize(family.series.len(), None);
                times.resize(family.series.len(), 0);
                producers.push(Some(Produced {
                    producer: p,
                    meaning,
                    time: t.time,
                }));
                times.push(t.time);
                // A level's start time is not a creation time: gauges
                // have none.
                if meaning == Meaning::Total {
                    created_at = created(t.start);
                }
            }
            (None, Some(Meaning::Increment)) => {
                producers.resize(family.series.len(), None);
                times.resize(family.series.len(), 0);
                producers.push(Some(Produced {
                    producer: SeriesKey::default(),
                    meaning: Meaning::Increment,
                    time: 0,
                }));
                times.push(0);
            }
            _ if !producers.is_empty() => {
                producers.push(None);
                times.push(0);
            }
            _ => {}
        }
        family.series.push(Series {
            key: self.key.as_slice().into(),
            value,
            created: created_at,
        });
        Ok(())
    }
}

/// Why a point's series was refused: a reason about the point (400, named
/// with its metric), or a limit whose own rejection is the answer (413,
/// 429).
enum Refused {
    Why(String),
    Limit(Rejection),
}

/// The hash a series is indexed by in its family: of its key, and of its
/// producer for a running total (many producers' totals share a key).
fn series_hash(hasher: &impl BuildHasher, key: &[u8], producer: Option<&SeriesKey>) -> u64 {
    match producer {
        Some(p) => hasher.hash_one((key, &**p)),
        None => hasher.hash_one(key),
    }
}

/// [`series_hash`] of series `i` of a family being built.
fn index_hash(
    hasher: &impl BuildHasher,
    family: &Family,
    producers: &[Option<Produced>],
    i: usize,
) -> u64 {
    series_hash(hasher, &family.series[i].key, stream_producer(producers, i))
}

/// The producer of series `i` when its points are one producer's stream
/// (a running total or a level): series of other producers are apart.
fn stream_producer(producers: &[Option<Produced>], i: usize) -> Option<&SeriesKey> {
    producers
        .get(i)
        .and_then(Option::as_ref)
        .filter(|p| p.meaning != Meaning::Increment)
        .map(|p| &p.producer)
}

/// A point's start time as a creation time (unset: none).
fn created(start: u64) -> Option<crate::model::Created> {
    i64::try_from(start).ok().filter(|&s| s > 0)
}

fn gauge_suffix(unit: &str) -> Suffix {
    if unit == "1" {
        Suffix::Ratio
    } else {
        Suffix::None
    }
}

/// The fields of a message; the first malformed one ends the walk with
/// its error (the request is then refused whole, so nothing read before it
/// is kept).
fn walk(bytes: &[u8]) -> impl Iterator<Item = Result<(u32, Wire<'_>), &'static str>> {
    let mut r = Reader::new(bytes);
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let next = r.field().transpose();
        failed = matches!(next, Some(Err(_)));
        next
    })
}

/// A `KeyValue`: its key, and its `AnyValue`'s bytes, not yet rendered.
fn key_and_value(bytes: &[u8]) -> Result<(&str, &[u8]), &'static str> {
    let (mut key, mut value): (&str, &[u8]) = ("", &[]);
    for item in walk(bytes) {
        let (field, w) = item?;
        match (field, w) {
            (1, w) => key = wire::string(w)?,
            (2, Wire::Bytes(v)) => value = v,
            _ => {}
        }
    }
    Ok((key, value))
}

/// Why a rendered attribute value is refused past its limit.
const TOO_LONG: &str = "attribute value longer than --max-label-value-length";

/// An `AnyValue` as a label value of at most `most` bytes: strings as they
/// are, booleans and numbers as written, bytes in base64, arrays and maps
/// as JSON (as Prometheus renders them). A rendering is refused as soon as
/// it passes `most`, before more is allocated: each level of nesting
/// escapes the level below, so an unbounded rendering doubles per level
/// (a 1 KiB request once rendered to 400 MiB).
fn any_value(bytes: &[u8], depth: usize, most: usize) -> Result<Cow<'_, str>, &'static str> {
    if depth > MAX_DEPTH {
        return Err("attribute value nested too deep");
    }
    let mut out = Cow::Borrowed("");
    for item in walk(bytes) {
        let (field, w) = item?;
        out = match (field, w) {
            (1, w) => Cow::Borrowed(wire::string(w)?),
            (2, Wire::Varint(v)) => Cow::Owned((v != 0).to_string()),
            (3, Wire::Varint(v)) => Cow::Owned((v as i64).to_string()),
            (4, Wire::Fixed64(v)) => Cow::Owned(crate::model::float::go(f64::from_bits(v))),
            (5, Wire::Bytes(array)) => {
                let mut json = Rendering::new(most);
                json.raw(b"[")?;
                let mut first = true;
                for item in walk(array) {
                    let (f, w) = item?;
                    if let (1, Wire::Bytes(item)) = (f, w) {
                        if !first {
                            json.raw(b",")?;
                        }
                        first = false;
                        json.string(&any_value(item, depth + 1, most)?)?;
                    }
                }
                json.raw(b"]")?;
                Cow::Owned(json.finish()?)
            }
            (6, Wire::Bytes(list)) => {
                // As a JSON object with sorted keys, the last of a key
                // kept: the pairs' renderings are held until sorted, so
                // they are held to `most` together.
                let mut pairs: Vec<(&str, Cow<'_, str>)> = Vec::new();
                let mut held = 2;
                for item in walk(list) {
                    let (f, w) = item?;
                    if let (1, Wire::Bytes(kv)) = (f, w) {
                        let (k, v) = key_and_value(kv)?;
                        let v = any_value(v, depth + 1, most)?;
                        held += k.len() + v.len() + 6;
                        if held > most {
                            return Err(TOO_LONG);
                        }
                        pairs.push((k, v));
                    }
                }
                pairs.sort_by(|a, b| a.0.cmp(b.0));
                let mut json = Rendering::new(most);
                json.raw(b"{")?;
                let mut first = true;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if pairs.get(i + 1).is_some_and(|next| next.0 == *k) {
                        continue;
                    }
                    if !first {
                        json.raw(b",")?;
                    }
                    first = false;
                    json.string(k)?;
                    json.raw(b":")?;
                    json.string(v)?;
                }
                json.raw(b"}")?;
                Cow::Owned(json.finish()?)
            }
            (7, Wire::Bytes(b)) => {
                use base64::Engine;
                if b.len().div_ceil(3) * 4 > most {
                    return Err(TOO_LONG);
                }
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b))
            }
            _ => continue,
        };
    }
    Ok(out)
}

/// A JSON rendering that refuses to grow past `most` bytes.
struct Rendering {
    out: Vec<u8>,
    most: usize,
}

impl Rendering {
    fn new(most: usize) -> Rendering {
        Rendering {
            out: Vec::new(),
            most,
        }
    }

    fn raw(&mut self, b: &[u8]) -> Result<(), &'static str> {
        std::io::Write::write_all(self, b).map_err(|_| TOO_LONG)
    }

    /// `s` as a JSON string, escaped as serde_json escapes it.
    fn string(&mut self, s: &str) -> Result<(), &'static str> {
        serde_json::to_writer(&mut *self, s).map_err(|_| TOO_LONG)
    }

    fn finish(self) -> Result<String, &'static str> {
        String::from_utf8(self.out).map_err(|_| "attribute value is not UTF-8")
    }
}

impl std::io::Write for Rendering {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + b.len() > self.most {
            return Err(std::io::Error::other(TOO_LONG));
        }
        self.out.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The labels of a point being read, and the longest rendered attribute
/// value they take (`--max-label-value-length`).
struct Attributes<'l, 'a> {
    labels: &'l mut Labels<'a>,
    most: usize,
}

/// Appends the label of one attribute `KeyValue`.
fn attribute<'a>(bytes: &'a [u8], attrs: &mut Attributes<'_, 'a>) -> Result<(), &'static str> {
    let (key, value) = match string_attribute(bytes) {
        Some((key, value)) => (key, Cow::Borrowed(value)),
        None => {
            let (key, value) = key_and_value(bytes)?;
            (key, any_value(value, 0, attrs.most)?)
        }
    };
    attrs.labels.push((names::label_name(key), value));
    Ok(())
}

/// A `KeyValue` laid out as every SDK writes a string attribute (key, then
/// a value holding only `string_value`), read without the general walk: the
/// most frequent message of an export. `None` for anything else.
fn string_attribute(bytes: &[u8]) -> Option<(&str, &str)> {
    // Lengths below 128 (one byte); longer ones take the general path.
    let short = |b: &[u8], tag: u8| -> Option<(usize, usize)> {
        match b {
            [t, n, ..] if *t == tag && *n < 0x80 && b.len() >= 2 + usize::from(*n) => {
                Some((2, 2 + usize::from(*n)))
            }
            _ => None,
        }
    };
    let (start, end) = short(bytes, 0x0A)?;
    let key = &bytes[start..end];
    let rest = &bytes[end..];
    let (vstart, vend) = short(rest, 0x12)?;
    if vend != rest.len() {
        return None;
    }
    let any = &rest[vstart..vend];
    let (sstart, send) = short(any, 0x0A)?;
    if send != any.len() {
        return None;
    }
    Some((
        std::str::from_utf8(key).ok()?,
        std::str::from_utf8(&any[sstart..send]).ok()?,
    ))
}

/// Whether a point's flags say it holds no value.
fn no_value(flags: u64) -> bool {
    flags & NO_RECORDED_VALUE != 0
}

/// A `NumberDataPoint`: its value, or `None` for a point without one.
fn number_point<'a>(
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
fn packed64(w: Wire<'_>, out: &mut Vec<u64>, most: usize) -> Result<(), &'static str> {
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
fn histogram_point<'a>(
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
fn exponential_buckets(bytes: &[u8], shift: u32, most: usize) -> Result<Vec<(i32, f64)>, String> {
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
fn exponential_point<'a>(
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
fn summary_point<'a>(
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
    super::options::check_summary(count, sum).map_err(|e| format!("summary {e}"))?;
    Ok(Some(Point::Summary { count, sum }))
}

#[cfg(test)]
mod tests;
