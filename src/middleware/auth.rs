//! Basic auth for what changes the aggregate, by the route's [`Scope`]
//! (path and method, never a header): pushes over HTTP and gRPC (its
//! `authorization` metadata is the same header) need `--auth-users`;
//! deletes and admin calls need `--admin-users` when given, else
//! `--auth-users`. Scrapes, health, status, gRPC health and
//! reflection stay open. Credentials are never logged.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use foldhash::fast::RandomState;
use parking_lot::Mutex;
use subtle::ConstantTimeEq;

use super::routing::matched;
use crate::error::{Rejection, is_grpc};
use crate::routes::Scope;
use crate::secret::Secret;

/// Most bcrypt answers remembered, each way: bcrypt costs milliseconds by
/// design, too much to pay on every push, so a verified pair is kept, as
/// Prometheus' exporter-toolkit does; a refused one is kept for
/// [`FAILED_FOR`], so a client retrying a wrong password costs nothing.
const CACHE: usize = 4096;

/// How long a refused credential is answered from memory.
const FAILED_FOR: Duration = Duration::from_secs(60);

/// The credential check; cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    push: Vec<(String, Secret)>,
    admin: Vec<(String, Secret)>,
    /// Keyed hashes of `(user, password, bcrypt hash)` verified: never the
    /// password itself.
    verified: Mutex<HashSet<u64>>,
    /// Keyed hashes of refused `(user, password, bcrypt hash)`, and when.
    failed: Mutex<HashMap<u64, Instant>>,
    /// Random per process, so the cache keys say nothing outside it.
    keys: RandomState,
    /// A bcrypt hash no password matches, at the cost of the configured
    /// ones: an unknown user is verified against it, so a wrong password
    /// costs the same time whether the user exists or not.
    decoy: Option<String>,
    /// Verifications at once, on the blocking pool.
    slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("push_users", &self.inner.push.len())
            .field("admin_users", &self.inner.admin.len())
            .finish()
    }
}

/// What comparing credentials without bcrypt found.
#[derive(Debug)]
enum Check {
    Allowed,
    Denied,
    /// Verify `password` against `hash`; `known` is false for the decoy,
    /// whose answer is always no.
    Bcrypt {
        hash: String,
        known: bool,
    },
}

impl Auth {
    /// Checks pushes against `push` users and deletes/admin calls against
    /// `admin` users (or `push` users when `admin` is empty); with no users
    /// at all, every request passes.
    pub fn new(push: &[(String, Secret)], admin: &[(String, Secret)]) -> Auth {
        let cost = push.iter().chain(admin).find_map(|(_, s)| match s {
            Secret::Bcrypt(h) => h.get(4..6).and_then(|c| c.parse::<u32>().ok()),
            Secret::Plain(_) => None,
        });
        // A random password, so no one can know what the decoy matches.
        let decoy = cost.and_then(|c| {
            let secret = format!("{:x}", RandomState::default().hash_one(Instant::now()));
            bcrypt::hash(secret, c).ok()
        });
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
        Auth {
            inner: Arc::new(Inner {
                push: push.to_vec(),
                admin: admin.to_vec(),
                verified: Mutex::default(),
                failed: Mutex::default(),
                keys: RandomState::default(),
                decoy,
                slots: tokio::sync::Semaphore::new(slots),
            }),
        }
    }

    /// The users that open `scope`: push users pushes (and admin calls
    /// when no admin users are set), admin users admin calls only.
    fn users(&self, scope: Scope) -> &[(String, Secret)] {
        match scope {
            Scope::Open => &[],
            Scope::Push => &self.inner.push,
            Scope::Admin if self.inner.admin.is_empty() => &self.inner.push,
            Scope::Admin => &self.inner.admin,
        }
    }

    /// Whether `scope` needs credentials at all: pushes when push users
    /// are set, admin calls when any users are.
    fn needs_credentials(&self, scope: Scope) -> bool {
        match scope {
            Scope::Open => false,
            Scope::Push => !self.inner.push.is_empty(),
            Scope::Admin => !(self.inner.push.is_empty() && self.inner.admin.is_empty()),
        }
    }

    /// Compares `user:password` with every one of `users`, so timing does
    /// not tell which exist; says which bcrypt hash is left to verify.
    fn check(&self, users: &[(String, Secret)], user: &str, password: &str) -> Check {
        let mut ok = false;
        let mut bcrypt = None;
        for (u, secret) in users {
            let user_ok = bool::from(u.as_bytes().ct_eq(user.as_bytes()));
            match secret {
                Secret::Plain(p) => {
                    ok |= user_ok & bool::from(p.as_bytes().ct_eq(password.as_bytes()))
                }
                Secret::Bcrypt(hash) if user_ok => bcrypt = Some(hash.clone()),
                Secret::Bcrypt(_) => {}
            }
        }
        match (ok, bcrypt, &self.inner.decoy) {
            (true, _, _) => Check::Allowed,
            (false, Some(hash), _) => Check::Bcrypt { hash, known: true },
            (false, None, Some(decoy)) => Check::Bcrypt {
                hash: decoy.clone(),
                known: false,
            },
            (false, None, None) => Check::Denied,
        }
    }

    /// Whether `user:password` opens `scope`. A bcrypt verification runs on
    /// the blocking pool, a few at a time, and its answer is remembered.
    async fn verify(&self, scope: Scope, user: String, password: String) -> bool {
        let (hash, known) = match self.check(self.users(scope), &user, &password) {
            Check::Allowed => return true,
            Check::Denied => return false,
            Check::Bcrypt { hash, known } => (hash, known),
        };
        let key = self.inner.keys.hash_one((&user, &password, &hash));
        if known && self.inner.verified.lock().contains(&key) {
            return true;
        }
        if self
            .inner
            .failed
            .lock()
            .get(&key)
            .is_some_and(|at| at.elapsed() < FAILED_FOR)
        {
            return false;
        }
        let Ok(_slot) = self.inner.slots.acquire().await else {
            return false;
        };
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false)
            && known;
        if ok {
            let mut verified = self.inner.verified.lock();
            if verified.len() >= CACHE {
                verified.clear();
            }
            verified.insert(key);
        } else {
            let mut failed = self.inner.failed.lock();
            if failed.len() >= CACHE {
                failed.retain(|_, at| at.elapsed() < FAILED_FOR);
                if failed.len() >= CACHE {
                    failed.clear();
                }
            }
            failed.insert(key, Instant::now());
        }
        ok
    }
}

/// `user` and `password` of a `Basic` authorization header.
fn basic_credentials<B>(req: &Request<B>) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The middleware: a request to a route whose scope needs credentials
/// goes on only with credentials that open it; else 401 (or gRPC
/// `UNAUTHENTICATED`). Requests without a route pass: the route check
/// after this one answers them.
pub async fn require(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    let Some(scope) = matched(&req).map(|r| r.scope) else {
        return next.run(req).await;
    };
    if !auth.needs_credentials(scope) {
        return next.run(req).await;
    }
    let ok = match basic_credentials(&req) {
        Some((u, p)) => auth.verify(scope, u, p).await,
        None => false,
    };
    if ok {
        next.run(req).await
    } else {
        Rejection::Unauthenticated.respond(is_grpc(&req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_and_bcrypt_users() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let users = [
            ("alice".into(), Secret::Plain("pw".into())),
            ("bob".into(), Secret::Bcrypt(hash)),
        ];
        let auth = Auth::new(&users, &[]);
        let check = |u: &str, p: &str| auth.verify(Scope::Push, u.into(), p.into());
        assert!(check("alice", "pw").await);
        assert!(!check("alice", "pw2").await);
        assert!(!check("alice", "s3cret").await);
        assert!(check("bob", "s3cret").await);
        assert!(check("bob", "s3cret").await, "cached");
        assert!(!check("bob", "pw").await);
        assert!(!check("bob", "pw").await, "cached refusal");
        assert!(!check("carol", "pw").await);
        // An unknown user is verified against the decoy, at the same cost.
        assert!(matches!(
            auth.check(&users, "carol", "pw"),
            Check::Bcrypt { known: false, .. }
        ));
    }
}
