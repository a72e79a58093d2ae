//! How the series of a routed family merge (see `rules.rs`): run under the
//! shard locks, before validation, so a push is still all or nothing.
//!
//! Three steps: pushed series that a rule sent to the same output series
//! (and, in `total` mode, come from the same source) are combined; each
//! `total` source's value becomes its increase since its last push; then
//! everything for one output series is combined, so the family holds each
//! key once and validation and merging go on as for any push.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use super::merge;
use super::settings::GaugeMode;
use super::sources::{
    Level, LevelUpdate, Levels, ResetWhy, SourceState, SourceUpdate, Sources, level_bytes,
    source_bytes, source_id,
};
use crate::error::Rejection;
use crate::model::Combine;
use crate::model::{Family, Kind, Series, SeriesKey, labels};
use crate::rules::{FamilyRoute, RuleSet};

/// How one series merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeriesMode {
    /// The combining rule.
    pub(crate) rule: Combine,
    /// Seconds it lives without a push (`None`: `--series-ttl`).
    pub(crate) ttl: Option<u32>,
    /// The rule (index in the set) that wrote it, if any.
    pub(crate) from: Option<u16>,
}

/// How the series of one family merge.
#[derive(Debug, Clone)]
pub(crate) enum Modes<'a> {
    /// The defaults: sums, `--gauge-mode`, `--series-ttl`.
    Default,
    /// One mode for every series.
    All(SeriesMode),
    /// Each series' rule (if any), keys as pushed: looked up as merged,
    /// no list of modes built.
    Rules(&'a [Option<u16>], &'a RuleSet),
    /// One per series, in the family's order.
    Each(Vec<SeriesMode>),
}

impl Modes<'_> {
    /// The mode of series `i` of a family of `kind`.
    pub(crate) fn get(&self, i: usize, kind: Kind, gauge_mode: GaugeMode) -> SeriesMode {
        let default = || SeriesMode {
            rule: merge::default_combine(kind, gauge_mode),
            ttl: None,
            from: None,
        };
        match self {
            Modes::Default => default(),
            Modes::All(m) => *m,
            Modes::Rules(of, rules) => of[i].map_or_else(default, |r| mode_of(rules, r)),
            Modes::Each(each) => each[i],
        }
    }
}

/// What resolving a family decided.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    /// How each of its series (as rewritten) merges.
    pub(crate) modes: Modes<'a>,
    /// `total` sources to write when the push is applied.
    pub(crate) sources: Vec<SourceUpdate>,
    /// `latest` sources to write when the push is applied.
    pub(crate) levels: Vec<LevelUpdate>,
    /// Bytes the sources grow by at most.
    pub(crate) source_need: usize,
}

impl Plan<'_> {
    /// Whether any of its series is given a TTL of its rule's.
    pub(crate) fn expires(&self) -> bool {
        match &self.modes {
            Modes::Default => false,
            Modes::All(m) => m.ttl.is_some(),
            Modes::Rules(of, rules) => of.iter().flatten().any(|&r| rules.rule(r).ttl.is_some()),
            Modes::Each(each) => each.iter().any(|m| m.ttl.is_some()),
        }
    }

    pub(crate) fn default_modes() -> Plan<'static> {
        Plan {
            modes: Modes::Default,
            sources: Vec::new(),
            levels: Vec::new(),
            source_need: 0,
        }
    }
}

/// What resolving needs besides the family.
pub(crate) struct Context<'a, 's> {
    pub(crate) rules: &'a RuleSet,
    pub(crate) gauge_mode: GaugeMode,
    pub(crate) max_native: usize,
    pub(crate) now: u32,
    /// The family's stored sources, if any.
    pub(crate) sources: Option<&'s Sources>,
}

fn seconds(d: std::time::Duration) -> u32 {
    d.as_secs().clamp(1, u64::from(u32::MAX)) as u32
}

fn mode_of(rules: &RuleSet, index: u16) -> SeriesMode {
    let r = rules.rule(index);
    SeriesMode {
        rule: r.mode.stored(),
        ttl: r.ttl.map(seconds),
        from: Some(index),
    }
}

/// Resolves one family's routes (see the module docs); rewrites its series.
pub(crate) fn resolve<'a>(
    family: &mut Family,
    route: &'a FamilyRoute,
    cx: &Context<'a, '_>,
) -> Result<Plan<'a>, Rejection> {
    let (rules, sources, times) = match route {
        FamilyRoute::Default => return Ok(Plan::default_modes()),
        FamilyRoute::Whole(i) => {
            return Ok(Plan {
                modes: Modes::All(mode_of(cx.rules, *i)),
                ..Plan::default_modes()
            });
        }
        FamilyRoute::Modes(rules) => {
            return Ok(Plan {
                modes: Modes::Rules(rules, cx.rules),
                ..Plan::default_modes()
            });
        }
        FamilyRoute::Each {
            rules,
            sources,
            times,
        } => (rules, sources, times),
    };
    let mut groups = group(family, rules, sources, times, cx)?;
    // 2. Each source's cumulative value becomes its increase; each
    // source's level replaces its last, and its output becomes the live
    // sources' combination (below).
    let mut found = SourceSteps::default();
    for (at, g) in groups.iter_mut().enumerate() {
        let (Some(_), Some(index)) = (&g.source, g.mode.from) else {
            continue;
        };
        if cx.rules.rule(index).mode == crate::rules::Mode::Latest {
            found.level(at, g, index, cx);
        } else {
            found.total(g, index, cx);
        }
    }
    // Groups by output series: found once, for the levels and for step 3.
    let needs_outputs = !found.levels.is_empty()
        || !groups
            .iter()
            .all(|g| g.source.is_none() && g.mode.from == groups[0].mode.from);
    let out_of = if needs_outputs {
        group_by(groups.iter().map(|g| (0, &*g.series.key, &[][..])))
    } else {
        Vec::new()
    };
    if !found.levels.is_empty() {
        combine_levels(&mut groups, &found, &out_of, cx.now);
    }
    let levels: Vec<LevelUpdate> = found.levels.into_iter().map(|(_, u)| u).collect();
    let modes = by_output(family, groups, &out_of, cx.max_native)?;
    Ok(Plan {
        modes: Modes::Each(modes),
        sources: found.updates,
        levels,
        source_need: found.source_need,
    })
}

/// Step 1: series of one rule, output series and source, combined. Groups
/// are found by borrowing the keys, then the series moved: no key is copied.
fn group(
    family: &mut Family,
    rules: &[Option<u16>],
    sources: &[Option<SeriesKey>],
    times: &[u64],
    cx: &Context<'_, '_>,
) -> Result<Vec<Group>, Rejection> {
    let source_of = |i: usize| sources.get(i).and_then(|s| s.as_ref());
    let time_of = |i: usize| times.get(i).copied().unwrap_or(0);
    let default = SeriesMode {
        rule: merge::default_combine(family.kind, cx.gauge_mode),
        ttl: None,
        from: None,
    };
    let name = family.name.as_str();
    let pushed = std::mem::take(&mut family.series);
    let group_of = group_by(pushed.iter().enumerate().map(|(i, s)| {
        (
            rules[i].unwrap_or(u16::MAX),
            &*s.key,
            source_of(i).map_or(&[][..], |k| &**k),
        )
    }));
    let mut groups: Vec<Group> = Vec::with_capacity(pushed.len());
    for (i, (s, &g)) in pushed.into_iter().zip(&group_of).enumerate() {
        let rule_index = rules[i];
        let source = source_of(i);
        let mode = rule_index.map_or(default, |r| mode_of(cx.rules, r));
        if g == groups.len() {
            groups.push(Group {
                series: s,
                mode,
                source: source.cloned(),
                time: time_of(i),
            });
            continue;
        }
        if rule_index.is_none() {
            return Err(Rejection::invalid(format!(
                "metric {name}: series {} given twice in one push",
                labels::describe(&s.key)
            )));
        }
        // One source's parts of a cumulative value add up.
        let rule = if source.is_some() {
            Combine::Sum
        } else {
            mode.rule
        };
        groups[g].time = groups[g].time.max(time_of(i));
        combine(name, rule, &mut groups[g].series, s, cx.max_native)?;
    }
    Ok(groups)
}

/// What step 2 decided for the family's sources.
#[derive(Default)]
struct SourceSteps<'s> {
    /// `total` sources to write.
    updates: Vec<SourceUpdate>,
    /// `latest` sources to write, with their group.
    levels: Vec<(usize, LevelUpdate)>,
    /// Each level's output as stored, looked up once.
    stored_levels: Vec<Option<&'s Levels>>,
    /// Bytes the sources grow by at most.
    source_need: usize,
}

impl<'s> SourceSteps<'s> {
    /// A `latest` source's level (group `at`, of rule `index`): its update,
    /// its output combined afterwards.
    #[inline]
    fn level(&mut self, at: usize, g: &Group, index: u16, cx: &Context<'_, 's>) {
        let crate::model::Value::Scalar(value) = g.series.value else {
            // `latest` fits gauges and untyped only: scalars.
            return;
        };
        let Some(source) = &g.source else { return };
        let rule = cx.rules.rule(index);
        let combine = if index == crate::rules::LEVELS {
            cx.gauge_mode.combine()
        } else {
            rule.combine
        };
        let stored = cx.sources.and_then(|s| s.levels.get(&g.series.key));
        let known = stored.is_some_and(|l| l.sources.contains(source));
        if !known {
            self.source_need += level_bytes(g.series.key.len(), source.len(), stored.is_none());
        }
        self.stored_levels.push(stored);
        self.levels.push((
            at,
            LevelUpdate {
                output: g.series.key.clone(),
                source: source.clone(),
                combine,
                level: Level::new(
                    value,
                    cx.now.saturating_add(seconds(rule.source_ttl)),
                    rule.stats.clone(),
                ),
            },
        ));
    }

    /// A `total` source's running total (of rule `index`) turned into its
    /// increase since its last push; a replay into zero.
    #[inline]
    fn total(&mut self, g: &mut Group, index: u16, cx: &Context<'_, 's>) {
        let Some(source) = &g.source else { return };
        let rule = cx.rules.rule(index);
        let id = source_id(&g.series.key, source);
        let last = cx.sources.and_then(|s| s.by_id.get(&id));
        if let Some(last) = last.filter(|last| last.replayed_by(g.time, g.series.created)) {
            // Nothing grew: the output is touched by zero, the source
            // keeps its state, and the replay is counted when applied.
            g.series.value =
                merge::increase(&last.value, last.created, &last.value, last.created).0;
            self.updates.push(SourceUpdate {
                id,
                state: last.clone(),
                reset: false,
                replay: true,
            });
            return;
        }
        let (delta, reset) = match last {
            Some(last) => {
                merge::increase(&last.value, last.created, &g.series.value, g.series.created)
            }
            None => (g.series.value.clone(), false),
        };
        self.source_need += match last {
            Some(last) => g
                .series
                .value
                .heap_bytes()
                .saturating_sub(last.value.heap_bytes()),
            None => source_bytes(id.len(), &g.series.value),
        };
        let mut history = last.map(|l| l.history).unwrap_or_default();
        if reset {
            history.resets = history.resets.saturating_add(1);
            let later = matches!(
                (last.and_then(|l| l.created), g.series.created),
                (Some(a), Some(b)) if b > a
            );
            history.last_reset = Some(if later {
                ResetWhy::LaterStart
            } else {
                ResetWhy::LowerValue
            });
        }
        let cumulative = std::mem::replace(&mut g.series.value, delta);
        self.updates.push(SourceUpdate {
            id,
            state: SourceState {
                value: cumulative,
                created: g.series.created,
                time: g.time,
                expires: cx.now.saturating_add(seconds(rule.source_ttl)),
                stats: rule.stats.clone(),
                history,
            },
            reset,
            replay: false,
        });
    }
}

/// Each `latest` output: its live sources' values, this push's replacing
/// theirs, combined; every group of it carries the result (they merge as
/// `last`). Updates are grouped by output first (a counting sort on
/// `group_by`'s numbers, no list per output): a push of many sources of
/// one output costs them once.
fn combine_levels(groups: &mut [Group], found: &SourceSteps<'_>, out_of: &[usize], now: u32) {
    let levels = &found.levels;
    let outputs = out_of.iter().max().map_or(0, |m| m + 1);
    let mut starts = vec![0usize; outputs + 1];
    for (at, _) in levels {
        starts[out_of[*at] + 1] += 1;
    }
    for o in 0..outputs {
        starts[o + 1] += starts[o];
    }
    let mut order = vec![0usize; levels.len()];
    let mut next = starts.clone();
    for (i, (at, _)) in levels.iter().enumerate() {
        let o = out_of[*at];
        order[next[o]] = i;
        next[o] += 1;
    }
    let mut updates: Vec<(&[u8], f64)> = Vec::new();
    let mut values: Vec<(usize, f64)> = Vec::with_capacity(levels.len());
    for o in 0..outputs {
        let of = &order[starts[o]..starts[o + 1]];
        let Some(&last) = of.last() else { continue };
        updates.clear();
        updates.extend(
            of.iter()
                .map(|&i| (&*levels[i].1.source, levels[i].1.level.value)),
        );
        let newest = &levels[last].1;
        let combined = Levels::combined(
            found.stored_levels[last],
            newest.combine,
            now,
            &updates,
            newest.level.value,
        )
        .unwrap_or(f64::NAN);
        values.extend(of.iter().map(|&i| (levels[i].0, combined)));
    }
    for (at, value) in values {
        groups[at].series.value = crate::model::Value::Scalar(value);
    }
}

/// Step 3: everything for one output series, combined: only where two
/// groups can share one (several rules, or sources) and do. The family is
/// given its series; returns their modes.
fn by_output(
    family: &mut Family,
    groups: Vec<Group>,
    out_of: &[usize],
    max_native: usize,
) -> Result<Vec<SeriesMode>, Rejection> {
    let shared = out_of.iter().enumerate().any(|(i, &o)| o != i);
    if !shared {
        let modes = groups.iter().map(|g| g.mode).collect();
        family.series = groups.into_iter().map(|g| g.series).collect();
        return Ok(modes);
    }
    let mut series: Vec<Series> = Vec::with_capacity(groups.len());
    let mut modes: Vec<SeriesMode> = Vec::with_capacity(groups.len());
    for (g, &o) in groups.into_iter().zip(out_of) {
        if o == series.len() {
            series.push(g.series);
            modes.push(g.mode);
        } else {
            combine(
                &family.name,
                modes[o].rule,
                &mut series[o],
                g.series,
                max_native,
            )?;
        }
    }
    family.series = series;
    Ok(modes)
}

struct Group {
    series: Series,
    mode: SeriesMode,
    source: Option<SeriesKey>,
    /// When its point was taken (the latest of its parts; 0 unknown).
    time: u64,
}

/// For each item in order, the index of its group: items with equal
/// parts share one, numbered by first appearance (so an item opening a
/// group gets the number of groups before it).
fn group_by<'a>(items: impl ExactSizeIterator<Item = (u16, &'a [u8], &'a [u8])>) -> Vec<usize> {
    let mut index: HashMap<(u16, &[u8], &[u8]), usize, RandomState> = HashMap::default();
    index.reserve(items.len());
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let next = index.len();
        out.push(*index.entry(item).or_insert(next));
    }
    out
}

/// Combines pushed series `from` into `into` (same key) by `rule`, or
/// refuses what could not be stored (a NaN sum, histograms of both
/// flavours, a native sum over the bucket limit).
fn combine(
    name: &str,
    rule: Combine,
    into: &mut Series,
    from: Series,
    max_native: usize,
) -> Result<(), Rejection> {
    let refuse = |why: &str| {
        Rejection::invalid(format!(
            "metric {name}: series {}: {why}",
            labels::describe(&into.key)
        ))
    };
    if std::mem::discriminant(&into.value) != std::mem::discriminant(&from.value) {
        return Err(refuse(
            "a rule combines classic and native histograms into it",
        ));
    }
    let created = match (into.created, from.created) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    merge::combine(rule, &mut into.value, from.value, max_native).map_err(|why| refuse(&why))?;
    into.created = created;
    Ok(())
}
