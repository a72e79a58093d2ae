//! Delta points already counted: per producer and series, the end of the
//! last window `[start, time]` added, so an export sent again (a retry
//! after a lost answer, a collector replaying its queue) is not added
//! twice.
//!
//! A delta point is a duplicate when its producer already had a window of
//! that series ending after the point's start (the same window, an
//! overlapping one, or an older one: exporters send a producer's windows
//! in order), or, without a start time, ending at or after the point's
//! time. A point without a time cannot be told apart and is added.
//!
//! Windows are claimed while a request is decoded, so two copies of one
//! export arriving together count once; the claims of a request that is
//! then refused are given back ([`Claims`]'s drop). An entry costs
//! [`WINDOW_BYTES`] of `--max-memory` and is forgotten after
//! [`DEFAULT_SOURCE_TTL`](crate::rules::DEFAULT_SOURCE_TTL) without a
//! point, as a running total's source is.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use foldhash::fast::RandomState;
use parking_lot::Mutex;

use crate::error::Rejection;
use crate::memory::Memory;

/// What one remembered window costs: its map entry (a 64-bit identity,
/// the end, the expiry) with the table's control byte and slack.
pub const WINDOW_BYTES: usize = 48;

/// Maps are split so that pushes of many producers rarely wait for each
/// other.
const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// The end (`time_unix_nano`) of the last window counted.
    end: u64,
    /// When it is forgotten, in seconds of the aggregate's clock.
    expires: u32,
}

/// The identities are already hashes (of the producer, the family and
/// the series key, with a per-process seed): the table uses them as they
/// are.
#[derive(Debug, Clone, Copy, Default)]
struct Identity;

impl BuildHasher for Identity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

#[derive(Debug, Default)]
struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The windows of every producer's delta series.
#[derive(Debug)]
pub struct DeltaWindows {
    shards: Box<[Mutex<HashMap<u64, Window, Identity>>]>,
    /// Seeds the identities: random per process, so no sender can make
    /// two series share one.
    hasher: RandomState,
    memory: Arc<Memory>,
    /// Seconds a window is remembered without another point.
    ttl: u32,
    /// Windows remembered now.
    held: AtomicUsize,
    /// Delta points dropped as duplicates, by pushes that were applied.
    duplicates: AtomicU64,
}

impl DeltaWindows {
    /// No windows yet; each one charged to `memory`, forgotten after
    /// `ttl` seconds without a point.
    pub fn new(memory: Arc<Memory>, ttl: u32) -> DeltaWindows {
        DeltaWindows {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
            memory,
            ttl,
            held: AtomicUsize::new(0),
            duplicates: AtomicU64::new(0),
        }
    }

    /// The claims of one request, at `now` on the aggregate's clock.
    pub fn claims(&self, now: u32) -> Claims<'_> {
        Claims {
            windows: self,
            now,
            claimed: RefCell::new(Vec::new()),
            duplicates: Cell::new(0),
            committed: Cell::new(false),
        }
    }

    /// Windows remembered now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Delta points dropped as duplicates so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    /// Forgets the windows whose producers were silent past the TTL at
    /// `now`; returns how many.
    pub fn expire(&self, now: u32) -> usize {
        let mut forgotten = 0;
        for shard in &self.shards {
            let mut map = shard.lock();
            let before = map.len();
            map.retain(|_, w| w.expires >= now);
            forgotten += before - map.len();
            if map.capacity() > 4 * map.len().max(64) {
                map.shrink_to_fit();
            }
        }
        self.held.fetch_sub(forgotten, Ordering::Relaxed);
        self.memory.release(forgotten * WINDOW_BYTES);
        forgotten
    }

    fn shard(&self, id: u64) -> &Mutex<HashMap<u64, Window, Identity>> {
        // The low bits pick the table's bucket: the shard takes high ones.
        &self.shards[(id >> 58) as usize % SHARDS]
    }
}

/// The windows one request claimed: kept when it is applied
/// ([`Claims::commit`]), given back when it is dropped otherwise.
#[derive(Debug)]
pub struct Claims<'w> {
    windows: &'w DeltaWindows,
    now: u32,
    /// Each window claimed: its identity, what it was before (none: new),
    /// and the end this request gave it.
    claimed: RefCell<Vec<(u64, Option<Window>, u64)>>,
    duplicates: Cell<u64>,
    committed: Cell<bool>,
}

impl Claims<'_> {
    /// Whether a delta point of `producer` in series `key` of family
    /// `family`, over `[start, end]` (nanoseconds since the epoch; 0
    /// unset), is new; if so its window is claimed. A new identity is
    /// charged to the memory budget first.
    pub fn admit(
        &self,
        producer: &[u8],
        family: &str,
        key: &[u8],
        start: u64,
        end: u64,
    ) -> Result<bool, Rejection> {
        if end == 0 {
            return Ok(true);
        }
        let w = self.windows;
        let id = w.hasher.hash_one((producer, family, key));
        let mut map = w.shard(id).lock();
        let expires = self.now.saturating_add(w.ttl);
        let before = match map.get_mut(&id) {
            Some(last) => {
                let counted = if start != 0 {
                    start < last.end
                } else {
                    end <= last.end
                };
                if counted {
                    self.duplicates.set(self.duplicates.get() + 1);
                    return Ok(false);
                }
                let before = *last;
                *last = Window { end, expires };
                Some(before)
            }
            None => {
                w.memory.try_charge(WINDOW_BYTES)?;
                map.insert(id, Window { end, expires });
                w.held.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        drop(map);
        self.claimed.borrow_mut().push((id, before, end));
        Ok(true)
    }

    /// Keeps the windows claimed: the request was applied.
    pub fn commit(&self) {
        self.committed.set(true);
        let duplicates = self.duplicates.get();
        if duplicates > 0 {
            self.windows
                .duplicates
                .fetch_add(duplicates, Ordering::Relaxed);
        }
    }
}

impl Drop for Claims<'_> {
    fn drop(&mut self) {
        if self.committed.get() {
            return;
        }
        let w = self.windows;
        for (id, before, end) in self.claimed.get_mut().drain(..).rev() {
            let mut map = w.shard(id).lock();
            // A later window another request claimed since stays.
            if map.get(&id).is_none_or(|now| now.end != end) {
                continue;
            }
            match before {
                Some(before) => {
                    map.insert(id, before);
                }
                None => {
                    map.remove(&id);
                    w.held.fetch_sub(1, Ordering::Relaxed);
                    w.memory.release(WINDOW_BYTES);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows() -> DeltaWindows {
        DeltaWindows::new(Memory::new(1 << 20), 60)
    }

    #[test]
    fn a_window_counts_once() {
        let w = windows();
        let c = w.claims(0);
        assert!(c.admit(b"p", "f", b"k", 10, 20).unwrap());
        // The same window, an overlapping one, an older one.
        assert!(!c.admit(b"p", "f", b"k", 10, 20).unwrap());
        assert!(!c.admit(b"p", "f", b"k", 15, 25).unwrap());
        assert!(!c.admit(b"p", "f", b"k", 0, 5).unwrap());
        // The next one; another producer; another series.
        assert!(c.admit(b"p", "f", b"k", 20, 30).unwrap());
        assert!(c.admit(b"q", "f", b"k", 10, 20).unwrap());
        assert!(c.admit(b"p", "f", b"j", 10, 20).unwrap());
        // No time: cannot tell.
        assert!(c.admit(b"p", "f", b"k", 0, 0).unwrap());
        c.commit();
        assert_eq!(w.duplicates(), 3);
        assert_eq!(w.held(), 3);
    }

    #[test]
    fn a_refused_request_gives_its_claims_back() {
        let w = windows();
        let memory = w.memory.clone();
        let first = w.claims(0);
        assert!(first.admit(b"p", "f", b"k", 10, 20).unwrap());
        first.commit();
        drop(first);
        let used = memory.used();
        let refused = w.claims(0);
        assert!(refused.admit(b"p", "f", b"k", 20, 30).unwrap());
        assert!(refused.admit(b"p", "f", b"new", 20, 30).unwrap());
        assert!(!refused.admit(b"p", "f", b"k", 20, 30).unwrap());
        drop(refused);
        assert_eq!(memory.used(), used);
        assert_eq!(w.held(), 1);
        assert_eq!(w.duplicates(), 0);
        // The retry of the refused request is new.
        let retry = w.claims(0);
        assert!(retry.admit(b"p", "f", b"k", 20, 30).unwrap());
        assert!(retry.admit(b"p", "f", b"new", 20, 30).unwrap());
    }

    #[test]
    fn windows_are_charged_and_forgotten() {
        let w = DeltaWindows::new(Memory::new(WINDOW_BYTES), 60);
        let c = w.claims(0);
        assert!(c.admit(b"p", "f", b"a", 1, 2).unwrap());
        assert!(matches!(
            c.admit(b"p", "f", b"b", 1, 2),
            Err(Rejection::MemoryBudget { .. })
        ));
        c.commit();
        drop(c);
        assert_eq!(w.expire(60), 0);
        assert_eq!(w.expire(61), 1);
        assert_eq!(w.memory.used(), 0);
        assert!(w.claims(61).admit(b"p", "f", b"a", 1, 2).unwrap());
    }
}
