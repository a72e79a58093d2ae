//! Exactly-once pushes: an `Idempotency-Key` request header (HTTP) or
//! `idempotency-key` metadata (gRPC), as the IETF `Idempotency-Key` draft
//! has it. Within `--idempotency-window` of a push being applied, a request
//! with its key and the same request (route, content type and encoding,
//! body) is answered as the first was and applies nothing; the same key
//! with another request is refused (422); while the first is still being
//! handled, the second is refused (409) and may retry.
//!
//! Only applied pushes are remembered: a refused push changed nothing, so
//! its key is forgotten at once and a retry is handled anew. Keys are kept
//! in the order they came and forgotten oldest first when the window ends,
//! or earlier when their bytes pass the budget (a sixteenth of
//! `--max-memory`, at most [`MAX_BUDGET`], besides it; counted in
//! `pag_idempotency_keys_evicted_total`): a flood of keys costs the oldest
//! keys their protection, never a push its data.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use foldhash::fast::RandomState;
use parking_lot::Mutex;

use crate::clock::Clock;
use crate::error::Rejection;

/// The header (HTTP) and metadata key (gRPC).
pub const HEADER: &str = "idempotency-key";

/// Longest key taken, in bytes (a UUID is 36; the quotes of the draft's
/// structured-field string are not counted).
pub const MAX_KEY_BYTES: usize = 256;

/// The most bytes of keys remembered (about 300,000 keys of 36 bytes).
pub const MAX_BUDGET: usize = 64 << 20;

/// What a remembered key costs beside its bytes: two map and queue
/// entries, the fingerprint, the state.
const ENTRY_BYTES: usize = 128;

/// A request's identity: a SHA-256 digest of what the key must always
/// come with, cut to 128 bits.
pub type Fingerprint = [u8; 16];

/// The fingerprint of a request to `route` of this content type and
/// encoding with this body.
pub fn fingerprint(route: &str, content_type: &str, encoding: &str, body: &[u8]) -> Fingerprint {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        route.as_bytes(),
        content_type.as_bytes(),
        encoding.as_bytes(),
    ] {
        digest.update(&(part.len() as u64).to_le_bytes());
        digest.update(part);
    }
    digest.update(body);
    let mut out = [0; 16];
    out.copy_from_slice(&digest.finish().as_ref()[..16]);
    out
}

/// The key a header value gives: the draft's structured-field string
/// (`"..."`), or the bare value clients commonly send; refused when empty,
/// longer than [`MAX_KEY_BYTES`] or not printable ASCII.
pub fn parse_key(value: &[u8]) -> Result<&str, Rejection> {
    let bad = |why: &str| Rejection::invalid(format!("{HEADER}: {why}"));
    let inner = match value {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    };
    if inner.is_empty() {
        return Err(bad("empty"));
    }
    if inner.len() > MAX_KEY_BYTES {
        return Err(bad(&format!(
            "{} bytes, over the limit of {MAX_KEY_BYTES}",
            inner.len()
        )));
    }
    if !inner.iter().all(|b| (0x20..0x7f).contains(b) && *b != b'"') {
        return Err(bad("not a string of printable ASCII"));
    }
    Ok(std::str::from_utf8(inner).expect("ASCII"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    InFlight,
    /// Applied, touching this many series (what the answer said).
    Applied(usize),
}

#[derive(Debug)]
struct Entry {
    fingerprint: Fingerprint,
    state: State,
    /// Its place in the queue.
    seq: u64,
}

#[derive(Debug, Default)]
struct Inner {
    by_key: HashMap<Box<str>, Entry, RandomState>,
    /// Keys in the order they came, with when they end (seconds of the
    /// clock) and their place; an entry taken again or forgotten leaves a
    /// stale element, skipped when reached.
    order: VecDeque<(Box<str>, u64, u64)>,
    next_seq: u64,
    bytes: usize,
    evicted: u64,
    replays: u64,
}

/// What the keys hold and did, for the self-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Keys remembered now.
    pub held: usize,
    /// Requests answered as their key's first one, applying nothing.
    pub replays: u64,
    /// Keys forgotten before their window ended, for the budget.
    pub evicted: u64,
}

/// The keys remembered.
#[derive(Debug)]
pub struct Keys {
    inner: Mutex<Inner>,
    window: Duration,
    budget: usize,
    clock: Clock,
}

/// What a request with a key is to do.
#[derive(Debug)]
pub enum Begin<'k> {
    /// Handle it; the guard remembers it as applied when told, and
    /// forgets it otherwise.
    New(Guard<'k>),
    /// The same request was applied already, touching this many series:
    /// answer as then, apply nothing.
    Replay(usize),
}

/// A key being handled.
#[derive(Debug)]
pub struct Guard<'k> {
    keys: &'k Keys,
    key: Box<str>,
    seq: u64,
    applied: bool,
}

impl Keys {
    /// Keys remembered for `window` after their push was applied, in at
    /// most `budget` bytes.
    pub fn new(window: Duration, budget: usize, clock: Clock) -> Keys {
        Keys {
            inner: Mutex::default(),
            window,
            budget,
            clock,
        }
    }

    fn now(&self) -> u64 {
        self.clock.elapsed().as_secs()
    }

    /// Starts a request with `key` and `fingerprint`: new, a replay of
    /// one applied, or refused (409 while the first is in flight, 422 for
    /// another request under the key).
    pub fn begin(&self, key: &str, fingerprint: Fingerprint) -> Result<Begin<'_>, Rejection> {
        let now = self.now();
        let mut inner = self.inner.lock();
        self.forget(&mut inner, now, 0);
        if let Some(e) = inner.by_key.get(key) {
            let (fp, state) = (e.fingerprint, e.state);
            if fp != fingerprint {
                return Err(Rejection::IdempotencyKeyReused);
            }
            return match state {
                State::InFlight => Err(Rejection::IdempotencyKeyInFlight),
                State::Applied(series) => {
                    inner.replays += 1;
                    Ok(Begin::Replay(series))
                }
            };
        }
        let cost = key.len() + ENTRY_BYTES;
        self.forget(&mut inner, now, cost);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.bytes += cost;
        inner.by_key.insert(
            key.into(),
            Entry {
                fingerprint,
                state: State::InFlight,
                seq,
            },
        );
        let ends = now + self.window.as_secs().max(1);
        inner.order.push_back((key.into(), ends, seq));
        Ok(Begin::New(Guard {
            keys: self,
            key: key.into(),
            seq,
            applied: false,
        }))
    }

    /// Forgets keys whose window ended, then the oldest applied ones while
    /// `room` more bytes would pass the budget.
    fn forget(&self, inner: &mut Inner, now: u64, room: usize) {
        while let Some((key, ends, seq)) = inner.order.front() {
            let live = inner.by_key.get(key).filter(|e| e.seq == *seq);
            let over = inner.bytes + room > self.budget;
            match live {
                None => {}
                Some(_) if *ends <= now => {}
                // Still handled: its request answers within its timeout.
                Some(e) if e.state == State::InFlight => break,
                Some(_) if over => inner.evicted += 1,
                Some(_) => break,
            }
            let (key, _, seq) = inner.order.pop_front().expect("front");
            if inner.by_key.get(&key).is_some_and(|e| e.seq == seq) {
                inner.by_key.remove(&key);
                inner.bytes -= key.len() + ENTRY_BYTES;
            }
        }
    }

    /// What the keys hold and did.
    pub fn stats(&self) -> Stats {
        let inner = self.inner.lock();
        Stats {
            held: inner.by_key.len(),
            replays: inner.replays,
            evicted: inner.evicted,
        }
    }
}

impl Guard<'_> {
    /// The push was applied, touching `series` series: a request with the
    /// key is answered as this one until the window ends.
    pub fn applied(mut self, series: usize) {
        self.applied = true;
        let mut inner = self.keys.inner.lock();
        if let Some(e) = inner.by_key.get_mut(&self.key)
            && e.seq == self.seq
        {
            e.state = State::Applied(series);
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if self.applied {
            return;
        }
        // Refused, or abandoned unapplied: the key is free again.
        let mut inner = self.keys.inner.lock();
        if inner
            .by_key
            .get(&self.key)
            .is_some_and(|e| e.seq == self.seq)
        {
            inner.by_key.remove(&self.key);
            inner.bytes -= self.key.len() + ENTRY_BYTES;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(budget: usize) -> (Keys, Clock) {
        let clock = Clock::manual();
        (
            Keys::new(Duration::from_secs(600), budget, clock.clone()),
            clock,
        )
    }

    #[test]
    fn a_key_answers_once_then_replays() {
        let (k, clock) = keys(1 << 20);
        let a = fingerprint("/metrics", "text/plain", "", b"x 1\n");
        let b = fingerprint("/metrics", "text/plain", "", b"x 2\n");
        let Begin::New(guard) = k.begin("k1", a).unwrap() else {
            panic!("new")
        };
        assert!(matches!(
            k.begin("k1", a),
            Err(Rejection::IdempotencyKeyInFlight)
        ));
        assert!(matches!(
            k.begin("k1", b),
            Err(Rejection::IdempotencyKeyReused)
        ));
        guard.applied(2);
        assert!(matches!(k.begin("k1", a), Ok(Begin::Replay(2))));
        assert!(matches!(
            k.begin("k1", b),
            Err(Rejection::IdempotencyKeyReused)
        ));
        // After the window the key is new again.
        clock.advance(Duration::from_secs(601));
        assert!(matches!(k.begin("k1", b), Ok(Begin::New(_))));
        assert_eq!(k.stats().held, 0);
        assert_eq!(k.stats().replays, 1);
    }

    #[test]
    fn a_refused_push_frees_its_key() {
        let (k, _) = keys(1 << 20);
        let a = fingerprint("/metrics", "", "", b"bad");
        drop(k.begin("k", a).unwrap());
        let Begin::New(g) = k.begin("k", a).unwrap() else {
            panic!("new")
        };
        g.applied(1);
        assert_eq!(k.stats().held, 1);
    }

    #[test]
    fn past_the_budget_the_oldest_applied_keys_go() {
        let (k, _) = keys(3 * (ENTRY_BYTES + 2));
        let f = fingerprint("", "", "", b"");
        for i in 10..13 {
            let Begin::New(g) = k.begin(&format!("{i}"), f).unwrap() else {
                panic!()
            };
            g.applied(1);
        }
        let Begin::New(_in_flight) = k.begin("13", f).unwrap() else {
            panic!()
        };
        assert_eq!((k.stats().held, k.stats().evicted), (3, 1));
        assert!(matches!(k.begin("10", f), Ok(Begin::New(_))));
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(parse_key(b"\"abc-1\"").unwrap(), "abc-1");
        assert_eq!(parse_key(b"abc").unwrap(), "abc");
        assert!(parse_key(b"\"\"").is_err());
        assert!(parse_key(&[b'a'; 257]).is_err());
        assert!(parse_key("é".as_bytes()).is_err());
    }
}
