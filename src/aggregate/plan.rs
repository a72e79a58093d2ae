//! How the series of a routed family merge (see `rules.rs`): run under the
//! shard locks, before validation, so a push is still all or nothing.
//!
//! Three steps: pushed series that a rule sent to the same output series
//! (and, in `total` mode, come from the same source) are combined; each
//! `total` source's value becomes its increase since its last push; then
//! everything for one output series is combined, so the family holds each
//! key once and validation and merging go on as for any push.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use foldhash::fast::RandomState;

use super::GaugeMode;
use super::merge::{self, Rule};
use super::sources::{SourceState, SourceUpdate, Sources, source_bytes, source_id};
use crate::error::Rejection;
use crate::model::{Family, Kind, Series, SeriesKey, Value, labels};
use crate::rules::{FamilyRoute, Mode, RuleSet};

/// How one series merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeriesMode {
    /// The combining rule.
    pub(crate) rule: Rule,
    /// Seconds it lives without a push (`None`: `--series-ttl`).
    pub(crate) ttl: Option<u32>,
    /// The rule (index in the set) that wrote it, if any.
    pub(crate) from: Option<u16>,
}

/// How the series of one family merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Modes {
    /// The defaults: sums, `--gauge-mode`, `--series-ttl`.
    Default,
    /// One mode for every series.
    All(SeriesMode),
    /// One per series, in the family's order.
    Each(Vec<SeriesMode>),
}

impl Modes {
    /// The mode of series `i` of a family of `kind`.
    pub(crate) fn get(&self, i: usize, kind: Kind, gauge_mode: GaugeMode) -> SeriesMode {
        match self {
            Modes::Default => SeriesMode {
                rule: Rule::of(kind, gauge_mode),
                ttl: None,
                from: None,
            },
            Modes::All(m) => *m,
            Modes::Each(each) => each[i],
        }
    }
}

/// What resolving a family decided.
#[derive(Debug)]
pub(crate) struct Plan {
    /// How each of its series (as rewritten) merges.
    pub(crate) modes: Modes,
    /// `total` sources to write when the push is applied.
    pub(crate) sources: Vec<SourceUpdate>,
    /// Bytes the sources grow by at most.
    pub(crate) source_need: usize,
}

impl Plan {
    pub(crate) fn default_modes() -> Plan {
        Plan {
            modes: Modes::Default,
            sources: Vec::new(),
            source_need: 0,
        }
    }
}

/// What resolving needs besides the family.
pub(crate) struct Context<'a> {
    pub(crate) rules: &'a RuleSet,
    pub(crate) gauge_mode: GaugeMode,
    pub(crate) max_native: usize,
    pub(crate) now: u32,
    /// The family's stored sources, if any.
    pub(crate) sources: Option<&'a Sources>,
}

fn seconds(d: std::time::Duration) -> u32 {
    d.as_secs().clamp(1, u64::from(u32::MAX)) as u32
}

fn mode_of(rules: &RuleSet, index: u16) -> SeriesMode {
    let r = rules.rule(index);
    SeriesMode {
        rule: match r.mode {
            Mode::Sum | Mode::Total => Rule::Add,
            Mode::Last => Rule::Last,
            Mode::Max => Rule::Max,
            Mode::Min => Rule::Min,
        },
        ttl: r.ttl.map(seconds),
        from: Some(index),
    }
}

/// Resolves one family's routes (see the module docs); rewrites its series.
pub(crate) fn resolve(
    family: &mut Family,
    route: &FamilyRoute,
    cx: &Context<'_>,
) -> Result<Plan, Rejection> {
    let routes = match route {
        FamilyRoute::Default => return Ok(Plan::default_modes()),
        FamilyRoute::Whole(i) => {
            return Ok(Plan {
                modes: Modes::All(mode_of(cx.rules, *i)),
                ..Plan::default_modes()
            });
        }
        FamilyRoute::Each(routes) => routes,
    };
    let default = SeriesMode {
        rule: Rule::of(family.kind, cx.gauge_mode),
        ttl: None,
        from: None,
    };
    let name = family.name.as_str();

    // 1. Series of one rule, output series and source, combined.
    struct Group {
        series: Series,
        mode: SeriesMode,
        source: Option<SeriesKey>,
    }
    let pushed = std::mem::take(&mut family.series);
    let mut groups: Vec<Group> = Vec::with_capacity(pushed.len());
    let mut at: HashMap<Vec<u8>, usize, RandomState> = HashMap::default();
    at.reserve(pushed.len());
    for (s, route) in pushed.into_iter().zip(routes) {
        let mode = route.rule.map_or(default, |i| mode_of(cx.rules, i));
        let mut id =
            Vec::with_capacity(3 + s.key.len() + route.source.as_ref().map_or(0, |k| k.len() + 1));
        id.extend_from_slice(&route.rule.unwrap_or(u16::MAX).to_le_bytes());
        id.extend_from_slice(&s.key);
        if let Some(source) = &route.source {
            id.push(0xFF);
            id.extend_from_slice(source);
        }
        match at.entry(id) {
            Entry::Vacant(e) => {
                e.insert(groups.len());
                groups.push(Group {
                    series: s,
                    mode,
                    source: route.source.clone(),
                });
            }
            Entry::Occupied(e) => {
                if route.rule.is_none() {
                    return Err(Rejection::invalid(format!(
                        "metric {name}: series {} given twice in one push",
                        labels::describe(&s.key)
                    )));
                }
                let g = &mut groups[*e.get()];
                // One source's parts of a cumulative value add up.
                let rule = if route.source.is_some() {
                    Rule::Add
                } else {
                    mode.rule
                };
                combine(name, rule, &mut g.series, s, cx.max_native)?;
            }
        }
    }
    drop(at);

    // 2. Each source's cumulative value becomes its increase.
    let mut updates = Vec::new();
    let mut source_need = 0usize;
    for g in &mut groups {
        let Some(source) = &g.source else { continue };
        let Some(index) = g.mode.from else { continue };
        let rule = cx.rules.rule(index);
        let id = source_id(&g.series.key, source);
        let last = cx.sources.and_then(|s| s.by_id.get(&id));
        let (delta, reset) = match last {
            Some(last) => {
                merge::increase(&last.value, last.created, &g.series.value, g.series.created)
            }
            None => (g.series.value.clone(), false),
        };
        source_need += match last {
            Some(last) => g
                .series
                .value
                .heap_bytes()
                .saturating_sub(last.value.heap_bytes()),
            None => source_bytes(id.len(), &g.series.value),
        };
        let cumulative = std::mem::replace(&mut g.series.value, delta);
        updates.push(SourceUpdate {
            id,
            state: SourceState {
                value: cumulative,
                created: g.series.created,
                expires: cx.now.saturating_add(seconds(rule.source_ttl)),
                stats: rule.stats.clone(),
            },
            reset,
        });
    }

    // 3. Everything for one output series, combined.
    let mut series: Vec<Series> = Vec::with_capacity(groups.len());
    let mut modes: Vec<SeriesMode> = Vec::with_capacity(groups.len());
    let mut by_key: HashMap<SeriesKey, usize, RandomState> = HashMap::default();
    by_key.reserve(groups.len());
    for g in groups {
        match by_key.entry(g.series.key.clone()) {
            Entry::Vacant(e) => {
                e.insert(series.len());
                series.push(g.series);
                modes.push(g.mode);
            }
            Entry::Occupied(e) => {
                let i = *e.get();
                combine(name, modes[i].rule, &mut series[i], g.series, cx.max_native)?;
            }
        }
    }
    family.series = series;
    Ok(Plan {
        modes: Modes::Each(modes),
        sources: updates,
        source_need,
    })
}

/// Combines pushed series `from` into `into` (same key) by `rule`, or
/// refuses what could not be stored (a NaN sum, histograms of both
/// flavours, a native sum over the bucket limit).
fn combine(
    name: &str,
    rule: Rule,
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
    if let Some(why) = merge::refusal(rule, &into.value, &from.value) {
        return Err(refuse(why));
    }
    if let (Value::Native(a), Value::Native(b)) = (&into.value, &from.value)
        && let Some(why) = merge::native_refusal(a, b, max_native)
    {
        return Err(refuse(&why));
    }
    into.created = match (into.created, from.created) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    merge::merge_value(rule, &mut into.value, from.value, max_native);
    Ok(())
}
