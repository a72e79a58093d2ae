//! Applying a push, all or nothing, in named steps over the shards it
//! locks: [`Aggregator::lock_for`] (the shards of its families, in index
//! order), `plan` (rules: series sent to one output combined, `total`
//! sources turned into increases, `latest` levels combined), `validate`
//! (everything checked against what is stored, nothing changed yet),
//! `reserve` (names, `--max-series`, the byte budget, then the caller's
//! last word), `merge` (every family written), then the budget settled on
//! what really changed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use foldhash::fast::RandomState;
use parking_lot::MutexGuard;

use super::aggregator::Aggregator;
use super::merge;
use super::plan::{self, Plan};
use super::store::{self, Shard, StoredFamily};
use crate::error::Rejection;
use crate::model::{Combine, Family, Kind, Push, Value, labels, names};
use crate::rules::{Routes, RuleSet};

/// What applying a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Series touched.
    pub series: usize,
    /// Series created.
    pub created: usize,
}

/// The shards one push touches, locked in index order (so pushes never
/// deadlock).
struct Locked<'a> {
    /// Per family of the push, its shard.
    shard_ids: Vec<usize>,
    /// The shards locked, in index order.
    order: Vec<usize>,
    guards: Vec<MutexGuard<'a, Shard>>,
}

impl Locked<'_> {
    /// The locked shard of the push's family `i`.
    fn shard(&self, i: usize) -> &Shard {
        &self.guards[self.slot(i)]
    }

    fn shard_mut(&mut self, i: usize) -> &mut Shard {
        let slot = self.slot(i);
        &mut self.guards[slot]
    }

    fn slot(&self, i: usize) -> usize {
        self.order.binary_search(&self.shard_ids[i]).unwrap_or(0)
    }
}

/// Every name a stored family claims, locked.
type ClaimsGuard<'a> = MutexGuard<'a, HashMap<Box<str>, Box<str>, RandomState>>;

/// What validating a push found.
#[derive(Default)]
struct Checked {
    /// Per family, where each of its series is stored (none: new).
    positions: Vec<Vec<Option<u32>>>,
    /// The push's families not stored yet, by index.
    new_families: Vec<usize>,
    new_series: usize,
    /// Bytes the aggregate grows by at most: what `--max-memory` must have.
    need: usize,
}

impl Aggregator {
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
        let mut locked = self.lock_for(&push);
        let now = self.now();
        let plans = self.plan(&mut push, routing, &locked, now)?;
        let span = tracing::info_span!(target: crate::trace::STAGE, "validate", series = push.series_count()).entered();
        let checked = self.validate(&push, &plans, &locked, restoring)?;
        let claims = self.reserve(&push, &checked, restoring, commit)?;
        drop(span);
        let _span = tracing::info_span!(target: crate::trace::STAGE, "apply", new_series = checked.new_series).entered();
        let (need, new_series) = (checked.need, checked.new_series);
        let (touched, grown, written) =
            self.merge(push, plans, checked.positions, &mut locked, now, restoring);
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

    /// Locks the shards of the push's families, in index order.
    fn lock_for(&self, push: &Push) -> Locked<'_> {
        let shard_ids: Vec<usize> = push
            .families
            .iter()
            .map(|f| self.shard_of(&f.name))
            .collect();
        let mut order = shard_ids.clone();
        order.sort_unstable();
        order.dedup();
        let guards = order.iter().map(|&i| self.shards[i].lock()).collect();
        Locked {
            shard_ids,
            order,
            guards,
        }
    }

    /// Rules first: series sent to one output series combined, `total`
    /// sources turned into increases (under the locks: they read the
    /// stored sources).
    fn plan<'r>(
        &self,
        push: &mut Push,
        routing: Option<(&'r Routes, &'r RuleSet)>,
        locked: &Locked<'_>,
        now: u32,
    ) -> Result<Vec<Plan<'r>>, Rejection> {
        let mut plans = Vec::with_capacity(push.families.len());
        for (i, family) in push.families.iter_mut().enumerate() {
            plans.push(match routing {
                None => Plan::default_modes(),
                Some((routes, rules)) => {
                    let cx = plan::Context {
                        rules,
                        gauge_mode: self.settings.gauge_mode,
                        max_native: self.settings.max_native_buckets,
                        now,
                        sources: locked
                            .shard(i)
                            .sources
                            .get(family.name.as_str())
                            .map(|s| &**s),
                    };
                    plan::resolve(family, &routes.families[i], &cx)?
                }
            });
        }
        Ok(plans)
    }

    /// Validates everything before changing anything: families given once
    /// and of their stored type, series given once, values that may merge
    /// into what is stored; and what the push may add in bytes.
    fn validate(
        &self,
        push: &Push,
        plans: &[Plan],
        locked: &Locked<'_>,
        restoring: bool,
    ) -> Result<Checked, Rejection> {
        let mut names: HashSet<&str, RandomState> = HashSet::default();
        let mut keys: HashSet<&[u8], RandomState> = HashSet::default();
        let mut checked = Checked {
            positions: Vec::with_capacity(push.families.len()),
            need: plans.iter().map(|p| p.source_need).sum(),
            ..Checked::default()
        };
        for (i, (family, plan)) in push.families.iter().zip(plans).enumerate() {
            if !names.insert(&family.name) {
                return Err(Rejection::invalid(format!(
                    "metric {}: family given twice in one push",
                    family.name
                )));
            }
            let stored = locked.shard(i).families.get(family.name.as_str());
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
                checked.new_families.push(i);
                checked.need += store::family_bytes(&family.name, &family.help);
            }
            if family.kind == Kind::Histogram && !restoring {
                self.check_bounds(family, stored)?;
            }
            let found = self.validate_series(family, stored, plan, &mut keys, &mut checked)?;
            checked.positions.push(found);
        }
        Ok(checked)
    }

    /// Validates one family's series against the stored family; returns
    /// where each is stored.
    #[inline]
    fn validate_series<'p>(
        &self,
        family: &'p Family,
        stored: Option<&StoredFamily>,
        plan: &Plan,
        keys: &mut HashSet<&'p [u8], RandomState>,
        checked: &mut Checked,
    ) -> Result<Vec<Option<u32>>, Rejection> {
        let refuse = |key: &[u8], why: &str| {
            Rejection::invalid(format!(
                "metric {}: series {}{why}",
                family.name,
                labels::describe(key)
            ))
        };
        keys.clear();
        // Sized once: grown by doubling, the set was rehashed many times
        // in a large push.
        keys.reserve(family.series.len());
        let mut found_at = Vec::with_capacity(family.series.len());
        for (i, s) in family.series.iter().enumerate() {
            let rule = plan
                .modes
                .get(i, family.kind, self.settings.gauge_mode)
                .rule;
            if !keys.insert(&s.key) {
                return Err(refuse(&s.key, " given twice in one push"));
            }
            let found = stored.and_then(|f| f.find(&s.key));
            found_at.push(found);
            match found.and_then(|at| stored.map(|f| f.at(at))) {
                None => {
                    // A NaN added to would stay NaN for good.
                    if rule == Combine::Sum && matches!(s.value, Value::Scalar(v) if v.is_nan()) {
                        return Err(refuse(&s.key, ": NaN cannot be added up"));
                    }
                    checked.new_series += 1;
                    checked.need += store::series_bytes(s.key.len(), &s.value);
                }
                Some(existing) => {
                    if std::mem::discriminant(&existing.value) != std::mem::discriminant(&s.value) {
                        return Err(refuse(
                            &s.key,
                            &format!(
                                " pushed as a {} histogram but stored as a {} one",
                                histogram_flavour(&s.value),
                                histogram_flavour(&existing.value),
                            ),
                        ));
                    }
                    if let Some(why) = merge::refusal(rule, &existing.value, &s.value) {
                        return Err(refuse(&s.key, &format!(": {why}")));
                    }
                    checked.need += self.growth(family, &s.key, &existing.value, &s.value)?;
                }
            }
        }
        Ok(found_at)
    }

    /// Takes what the push needs before anything is written: its new
    /// families' names (against every stored family's, and each other's:
    /// held until the push is applied), room under `--max-series`, its
    /// bytes from the budget; then asks `commit`. Any refusal gives back
    /// what was taken.
    fn reserve(
        &self,
        push: &Push,
        checked: &Checked,
        restoring: bool,
        commit: impl FnOnce() -> Result<(), Rejection>,
    ) -> Result<Option<ClaimsGuard<'_>>, Rejection> {
        let new_families = || checked.new_families.iter().map(|&i| &push.families[i]);
        let mut claims = (!checked.new_families.is_empty()).then(|| self.claims.lock());
        if let Some(claims) = &claims {
            check_claims(claims, new_families())?;
        }
        let stored = self.series.load(Ordering::Relaxed);
        let new_series = checked.new_series;
        if new_series > 0 && stored + new_series > self.settings.max_series {
            return Err(Rejection::TooManySeries {
                new: new_series,
                stored,
                limit: self.settings.max_series,
            });
        }
        if restoring {
            self.settings.memory.charge(checked.need);
        } else if checked.need > 0 {
            self.settings.memory.try_charge(checked.need)?;
        }
        if let Err(e) = commit() {
            self.settings.memory.release(checked.need);
            return Err(e);
        }
        if let Some(claims) = &mut claims {
            for f in new_families() {
                for n in names::claimed(&f.name, f.kind) {
                    claims.insert(n.into(), f.name.as_str().into());
                }
            }
        }
        Ok(claims)
    }

    /// Writes every family of a validated push; returns the series
    /// touched, the bytes the aggregate grew by, and the series written
    /// per rule.
    fn merge(
        &self,
        push: Push,
        plans: Vec<Plan>,
        positions: Vec<Vec<Option<u32>>>,
        locked: &mut Locked<'_>,
        now: u32,
        restoring: bool,
    ) -> (usize, isize, Vec<(u16, u64)>) {
        let when = store::Writing {
            now,
            stamp: self.stamp(),
            started: (!restoring && self.settings.made_start_times).then(|| self.clock.wall()),
        };
        if !self.expiring.load(Ordering::Relaxed)
            && (self.settings.series_ttl.is_some() || plans.iter().any(Plan::expires))
        {
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
        for (i, ((family, found), plan)) in push
            .families
            .into_iter()
            .zip(positions)
            .zip(plans)
            .enumerate()
        {
            touched += family.series.len();
            match &plan.modes {
                plan::Modes::Each(modes) => modes.iter().for_each(|m| wrote(m.from, 1)),
                plan::Modes::Rules(of, _) => of.iter().for_each(|r| wrote(*r, 1)),
                plan::Modes::All(m) => wrote(m.from, family.series.len() as u64),
                plan::Modes::Default => {}
            }
            let shard = locked.shard_mut(i);
            if !plan.sources.is_empty() {
                grown += shard.update_sources(&family.name, plan.sources);
            }
            if !plan.levels.is_empty() {
                grown += shard.update_levels(&family.name, plan.levels);
            }
            grown += shard.merge(family, &found, &plan.modes, &self.settings, when);
        }
        (touched, grown, written)
    }

    /// Refuses a histogram family whose distinct classic bounds, stored
    /// and pushed, would be more than `--max-buckets`.
    fn check_bounds(
        &self,
        family: &Family,
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
        family: &Family,
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
}

/// Refuses new families whose names meet a stored family's (in `claims`)
/// or each other's.
fn check_claims<'a>(
    claims: &HashMap<Box<str>, Box<str>, RandomState>,
    new: impl Iterator<Item = &'a Family>,
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

fn histogram_flavour(v: &Value) -> &'static str {
    match v {
        Value::Native(_) => "native",
        _ => "classic",
    }
}
