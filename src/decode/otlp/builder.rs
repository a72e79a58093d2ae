//! A request's families built point by point: named, labelled, given
//! their producers, points of one series combined.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;

use super::attributes::{Attributes, Labels, any_value, key_and_value, walk};
use super::kind::classify;
use super::names;
use super::points::{
    Point, Times, exponential_point, histogram_point, number_point, summary_point,
};
use super::producer::{PRODUCER_ID_BYTES, Producer, ResourceIdentity};
use crate::aggregate::GaugeMode;
use crate::decode::options::Options;
use crate::error::Rejection;
use crate::model::{Family, Kind, Meaning, Produced, Push, Series, SeriesKey, Value};
use crate::wire::{self, Reader, Wire};

/// What one entry of a request's series index costs (a position and its
/// control byte, with the table's slack).
const INDEX_ENTRY_BYTES: usize = 16;
/// Most points of one metric room is made for up front; more grow the
/// series as they come.
const MAX_RESERVED_POINTS: usize = 1 << 16;

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

pub(super) struct Builder<'o, 'a> {
    opts: &'o Options<'a>,
    settings: &'o Settings<'o>,
    gauge_mode: GaugeMode,
    families: Vec<FamilyBuilder>,
    by_name: HashMap<String, usize>,
    key: Vec<u8>,
    hasher: foldhash::fast::RandomState,
}

/// What a resource gives each of its points.
struct ResourceLabels<'b> {
    /// `job`, from `service.namespace/service.name`.
    job: Option<String>,
    /// The attributes `--otlp-promote-resource-attributes` names, as labels.
    promoted: Labels<'b>,
}

impl<'o, 'a> Builder<'o, 'a> {
    /// A request's families, none yet.
    pub(super) fn new(opts: &'o Options<'a>, settings: &'o Settings<'o>) -> Builder<'o, 'a> {
        Builder {
            opts,
            settings,
            gauge_mode: settings.gauge_mode,
            families: Vec::new(),
            by_name: HashMap::new(),
            key: Vec::new(),
            hasher: Default::default(),
        }
    }

    /// The push: families that got a series, each series' producer when
    /// any has one.
    pub(super) fn finish(self) -> Push {
        let cumulative = self.families.iter().any(|f| !f.producers.is_empty());
        let (families, producers) = self
            .families
            .into_iter()
            .filter(|f| !f.family.series.is_empty())
            .map(|f| (f.family, f.producers))
            .unzip();
        Push {
            families,
            producers: if cumulative { producers } else { Vec::new() },
        }
    }

    pub(super) fn resource_metrics(&mut self, bytes: &[u8]) -> Result<(), Rejection> {
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
        let (kind, suffix, meaning) =
            classify(kind_field, data, unit).map_err(|e| e.map_or_else(fail, malformed))?;
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
        let kind = self.families[at].family.kind;
        let value = point_value(kind, value, self.gauge_mode, stream.is_some(), meaning)?;
        self.opts
            .labels
            .write_key(kind, labels, &mut self.key)
            .map_err(Refused::Why)?;
        if let (Some((producer, t)), Some(claims)) = (window, self.opts.windows) {
            let name = &self.families[at].family.name;
            let new = claims
                .admit(producer, name, &self.key, t.start, t.time)
                .map_err(Refused::Limit)?;
            if !new {
                return Ok(());
            }
        }
        let producer = stream.as_ref().map(|(p, _)| p);
        let hash = series_hash(&self.hasher, &self.key, producer);
        let fb = &self.families[at];
        let found = fb
            .at
            .find(hash, |&i| {
                *fb.family.series[i].key == *self.key
                    && stream_producer(&fb.producers, i) == producer
            })
            .copied();
        match found {
            Some(i) => self.combine_point(at, i, value, stream, meaning),
            None => self.add_series(at, hash, value, stream, meaning),
        }
    }

    /// Combines a point with the one of the request already in series `i`
    /// of family `at`.
    #[inline]
    fn combine_point(
        &mut self,
        at: usize,
        i: usize,
        value: Value,
        stream: Option<(SeriesKey, Times)>,
        meaning: Option<Meaning>,
    ) -> Result<(), Refused> {
        let kind = self.families[at].family.kind;
        let FamilyBuilder {
            family,
            producers,
            times,
            ..
        } = &mut self.families[at];
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
        crate::aggregate::combine(rule, stored, value, max_native)
            .map_err(|e| Refused::Why(format!("series {}: {e}", describe())))
    }

    /// Adds a new series to family `at` (its key in `self.key`), charged
    /// with its place in the request's own index.
    #[inline]
    fn add_series(
        &mut self,
        at: usize,
        hash: u64,
        value: Value,
        stream: Option<(SeriesKey, Times)>,
        meaning: Option<Meaning>,
    ) -> Result<(), Refused> {
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
        let FamilyBuilder {
            family,
            at: index,
            producers,
            times,
        } = &mut self.families[at];
        let hasher = &self.hasher;
        index.insert_unique(hash, family.series.len(), |&i| {
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

/// A point's value as a series value, checked as its metric's type
/// requires (`stream`: a producer's running total or level, not a delta).
#[inline]
fn point_value(
    kind: Kind,
    value: Point,
    gauge_mode: GaugeMode,
    stream: bool,
    meaning: Option<Meaning>,
) -> Result<Value, Refused> {
    Ok(match value {
        Point::Number(v) => {
            if kind == Kind::Counter && !crate::model::is_count(v) {
                let what = if stream { "total" } else { "delta" };
                return Err(Refused::Why(format!(
                    "a monotonic sum's {what} must be a count, not {v}"
                )));
            }
            if kind == Kind::Gauge && v.is_nan() && gauge_mode == GaugeMode::Sum {
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
    })
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
