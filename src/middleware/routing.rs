//! The route a request is for, looked up once at the top of the stack (see
//! [`crate::routes`]), and the check that the request fits it: a known path
//! and method, and a `Content-Type` the route takes. The fit is checked
//! after credentials, so a caller learns nothing about a route it may not
//! use.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use tower_http::validate_request::ValidateRequest;

use crate::error::{Rejection, is_grpc};
use crate::format::Format;
use crate::routes::{self, Matched, Miss, Route};

/// Looks the request's route up in `table` and stores it in the request's
/// extensions for the layers below; for a known path asked with another
/// method, the methods it takes too (for the 405's `Allow`).
pub fn classify(table: &'static [Route]) -> impl Fn(Request) -> Request + Clone {
    move |mut req: Request| {
        let matched = routes::find(table, req.method(), req.uri().path());
        if matches!(matched.0, Err(Miss::Method)) {
            let allow = routes::allowed(table, req.uri().path());
            if let Ok(allow) = HeaderValue::from_str(&allow) {
                req.extensions_mut().insert(Allow(allow));
            }
        }
        req.extensions_mut().insert(matched);
        req
    }
}

/// The methods a path takes, for the `Allow` header of a 405.
#[derive(Debug, Clone)]
struct Allow(HeaderValue);

/// The path a request was sent to, before `--web.route-prefix` was taken
/// off it.
#[derive(Debug, Clone)]
pub struct OriginalPath(pub String);

/// Takes `prefix` (`--web.route-prefix`) off the path of requests sent
/// under it, so the route table and every handler see the paths they
/// know; requests without it are left as they are.
pub fn strip_prefix(prefix: Option<std::sync::Arc<str>>) -> impl Fn(Request) -> Request + Clone {
    move |mut req: Request| {
        let Some(prefix) = prefix.as_deref() else {
            return req;
        };
        let path = req.uri().path();
        let rest = match path.strip_prefix(prefix) {
            Some(r) if r.is_empty() || r.starts_with('/') => r,
            _ => return req,
        };
        let stripped = if rest.is_empty() { "/" } else { rest };
        let path_and_query = match req.uri().query() {
            Some(q) => format!("{stripped}?{q}"),
            None => stripped.to_string(),
        };
        let original = OriginalPath(path.to_string());
        let mut parts = req.uri().clone().into_parts();
        let Ok(pq) = path_and_query.parse() else {
            return req;
        };
        parts.path_and_query = Some(pq);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
            req.extensions_mut().insert(original);
        }
        req
    }
}

/// The route stored by [`classify`].
pub fn matched<B>(req: &axum::http::Request<B>) -> Option<&'static Route> {
    req.extensions().get::<Matched>().and_then(Matched::route)
}

/// Refuses a request that matched no route, or whose `Content-Type` does
/// not fit its route.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteFit;

/// Why `content_type` does not fit `route`, if it does not.
pub fn misfit(route: &Route, content_type: Option<&[u8]>) -> Option<String> {
    let grpc = content_type.is_some_and(crate::error::is_grpc_content_type);
    let shown = || String::from_utf8_lossy(content_type.unwrap_or_default()).into_owned();
    // Whether the media type (parameters aside) is one of `types`.
    let media_is = |types: &[&[u8]]| {
        content_type.is_some_and(|ct| {
            let media = ct
                .split(|&c| c == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            types.iter().any(|t| media.eq_ignore_ascii_case(t))
        })
    };
    match route.body {
        routes::Body::Grpc => {
            let fits = media_is(&[b"application/grpc", b"application/grpc+proto"]);
            (!fits).then(|| {
                format!(
                    "{} is a gRPC method: Content-Type must be application/grpc or application/grpc+proto, not {:?}",
                    route.path,
                    shown()
                )
            })
        }
        _ if grpc => Some(format!(
            "{} is an HTTP route, not a gRPC method (Content-Type {:?})",
            route.path,
            shown()
        )),
        routes::Body::None => None,
        routes::Body::Otlp => {
            let fits = media_is(&[b"application/x-protobuf", b"application/json"]);
            (!fits).then(|| {
                format!(
                    "unsupported Content-Type {:?} for an OTLP export: send application/x-protobuf or application/json",
                    shown()
                )
            })
        }
        routes::Body::Exposition => {
            let ct = content_type.map(|ct| std::str::from_utf8(ct).unwrap_or("\u{fffd}"));
            Format::from_content_type(ct).is_none().then(|| {
                format!(
                    "unsupported Content-Type {:?} for a push: send text/plain, \
                     application/openmetrics-text or application/vnd.google.protobuf",
                    shown()
                )
            })
        }
    }
}

impl<B> ValidateRequest<B> for RouteFit {
    type ResponseBody = Body;

    fn validate(&mut self, req: &mut axum::http::Request<B>) -> Result<(), Response> {
        let grpc = is_grpc(req);
        let path = || req.uri().path().to_string();
        let matched = req.extensions().get::<Matched>().map(|m| m.0);
        let rejection = match matched {
            Some(Ok(route)) => {
                let ct = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .map(|v| v.as_bytes());
                match misfit(route, ct) {
                    None => return Ok(()),
                    Some(reason) => Rejection::UnsupportedMediaType(reason),
                }
            }
            Some(Err(Miss::Method)) => Rejection::MethodNotAllowed {
                method: req.method().to_string(),
                path: path(),
            },
            Some(Err(Miss::NotFound)) | None => Rejection::NotFound(path()),
        };
        let mut res = rejection.respond(grpc);
        // RFC 9110: a 405 carries the methods the path takes.
        if let (false, Some(Allow(allow))) = (grpc, req.extensions().get::<Allow>()) {
            res.headers_mut().insert(header::ALLOW, allow.clone());
        }
        Err(res)
    }
}
