//! A stored series: its value, its start time, when it expires.

use crate::model::{Created, Value};

/// A stored series: 40 bytes besides its key (a unit test holds it there):
/// a million series are most of what the gateway holds.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSeries {
    /// The aggregated value.
    pub value: Value,
    /// The earliest creation timestamp pushed, or [`NO_CREATED`].
    created: Created,
    /// When it expires without another push, in seconds of the
    /// aggregate's clock (`--series-ttl` or its rule's `ttl` after its last
    /// push; [`NEVER`] without either).
    pub expires: u32,
    /// Where the series' key ends in its page's key buffer.
    pub(super) key_end: u32,
}

/// No creation timestamp: below any the decoders accept (their range is
/// the years 1678..2262 in nanoseconds, well inside `i64`).
pub(super) const NO_CREATED: Created = Created::MIN;

/// The expiry of a series no TTL applies to.
pub const NEVER: u32 = u32::MAX;

/// When a series pushed at `now` expires with a TTL of `ttl` seconds.
pub(crate) fn expiry(now: u32, ttl: Option<u32>) -> u32 {
    ttl.map_or(NEVER, |t| now.saturating_add(t).min(NEVER - 1))
}

impl StoredSeries {
    pub(super) fn new(value: Value, created: Option<Created>, expires: u32) -> StoredSeries {
        StoredSeries {
            value,
            created: created.unwrap_or(NO_CREATED),
            expires,
            key_end: 0,
        }
    }

    /// The earliest creation timestamp pushed, if any.
    pub fn created(&self) -> Option<Created> {
        (self.created != NO_CREATED).then_some(self.created)
    }

    /// Keeps the earlier of the stored and the pushed creation timestamp.
    pub(super) fn merge_created(&mut self, pushed: Option<Created>) {
        if let Some(c) = pushed
            && (self.created == NO_CREATED || c < self.created)
        {
            self.created = c;
        }
    }
}
