//! Browsers: CORS headers and preflights for `--cors`, and a refusal of
//! requests from origins it does not list.
//!
//! CORS alone only hides a response from the page: a "simple" cross-origin
//! POST (text/plain body, no custom headers) reaches the server without a
//! preflight and would be applied. So when `--cors` names origins, a request
//! carrying any other `Origin` is refused with 403 before its body is read.
//! Requests without `Origin` (curl, client libraries, gRPC) are not browsers
//! and pass.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::validate_request::ValidateRequest;

use crate::error::{Rejection, is_grpc};

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
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::any())
        .max_age(Duration::from_secs(600))
}

/// Refuses (403 / PERMISSION_DENIED) a request whose `Origin` header names
/// an origin `--cors` does not list.
#[derive(Debug, Clone)]
pub struct OriginCheck(Option<std::sync::Arc<[HeaderValue]>>);

impl OriginCheck {
    /// The check for `--cors`.
    pub fn new(allowed: &str) -> OriginCheck {
        OriginCheck(origins(allowed).map(Into::into))
    }
}

impl<B> ValidateRequest<B> for OriginCheck {
    type ResponseBody = Body;

    fn validate(&mut self, req: &mut axum::http::Request<B>) -> Result<(), Response> {
        let (Some(list), Some(origin)) = (&self.0, req.headers().get(header::ORIGIN)) else {
            return Ok(());
        };
        if list.contains(origin) {
            return Ok(());
        }
        let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        Err(Rejection::OriginNotAllowed(shown).respond(is_grpc(req)))
    }
}
