//! Basic auth for what changes the aggregate: pushes, deletes and admin
//! calls over HTTP, and the push service over gRPC (its `authorization`
//! metadata is the same header). Scrapes, health, status, gRPC health and
//! reflection stay open.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, header};
use axum::response::Response;
use base64::Engine;
use parking_lot::Mutex;
use subtle::ConstantTimeEq;
use tower_http::validate_request::ValidateRequest;

use crate::config::Secret;
use crate::error::{Rejection, is_grpc};

/// Most bcrypt verifications remembered: bcrypt costs milliseconds by
/// design, too much to pay on every push, so a verified pair is kept, as
/// Prometheus' exporter-toolkit does.
const CACHE: usize = 1024;

/// The credential check; cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct Auth {
    users: Arc<[(String, Secret)]>,
    verified: Arc<Mutex<HashSet<(String, String)>>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.users.len())
            .finish()
    }
}

impl Auth {
    /// Checks against these users; with none, every request passes.
    pub fn new(users: &[(String, Secret)]) -> Auth {
        Auth {
            users: users.into(),
            verified: Arc::default(),
        }
    }

    /// Whether this request needs credentials.
    fn guards<B>(req: &Request<B>) -> bool {
        let path = req.uri().path();
        if is_grpc(req) {
            return path.starts_with("/aggregation_gateway.v1.AggregationGateway/");
        }
        let metrics = path == "/metrics" || path.starts_with("/metrics/");
        (metrics && matches!(*req.method(), Method::POST | Method::PUT | Method::DELETE))
            || path.starts_with("/api/v1/admin")
    }

    /// Whether `user:password` is a configured pair.
    pub fn check(&self, user: &str, password: &str) -> bool {
        let mut ok = false;
        for (u, secret) in self.users.iter() {
            // Every user is compared, so timing does not tell which exist.
            let user_ok = bool::from(u.as_bytes().ct_eq(user.as_bytes()));
            let pass_ok = match secret {
                Secret::Plain(p) => bool::from(p.as_bytes().ct_eq(password.as_bytes())),
                Secret::Bcrypt(hash) => user_ok && self.bcrypt(user, password, hash),
            };
            ok |= user_ok & pass_ok;
        }
        ok
    }

    fn bcrypt(&self, user: &str, password: &str, hash: &str) -> bool {
        let pair = (user.to_string(), password.to_string());
        if self.verified.lock().contains(&pair) {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            let mut cache = self.verified.lock();
            if cache.len() >= CACHE {
                cache.clear();
            }
            cache.insert(pair);
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

impl<B> ValidateRequest<B> for Auth {
    type ResponseBody = Body;

    fn validate(&mut self, req: &mut Request<B>) -> Result<(), Response> {
        if self.users.is_empty() || !Self::guards(req) {
            return Ok(());
        }
        match basic_credentials(req) {
            Some((u, p)) if self.check(&u, &p) => Ok(()),
            _ => Err(Rejection::Unauthenticated.respond(is_grpc(req))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_bcrypt_users() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = Auth::new(&[
            ("alice".into(), Secret::Plain("pw".into())),
            ("bob".into(), Secret::Bcrypt(hash)),
        ]);
        assert!(auth.check("alice", "pw"));
        assert!(!auth.check("alice", "pw2"));
        assert!(!auth.check("alice", "s3cret"));
        assert!(auth.check("bob", "s3cret"));
        assert!(auth.check("bob", "s3cret"), "cached");
        assert!(!auth.check("bob", "pw"));
        assert!(!auth.check("carol", "pw"));
    }
}
