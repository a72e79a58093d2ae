//! Per-source state of `total` rules: each source's last cumulative value,
//! so a push adds only what grew since that source's previous push. And of
//! `latest` rules ([`Levels`]): each source's latest value per output
//! series, so the output is their combination over the sources alive.
//!
//! Kept per family name in the family's shard, beside the family but not
//! inside it: a source outlives the output series it feeds (an expired or
//! deleted output series restarts from the increase, which `increase()`
//! reads as a counter reset, rather than from the source's whole running
//! total). A source is forgotten after its rule's `source_ttl`, or by a
//! wipe.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::model::{Created, Value};
use crate::rules::{Combine, RuleStats};

/// What a tracked source costs beside its identity and its value's heap
/// parts: the map entry and its slack, the stats handle.
pub(crate) const SOURCE_OVERHEAD: usize = 128;

/// Bytes a source with an identity of `id_len` bytes and this value is
/// charged.
pub(crate) fn source_bytes(id_len: usize, value: &Value) -> usize {
    SOURCE_OVERHEAD + id_len + value.heap_bytes()
}

/// A source's identity in its family: the output series' key, a byte
/// 0xFF (never in UTF-8, so never in a key), the source labels' key.
pub(crate) fn source_id(output: &[u8], source: &[u8]) -> Box<[u8]> {
    let mut id = Vec::with_capacity(output.len() + 1 + source.len());
    id.extend_from_slice(output);
    id.push(0xFF);
    id.extend_from_slice(source);
    id.into()
}

/// One tracked source as a snapshot writes it.
pub(crate) struct SourceRow<'a> {
    /// The output series' key.
    pub(crate) output: &'a [u8],
    /// The source labels' key.
    pub(crate) source: &'a [u8],
    /// Its last value and creation time, as a series.
    pub(crate) series: super::stored::StoredSeries,
    /// Seconds until it is forgotten.
    pub(crate) left: u32,
    /// The name of the rule that last took it.
    pub(crate) rule: &'a str,
    /// When its last point was taken (0 unknown).
    pub(crate) time: u64,
    /// Its restarts and replays (a `total` source's).
    pub(crate) history: History,
}

/// The output key and the source key of an identity.
pub(crate) fn split_id(id: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(0xFF, id) {
        Some(at) => (&id[..at], &id[at + 1..]),
        None => (id, &[]),
    }
}

/// One source's last pushed cumulative value.
#[derive(Debug, Clone)]
pub(crate) struct SourceState {
    /// The value as the source last pushed it (all its series for this
    /// output added up).
    pub(crate) value: Value,
    /// The creation time it last pushed, if any.
    pub(crate) created: Option<Created>,
    /// When its last point was taken (nanoseconds since the epoch; 0 when
    /// the push did not say: every format but OTLP).
    pub(crate) time: u64,
    /// When it is forgotten, in seconds of the aggregate's clock.
    pub(crate) expires: u32,
    /// The self-metrics of the rule that last took it.
    pub(crate) stats: Arc<RuleStats>,
    /// What the source did since it was first tracked (not in snapshots).
    pub(crate) history: History,
}

/// A source's restarts and replays, for the series view ("why did this
/// jump?").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct History {
    /// Restarts detected.
    pub(crate) resets: u32,
    /// Points dropped as replays.
    pub(crate) replays: u32,
    /// Why the last restart was taken for one.
    pub(crate) last_reset: Option<ResetWhy>,
}

/// What told a source's restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResetWhy {
    /// Its running total went down.
    LowerValue,
    /// Its start time moved later.
    LaterStart,
}

impl ResetWhy {
    /// As the series view says it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ResetWhy::LowerValue => "lower value",
            ResetWhy::LaterStart => "later start time",
        }
    }
}

/// The sources of one family. Behind an `Arc` in the shard: a snapshot
/// holds it without a copy; the next push copies it once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    /// `total` sources, by [`source_id`].
    pub(crate) by_id: HashMap<Box<[u8]>, SourceState, RandomState>,
    /// `latest` sources, by output series key.
    pub(crate) levels: HashMap<Box<[u8]>, Levels, RandomState>,
}

/// What an output series of a `latest` rule costs beside its key: the map
/// entry, the list's header and slack.
const LEVELS_OVERHEAD: usize = 96;
/// What one `latest` source costs beside its key.
const LEVEL_OVERHEAD: usize = 48;

/// The live sources of one `latest` output series.
#[derive(Debug, Clone)]
pub(crate) struct Levels {
    /// How their values combine.
    pub(crate) combine: Combine,
    /// By source key (and producer).
    pub(crate) sources: SourceSet,
    /// Pushes to it so far: the newest source has the highest `seq`.
    seq: u64,
}

/// Up to this many sources of an output are kept in a list (most outputs
/// have one: an OTLP producer's level); more in a map. A map per output
/// cost a 100k-series export of gauges a fifth more, and the heap it left
/// slowed later allocations.
const FEW_SOURCES: usize = 8;

/// The sources of one `latest` output.
#[derive(Debug, Clone)]
pub(crate) enum SourceSet {
    Few(Vec<(Box<[u8]>, Level)>),
    Many(HashMap<Box<[u8]>, Level, RandomState>),
}

impl SourceSet {
    fn new() -> SourceSet {
        SourceSet::Few(Vec::with_capacity(1))
    }

    pub(crate) fn contains(&self, source: &[u8]) -> bool {
        match self {
            SourceSet::Few(v) => v.iter().any(|(k, _)| **k == *source),
            SourceSet::Many(m) => m.contains_key(source),
        }
    }

    fn get_mut(&mut self, source: &[u8]) -> Option<&mut Level> {
        match self {
            SourceSet::Few(v) => v.iter_mut().find(|(k, _)| **k == *source).map(|(_, l)| l),
            SourceSet::Many(m) => m.get_mut(source),
        }
    }

    /// Adds a source not in the set.
    fn insert_new(&mut self, source: Box<[u8]>, level: Level) {
        match self {
            SourceSet::Few(v) if v.len() < FEW_SOURCES => v.push((source, level)),
            SourceSet::Few(v) => {
                let mut m: HashMap<_, _, RandomState> = std::mem::take(v).into_iter().collect();
                m.insert(source, level);
                *self = SourceSet::Many(m);
            }
            SourceSet::Many(m) => {
                m.insert(source, level);
            }
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&[u8], &Level) -> bool) {
        match self {
            SourceSet::Few(v) => v.retain(|(k, l)| keep(k, l)),
            SourceSet::Many(m) => m.retain(|k, l| keep(k, l)),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &Level)> {
        let (few, many) = match self {
            SourceSet::Few(v) => (Some(v.iter().map(|(k, l)| (&**k, l))), None),
            SourceSet::Many(m) => (None, Some(m.iter().map(|(k, l)| (&**k, l)))),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }

    fn values(&self) -> impl Iterator<Item = &Level> {
        self.iter().map(|(_, l)| l)
    }

    fn is_empty(&self) -> bool {
        match self {
            SourceSet::Few(v) => v.is_empty(),
            SourceSet::Many(m) => m.is_empty(),
        }
    }
}

/// One source's latest value.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    pub(crate) value: f64,
    /// When it is forgotten, in seconds of the aggregate's clock.
    pub(crate) expires: u32,
    /// The self-metrics of the rule that last took it.
    pub(crate) stats: Arc<RuleStats>,
    /// When it was last pushed to, in pushes to its output.
    seq: u64,
}

impl Level {
    /// A source's new value, forgotten at `expires`.
    pub(crate) fn new(value: f64, expires: u32, stats: Arc<RuleStats>) -> Level {
        Level {
            value,
            expires,
            stats,
            seq: 0,
        }
    }
}

impl Levels {
    /// The output's value: the live sources' values combined, with
    /// `updates` (source, value; the last is the newest) replacing or
    /// joining them; sources expired before `now` are left out. Costs the
    /// output's live sources: the value is recomputed, never drifts.
    pub(crate) fn combined(
        stored: Option<&Levels>,
        combine: Combine,
        now: u32,
        updates: &[(&[u8], f64)],
        newest: f64,
    ) -> Option<f64> {
        if combine == Combine::Last {
            return Some(newest);
        }
        // Most outputs get one update a push: a scan, not a set.
        let set: Option<std::collections::HashSet<&[u8], RandomState>> =
            (updates.len() > 8).then(|| updates.iter().map(|(s, _)| *s).collect());
        let updated = |source: &[u8]| match &set {
            Some(set) => set.contains(source),
            None => updates.iter().any(|(s, _)| *s == source),
        };
        let kept = stored
            .into_iter()
            .flat_map(|l| l.sources.iter())
            .filter(|(source, l)| l.expires >= now && !updated(source))
            .map(|(_, l)| l.value);
        combine.of(kept.chain(updates.iter().map(|(_, v)| *v)))
    }

    /// The value of the sources left (`None`: none is).
    fn value(&self) -> Option<f64> {
        match self.combine {
            Combine::Last => self.sources.values().max_by_key(|l| l.seq).map(|l| l.value),
            c => c.of(self.sources.values().map(|l| l.value)),
        }
    }

    fn bytes(&self, output_len: usize) -> usize {
        LEVELS_OVERHEAD
            + output_len
            + self
                .sources
                .iter()
                .map(|(source, _)| LEVEL_OVERHEAD + source.len())
                .sum::<usize>()
    }
}

/// Bytes a new `latest` source of this key costs, and its output's entry
/// when that is new too.
pub(crate) fn level_bytes(output_len: usize, source_len: usize, new_output: bool) -> usize {
    LEVEL_OVERHEAD
        + source_len
        + if new_output {
            LEVELS_OVERHEAD + output_len
        } else {
            0
        }
}

/// A `latest` source's new value, decided while a push is validated and
/// written when it is applied.
#[derive(Debug)]
pub(crate) struct LevelUpdate {
    pub(crate) output: Box<[u8]>,
    pub(crate) source: Box<[u8]>,
    pub(crate) combine: Combine,
    pub(crate) level: Level,
}

/// A `latest` output series whose sources changed when some expired: its
/// new value, or `None` when none is left (the series goes).
#[derive(Debug)]
pub(crate) struct LevelChange {
    pub(crate) output: Box<[u8]>,
    pub(crate) value: Option<f64>,
}

/// A source's new state, decided while a push is validated and written
/// when it is applied.
#[derive(Debug)]
pub(crate) struct SourceUpdate {
    pub(crate) id: Box<[u8]>,
    pub(crate) state: SourceState,
    /// Whether the source restarted (its value went down).
    pub(crate) reset: bool,
    /// Whether the point was a replay: counted, nothing written.
    pub(crate) replay: bool,
}

impl SourceState {
    /// Whether a point taken at `time` (of a running total started at
    /// `created`) is one this source sent already, or older: not newer
    /// than its last point and not of a later start (a later start time is
    /// a restart). A retry, or a collector replaying its queue, would
    /// otherwise be read as a restart and counted in full.
    pub(crate) fn replayed_by(&self, time: u64, created: Option<Created>) -> bool {
        let not_restarted = match (created, self.created) {
            (Some(now), Some(last)) => now <= last,
            _ => true,
        };
        time != 0 && self.time != 0 && time <= self.time && not_restarted
    }
}

impl Sources {
    /// Writes `updates`; returns the bytes held now minus before.
    pub(crate) fn apply(&mut self, updates: Vec<SourceUpdate>) -> isize {
        let mut grown = 0isize;
        for u in updates {
            if u.replay {
                u.state.stats.replays.inc();
                if let Some(s) = self.by_id.get_mut(&u.id) {
                    s.history.replays = s.history.replays.saturating_add(1);
                }
                continue;
            }
            if u.reset {
                u.state.stats.resets.inc();
            }
            let id_len = u.id.len();
            grown += source_bytes(id_len, &u.state.value) as isize;
            match self.by_id.get_mut(&u.id) {
                Some(old) => {
                    grown -= source_bytes(id_len, &old.value) as isize;
                    // The gauge moves only when another rule takes the
                    // source: not two shared counters touched per series.
                    if !Arc::ptr_eq(&old.stats, &u.state.stats) {
                        old.stats.sources.dec();
                        u.state.stats.sources.inc();
                    }
                    *old = u.state;
                }
                None => {
                    u.state.stats.sources.inc();
                    self.by_id.insert(u.id, u.state);
                }
            }
        }
        grown
    }

    /// Writes `latest` sources' new values; returns the bytes held now
    /// minus before.
    pub(crate) fn apply_levels(&mut self, updates: Vec<LevelUpdate>) -> isize {
        let mut grown = 0isize;
        for u in updates {
            let output_len = u.output.len();
            let levels = self.levels.entry(u.output).or_insert_with(|| {
                grown += (LEVELS_OVERHEAD + output_len) as isize;
                Levels {
                    combine: u.combine,
                    sources: SourceSet::new(),
                    seq: 0,
                }
            });
            levels.combine = u.combine;
            levels.seq += 1;
            let mut level = u.level;
            level.seq = levels.seq;
            // A known source is updated in place: its key is kept, not
            // replaced by the push's copy.
            if let Some(old) = levels.sources.get_mut(&u.source) {
                // The gauge moves only when another rule takes the source.
                if !Arc::ptr_eq(&old.stats, &level.stats) {
                    old.stats.sources.dec();
                    level.stats.sources.inc();
                }
                *old = level;
                continue;
            }
            grown += (LEVEL_OVERHEAD + u.source.len()) as isize;
            level.stats.sources.inc();
            levels.sources.insert_new(u.source, level);
        }
        grown
    }

    /// Forgets sources whose expiry is before `now`; returns the bytes
    /// freed, and how the `latest` outputs whose sources went change.
    pub(crate) fn expire(&mut self, now: u32) -> (usize, Vec<LevelChange>) {
        let mut freed = 0;
        let mut changes = Vec::new();
        self.levels.retain(|output, levels| {
            if levels.sources.values().all(|l| l.expires >= now) {
                return true;
            }
            levels.sources.retain(|source, l| {
                let keep = l.expires >= now;
                if !keep {
                    freed += LEVEL_OVERHEAD + source.len();
                    l.stats.sources.dec();
                    l.stats.sources_expired.inc();
                }
                keep
            });
            changes.push(LevelChange {
                output: output.clone(),
                value: levels.value(),
            });
            if levels.sources.is_empty() {
                freed += LEVELS_OVERHEAD + output.len();
            }
            !levels.sources.is_empty()
        });
        self.by_id.retain(|id, s| {
            let keep = s.expires >= now;
            if !keep {
                freed += source_bytes(id.len(), &s.value);
                s.stats.sources.dec();
                s.stats.sources_expired.inc();
            }
            keep
        });
        (freed, changes)
    }

    /// Whether a source expires before `now`.
    pub(crate) fn any_expired(&self, now: u32) -> bool {
        self.by_id.values().any(|v| v.expires < now)
            || self
                .levels
                .values()
                .any(|l| l.sources.values().any(|s| s.expires < now))
    }

    /// Whether it tracks no source.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_id.is_empty() && self.levels.is_empty()
    }

    /// Its sources as a snapshot writes them, at `now` (a `latest`
    /// source's value as a scalar).
    pub(crate) fn rows(&self, now: u32) -> impl Iterator<Item = SourceRow<'_>> {
        let totals = self.by_id.iter().map(move |(id, s)| {
            let (output, source) = split_id(id);
            SourceRow {
                output,
                source,
                series: super::stored::StoredSeries::new(
                    s.value.clone(),
                    s.created,
                    super::stored::NEVER,
                ),
                left: s.expires.saturating_sub(now),
                rule: &s.stats.name,
                time: s.time,
                history: s.history,
            }
        });
        let levels = self.levels.iter().flat_map(move |(output, levels)| {
            levels.sources.iter().map(move |(source, l)| SourceRow {
                output,
                source,
                series: super::stored::StoredSeries::new(
                    Value::Scalar(l.value),
                    None,
                    super::stored::NEVER,
                ),
                left: l.expires.saturating_sub(now),
                rule: &l.stats.name,
                time: 0,
                history: History::default(),
            })
        });
        totals.chain(levels)
    }

    /// Every tracked source's self-metrics, once per source.
    pub(crate) fn stats(&self) -> impl Iterator<Item = &Arc<RuleStats>> {
        self.by_id.values().map(|s| &s.stats).chain(
            self.levels
                .values()
                .flat_map(|l| l.sources.values().map(|s| &s.stats)),
        )
    }

    /// Bytes all its sources are charged.
    pub(crate) fn bytes(&self) -> usize {
        self.by_id
            .iter()
            .map(|(id, s)| source_bytes(id.len(), &s.value))
            .sum::<usize>()
            + self
                .levels
                .iter()
                .map(|(output, l)| l.bytes(output.len()))
                .sum::<usize>()
    }
}
