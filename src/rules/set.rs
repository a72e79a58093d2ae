//! The rules in force: which rule takes each pushed series, remembered
//! per family name.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use parking_lot::RwLock;

use crate::model::{Family, Kind, Meaning, Produced, Push, Series, SeriesKey, labels};

use super::rule::*;

/// The rules that may apply to one family name and type, in order; when
/// the first has no label matchers it takes every series.
#[derive(Debug, Default)]
pub(super) struct Candidates {
    pub(super) rules: Vec<u16>,
}

/// Family names remembered with their candidate rules; past this many the
/// memo is emptied (names come from senders).
pub(super) const MEMO_LIMIT: usize = 1 << 16;

/// The rules in force: an ordered list, with a memo of which rules can
/// match each family name, so a push evaluates the name matchers (regexes)
/// once per family name, not per series.
#[derive(Debug)]
pub struct RuleSet {
    pub(super) rules: Vec<Rule>,
    pub(super) memo: RwLock<HashMap<Box<str>, Arc<[Candidates; KINDS]>, RandomState>>,
    /// The rule of running totals the push tells the producer of (OTLP
    /// cumulative temporality) that no `total` rule takes: `total`, every
    /// label kept, one source per producer and output series.
    pub(super) cumulative: Rule,
    /// The rule of the gateway's own `push_time_seconds` gauges: `last`.
    pub(super) push_time: Rule,
    /// The rule of producers' levels no `latest` rule takes ([`LEVELS`]).
    pub(super) levels: Rule,
    /// The rule of changes of a level ([`CHANGES`]): `sum`.
    pub(super) changes: Rule,
}

impl Default for RuleSet {
    fn default() -> RuleSet {
        RuleSet::new(Vec::new())
    }
}

/// The index [`RuleSet::rule`] gives the built-in rule of cumulative
/// producers under (user rules are numbered from 0, fewer than this).
pub const CUMULATIVE: u16 = u16::MAX - 1;

/// The name of the built-in rule of cumulative producers: the `rule` label
/// of its self-metrics.
pub const CUMULATIVE_NAME: &str = "otlp_cumulative";

/// The index [`RuleSet::rule`] gives the built-in rule of producers'
/// levels (OTLP gauges and cumulative non-monotonic sums) that no
/// `latest` rule takes: `latest`, combined as `--gauge-mode` says.
pub const LEVELS: u16 = u16::MAX - 3;

/// The name of the built-in rule of producers' levels.
pub const LEVELS_NAME: &str = "otlp_levels";

/// The index [`RuleSet::rule`] gives the built-in rule of changes of a
/// level (OTLP delta non-monotonic sums): added, whatever `--gauge-mode`.
pub const CHANGES: u16 = u16::MAX - 4;

/// The index [`RuleSet::rule`] gives the built-in rule of the
/// `push_time_seconds` gauges (`--push-time-metrics`): the last value.
pub const PUSH_TIME: u16 = u16::MAX - 2;

pub(super) const KINDS: usize = 5;

pub(super) fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Counter => 0,
        Kind::Gauge => 1,
        Kind::Histogram => 2,
        Kind::Summary => 3,
        Kind::Untyped => 4,
    }
}

/// How one family of a push is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FamilyRoute {
    /// No rule takes any of its series: the defaults.
    Default,
    /// One rule takes every series, keeps every label and is not `total`:
    /// keys are unchanged.
    Whole(u16),
    /// Per series, in the family's order, each series' rule (if any); no
    /// key was rewritten and no rule is `total`: only how each merges
    /// differs.
    Modes(Vec<Option<u16>>),
    /// Per series, in the family's order; some keys were rewritten or
    /// sources named: the aggregator combines what now shares a key.
    Each {
        /// Each series' rule, if any.
        rules: Vec<Option<u16>>,
        /// Each series' source (`total` rules; empty when none is).
        sources: Vec<Option<SeriesKey>>,
        /// Each series' point time (nanoseconds since the epoch, 0 when
        /// the push gives none); empty when none is given.
        times: Vec<u64>,
    },
}

/// The routes of a push's families, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// One per family of the push.
    pub families: Vec<FamilyRoute>,
}

impl Routes {
    /// Whether every family takes the defaults.
    pub fn is_default(&self) -> bool {
        self.families.iter().all(|f| *f == FamilyRoute::Default)
    }
}

impl RuleSet {
    /// A set of these rules (fewer than [`PUSH_TIME`]).
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        RuleSet {
            rules,
            memo: RwLock::default(),
            cumulative: Rule::built_in(CUMULATIVE_NAME, Mode::Total),
            push_time: Rule::built_in("push_time", Mode::Last),
            levels: Rule {
                source_ttl: DEFAULT_LEVEL_TTL,
                ..Rule::built_in(LEVELS_NAME, Mode::Latest)
            },
            changes: Rule::built_in("otlp_changes", Mode::Sum),
        }
    }

    /// The set with the built-in rules that track producers (cumulative
    /// totals, levels) counted in the self-metrics `stats` gives by name.
    pub fn with_built_in_stats(mut self, mut stats: impl FnMut(&str) -> Arc<RuleStats>) -> RuleSet {
        self.cumulative.stats = stats(CUMULATIVE_NAME);
        self.levels.stats = stats(LEVELS_NAME);
        self
    }

    /// The rule named `name`, if one is in force (built-in ones too).
    pub fn by_name(&self, name: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .chain([&self.cumulative, &self.levels])
            .find(|r| r.name == name)
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule at `index` (from a [`FamilyRoute`]; [`CUMULATIVE`] and
    /// [`PUSH_TIME`] are the built-in rules).
    pub fn rule(&self, index: u16) -> &Rule {
        match index {
            CUMULATIVE => return &self.cumulative,
            PUSH_TIME => return &self.push_time,
            LEVELS => return &self.levels,
            CHANGES => return &self.changes,
            _ => {}
        }
        &self.rules[usize::from(index)]
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub(super) fn candidates(&self, name: &str) -> Arc<[Candidates; KINDS]> {
        if let Some(c) = self.memo.read().get(name) {
            return c.clone();
        }
        let by_kind = [
            Kind::Counter,
            Kind::Gauge,
            Kind::Histogram,
            Kind::Summary,
            Kind::Untyped,
        ]
        .map(|kind| Candidates {
            rules: self
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.mode.fits(kind) && r.matches_name(name))
                .map(|(i, _)| i as u16)
                // Rules after one that takes every series never apply.
                .scan(false, |done, i| {
                    if *done {
                        return None;
                    }
                    *done = self.rules[usize::from(i)].label_matchers.is_empty();
                    Some(i)
                })
                .collect(),
        });
        let by_kind = Arc::new(by_kind);
        let mut memo = self.memo.write();
        if memo.len() >= MEMO_LIMIT {
            memo.clear();
        }
        memo.insert(name.into(), by_kind.clone());
        by_kind
    }

    /// The names of the rules that may take series of the family `name` of
    /// `kind`, in order, and the mode of the first when it takes every
    /// series (no label matchers): what the status page shows per family.
    pub fn rules_for(&self, name: &str, kind: Kind) -> (Vec<&str>, Option<Mode>) {
        if self.rules.is_empty() {
            return (Vec::new(), None);
        }
        let memo = self.candidates(name);
        let candidates = &memo[kind_index(kind)].rules;
        let names = candidates
            .iter()
            .map(|&i| self.rule(i).name.as_str())
            .collect();
        let whole = candidates
            .first()
            .map(|&i| self.rule(i))
            .filter(|r| r.label_matchers.is_empty())
            .map(|r| r.mode);
        (names, whole)
    }

    /// Picks each series' rule, rewrites the keys of series a rule
    /// projects (`by` / `without`) to their output keys, and names the
    /// source of each `total` series. Several series may then share a key:
    /// the aggregator combines them.
    ///
    /// A running total whose producer the push names
    /// ([`Push::producers`]) is always taken as `total`: by the first
    /// `total` rule that matches it (its source the rule's source labels
    /// and the producer), else by the built-in rule ([`CUMULATIVE`]); a
    /// rule of another mode would add the running total at every push.
    pub fn route(&self, push: &mut Push) -> Routes {
        let producers = std::mem::take(&mut push.producers);
        if self.rules.is_empty() && producers.is_empty() {
            return Routes {
                families: vec![FamilyRoute::Default; push.families.len()],
            };
        }
        let mut scratch = Vec::new();
        let families = push
            .families
            .iter_mut()
            .enumerate()
            .map(|(at, family)| {
                let produced = producers.get(at).map_or(&[][..], Vec::as_slice);
                self.route_family(family, produced, &mut scratch)
            })
            .collect();
        Routes { families }
    }

    /// One family's route: its series' rules, and their rewritten keys and
    /// sources where a rule rewrites or tracks them.
    #[inline]
    fn route_family(
        &self,
        family: &mut Family,
        produced: &[Option<Produced>],
        scratch: &mut Vec<u8>,
    ) -> FamilyRoute {
        let memo = (!self.rules.is_empty()).then(|| self.candidates(&family.name));
        let candidates = memo
            .as_ref()
            .map_or(&[][..], |m| &m[kind_index(family.kind)].rules[..]);
        if produced.is_empty() {
            let Some(&first) = candidates.first() else {
                return FamilyRoute::Default;
            };
            let first_rule = self.rule(first);
            if first_rule.label_matchers.is_empty()
                && first_rule.keep == Keep::All
                && !first_rule.mode.tracks_sources()
            {
                first_rule
                    .stats
                    .series_in
                    .inc_by(family.series.len() as u64);
                return FamilyRoute::Whole(first);
            }
        }
        let mut routing = Routing::new(family.series.len());
        for (i, s) in family.series.iter_mut().enumerate() {
            let produced = produced.get(i).and_then(Option::as_ref);
            routing.series(self, candidates, s, produced, scratch);
        }
        routing.finish(self, produced)
    }
}

/// A family being routed, series by series.
struct Routing {
    /// Series each rule took: counted per family, not per series (the
    /// counters are shared by every sender).
    taken: Vec<(u16, u64)>,
    family_len: usize,
    /// Whether any key was rewritten or any source named.
    rewritten: bool,
    seen: Seen,
    rules: Vec<Option<u16>>,
    /// Allocated at the first series whose rule tracks sources.
    sources: Option<Vec<Option<SeriesKey>>>,
}

impl Routing {
    #[inline]
    fn new(family_len: usize) -> Routing {
        Routing {
            taken: Vec::new(),
            family_len,
            rewritten: false,
            seen: Seen::default(),
            rules: Vec::with_capacity(family_len),
            sources: None,
        }
    }

    /// Routes one series: its rule, its source, its rewritten key.
    #[inline]
    fn series(
        &mut self,
        set: &RuleSet,
        candidates: &[u16],
        s: &mut Series,
        produced: Option<&Produced>,
        scratch: &mut Vec<u8>,
    ) {
        // What a produced point means decides the modes that may take it,
        // and the built-in rule that does when no rule of those matches.
        let meaning = produced.map(|p| p.meaning);
        let fits = |m: Mode| meaning.is_none_or(|meaning| m.takes(meaning));
        let built_in = match meaning {
            None => u16::MAX,
            Some(Meaning::Total) => CUMULATIVE,
            Some(Meaning::Level) => LEVELS,
            Some(Meaning::Increment) => CHANGES,
        };
        let matched = candidates
            .iter()
            .copied()
            .filter(|&r| fits(set.rule(r).mode))
            .find(|&r| set.rule(r).matches_labels(r, &s.key, &mut self.seen));
        let rule = match produced {
            Some(_) => Some(matched.unwrap_or(built_in)),
            None => matched,
        };
        // Changes add alike whoever made them.
        let producer = produced
            .filter(|p| p.meaning != Meaning::Increment)
            .map(|p| &p.producer);
        self.rules.push(rule);
        let Some(index) = rule else {
            if let Some(sources) = &mut self.sources {
                sources.push(None);
            }
            return;
        };
        match self.taken.iter_mut().find(|(r, _)| *r == index) {
            Some((_, n)) => *n += 1,
            None => self.taken.push((index, 1)),
        }
        let rule = set.rule(index);
        if rule.mode.tracks_sources() {
            let mut source = match (&rule.source, producer) {
                // The built-in rules: the producer alone (with the output
                // key it names the source).
                (_, Some(_)) if index == CUMULATIVE || index == LEVELS => Vec::new(),
                (Keep::All, _) => s.key.to_vec(),
                (keep, _) => project(&s.key, keep, scratch).into_vec(),
            };
            if let Some(p) = producer {
                source.extend_from_slice(p);
            }
            let (family_len, routed) = (self.family_len, self.rules.len() - 1);
            let sources = self.sources.get_or_insert_with(|| {
                let mut v = Vec::with_capacity(family_len);
                v.resize(routed, None);
                v
            });
            sources.push(Some(source.into()));
            self.rewritten = true;
        } else if let Some(sources) = &mut self.sources {
            sources.push(None);
        }
        if rule.keep != Keep::All {
            s.key = project(&s.key, &rule.keep, scratch);
            self.rewritten = true;
        }
    }

    /// The family's route, its rules' counts taken.
    #[inline]
    fn finish(self, set: &RuleSet, produced: &[Option<Produced>]) -> FamilyRoute {
        for (index, n) in &self.taken {
            set.rule(*index).stats.series_in.inc_by(*n);
        }
        if self.taken.is_empty() {
            return FamilyRoute::Default;
        }
        if !self.rewritten {
            return FamilyRoute::Modes(self.rules);
        }
        let times = if produced
            .iter()
            .any(|p| p.as_ref().is_some_and(|p| p.time != 0))
        {
            (0..self.family_len)
                .map(|i| {
                    produced
                        .get(i)
                        .and_then(Option::as_ref)
                        .map_or(0, |p| p.time)
                })
                .collect()
        } else {
            Vec::new()
        };
        FamilyRoute::Each {
            rules: self.rules,
            sources: self.sources.unwrap_or_default(),
            times,
        }
    }
}

/// The key of the labels of `key` that `keep` keeps.
pub(super) fn project(key: &[u8], keep: &Keep, scratch: &mut Vec<u8>) -> SeriesKey {
    scratch.clear();
    for (name, pair) in labels::raw_pairs(key) {
        if keep.keeps(name) {
            scratch.extend_from_slice(pair);
        }
    }
    scratch.as_slice().into()
}
