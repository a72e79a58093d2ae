//! Browsers: CORS headers and preflights for `--cors`, and refusals of
//! what pages of other origins may not do.
//!
//! CORS alone only hides a response from the page: a "simple" cross-origin
//! POST (text/plain body, no custom headers) reaches the server without a
//! preflight and would be applied, with any credentials the browser has
//! cached. So requests from other origins are checked here before their
//! body is read ([`OriginCheck`]), and admin routes are never approved for
//! them ([`PreflightCheck`]). Requests without `Origin` or `Sec-Fetch-Site`
//! (curl, client libraries, gRPC) are not from a page and pass.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::validate_request::ValidateRequest;

use super::routing;
use crate::error::{Rejection, is_grpc};
use crate::routes::Scope;

/// The origins `--cors` lists; `None` for `*` (any).
fn origins(allowed: &str) -> Option<Vec<HeaderValue>> {
    (allowed.trim() != "*").then(|| {
        allowed
            .split(',')
            .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
            .collect()
    })
}

/// tower-http's CORS layer for `--cors`: answers preflights itself (before
/// auth: browsers send them without credentials) and adds the headers.
pub fn layer(allowed: &str) -> CorsLayer {
    let origin = match origins(allowed) {
        None => AllowOrigin::any(),
        Some(list) => AllowOrigin::list(list),
    };
    CorsLayer::new()
        .allow_origin(origin)
        // No DELETE: only admin routes take it, and pages of other origins
        // may not use them (a preflight approving PUT for a push path,
        // cached, would otherwise let the browser send a DELETE unasked).
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::OPTIONS])
        .allow_headers(AllowHeaders::any())
        .max_age(Duration::from_secs(600))
}

/// Whether a request was made by a page of another origin than the
/// gateway's own, as Go's `http.CrossOriginProtection` tells: a browser's
/// `Sec-Fetch-Site` when it sends one (`same-origin`, or `none` for what
/// the user typed, are not), else an `Origin` whose host is not the
/// request's `Host` (nor `--web.external-url`'s). Requests with neither
/// header are not from a page (curl, client libraries, gRPC).
fn cross_origin<B>(req: &axum::http::Request<B>, own: Option<&str>) -> bool {
    if let Some(site) = req.headers().get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return false;
    };
    let origin = origin.as_bytes();
    let host = req
        .headers()
        .get(header::HOST)
        .map(HeaderValue::as_bytes)
        .or_else(|| req.uri().authority().map(|a| a.as_str().as_bytes()));
    let origin_host = origin
        .windows(3)
        .position(|w| w == b"://")
        .map(|i| &origin[i + 3..]);
    let same = |h: &[u8]| origin_host.is_some_and(|o| o.eq_ignore_ascii_case(h));
    !(host.is_some_and(same) || own.is_some_and(|o| origin.eq_ignore_ascii_case(o.as_bytes())))
}

/// The origin (`scheme://host[:port]`) of `--web.external-url`.
pub fn external_origin(url: Option<&str>) -> Option<String> {
    let uri: axum::http::Uri = url?.parse().ok()?;
    Some(format!(
        "{}://{}",
        uri.scheme_str()?,
        uri.authority()?.as_str()
    ))
}

/// Refuses (403 / PERMISSION_DENIED) what a page of another origin may
/// not do, before any body is read:
/// - anything on an admin route (deletes, wipe): a page anyone on the
///   gateway's network opens must not empty it, whatever `--cors` says;
/// - a request with credentials (`Authorization`) from an origin `--cors`
///   does not list by name: browsers send cached credentials along with
///   forms and `no-cors` requests, which CORS does not stop;
/// - any request from an origin `--cors` does not list, when it lists.
///
/// The gateway's own status page (same origin) passes whatever `--cors`
/// says.
#[derive(Debug, Clone)]
pub struct OriginCheck {
    listed: Option<std::sync::Arc<[HeaderValue]>>,
    own: Option<std::sync::Arc<str>>,
}

impl OriginCheck {
    /// The check for `--cors`, with the origin of `--web.external-url`.
    pub fn new(allowed: &str, external_url: Option<&str>) -> OriginCheck {
        OriginCheck {
            listed: origins(allowed).map(Into::into),
            own: external_origin(external_url).map(Into::into),
        }
    }
}

impl<B> ValidateRequest<B> for OriginCheck {
    type ResponseBody = Body;

    fn validate(&mut self, req: &mut axum::http::Request<B>) -> Result<(), Response> {
        if !cross_origin(req, self.own.as_deref()) {
            return Ok(());
        }
        let origin = req.headers().get(header::ORIGIN);
        let shown = || {
            origin.map_or_else(
                || "a page of another site".to_string(),
                |o| format!("origin {:?}", String::from_utf8_lossy(o.as_bytes())),
            )
        };
        let listed = match (&self.listed, origin) {
            (Some(list), Some(o)) => list.contains(o),
            _ => false,
        };
        let refusal = if routing::matched(req).is_some_and(|r| r.scope == Scope::Admin) {
            Some(format!(
                "{}: admin routes take no requests from another origin's page",
                shown()
            ))
        } else if req.headers().contains_key(header::AUTHORIZATION) && !listed {
            Some(format!(
                "{}: requests with credentials from another origin need it listed by name in --cors",
                shown()
            ))
        } else if self.listed.is_some() && !listed {
            Some(format!("{} is not allowed by --cors", shown()))
        } else {
            None
        };
        match refusal {
            Some(why) => Err(Rejection::OriginNotAllowed(why).respond(is_grpc(req))),
            None => Ok(()),
        }
    }
}

/// Refuses the preflight of a request to an admin route (403, without CORS
/// headers, so the browser never sends it): ahead of the CORS layer, which
/// would approve any route's methods.
#[derive(Debug, Clone, Copy)]
pub struct PreflightCheck;

impl<B> ValidateRequest<B> for PreflightCheck {
    type ResponseBody = Body;

    fn validate(&mut self, req: &mut axum::http::Request<B>) -> Result<(), Response> {
        if req.method() != Method::OPTIONS {
            return Ok(());
        }
        let Some(method) = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        else {
            return Ok(());
        };
        let admin = crate::routes::find(crate::routes::MAIN, &method, req.uri().path())
            .route()
            .is_some_and(|r| r.scope == Scope::Admin);
        if admin {
            return Err(Rejection::OriginNotAllowed(
                "admin routes take no requests from another origin's page".into(),
            )
            .respond(false));
        }
        Ok(())
    }
}
