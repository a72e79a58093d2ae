//! The status API's own state: its kept cardinality counts and the
//! budget its answers being sent are held in.

use std::sync::Arc;
use std::time::Instant;

/// The status API's state, kept in the gateway.
#[derive(Debug)]
pub struct Views {
    /// The last cardinality counts.
    pub(crate) cardinality: CardinalityCache,
    /// What answers being sent may hold: an eighth of `--max-memory`, a
    /// budget of their own so that clients asking for pages and never
    /// reading them cannot take what pushes need.
    pub(crate) answers: Arc<crate::memory::Memory>,
}

impl Views {
    /// Empty, for a gateway of `max_memory` bytes.
    pub fn new(max_memory: usize) -> Views {
        Views {
            cardinality: CardinalityCache::default(),
            answers: crate::memory::Memory::new(max_memory / 8),
        }
    }
}

/// A computed cardinality view and when it was computed. An async lock:
/// callers waiting for a count in progress hold no thread.
#[derive(Debug, Default)]
pub struct CardinalityCache(pub(crate) tokio::sync::Mutex<Option<(Instant, Arc<Counts>)>>);

/// The counts the cardinality view lists from.
#[derive(Debug, Default)]
pub struct Counts {
    pub(crate) series: usize,
    pub(crate) families: Vec<(Arc<str>, usize)>,
    pub(crate) label_names: Vec<(String, usize, usize)>,
    pub(crate) pairs: Vec<(String, String, usize)>,
}
