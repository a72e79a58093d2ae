//! Request ids for requests that come without one: a random prefix drawn
//! once per process and a counter. Unique without a random draw per request
//! (tower-http's UUIDs cost a `getrandom` system call and a formatted
//! string on every request).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};

/// Makes ids of 32 hex digits: 16 of the process's prefix, 16 of a counter.
#[derive(Debug, Clone)]
pub struct Sequential(Arc<Ids>);

#[derive(Debug)]
struct Ids {
    prefix: u64,
    next: AtomicU64,
}

impl Sequential {
    /// A maker with a fresh random prefix.
    pub fn new() -> Sequential {
        let mut bytes = [0u8; 8];
        // Ids need only differ between processes; a failed draw falls back
        // to the clock, which still does.
        let prefix =
            match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes) {
                Ok(()) => u64::from_le_bytes(bytes),
                Err(_) => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
            };
        Sequential(Arc::new(Ids {
            prefix,
            next: AtomicU64::new(0),
        }))
    }
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential::new()
    }
}

impl MakeRequestId for Sequential {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.0.next.fetch_add(1, Ordering::Relaxed);
        let mut text = [0u8; 32];
        hex(self.0.prefix, &mut text[..16]);
        hex(n, &mut text[16..]);
        HeaderValue::from_bytes(&text).ok().map(RequestId::new)
    }
}

/// Writes `n` as 16 lower-case hex digits.
fn hex(n: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate() {
        *b = DIGITS[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_hex_of_fixed_length() {
        let mut ids = Sequential::new();
        let req = Request::new(());
        let a = ids.make_request_id(&req).unwrap();
        let b = ids.make_request_id(&req).unwrap();
        let (a, b) = (
            a.header_value().to_str().unwrap(),
            b.header_value().to_str().unwrap(),
        );
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(&a[..16], &b[..16], "one prefix per process");
        assert!(b.ends_with("0000000000000001"));
        let other = Sequential::new().make_request_id(&req).unwrap();
        assert_ne!(&other.header_value().to_str().unwrap()[..16], &a[..16]);
    }
}
