//! Aggregation rules (`--rules FILE`): per metric, how pushes add up.
//!
//! A rule takes the series its PromQL selector matches (the first rule that
//! matches a pushed series wins; series no rule matches keep the defaults:
//! sums, and `--gauge-mode` for gauges). It says how pushes combine
//! ([`Mode`]), which labels the output keeps (`by` / `without`), and how
//! long its series live (`ttl`). In `total` mode pushes are cumulative per
//! source: the aggregator keeps each source's last value and adds only the
//! increase (see `aggregate/sources.rs`).
//!
//! This stage runs before the aggregator and outside its locks:
//! [`RuleSet::route`] picks each series' rule, rewrites its key to the
//! output key and names its source. The aggregator then combines series
//! that now share a key and applies the per-source step under its locks.

mod file;
mod rule;
mod set;

pub use file::{LoadError, MAX_REGEX_BYTES, parse, selector};
pub use rule::{
    Combine, DEFAULT_LEVEL_TTL, DEFAULT_SOURCE_TTL, Keep, Mode, Rule, RuleStats, Selector,
};
pub use set::{
    CHANGES, CUMULATIVE, CUMULATIVE_NAME, FamilyRoute, LEVELS, LEVELS_NAME, PUSH_TIME, Routes,
    RuleSet,
};

#[cfg(test)]
mod tests;
