//! What the aggregate holds: per shard, families by name; per family, its
//! series in a [`SeriesTable`] (pages a scrape can hold without a lock, see
//! `series.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use super::merge;
use super::plan::Modes;
use super::series::{SeriesTable, SeriesView};
use super::settings::Settings;
use super::sources::{LevelChange, LevelUpdate, SourceUpdate, Sources};
use super::stored::{StoredSeries, expiry};
use crate::model::{Created, Family, Kind, Series, Value};

/// A series by family name and key.
pub(crate) type SeriesAt = (Arc<str>, Box<[u8]>);

/// One shard of the aggregate.
#[derive(Default)]
pub(crate) struct Shard {
    pub(crate) families: HashMap<Arc<str>, StoredFamily, RandomState>,
    /// The `total` sources of families of this shard, by family name (see
    /// `sources.rs`: they outlive the family's series).
    pub(crate) sources: HashMap<Arc<str>, Arc<Sources>, RandomState>,
}

pub(crate) use crate::model::cost::{family_bytes, series_bytes};

/// A stored family.
#[derive(Debug, Clone)]
pub struct StoredFamily {
    /// The family's type, fixed by its first push.
    pub kind: Kind,
    /// The first non-empty `# HELP` text pushed.
    pub help: Arc<str>,
    series: SeriesTable,
    /// Every classic bucket bound of the family's series, sorted
    /// (`--max-buckets` bounds their number).
    bounds: Vec<f64>,
    /// Set from the aggregator's change counter whenever the family
    /// changes: a family's name and stamp name its content for good, which
    /// is what lets the encode side keep renderings without the aggregate
    /// knowing about formats.
    changed: u64,
    /// When a push last changed it, in seconds of the aggregate's clock.
    updated: u32,
}

impl StoredFamily {
    /// Where the series with this key is stored (valid until the family
    /// next changes).
    pub(crate) fn find(&self, key: &[u8]) -> Option<u32> {
        self.series.find(key)
    }

    /// The series stored at `at`, from [`StoredFamily::find`].
    pub(crate) fn at(&self, at: u32) -> &StoredSeries {
        self.series.at(at)
    }

    /// The distinct classic bucket bounds of the family's series, sorted.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// What a scrape reads of the family, sharing its pages.
    pub(crate) fn view(&self) -> FamilyView {
        FamilyView {
            kind: self.kind,
            help: self.help.clone(),
            changed: self.changed,
            updated: self.updated,
            series: self.series.view(),
        }
    }

    /// Takes the series order a scrape completed (see [`SeriesView`]).
    pub(crate) fn adopt_order(&mut self, view: &FamilyView) {
        self.series.adopt_order(&view.series);
    }
}

/// A family as a scrape sees it: taken while pushes wait, read after they
/// go on. It shares the stored pages; a push that changes one copies it.
#[derive(Debug, Clone)]
pub struct FamilyView {
    /// The family's type.
    pub kind: Kind,
    /// Its `# HELP` text, empty when none was pushed.
    pub help: Arc<str>,
    changed: u64,
    updated: u32,
    series: SeriesView,
}

impl FamilyView {
    /// When a push last changed it, in seconds of the aggregate's clock
    /// ([`crate::aggregate::Aggregator::seconds`]).
    pub fn updated(&self) -> u32 {
        self.updated
    }

    /// A stamp that differs after every change of the family (and between
    /// any two families ever stored under one name).
    pub fn changed(&self) -> u64 {
        self.changed
    }

    /// Series in the family.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether it has none (never, for a stored family).
    pub fn is_empty(&self) -> bool {
        self.series.len() == 0
    }

    /// The series, sorted by labels.
    pub fn series(&self) -> impl ExactSizeIterator<Item = (&[u8], &StoredSeries)> {
        self.series.iter()
    }

    pub(super) fn needs_order(&self) -> bool {
        self.series.needs_order()
    }

    pub(super) fn complete_order(&mut self) {
        self.series.complete_order();
    }
}

/// When a push is written: the aggregate's clock, the stamp of the
/// families it changes, and the start time (nanoseconds since the epoch) of
/// the counters, histograms and summaries it creates (none when restoring
/// a snapshot: the series were not created then).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Writing {
    pub(crate) now: u32,
    pub(crate) stamp: u64,
    pub(crate) started: Option<Created>,
}

impl Shard {
    /// Merges a validated family into this shard at `when`; `found` is
    /// where each of its series is stored (from validation, under the same
    /// locks; none for a new series); returns the bytes the shard holds now
    /// minus before (see [`series_bytes`]).
    pub(crate) fn merge(
        &mut self,
        family: Family,
        found: &[Option<u32>],
        modes: &Modes<'_>,
        settings: &Settings,
        when: Writing,
    ) -> isize {
        let Writing {
            now,
            stamp,
            started,
        } = when;
        let mut grown: isize = 0;
        let mut fresh = false;
        let stored = match self.families.entry(family.name.into()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                fresh = true;
                grown += family_bytes(e.key(), &family.help) as isize;
                e.insert(StoredFamily {
                    kind: family.kind,
                    help: "".into(),
                    series: SeriesTable::default(),
                    bounds: Vec::new(),
                    changed: stamp,
                    updated: now,
                })
            }
        };
        stored.changed = stamp;
        stored.updated = now;
        if stored.help.is_empty() && !family.help.is_empty() {
            // A family made without help was charged without it.
            if !fresh {
                grown += family.help.len() as isize;
            }
            stored.help = family.help.into();
        }
        let default_ttl = settings
            .series_ttl
            .map(|t| t.as_secs().min(u64::from(u32::MAX)) as u32);
        // A new counter, histogram or summary that no sender gave a start
        // time starts now: a series expired, deleted or lost and made again
        // then reads as a reset, not as growth.
        let started = started
            .filter(|_| matches!(stored.kind, Kind::Counter | Kind::Histogram | Kind::Summary));
        let mut added = Vec::new();
        // Each page written to is made writable once (copied if a scrape
        // holds it), not once per series.
        let mut writable = stored.series.writable(found.iter().flatten().copied());
        for (i, (s, &at)) in family.series.into_iter().zip(found).enumerate() {
            let mode = modes.get(i, stored.kind, settings.gauge_mode);
            let expires = expiry(now, mode.ttl.or(default_ttl));
            if let Value::Histogram(h) = &s.value {
                // Validation kept the bounds within --max-buckets.
                add_bounds(&mut stored.bounds, h, usize::MAX);
            }
            match at.and_then(|at| writable.get(at)) {
                Some(existing) => {
                    let before = existing.value.heap_bytes() as isize;
                    merge::merge(mode.rule, existing, s.value, s.created, settings);
                    existing.expires = expires;
                    grown += existing.value.heap_bytes() as isize - before;
                }
                None => {
                    grown += series_bytes(s.key.len(), &s.value) as isize;
                    added.push((s, expires));
                }
            }
        }
        drop(writable);
        stored.series.reserve(added.len());
        // New series go into the pages in key order: scrapes read in key
        // order, and reading a page's series one after another is several
        // times faster than jumping between pages at every series.
        added.sort_unstable_by(|a, b| a.0.key.cmp(&b.0.key));
        for (s, expires) in added {
            stored.series.insert(
                &s.key,
                StoredSeries::new(s.value, s.created.or(started), expires),
                stamp,
            );
        }
        grown
    }

    /// Writes a family's `total` sources; returns the bytes held now
    /// minus before.
    pub(crate) fn update_sources(&mut self, family: &str, updates: Vec<SourceUpdate>) -> isize {
        if updates.is_empty() {
            return 0;
        }
        let sources = match self.sources.get_mut(family) {
            Some(s) => s,
            None => self.sources.entry(family.into()).or_default(),
        };
        // Copied once if a snapshot holds it.
        Arc::make_mut(sources).apply(updates)
    }

    /// Writes a family's `latest` sources; returns the bytes held now
    /// minus before.
    pub(crate) fn update_levels(&mut self, family: &str, updates: Vec<LevelUpdate>) -> isize {
        if updates.is_empty() {
            return 0;
        }
        let sources = match self.sources.get_mut(family) {
            Some(s) => s,
            None => self.sources.entry(family.into()).or_default(),
        };
        Arc::make_mut(sources).apply_levels(updates)
    }

    /// Forgets sources whose expiry is before `now`; returns the bytes
    /// freed, and the `latest` outputs whose value changed with them.
    pub(crate) fn expire_sources(&mut self, now: u32) -> (usize, Vec<(Arc<str>, LevelChange)>) {
        let mut freed = 0;
        let mut changes = Vec::new();
        self.sources.retain(|name, s| {
            if s.any_expired(now) {
                let (f, c) = Arc::make_mut(s).expire(now);
                freed += f;
                changes.extend(c.into_iter().map(|c| (name.clone(), c)));
            }
            !s.is_empty()
        });
        (freed, changes)
    }

    /// Writes the new values of `latest` output series whose sources
    /// expired (as `last`: replaced); returns the bytes grown, and the
    /// outputs left with no source, for the caller to drop. Outputs no
    /// longer stored (expired, deleted) stay gone.
    pub(crate) fn write_levels(
        &mut self,
        changes: Vec<(Arc<str>, LevelChange)>,
        settings: &Settings,
        now: u32,
        stamp: u64,
    ) -> (isize, Vec<SeriesAt>) {
        let mut grown = 0;
        let mut gone = Vec::new();
        for (name, change) in changes {
            let Some(stored) = self.families.get(&*name) else {
                continue;
            };
            let Some(at) = stored.find(&change.output) else {
                continue;
            };
            let Some(value) = change.value else {
                gone.push((name, change.output));
                continue;
            };
            // A value rewritten because a source went silent is no push:
            // the output keeps its expiry (its rule's `ttl` after the last
            // push), not a new one; one that never expires stays so.
            let expires = stored.series.at(at).expires;
            let family = Family {
                name: name.to_string(),
                help: String::new(),
                kind: stored.kind,
                series: vec![Series {
                    key: change.output,
                    value: Value::Scalar(value),
                    created: None,
                }],
            };
            let last = Modes::All(super::plan::SeriesMode {
                rule: crate::model::Combine::Last,
                ttl: None,
                from: None,
            });
            let when = Writing {
                now,
                stamp,
                started: None,
            };
            grown += self.merge(family, &[Some(at)], &last, settings, when);
            if let Some(f) = self.families.get_mut(&*name)
                && let Some(s) = f.series.writable(std::iter::once(at)).get(at)
            {
                s.expires = expires;
            }
        }
        (grown, gone)
    }

    /// Keeps the series `keep` says yes to, dropping emptied families and
    /// giving their bytes back to `memory`, stamping families that lost
    /// series `stamp`; returns how many series were dropped, and calls
    /// `gone` with the name and kind of each family dropped and `removed`
    /// with each series dropped (family name, kind, key, series).
    pub(crate) fn retain_series(
        &mut self,
        memory: &crate::memory::Memory,
        stamp: u64,
        mut keep: impl FnMut(&str, &[u8], &StoredSeries) -> bool,
        mut gone: impl FnMut(&str, Kind),
        mut removed: impl FnMut(&Arc<str>, Kind, &[u8], &StoredSeries),
    ) -> usize {
        let mut dropped = 0;
        let mut freed = 0;
        self.families.retain(|name, f| {
            let kind = f.kind;
            let lost = f.series.retain(
                |k, s| keep(name, k, s),
                |k, s| {
                    freed += series_bytes(k.len(), &s.value);
                    removed(name, kind, k, s);
                },
                stamp,
            );
            if lost > 0 {
                dropped += lost;
                f.changed = stamp;
                f.bounds = family_bounds(f);
            }
            if f.series.len() == 0 {
                freed += family_bytes(name, &f.help);
                gone(name, f.kind);
            }
            f.series.len() > 0
        });
        memory.release(freed);
        dropped
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
    for (_, s) in f.series.iter() {
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

    /// The charge per series covers its slot in a page, in the index and
    /// in the order, with the slack of tables grown by doubling.
    #[test]
    fn series_charge_covers_the_entry() {
        let slots = std::mem::size_of::<StoredSeries>() + 2 * std::mem::size_of::<u32>() + 1;
        assert!(crate::model::cost::SERIES_OVERHEAD >= slots * 3 / 2);
    }

    /// What a stored series costs beside its key and heap parts.
    #[test]
    fn stored_series_is_small() {
        assert!(std::mem::size_of::<StoredSeries>() <= 40);
    }
}
