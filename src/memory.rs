//! The byte budget (`--max-memory`): one counter of the bytes the gateway
//! holds for senders' data, checked *before* anything is allocated.
//!
//! Two kinds of bytes are charged to it:
//! - what the aggregate keeps (series keys, values, buckets, family names,
//!   and the scrape renderings kept for reuse): charged by the aggregator
//!   when a push is applied, released when series expire or are deleted;
//! - what requests hold while they run (the raw body, its decompressed
//!   copy, the decoded push): reserved chunk by chunk through a
//!   [`Reservation`] and released when it is dropped, however the request
//!   ends.
//!
//! A push that would take the total over the limit is refused whole with
//! [`Rejection::MemoryBudget`] (429 / `RESOURCE_EXHAUSTED`). Scrape
//! renderings are charged without refusal (a scrape is never refused for
//! memory), so a push can find the budget taken by them; they are dropped
//! when the aggregate changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Rejection;

/// The byte budget shared by every request and the aggregate.
#[derive(Debug)]
pub struct Memory {
    limit: usize,
    used: AtomicUsize,
}

impl Memory {
    /// A budget of `limit` bytes, none used.
    pub fn new(limit: usize) -> Arc<Memory> {
        Arc::new(Memory {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// `--max-memory`.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Charges `bytes` if the total stays within the limit; else charges
    /// nothing and says why.
    pub fn try_charge(&self, bytes: usize) -> Result<(), Rejection> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let total = used.saturating_add(bytes);
            if total > self.limit {
                return Err(Rejection::MemoryBudget {
                    need: bytes,
                    used,
                    limit: self.limit,
                });
            }
            match self
                .used
                .compare_exchange_weak(used, total, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    /// Charges `bytes` whatever the total (scrape renderings, and the
    /// aggregate's exact growth after a push was admitted by its estimate).
    pub fn charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Gives back `bytes` charged earlier.
    pub fn release(&self, bytes: usize) {
        // Saturating: a mistake in accounting must not wrap to "all used".
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(bytes))
            });
    }

    /// An empty reservation for one request's bytes.
    pub fn reservation(self: &Arc<Memory>) -> Reservation {
        Reservation {
            memory: self.clone(),
            bytes: 0,
        }
    }
}

/// Bytes one request holds, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    memory: Arc<Memory>,
    bytes: usize,
}

impl Reservation {
    /// Reserves `bytes` more, or refuses (reserving nothing more).
    pub fn grow(&mut self, bytes: usize) -> Result<(), Rejection> {
        self.memory.try_charge(bytes)?;
        self.bytes += bytes;
        Ok(())
    }

    /// Gives back up to `bytes` of what is reserved.
    pub fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.bytes);
        self.memory.release(bytes);
        self.bytes -= bytes;
    }

    /// Bytes reserved now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.memory.release(self.bytes);
    }
}

/// The default `--max-memory`: half the memory this process may use (the
/// cgroup limit when one is set, else the machine's), so the other half is
/// left for the allocator's slack, connection buffers and the runtime;
/// 1 GiB when neither can be read.
pub fn default_limit() -> usize {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let machine = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    let total = match (cgroup, machine) {
        (Some(c), Some(m)) => c.min(m),
        (c, m) => c.or(m).unwrap_or(2 << 30),
    };
    usize::try_from(total / 2).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_refuse_past_the_limit_and_give_back_on_drop() {
        let m = Memory::new(100);
        let mut r = m.reservation();
        r.grow(60).unwrap();
        let err = m.reservation().grow(50).unwrap_err();
        assert!(matches!(
            err,
            Rejection::MemoryBudget {
                need: 50,
                used: 60,
                limit: 100
            }
        ));
        assert_eq!(m.used(), 60);
        r.shrink(10);
        assert_eq!(m.used(), 50);
        drop(r);
        assert_eq!(m.used(), 0);
        m.charge(150);
        assert!(m.try_charge(1).is_err());
        m.release(1000);
        assert_eq!(m.used(), 0);
    }
}
