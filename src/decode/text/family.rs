//! A family as its lines arrive: how its sample names relate to its name,
//! its series by key.

use std::borrow::Cow;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use crate::model::{Bucket, Kind};

/// How a family's sample names relate to its name `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Naming {
    /// Samples are named `f` (gauge, untyped, text-format counter).
    Exact,
    /// OpenMetrics counter: `f_total` and `f_created`.
    Total,
    /// OpenMetrics info: `f_info`.
    Info,
    /// `f_bucket`, `f_sum`, `f_count` (and `f_created` in OpenMetrics).
    Histogram,
    /// `f` with `quantile`, `f_sum`, `f_count` (and `f_created`).
    Summary,
}

/// What one sample line contributes to its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Value,
    Bucket,
    Sum,
    Count,
    Quantile,
    Created,
}

pub(super) struct FamilyBuilder<'a> {
    pub(super) name: &'a str,
    pub(super) help: Option<Cow<'a, str>>,
    pub(super) kind: Kind,
    pub(super) naming: Naming,
    pub(super) typed: bool,
    pub(super) has_samples: bool,
    pub(super) series: Vec<SeriesBuilder>,
    /// Series index by key, built at the first lookup that the last series
    /// does not answer (histogram parts usually arrive series by series).
    pub(super) index: Option<HashTable<usize>>,
}

pub(super) struct SeriesBuilder {
    pub(super) key: Box<[u8]>,
    pub(super) line: usize,
    pub(super) value: Option<f64>,
    pub(super) buckets: Vec<Bucket>,
    pub(super) sum: Option<f64>,
    pub(super) count: Option<f64>,
    pub(super) created: Option<f64>,
}

/// Seeded randomly once per process: keys crafted to collide cannot be
/// made without the seed, so a flood of them costs what random keys do.
pub(super) static KEY_HASHER: std::sync::LazyLock<RandomState> =
    std::sync::LazyLock::new(RandomState::default);

pub(super) fn hash_key(key: &[u8]) -> u64 {
    KEY_HASHER.hash_one(key)
}

impl<'a> FamilyBuilder<'a> {
    pub(super) fn new(name: &'a str) -> Self {
        FamilyBuilder {
            name,
            help: None,
            kind: Kind::Untyped,
            naming: Naming::Exact,
            typed: false,
            has_samples: false,
            series: Vec::new(),
            index: None,
        }
    }

    /// Which part of this family a sample called `sample` is, if any.
    pub(super) fn part_of(&self, sample: &str) -> Option<Part> {
        let rest = sample.strip_prefix(self.name)?;
        match (self.naming, rest) {
            (Naming::Exact, "") => Some(Part::Value),
            (Naming::Total, "_total") | (Naming::Info, "_info") => Some(Part::Value),
            (Naming::Histogram, "_bucket") => Some(Part::Bucket),
            (Naming::Summary, "") => Some(Part::Quantile),
            (Naming::Histogram | Naming::Summary, "_sum") => Some(Part::Sum),
            (Naming::Histogram | Naming::Summary, "_count") => Some(Part::Count),
            (Naming::Total | Naming::Histogram | Naming::Summary, "_created") => {
                Some(Part::Created)
            }
            _ => None,
        }
    }

    pub(super) fn new_series(&mut self, key: &[u8], line: usize) -> usize {
        let idx = self.series.len();
        self.series.push(SeriesBuilder {
            key: key.into(),
            line,
            value: None,
            buckets: Vec::new(),
            sum: None,
            count: None,
            created: None,
        });
        if let Some(index) = &mut self.index {
            index.insert_unique(hash_key(key), idx, |&i| hash_key(&self.series[i].key));
        }
        idx
    }

    /// The series with this key, if the family holds it.
    pub(super) fn find(&mut self, key: &[u8]) -> Option<usize> {
        if self.series.len() < 8 && self.index.is_none() {
            return self.series.iter().position(|s| *s.key == *key);
        }
        if self.index.is_none() {
            let mut index = HashTable::with_capacity(self.series.len() * 2);
            for (i, s) in self.series.iter().enumerate() {
                index.insert_unique(hash_key(&s.key), i, |&j| hash_key(&self.series[j].key));
            }
            self.index = Some(index);
        }
        let series = &self.series;
        self.index
            .as_ref()
            .and_then(|index| index.find(hash_key(key), |&i| *series[i].key == *key))
            .copied()
    }

    pub(super) fn find_or_add(&mut self, key: &[u8], line: usize) -> usize {
        if let Some(last) = self.series.last()
            && *last.key == *key
        {
            return self.series.len() - 1;
        }
        match self.find(key) {
            Some(i) => i,
            None => self.new_series(key, line),
        }
    }
}
