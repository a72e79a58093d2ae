//! Aggregate stage: the one store every protocol pushes into (contract §4).
//!
//! A push is applied all or nothing: the shards of every family it touches
//! are locked (in index order, so pushes never deadlock), the whole push is
//! validated against what is stored (type conflicts, duplicate series,
//! `--max-series`), and only then merged. Families are spread over shards by
//! name, so pushes to different families run in parallel. A scrape (or a
//! snapshot) locks all shards only to take a view of each family (see
//! `series.rs`), so it never sees half a push, and reads the view after
//! the locks are released.

mod merge;
mod plan;
mod series;
pub(crate) mod sources;
mod store;
pub mod windows;

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use foldhash::fast::RandomState;
use parking_lot::{Mutex, MutexGuard};

use crate::error::Rejection;
use crate::memory::Memory;
use crate::model::{Kind, Push, Value, labels, names};
use crate::rules::{Routes, RuleSet};
pub(crate) use merge::combine;
pub use store::{FamilyView, StoredFamily, StoredSeries};

/// Which start times counters, histograms and summaries carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StartTimes {
    /// The earliest their senders gave, else when the gateway made them.
    #[default]
    Always,
    /// Only those their senders gave.
    Given,
}

/// How two values of a family of `kind` combine (`--gauge-mode` for
/// gauges), for [`combine`].
pub(crate) fn merge_rule(kind: Kind, gauge_mode: GaugeMode) -> crate::model::Combine {
    merge::default_combine(kind, gauge_mode)
}

/// How gauges pushed to the same series combine (`--gauge-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GaugeMode {
    /// Add them up, as the Go prom-aggregation-gateway does.
    #[default]
    Sum,
    /// Keep the last pushed value.
    Last,
    /// Keep the largest value.
    Max,
    /// Keep the smallest value.
    Min,
}

impl GaugeMode {
    /// How the values combine (see `model::mode`).
    pub fn combine(self) -> crate::model::Combine {
        use crate::model::Combine;
        match self {
            GaugeMode::Sum => Combine::Sum,
            GaugeMode::Last => Combine::Last,
            GaugeMode::Max => Combine::Max,
            GaugeMode::Min => Combine::Min,
        }
    }
}

/// Limits and rules of an [`Aggregator`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--gauge-mode`.
    pub gauge_mode: GaugeMode,
    /// `--max-series`.
    pub max_series: usize,
    /// The byte budget (`--max-memory`) the aggregate's bytes are charged to.
    pub memory: Arc<Memory>,
    /// `--max-buckets`: distinct classic bucket bounds in one family.
    pub max_buckets: usize,
    /// `--max-native-buckets`: buckets of one native histogram series.
    pub max_native_buckets: usize,
    /// What series ages (`--series-ttl`) are measured on.
    pub clock: crate::clock::Clock,
    /// `--series-ttl`: how long a series no rule gives a `ttl` lives
    /// without a push (`None`: for ever).
    pub series_ttl: Option<Duration>,
    /// Keep what each expiry, delete and wipe drops, for
    /// [`Aggregator::take_dropped`] (the remote-write output's staleness
    /// markers); off, nothing is kept.
    pub journal: bool,
    /// A new counter, histogram or summary no sender gave a start time
    /// starts when it is made (`--start-times always`); off, only the
    /// senders' own are kept (`given`).
    pub made_start_times: bool,
}

impl Default for Settings {
    /// Sum gauges, 1M series, no byte limit, 256 classic bounds per family,
    /// 160 native buckets per series.
    fn default() -> Settings {
        Settings {
            gauge_mode: GaugeMode::Sum,
            max_series: 1_000_000,
            memory: Memory::new(usize::MAX),
            max_buckets: 256,
            max_native_buckets: 160,
            clock: crate::clock::Clock::system(),
            series_ttl: None,
            journal: false,
            made_start_times: true,
        }
    }
}

/// A series the aggregate dropped (expired, deleted or wiped), as
/// [`Aggregator::take_dropped`] gives it: enough to name every sample it
/// wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    /// Its family's name.
    pub family: Arc<str>,
    /// Its family's type.
    pub kind: Kind,
    /// Its key (see [`labels`]).
    pub key: Box<[u8]>,
    /// The bucket bounds it had, for a classic histogram (each wrote a
    /// `_bucket` sample); `None` for a native one; empty otherwise.
    pub bounds: Option<Box<[f64]>>,
}

impl Dropped {
    fn new(family: &Arc<str>, kind: Kind, key: &[u8], value: &Value) -> Dropped {
        Dropped {
            family: family.clone(),
            kind,
            key: key.into(),
            bounds: match value {
                Value::Histogram(h) => Some(h.buckets.iter().map(|b| b.le).collect()),
                Value::Native(_) => None,
                Value::Scalar(_) | Value::Summary { .. } => Some(Box::new([])),
            },
        }
    }

    /// Bytes it holds, for the byte budget.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Dropped>()
            + self.key.len()
            + self.bounds.as_ref().map_or(0, |b| b.len() * 8)
    }
}

/// Series dropped since the remote-write output last took them.
#[derive(Debug, Default)]
struct Journal {
    dropped: Vec<Dropped>,
    bytes: usize,
    /// Dropped series not kept: the journal was full.
    lost: u64,
}

/// What applying a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Series touched.
    pub series: usize,
    /// Series created.
    pub created: usize,
}

const SHARDS: usize = 32;

/// The aggregate: every stored family, sharded by name.
pub struct Aggregator {
    shards: Box<[Mutex<store::Shard>]>,
    settings: Settings,
    series: AtomicUsize,
    /// Seeds the shard of a family name: random per process, so names
    /// crafted to meet in one shard cannot be.
    shard_hasher: RandomState,
    /// Bumped by every change, so a snapshot writer can skip an unchanged
    /// aggregate.
    generation: AtomicU64,
    /// Stamps families as they change (see [`FamilyView::changed`]).
    stamps: AtomicU64,
    /// The clock of `StoredSeries::expires` (`Settings::clock`).
    clock: crate::clock::Clock,
    /// Every name a stored family claims (see [`names::claimed`]), with the
    /// family that claims it. Taken after the shard locks, and only when a
    /// push adds a family or a family goes: pushes to stored families never
    /// touch it.
    claims: Mutex<HashMap<Box<str>, Box<str>, RandomState>>,
    /// Whether any series was ever given an expiry (`--series-ttl` or a
    /// rule's `ttl`): until then a sweep has no series to look at.
    expiring: std::sync::atomic::AtomicBool,
    /// What expiry, delete and wipe dropped (with `Settings::journal`).
    /// Taken after the shard locks; it takes none itself.
    journal: Option<Mutex<Journal>>,
    /// Delta windows already counted, per producer and series.
    windows: windows::DeltaWindows,
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

    fn shard_of(&self, name: &str) -> usize {
        (self.shard_hasher.hash_one(name) as usize) % SHARDS
    }

    /// Bytes the aggregate is charged now is part of [`Memory::used`];
    /// this is the budget itself.
    pub fn memory(&self) -> &Arc<Memory> {
        &self.settings.memory
    }

    /// Validates the whole push against the stored state, then merges it;
    /// on any error nothing is changed.
    pub fn apply(&self, push: Push) -> Result<Applied, Rejection> {
        self.apply_if(push, || Ok(()))
    }

    /// [`Aggregator::apply`], asking `commit` after validation, under the
    /// locks, whether to go on: its error is returned and nothing changed.
    pub fn apply_if(
        &self,
        push: Push,
        commit: impl FnOnce() -> Result<(), Rejection>,
    ) -> Result<Applied, Rejection> {
        self.apply_with(push, None, commit, false)
    }

    /// [`Aggregator::apply_if`] for a push `rules` routed (see
    /// [`RuleSet::route`]): series a rule sent to one output series are
    /// combined, `total` sources add their increase, and each series merges
    /// by its rule's mode and lives for its rule's `ttl`.
    pub fn apply_routed(
        &self,
        push: Push,
        routes: &Routes,
        rules: &RuleSet,
        commit: impl FnOnce() -> Result<(), Rejection>,
    ) -> Result<Applied, Rejection> {
        if routes.is_default() {
            return self.apply_with(push, None, commit, false);
        }
        self.apply_with(push, Some((routes, rules)), commit, false)
    }

    /// Applies a snapshot's push: as [`Aggregator::apply`], but what it
    /// stores is charged to the byte budget without refusal, and the bucket
    /// limits are not checked: limits lowered since it was written must
    /// not lose the data (`--max-series` still holds).
    pub fn restore(&self, push: Push) -> Result<Applied, Rejection> {
        self.apply_with(push, None, || Ok(()), true)
    }

    fn apply_with(
        &self,
        mut push: Push,
        routing: Option<(&Routes, &RuleSet)>,
        commit: impl FnOnce() -> Result<(), Rejection>,
        restoring: bool,
    ) -> Result<Applied, Rejection> {
        let shard_ids: Vec<usize> = push
            .families
            .iter()
            .map(|f| self.shard_of(&f.name))
            .collect();
        let mut order = shard_ids.clone();
        order.sort_unstable();
        order.dedup();
        let mut guards: Vec<MutexGuard<'_, store::Shard>> =
            order.iter().map(|&i| self.shards[i].lock()).collect();
        let slot = |shard: usize| order.binary_search(&shard).unwrap_or(0);
        let now = self.now();

        // Rules first: series sent to one output series combined, `total`
        // sources turned into increases (under the locks: they read the
        // stored sources).
        let mut plans: Vec<plan::Plan> = Vec::with_capacity(push.families.len());
        for (i, (family, &shard)) in push.families.iter_mut().zip(&shard_ids).enumerate() {
            plans.push(match routing {
                None => plan::Plan::default_modes(),
                Some((routes, rules)) => {
                    let cx = plan::Context {
                        rules,
                        gauge_mode: self.settings.gauge_mode,
                        max_native: self.settings.max_native_buckets,
                        now,
                        sources: guards[slot(shard)]
                            .sources
                            .get(family.name.as_str())
                            .map(|s| &**s),
                    };
                    plan::resolve(family, &routes.families[i], &cx)?
                }
            });
        }

        // Validate everything before changing anything.
        let span = tracing::info_span!(target: crate::trace::STAGE, "validate", series = push.series_count()).entered();
        let mut names: HashSet<&str, RandomState> = HashSet::default();
        let mut new_families: Vec<&crate::model::Family> = Vec::new();
        let mut keys: HashSet<&[u8], RandomState> = HashSet::default();
        let mut new_series = 0usize;
        // Per family, where each of its series is stored (none: new).
        let mut positions: Vec<Vec<Option<u32>>> = Vec::with_capacity(push.families.len());
        // Bytes the aggregate grows by at most: what `--max-memory` must have.
        let mut need: usize = plans.iter().map(|p| p.source_need).sum();
        for ((family, &shard), plan) in push.families.iter().zip(&shard_ids).zip(&plans) {
            if !names.insert(&family.name) {
                return Err(Rejection::invalid(format!(
                    "metric {}: family given twice in one push",
                    family.name
                )));
            }
            let stored = guards[slot(shard)].families.get(family.name.as_str());
            if let Some(stored) = stored
                && stored.kind != family.kind
            {
                return Err(Rejection::TypeConflict {
                    family: family.name.clone(),
                    pushed: family.kind.as_str(),
                    stored: stored.kind.as_str(),
                });
            }
            if stored.is_none() {
                new_families.push(family);
                need += store::family_bytes(&family.name, &family.help);
            }
            if family.kind == Kind::Histogram && !restoring {
                self.check_bounds(family, stored)?;
            }
            keys.clear();
            // Sized once: grown by doubling, the set was rehashed ~14 times
            // in a 10k-series push.
            keys.reserve(family.series.len());
            // Where each series is stored, for the merge: looked up once.
            let mut found_at = Vec::with_capacity(family.series.len());
            for (i, s) in family.series.iter().enumerate() {
                let rule = plan
                    .modes
                    .get(i, family.kind, self.settings.gauge_mode)
                    .rule;
                if !keys.insert(&s.key) {
                    return Err(Rejection::invalid(format!(
                        "metric {}: series {} given twice in one push",
                        family.name,
                        labels::describe(&s.key)
                    )));
                }
                let found = stored.and_then(|f| f.find(&s.key));
                found_at.push(found);
                match found.and_then(|at| stored.map(|f| f.at(at))) {
                    None => {
                        // A NaN added to would stay NaN for good.
                        if rule == crate::model::Combine::Sum
                            && matches!(s.value, Value::Scalar(v) if v.is_nan())
                        {
                            return Err(Rejection::invalid(format!(
                                "metric {}: series {}: NaN cannot be added up",
                                family.name,
                                labels::describe(&s.key)
                            )));
                        }
                        new_series += 1;
                        need += store::series_bytes(s.key.len(), &s.value);
                    }
                    Some(existing) => {
                        if std::mem::discriminant(&existing.value)
                            != std::mem::discriminant(&s.value)
                        {
                            return Err(Rejection::invalid(format!(
                                "metric {}: series {} pushed as a {} histogram but stored as a {} one",
                                family.name,
                                labels::describe(&s.key),
                                histogram_flavour(&s.value),
                                histogram_flavour(&existing.value),
                            )));
                        }
                        if let Some(why) = merge::refusal(rule, &existing.value, &s.value) {
                            return Err(Rejection::invalid(format!(
                                "metric {}: series {}: {why}",
                                family.name,
                                labels::describe(&s.key),
                            )));
                        }
                        need += self.growth(family, &s.key, &existing.value, &s.value)?;
                    }
                }
            }
            positions.push(found_at);
        }
        // Names of new families against every stored family's, and each
        // other's: held until the push is applied.
        let mut claims = (!new_families.is_empty()).then(|| self.claims.lock());
        if let Some(claims) = &claims {
            check_claims(claims, &new_families)?;
        }
        let stored = self.series.load(Ordering::Relaxed);
        if new_series > 0 && stored + new_series > self.settings.max_series {
            return Err(Rejection::TooManySeries {
                new: new_series,
                stored,
                limit: self.settings.max_series,
            });
        }
        if restoring {
            self.settings.memory.charge(need);
        } else if need > 0 {
            self.settings.memory.try_charge(need)?;
        }
        if let Err(e) = commit() {
            self.settings.memory.release(need);
            return Err(e);
        }
        if let Some(claims) = &mut claims {
            for f in &new_families {
                for n in names::claimed(&f.name, f.kind) {
                    claims.insert(n.into(), f.name.as_str().into());
                }
            }
        }
        drop(new_families);
        drop(keys);
        drop(names);
        drop(span);
        let _span = tracing::info_span!(target: crate::trace::STAGE, "apply", new_series).entered();

        let when = store::Writing {
            now,
            stamp: self.stamp(),
            started: (!restoring && self.settings.made_start_times).then(|| self.clock.wall()),
        };
        let expiring = !self.expiring.load(Ordering::Relaxed)
            && (self.settings.series_ttl.is_some()
                || plans.iter().any(|p| match &p.modes {
                    plan::Modes::Default => false,
                    plan::Modes::All(m) => m.ttl.is_some(),
                    plan::Modes::Rules(of, rules) => {
                        of.iter().flatten().any(|&r| rules.rule(r).ttl.is_some())
                    }
                    plan::Modes::Each(each) => each.iter().any(|m| m.ttl.is_some()),
                }));
        if expiring {
            self.expiring.store(true, Ordering::Relaxed);
        }
        let mut touched = 0;
        let mut grown: isize = 0;
        // Series written per rule, counted once per push: the counters are
        // shared by every sender.
        let mut written: Vec<(u16, u64)> = Vec::new();
        let mut wrote = |from: Option<u16>, n: u64| {
            if let Some(i) = from {
                match written.iter_mut().find(|(r, _)| *r == i) {
                    Some((_, total)) => *total += n,
                    None => written.push((i, n)),
                }
            }
        };
        for (((family, shard), found), plan) in push
            .families
            .into_iter()
            .zip(shard_ids)
            .zip(positions)
            .zip(plans)
        {
            touched += family.series.len();
            match &plan.modes {
                plan::Modes::Each(modes) => modes.iter().for_each(|m| wrote(m.from, 1)),
                plan::Modes::Rules(of, _) => of.iter().for_each(|r| wrote(*r, 1)),
                plan::Modes::All(m) => wrote(m.from, family.series.len() as u64),
                plan::Modes::Default => {}
            }
            let shard = &mut guards[slot(shard)];
            if !plan.sources.is_empty() {
                grown += shard.update_sources(&family.name, plan.sources);
            }
            if !plan.levels.is_empty() {
                grown += shard.update_levels(&family.name, plan.levels);
            }
            grown += shard.merge(family, &found, &plan.modes, &self.settings, when);
        }
        // `need` was charged as a bound; settle on what really changed (a
        // native histogram lowered to fewer buckets may even shrink).
        let charged = need as isize;
        if grown > charged {
            self.settings.memory.charge((grown - charged) as usize);
        } else {
            self.settings.memory.release((charged - grown) as usize);
        }
        self.series.fetch_add(new_series, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
        drop(claims);
        if let Some((_, rules)) = routing {
            for (i, n) in written {
                rules.rule(i).stats.series_out.inc_by(n);
            }
        }
        Ok(Applied {
            series: touched,
            created: new_series,
        })
    }

    /// Refuses a histogram family whose distinct classic bounds, stored
    /// and pushed, would be more than `--max-buckets`.
    fn check_bounds(
        &self,
        family: &crate::model::Family,
        stored: Option<&StoredFamily>,
    ) -> Result<(), Rejection> {
        let limit = self.settings.max_buckets;
        let stored = stored.map_or(&[][..], |f| f.bounds());
        // Copied only when a push brings a bound not stored yet: pushes of
        // the stored bounds (the common case) allocate nothing.
        let mut bounds: Option<Vec<f64>> = None;
        for s in &family.series {
            let Value::Histogram(h) = &s.value else {
                continue;
            };
            if store::new_bounds(bounds.as_deref().unwrap_or(stored), h) == 0 {
                continue;
            }
            let bounds = bounds.get_or_insert_with(|| stored.to_vec());
            if !store::add_bounds(bounds, h, limit) {
                return Err(Rejection::FamilyLimit(format!(
                    "metric {}: histogram bucket bounds would number over {limit} (--max-buckets); {} are stored",
                    family.name,
                    stored.len()
                )));
            }
        }
        Ok(())
    }

    /// Bytes merging `pushed` into `existing` may add, or why it must be
    /// refused (a native histogram over `--max-native-buckets` at every
    /// schema).
    fn growth(
        &self,
        family: &crate::model::Family,
        key: &[u8],
        existing: &Value,
        pushed: &Value,
    ) -> Result<usize, Rejection> {
        const BUCKET: usize = std::mem::size_of::<crate::model::Bucket>();
        const NATIVE_BUCKET: usize = std::mem::size_of::<(i32, f64)>();
        Ok(match (existing, pushed) {
            (Value::Histogram(a), Value::Histogram(b)) => {
                (merge::union_len(&a.buckets, &b.buckets) - a.buckets.len()) * BUCKET
            }
            (Value::Native(a), Value::Native(b)) => {
                if let Some(why) = merge::native_refusal(a, b, self.settings.max_native_buckets) {
                    return Err(Rejection::invalid(format!(
                        "metric {}: series {}: {why}",
                        family.name,
                        labels::describe(key),
                    )));
                }
                b.bucket_count() * NATIVE_BUCKET
            }
            _ => 0,
        })
    }

    /// A stamp no family had before.
    fn stamp(&self) -> u64 {
        self.stamps.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn lock_all(&self) -> Vec<MutexGuard<'_, store::Shard>> {
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
    fn note(
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
    fn journal(&self, removed: Vec<Dropped>) {
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

    fn dropped(&self, n: usize) {
        self.series.fetch_sub(n, Ordering::Relaxed);
        if n > 0 {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn now(&self) -> u32 {
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

    fn view_with(&self, with_sources: bool) -> (Vec<(Arc<str>, FamilyView)>, u64, SourcesView) {
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

/// Refuses new families whose names meet a stored family's (in `claims`)
/// or each other's.
fn check_claims(
    claims: &HashMap<Box<str>, Box<str>, RandomState>,
    new: &[&crate::model::Family],
) -> Result<(), Rejection> {
    let mut pushed: HashMap<String, &str, RandomState> = HashMap::default();
    for f in new {
        for n in names::claimed(&f.name, f.kind) {
            let other = claims
                .get(n.as_str())
                .map(|o| (&**o, "stored"))
                .or_else(|| pushed.get(&n).map(|o| (*o, "pushed")));
            if let Some((other, where_)) = other {
                return Err(Rejection::invalid(format!(
                    "metric {} ({}) clashes with the {where_} metric {other}: both would write {n} in a scrape",
                    f.name,
                    f.kind.as_str(),
                )));
            }
            pushed.insert(n, &f.name);
        }
    }
    Ok(())
}

fn unclaim(claims: &mut HashMap<Box<str>, Box<str>, RandomState>, name: &str, kind: Kind) {
    for n in names::claimed(name, kind) {
        claims.remove(n.as_str());
    }
}

fn histogram_flavour(v: &crate::model::Value) -> &'static str {
    match v {
        crate::model::Value::Native(_) => "native",
        _ => "classic",
    }
}

#[cfg(test)]
mod tests;
