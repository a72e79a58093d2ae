//! One send's snapshot, as the producer hands it to the senders.

use super::config::Protocol;
use super::encode;

/// One send's snapshot, encoded for the protocols the targets use.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The samples' timestamp (milliseconds since the epoch).
    pub(super) timestamp_ms: i64,
    pub(super) v1: Option<encode::Encoded>,
    pub(super) v2: Option<encode::Encoded>,
}

impl Snapshot {
    pub(super) fn encoded(&self, protocol: Protocol) -> Option<&encode::Encoded> {
        match protocol {
            Protocol::V1 => self.v1.as_ref(),
            Protocol::V2 => self.v2.as_ref(),
        }
    }
}
