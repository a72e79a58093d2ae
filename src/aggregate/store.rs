//! What the aggregate holds: per shard, families by name; per family, series
//! by key in an `IndexMap`, so lookups hash and scrapes iterate in key order
//! after a sort that only runs when series were added since the last one.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use indexmap::IndexMap;

use super::Settings;
use super::merge;
use crate::model::{Family, Kind, SeriesKey, Value};

/// One shard of the aggregate.
#[derive(Default)]
pub(crate) struct Shard {
    pub(crate) families: HashMap<String, StoredFamily, RandomState>,
}

pub(crate) use crate::model::cost::{family_bytes, series_bytes};

/// A stored family.
#[derive(Debug, Clone)]
pub struct StoredFamily {
    /// The family's type, fixed by its first push.
    pub kind: Kind,
    /// The first non-empty `# HELP` text pushed.
    pub help: String,
    series: IndexMap<SeriesKey, StoredSeries, RandomState>,
    sorted: bool,
    /// Every classic bucket bound of the family's series, sorted
    /// (`--max-buckets` bounds their number).
    bounds: Vec<f64>,
    /// Set from the aggregator's change counter whenever the family
    /// changes: a family's name and stamp name its content for good, which
    /// is what lets the encode side keep renderings without the aggregate
    /// knowing about formats.
    changed: u64,
}

/// A stored series.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSeries {
    /// The aggregated value.
    pub value: Value,
    /// The earliest creation timestamp pushed, if any.
    pub created: Option<crate::model::Created>,
    /// When it was last pushed to, in seconds of the aggregate's clock
    /// (for `--series-ttl`).
    pub touched: u32,
}

impl StoredFamily {
    /// The stored series with this key.
    pub fn get(&self, key: &[u8]) -> Option<&StoredSeries> {
        self.series.get(key)
    }

    /// A stamp that differs after every change of the family (and between
    /// any two families ever stored under one name).
    pub fn changed(&self) -> u64 {
        self.changed
    }

    /// The distinct classic bucket bounds of the family's series, sorted.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// The series, sorted by labels when read through
    /// [`crate::aggregate::Aggregator::read`].
    pub fn series(&self) -> impl ExactSizeIterator<Item = (&[u8], &StoredSeries)> {
        self.series.iter().map(|(k, s)| (&**k, s))
    }
}

impl Shard {
    /// Merges a validated family into this shard, stamping it `stamp`;
    /// returns the bytes the shard holds now minus before (see
    /// [`series_bytes`]).
    pub(crate) fn merge(
        &mut self,
        family: Family,
        settings: &Settings,
        now: u32,
        stamp: u64,
    ) -> isize {
        let mut grown: isize = 0;
        let mut fresh = false;
        let stored = match self.families.entry(family.name) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                fresh = true;
                grown += family_bytes(e.key(), &family.help) as isize;
                e.insert(StoredFamily {
                    kind: family.kind,
                    help: String::new(),
                    series: IndexMap::default(),
                    sorted: true,
                    bounds: Vec::new(),
                    changed: stamp,
                })
            }
        };
        stored.changed = stamp;
        if stored.help.is_empty() && !family.help.is_empty() {
            // A family made without help was charged without it.
            if !fresh {
                grown += family.help.len() as isize;
            }
            stored.help = family.help;
        }
        let rule = merge::Rule::of(stored.kind, settings.gauge_mode);
        stored.series.reserve(family.series.len());
        for s in family.series {
            if let Value::Histogram(h) = &s.value {
                // Validation kept the bounds within --max-buckets.
                add_bounds(&mut stored.bounds, h, usize::MAX);
            }
            match stored.series.get_mut(&*s.key) {
                Some(existing) => {
                    let before = existing.value.heap_bytes() as isize;
                    merge::merge(rule, existing, s.value, s.created, settings);
                    existing.touched = now;
                    grown += existing.value.heap_bytes() as isize - before;
                }
                None => {
                    grown += series_bytes(s.key.len(), &s.value) as isize;
                    if stored.sorted
                        && let Some((last, _)) = stored.series.last()
                    {
                        stored.sorted = **last < *s.key;
                    }
                    stored.series.insert(
                        s.key,
                        StoredSeries {
                            value: s.value,
                            created: s.created,
                            touched: now,
                        },
                    );
                }
            }
        }
        grown
    }

    /// Keeps the series `keep` says yes to, dropping emptied families and
    /// giving their bytes back to `memory`, stamping families that lost
    /// series `stamp`; returns how many series were dropped, and calls
    /// `gone` with the name and kind of each family dropped.
    pub(crate) fn retain_series(
        &mut self,
        memory: &crate::memory::Memory,
        stamp: u64,
        mut keep: impl FnMut(&[u8], &StoredSeries) -> bool,
        mut gone: impl FnMut(&str, Kind),
    ) -> usize {
        let mut dropped = 0;
        let mut freed = 0;
        self.families.retain(|name, f| {
            let before = f.series.len();
            // `retain` keeps the relative order, so a sorted family stays sorted.
            f.series.retain(|k, s| {
                let kept = keep(k, s);
                if !kept {
                    freed += series_bytes(k.len(), &s.value);
                }
                kept
            });
            if f.series.len() != before {
                dropped += before - f.series.len();
                f.changed = stamp;
                f.bounds = family_bounds(f);
            }
            if f.series.is_empty() {
                freed += family_bytes(name, &f.help);
                gone(name, f.kind);
            }
            !f.series.is_empty()
        });
        memory.release(freed);
        dropped
    }

    pub(crate) fn sort_series(&mut self) {
        for f in self.families.values_mut() {
            if !f.sorted {
                f.series.sort_unstable_keys();
                f.sorted = true;
            }
        }
    }
}

/// Adds a histogram's bounds to a family's sorted bounds.
/// Stops at `limit` bounds: returns false, with the bounds up to there
/// added, when `h` would take them past it.
pub(crate) fn add_bounds(bounds: &mut Vec<f64>, h: &crate::model::Histogram, limit: usize) -> bool {
    if same_bounds(bounds, h) {
        return true;
    }
    for b in &h.buckets {
        if let Err(at) = bounds.binary_search_by(|x| x.total_cmp(&b.le)) {
            if bounds.len() >= limit {
                return false;
            }
            bounds.insert(at, b.le);
        }
    }
    true
}

/// The sorted bounds of every classic histogram of a family.
fn family_bounds(f: &StoredFamily) -> Vec<f64> {
    let mut bounds = Vec::new();
    for (_, s) in f.series() {
        if let Value::Histogram(h) = &s.value {
            add_bounds(&mut bounds, h, usize::MAX);
        }
    }
    bounds
}

/// How many of `h`'s bounds `bounds` (sorted) lacks.
pub(crate) fn new_bounds(bounds: &[f64], h: &crate::model::Histogram) -> usize {
    if same_bounds(bounds, h) {
        return 0;
    }
    h.buckets
        .iter()
        .filter(|b| bounds.binary_search_by(|x| x.total_cmp(&b.le)).is_err())
        .count()
}

/// The common case, every series with the same bounds: one comparison each.
fn same_bounds(bounds: &[f64], h: &crate::model::Histogram) -> bool {
    bounds.len() == h.buckets.len() && bounds.iter().zip(&h.buckets).all(|(a, b)| *a == b.le)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The charge per series covers the map entry, its index slot and the
    /// slack of a table grown by doubling.
    #[test]
    fn series_charge_covers_the_entry() {
        let entry = std::mem::size_of::<(u64, SeriesKey, StoredSeries)>()
            + 2 * std::mem::size_of::<usize>();
        assert!(crate::model::cost::SERIES_OVERHEAD >= entry * 3 / 2);
    }
}
