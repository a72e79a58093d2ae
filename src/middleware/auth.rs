//! Basic auth for what changes the aggregate, by the route's [`Scope`]
//! (path and method, never a header): pushes over HTTP and gRPC (its
//! `authorization` metadata is the same header) need `--auth-users`;
//! deletes and admin calls need `--admin-users` when given, else
//! `--auth-users`. Scrapes, health, status, gRPC health and
//! reflection stay open. Credentials are never logged.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, header};
use axum::response::Response;
use base64::Engine;
use parking_lot::Mutex;
use subtle::ConstantTimeEq;
use tower_http::validate_request::ValidateRequest;

use super::routing::matched;
use crate::config::Secret;
use crate::error::{Rejection, is_grpc};
use crate::routes::Scope;

/// Most bcrypt verifications remembered: bcrypt costs milliseconds by
/// design, too much to pay on every push, so a verified pair is kept, as
/// Prometheus' exporter-toolkit does.
const CACHE: usize = 1024;

/// The credential check; cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct Auth {
    push: Arc<[(String, Secret)]>,
    admin: Arc<[(String, Secret)]>,
    verified: Arc<Mutex<HashSet<(String, String)>>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("push_users", &self.push.len())
            .field("admin_users", &self.admin.len())
            .finish()
    }
}

impl Auth {
    /// Checks pushes against `push` users and deletes/admin calls against
    /// `admin` users (or `push` users when `admin` is empty); with no users
    /// at all, every request passes.
    pub fn new(push: &[(String, Secret)], admin: &[(String, Secret)]) -> Auth {
        Auth {
            push: push.into(),
            admin: admin.into(),
            verified: Arc::default(),
        }
    }

    /// Whether the credentials open `scope`: push users pushes (and admin
    /// calls when no admin users are set), admin users admin calls only.
    fn allows(&self, scope: Scope, user: &str, password: &str) -> bool {
        match scope {
            Scope::Open => true,
            Scope::Push => self.check(&self.push, user, password),
            Scope::Admin if self.admin.is_empty() => self.check(&self.push, user, password),
            Scope::Admin => self.check(&self.admin, user, password),
        }
    }

    /// Whether `scope` needs credentials at all: pushes when push users
    /// are set, admin calls when any users are.
    fn needs_credentials(&self, scope: Scope) -> bool {
        match scope {
            Scope::Open => false,
            Scope::Push => !self.push.is_empty(),
            Scope::Admin => !(self.push.is_empty() && self.admin.is_empty()),
        }
    }

    /// Whether `user:password` is one of `users`.
    fn check(&self, users: &[(String, Secret)], user: &str, password: &str) -> bool {
        let mut ok = false;
        for (u, secret) in users.iter() {
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
        // No route: nothing to authorize; the route check below answers.
        let Some(route) = matched(req) else {
            return Ok(());
        };
        if !self.needs_credentials(route.scope) {
            return Ok(());
        }
        match basic_credentials(req) {
            Some((u, p)) if self.allows(route.scope, &u, &p) => Ok(()),
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
        let users = [
            ("alice".into(), Secret::Plain("pw".into())),
            ("bob".into(), Secret::Bcrypt(hash)),
        ];
        let auth = Auth::new(&users, &[]);
        let check = |u, p| auth.check(&users, u, p);
        assert!(check("alice", "pw"));
        assert!(!check("alice", "pw2"));
        assert!(!check("alice", "s3cret"));
        assert!(check("bob", "s3cret"));
        assert!(check("bob", "s3cret"), "cached");
        assert!(!check("bob", "pw"));
        assert!(!check("carol", "pw"));
    }
}
