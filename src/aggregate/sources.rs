//! Per-source state of `total` rules: each source's last cumulative value,
//! so a push adds only what grew since that source's previous push.
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
use crate::rules::RuleStats;

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
    pub(crate) series: super::StoredSeries,
    /// Seconds until it is forgotten.
    pub(crate) left: u32,
    /// The name of the rule that last took it.
    pub(crate) rule: &'a str,
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
    /// When it is forgotten, in seconds of the aggregate's clock.
    pub(crate) expires: u32,
    /// The self-metrics of the rule that last took it.
    pub(crate) stats: Arc<RuleStats>,
}

/// The sources of one family. Behind an `Arc` in the shard: a snapshot
/// holds it without a copy; the next push copies it once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    pub(crate) by_id: HashMap<Box<[u8]>, SourceState, RandomState>,
}

/// A source's new state, decided while a push is validated and written
/// when it is applied.
#[derive(Debug)]
pub(crate) struct SourceUpdate {
    pub(crate) id: Box<[u8]>,
    pub(crate) state: SourceState,
    /// Whether the source restarted (its value went down).
    pub(crate) reset: bool,
}

impl Sources {
    /// Writes `updates`; returns the bytes held now minus before.
    pub(crate) fn apply(&mut self, updates: Vec<SourceUpdate>) -> isize {
        let mut grown = 0isize;
        for u in updates {
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

    /// Forgets sources whose expiry is before `now`; returns the bytes freed.
    pub(crate) fn expire(&mut self, now: u32) -> usize {
        let mut freed = 0;
        self.by_id.retain(|id, s| {
            let keep = s.expires >= now;
            if !keep {
                freed += source_bytes(id.len(), &s.value);
                s.stats.sources.dec();
                s.stats.sources_expired.inc();
            }
            keep
        });
        freed
    }

    /// Its sources as a snapshot writes them, at `now`.
    pub(crate) fn rows(&self, now: u32) -> impl Iterator<Item = SourceRow<'_>> {
        self.by_id.iter().map(move |(id, s)| {
            let (output, source) = split_id(id);
            SourceRow {
                output,
                source,
                series: super::StoredSeries::new(s.value.clone(), s.created, super::store::NEVER),
                left: s.expires.saturating_sub(now),
                rule: &s.stats.name,
            }
        })
    }

    /// Bytes all its sources are charged.
    pub(crate) fn bytes(&self) -> usize {
        self.by_id
            .iter()
            .map(|(id, s)| source_bytes(id.len(), &s.value))
            .sum()
    }
}
