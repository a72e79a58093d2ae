//! What expiry, delete and wipe dropped, kept for the remote-write
//! output's staleness markers.

use std::sync::Arc;

use crate::model::{Kind, Value};

/// A series the aggregate dropped (expired, deleted or wiped), as
/// [`Aggregator::take_dropped`] gives it: enough to name every sample it
/// wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    /// Its family's name.
    pub family: Arc<str>,
    /// Its family's type.
    pub kind: Kind,
    /// Its key (see [`labels`]).
    pub key: Box<[u8]>,
    /// The bucket bounds it had, for a classic histogram (each wrote a
    /// `_bucket` sample); `None` for a native one; empty otherwise.
    pub bounds: Option<Box<[f64]>>,
}

impl Dropped {
    pub(super) fn new(family: &Arc<str>, kind: Kind, key: &[u8], value: &Value) -> Dropped {
        Dropped {
            family: family.clone(),
            kind,
            key: key.into(),
            bounds: match value {
                Value::Histogram(h) => Some(h.buckets.iter().map(|b| b.le).collect()),
                Value::Native(_) => None,
                Value::Scalar(_) | Value::Summary { .. } => Some(Box::new([])),
            },
        }
    }

    /// Bytes it holds, for the byte budget.
    pub(super) fn bytes(&self) -> usize {
        std::mem::size_of::<Dropped>()
            + self.key.len()
            + self.bounds.as_ref().map_or(0, |b| b.len() * 8)
    }
}

/// Series dropped since the remote-write output last took them.
#[derive(Debug, Default)]
pub(super) struct Journal {
    pub(super) dropped: Vec<Dropped>,
    pub(super) bytes: usize,
    /// Dropped series not kept: the journal was full.
    pub(super) lost: u64,
}
