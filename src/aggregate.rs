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

mod aggregator;
mod apply;
mod journal;
mod merge;
mod plan;
mod series;
mod settings;
pub(crate) mod sources;
mod store;
mod stored;
pub mod windows;

pub use aggregator::Aggregator;
pub(crate) use aggregator::SourcesView;
pub use apply::Applied;
pub use journal::Dropped;
pub(crate) use merge::combine;
/// How a family of `kind` combines under `gauge_mode` without rules.
pub(crate) use merge::default_combine as merge_rule;
pub use settings::{GaugeMode, Settings, StartTimes};
pub use store::{FamilyView, StoredFamily};
pub use stored::StoredSeries;

#[cfg(test)]
mod tests;
