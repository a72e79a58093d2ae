//! The aggregate: every stored family, sharded by name, and what reads
//! and drops them (views, expiry, delete, wipe). Applying a push is in
//! `apply.rs`.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use foldhash::fast::RandomState;
use parking_lot::{Mutex, MutexGuard};

use super::journal::{Dropped, Journal};
use super::settings::Settings;
use super::store::{self, FamilyView};
use super::stored::StoredSeries;
use super::{sources, windows};
use crate::memory::Memory;
use crate::model::{Kind, Value, labels, names};

pub(super) const SHARDS: usize = 32;

/// The aggregate: every stored family, sharded by name.
pub struct Aggregator {
    pub(super) shards: Box<[Mutex<store::Shard>]>,
    pub(super) settings: Settings,
    pub(super) series: AtomicUsize,
    /// Seeds the shard of a family name: random per process, so names
    /// crafted to meet in one shard cannot be.
    pub(super) shard_hasher: RandomState,
    /// Bumped by every change, so a snapshot writer can skip an unchanged
    /// aggregate.
    pub(super) generation: AtomicU64,
    /// Stamps families as they change (see [`FamilyView::changed`]).
    pub(super) stamps: AtomicU64,
    /// The clock of `StoredSeries::expires` (`Settings::clock`).
    pub(super) clock: crate::clock::Clock,
    /// Every name a stored family claims (see [`names::claimed`]), with the
    /// family that claims it. Taken after the shard locks, and only when a
    /// push adds a family or a family goes: pushes to stored families never
    /// touch it.
    pub(super) claims: Mutex<HashMap<Box<str>, Box<str>, RandomState>>,
    /// Whether any series was ever given an expiry (`--series-ttl` or a
    /// rule's `ttl`): until then a sweep has no series to look at.
    pub(super) expiring: std::sync::atomic::AtomicBool,
    /// What expiry, delete and wipe dropped (with `Settings::journal`).
    /// Taken after the shard locks; it takes none itself.
    pub(super) journal: Option<Mutex<Journal>>,
    /// Delta windows already counted, per producer and series.
    pub(super) windows: windows::DeltaWindows,
}

impl std::fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregator")
            .field("settings", &self.settings)
            .field("series", &self.series_count())
            .finish()
    }
}

impl Aggregator {
    /// An empty aggregate.
    pub fn new(settings: Settings) -> Aggregator {
        let clock = settings.clock.clone();
        Aggregator {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            series: AtomicUsize::new(0),
            shard_hasher: RandomState::default(),
            generation: AtomicU64::new(0),
            stamps: AtomicU64::new(0),
            clock,
            claims: Mutex::default(),
            expiring: std::sync::atomic::AtomicBool::new(false),
            journal: settings.journal.then(Mutex::default),
            windows: windows::DeltaWindows::new(
                settings.memory.clone(),
                crate::rules::DEFAULT_SOURCE_TTL.as_secs() as u32,
            ),
            settings,
        }
    }

    /// The claims of one request on the delta windows already counted
    /// (see [`windows`]): kept when it is applied.
    pub fn delta_claims(&self) -> windows::Claims<'_> {
        self.windows.claims(self.now())
    }

    /// Delta windows remembered, and delta points dropped as duplicates.
    pub fn delta_windows(&self) -> &windows::DeltaWindows {
        &self.windows
    }

    /// The settings this aggregate was made with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(super) fn shard_of(&self, name: &str) -> usize {
        (self.shard_hasher.hash_one(name) as usize) % SHARDS
    }

    /// Bytes the aggregate is charged now is part of [`Memory::used`];
    /// this is the budget itself.
    pub fn memory(&self) -> &Arc<Memory> {
        &self.settings.memory
    }

    /// A stamp no family had before.
    pub(super) fn stamp(&self) -> u64 {
        self.stamps.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(super) fn lock_all(&self) -> Vec<MutexGuard<'_, store::Shard>> {
        self.shards.iter().map(|s| s.lock()).collect()
    }

    /// Drops every series whose labels include all of `matchers`; returns how
    /// many were dropped.
    pub fn delete(&self, matchers: &[(String, String)]) -> usize {
        let mut guards = self.lock_all();
        let mut claims = self.claims.lock();
        let mut removed = Vec::new();
        let dropped: usize = guards
            .iter_mut()
            .map(|g| {
                g.retain_series(
                    &self.settings.memory,
                    self.stamp(),
                    |_, key, _| !labels::contains_all(key, matchers),
                    |name, kind| unclaim(&mut claims, name, kind),
                    |name, kind, key, series| self.note(&mut removed, name, kind, key, series),
                )
            })
            .sum();
        drop(claims);
        drop(guards);
        self.journal(removed);
        self.dropped(dropped);
        dropped
    }

    /// Notes a dropped series for the journal, when one is kept.
    pub(super) fn note(
        &self,
        removed: &mut Vec<Dropped>,
        family: &Arc<str>,
        kind: Kind,
        key: &[u8],
        series: &StoredSeries,
    ) {
        if self.journal.is_some() {
            removed.push(Dropped::new(family, kind, key, &series.value));
        }
    }

    /// Adds dropped series to the journal, charging their bytes (the
    /// series they stand for gave back more); past `--max-series` entries
    /// the rest are counted as lost.
    pub(super) fn journal(&self, removed: Vec<Dropped>) {
        let Some(journal) = &self.journal else { return };
        if removed.is_empty() {
            return;
        }
        let mut j = journal.lock();
        let room = self.settings.max_series.saturating_sub(j.dropped.len());
        let kept = removed.len().min(room);
        j.lost += (removed.len() - kept) as u64;
        let bytes: usize = removed[..kept].iter().map(Dropped::bytes).sum();
        self.settings.memory.charge(bytes);
        j.bytes += bytes;
        j.dropped.extend(removed.into_iter().take(kept));
    }

    /// Takes the series dropped since the last call (oldest first), and
    /// how many were dropped but not kept, the journal being full. Empty
    /// without `Settings::journal`.
    pub fn take_dropped(&self) -> (Vec<Dropped>, u64) {
        let Some(journal) = &self.journal else {
            return (Vec::new(), 0);
        };
        let mut j = journal.lock();
        self.settings.memory.release(std::mem::take(&mut j.bytes));
        (std::mem::take(&mut j.dropped), std::mem::take(&mut j.lost))
    }

    pub(super) fn dropped(&self, n: usize) {
        self.series.fetch_sub(n, Ordering::Relaxed);
        if n > 0 {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn now(&self) -> u32 {
        self.clock.elapsed().as_secs().min(u64::from(u32::MAX)) as u32
    }

    /// Seconds on the aggregate's clock now (what
    /// [`store::FamilyView::updated`] counts in).
    pub fn seconds(&self) -> u32 {
        self.now()
    }

    /// Drops series whose TTL (`--series-ttl`, or their rule's `ttl`)
    /// has run out, and forgets `total` sources silent for their
    /// `source_ttl`; returns how many series were dropped. Takes one shard
    /// lock at a time, so pushes to other shards go on meanwhile.
    pub fn expire(&self) -> usize {
        let now = self.now();
        self.windows.expire(now);
        let series = self.expiring.load(Ordering::Relaxed);
        let dropped = self
            .shards
            .iter()
            .map(|s| {
                let mut shard = s.lock();
                let (freed, levels) = shard.expire_sources(now);
                self.settings.memory.release(freed);
                let mut removed = Vec::new();
                let mut dropped = 0;
                if !levels.is_empty() {
                    // A silent `latest` source's value leaves its output.
                    let stamp = self.stamp();
                    let (grown, gone) = shard.write_levels(levels, &self.settings, now, stamp);
                    if grown >= 0 {
                        self.settings.memory.charge(grown as usize);
                    } else {
                        self.settings.memory.release(grown.unsigned_abs());
                    }
                    if !gone.is_empty() {
                        dropped += shard.retain_series(
                            &self.settings.memory,
                            stamp,
                            |name, key, _| !gone.iter().any(|(n, k)| **n == *name && **k == *key),
                            |name, kind| unclaim(&mut self.claims.lock(), name, kind),
                            |name, kind, key, series| {
                                self.note(&mut removed, name, kind, key, series)
                            },
                        );
                    }
                    self.generation.fetch_add(1, Ordering::Relaxed);
                }
                if series {
                    dropped += shard.retain_series(
                        &self.settings.memory,
                        self.stamp(),
                        |_, _, series| series.expires >= now,
                        // Shard lock, then claims: the order pushes take them in.
                        |name, kind| unclaim(&mut self.claims.lock(), name, kind),
                        |name, kind, key, series| self.note(&mut removed, name, kind, key, series),
                    );
                }
                drop(shard);
                self.journal(removed);
                dropped
            })
            .sum();
        self.dropped(dropped);
        dropped
    }

    /// A counter that changes whenever the aggregate does.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Drops everything; returns how many series were dropped.
    pub fn wipe(&self) -> usize {
        let mut guards = self.lock_all();
        let mut removed = Vec::new();
        let dropped: usize = guards
            .iter_mut()
            .map(|g| {
                let freed: usize = g.sources.values().map(|s| s.bytes()).sum();
                for s in g.sources.values() {
                    for stats in s.stats() {
                        stats.sources.dec();
                    }
                }
                g.sources.clear();
                self.settings.memory.release(freed);
                g.retain_series(
                    &self.settings.memory,
                    0,
                    |_, _, _| false,
                    |_, _| {},
                    |name, kind, key, series| self.note(&mut removed, name, kind, key, series),
                )
            })
            .sum();
        self.claims.lock().clear();
        drop(guards);
        self.journal(removed);
        self.dropped(dropped);
        dropped
    }

    /// Series stored now.
    pub fn series_count(&self) -> usize {
        self.series.load(Ordering::Relaxed)
    }

    /// Families stored now.
    pub fn family_count(&self) -> usize {
        self.shards.iter().map(|s| s.lock().families.len()).sum()
    }

    /// Calls `f` with every family, sorted by name, each with its series
    /// sorted by labels: a consistent view (no half push), taken while
    /// pushes wait and read after they go on (see [`FamilyView`]).
    pub fn read<R>(&self, f: impl FnOnce(&[(&str, &FamilyView)]) -> R) -> R {
        self.read_at(|families, _| f(families))
    }

    /// [`Aggregator::read`], also passing the generation the view is at.
    pub fn read_at<R>(&self, f: impl FnOnce(&[(&str, &FamilyView)], u64) -> R) -> R {
        let (views, generation) = self.view();
        let families: Vec<(&str, &FamilyView)> = views.iter().map(|(n, v)| (&**n, v)).collect();
        f(&families, generation)
    }

    /// Every family's view, sorted by name, and the generation they are at.
    /// The shard locks are held only to take the views (a reference count
    /// per page); series added out of key order since the last view are
    /// sorted after, and the order handed back to the store, so the next
    /// view finds it done.
    pub(crate) fn view(&self) -> (Vec<(Arc<str>, FamilyView)>, u64) {
        let (views, generation, _) = self.view_with(false);
        (views, generation)
    }

    /// [`Aggregator::read_at`] for a snapshot: also every family's `total`
    /// sources, sorted by family name, taken under the same locks, and
    /// the time on the aggregate's clock they are at.
    pub(crate) fn read_snapshot<R>(
        &self,
        f: impl FnOnce(&[(&str, &FamilyView)], &SourcesView, u32) -> R,
    ) -> R {
        let now = self.now();
        let (views, _, sources) = self.view_with(true);
        let families: Vec<(&str, &FamilyView)> = views.iter().map(|(n, v)| (&**n, v)).collect();
        f(&families, &sources, now)
    }

    /// Puts back one source from a snapshot: its last `value` for the
    /// `output` series of `family`, forgotten in `left` seconds, counted in
    /// `stats`; a `latest` one (`level`: how its output combines) as a
    /// level. Charged to the byte budget without refusal, as a restored
    /// series is.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restore_source(
        &self,
        family: &str,
        output: &[u8],
        source: &[u8],
        value: Value,
        created: Option<crate::model::Created>,
        left: u32,
        stats: Arc<crate::rules::RuleStats>,
        level: Option<crate::rules::Combine>,
        time: u64,
    ) {
        let expires = self.now().saturating_add(left);
        let mut shard = self.shards[self.shard_of(family)].lock();
        let grown = match (level, value) {
            (Some(combine), Value::Scalar(value)) => shard.update_levels(
                family,
                vec![sources::LevelUpdate {
                    output: output.into(),
                    source: source.into(),
                    combine,
                    level: sources::Level::new(value, expires, stats),
                }],
            ),
            (_, value) => shard.update_sources(
                family,
                vec![sources::SourceUpdate {
                    id: sources::source_id(output, source),
                    state: sources::SourceState {
                        value,
                        created,
                        time,
                        expires,
                        stats,
                        history: Default::default(),
                    },
                    reset: false,
                    replay: false,
                }],
            ),
        };
        if grown > 0 {
            self.settings.memory.charge(grown as usize);
        }
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn view_with(
        &self,
        with_sources: bool,
    ) -> (Vec<(Arc<str>, FamilyView)>, u64, SourcesView) {
        let guards = self.lock_all();
        let generation = self.generation();
        let mut sources: SourcesView = if with_sources {
            guards
                .iter()
                .flat_map(|g| g.sources.iter().map(|(n, s)| (n.clone(), s.clone())))
                .collect()
        } else {
            Vec::new()
        };
        sources.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut views: Vec<(Arc<str>, FamilyView)> = guards
            .iter()
            .flat_map(|g| g.families.iter().map(|(n, f)| (n.clone(), f.view())))
            .collect();
        drop(guards);
        views.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (name, view) in &mut views {
            let name: &str = name;
            if !view.needs_order() {
                continue;
            }
            view.complete_order();
            let mut shard = self.shards[self.shard_of(name)].lock();
            if let Some(stored) = shard.families.get_mut(name) {
                stored.adopt_order(view);
            }
        }
        (views, generation, sources)
    }
}

/// Every family's `total` sources, by family name (sorted), as a snapshot
/// holds them.
pub(crate) type SourcesView = Vec<(Arc<str>, Arc<sources::Sources>)>;

pub(super) fn unclaim(
    claims: &mut HashMap<Box<str>, Box<str>, RandomState>,
    name: &str,
    kind: Kind,
) {
    for n in names::claimed(name, kind) {
        claims.remove(n.as_str());
    }
}
