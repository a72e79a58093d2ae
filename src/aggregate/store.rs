//! What the aggregate holds: per shard, families by name; per family, series
//! by key in an `IndexMap`, so lookups hash and scrapes iterate in key order
//! after a sort that only runs when series were added since the last one.

use std::collections::HashMap;

use foldhash::fast::FixedState;
use indexmap::IndexMap;

use super::Settings;
use super::merge;
use crate::format::Format;
use crate::model::{Family, Kind, SeriesKey, Value};

/// One shard of the aggregate.
#[derive(Default)]
pub(crate) struct Shard {
    pub(crate) families: HashMap<String, StoredFamily, FixedState>,
}

/// A stored family.
#[derive(Debug, Clone)]
pub struct StoredFamily {
    /// The family's type, fixed by its first push.
    pub kind: Kind,
    /// The first non-empty `# HELP` text pushed.
    pub help: String,
    series: IndexMap<SeriesKey, StoredSeries, FixedState>,
    sorted: bool,
    /// The family rendered in each scrape format (indexed by
    /// [`Format`] as usize), kept until the family changes: a scrape copies
    /// every family nobody pushed to since the last scrape instead of
    /// rendering it again. Filled only for the formats asked for.
    rendered: Rendered,
}

type Rendered = [std::sync::OnceLock<bytes::Bytes>; 3];

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

    /// The family's rendering in `format`, made by `render` the first time
    /// it is asked for after a change.
    pub fn cached(&self, format: Format, render: impl FnOnce() -> bytes::Bytes) -> &bytes::Bytes {
        self.rendered[format as usize].get_or_init(render)
    }

    /// The family's rendering in `format`, if one is kept.
    pub fn cached_only(&self, format: Format) -> Option<&bytes::Bytes> {
        self.rendered[format as usize].get()
    }

    /// The series, sorted by labels when read through
    /// [`crate::aggregate::Aggregator::read`].
    pub fn series(&self) -> impl ExactSizeIterator<Item = (&[u8], &StoredSeries)> {
        self.series.iter().map(|(k, s)| (&**k, s))
    }
}

impl Shard {
    /// Merges a validated family into this shard.
    pub(crate) fn merge(&mut self, family: Family, settings: &Settings, now: u32) {
        let stored = self
            .families
            .entry(family.name)
            .or_insert_with(|| StoredFamily {
                kind: family.kind,
                help: String::new(),
                series: IndexMap::default(),
                sorted: true,
                rendered: Rendered::default(),
            });
        stored.rendered = Rendered::default();
        if stored.help.is_empty() && !family.help.is_empty() {
            stored.help = family.help;
        }
        let rule = merge::Rule::of(stored.kind, settings.gauge_mode);
        stored.series.reserve(family.series.len());
        for s in family.series {
            match stored.series.get_mut(&*s.key) {
                Some(existing) => {
                    merge::merge(rule, existing, s.value, s.created);
                    existing.touched = now;
                }
                None => {
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
    }

    /// Keeps the series `keep` says yes to, dropping emptied families;
    /// returns how many series were dropped, and calls `gone` with the name
    /// and kind of each family dropped.
    pub(crate) fn retain_series(
        &mut self,
        mut keep: impl FnMut(&[u8], &StoredSeries) -> bool,
        mut gone: impl FnMut(&str, Kind),
    ) -> usize {
        let mut dropped = 0;
        self.families.retain(|name, f| {
            let before = f.series.len();
            // `retain` keeps the relative order, so a sorted family stays sorted.
            f.series.retain(|k, s| keep(k, s));
            if f.series.len() != before {
                dropped += before - f.series.len();
                f.rendered = Rendered::default();
            }
            if f.series.is_empty() {
                gone(name, f.kind);
            }
            !f.series.is_empty()
        });
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
