//! One tower stack, written once and put around every protocol: the HTTP
//! routes and the gRPC services share it (contract §3). Layers are listed in the
//! order a request meets them; each says why it sits where it does.
//!
//! Every refusal a layer makes is a [`crate::error::Rejection`], answered as a gRPC status
//! for gRPC calls (a bare HTTP error reaches a tonic client as `UNKNOWN`).

mod admission;
mod auth;
mod cors;
mod metrics;
mod request_id;
pub(crate) mod routing;

use axum::Router;
use tower::ServiceBuilder;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tower_http::validate_request::ValidateRequestHeaderLayer;

use crate::gateway::Gateway;

pub use auth::Auth;

/// Wraps `routes` (HTTP routes with the gRPC services merged in) in the
/// stack. The result is one service, so limits such as the in-flight cap
/// hold across all routes, not per route.
pub fn stack(routes: Router, gw: &Gateway) -> Router {
    let config = gw.config();
    let svc = ServiceBuilder::new()
        // Behind an ingress: the path without `--web.route-prefix`.
        .map_request(routing::strip_prefix(config.route_prefix.clone()))
        // The route by path and method, once, for every layer below.
        .map_request(routing::classify(crate::routes::MAIN))
        // A request id first, so the span and every log line carry it.
        .layer(SetRequestIdLayer::x_request_id(
            request_id::Sequential::new(),
        ))
        // A span per request, continuing the caller's W3C trace (HTTP header
        // or gRPC metadata alike); outside everything else so refusals below
        // are traced too.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(crate::trace::request_span)
                .on_response(crate::trace::on_response),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        // Request metrics see every answer, the refusals below included.
        .layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            metrics::record,
        ))
        // A panic becomes a 500 / INTERNAL instead of a dropped connection.
        .layer(axum::middleware::from_fn(admission::catch_panic))
        // CORS before auth: browsers send preflights without credentials
        // (those of admin routes refused first). Then what pages of other
        // origins may not do is refused outright (CORS alone would let a
        // simple POST through).
        .layer(ValidateRequestHeaderLayer::custom(cors::PreflightCheck))
        .layer(cors::layer(&config.cors))
        .layer(ValidateRequestHeaderLayer::custom(cors::OriginCheck::new(
            &config.cors,
            config.external_url.as_deref(),
        )))
        // Overload and slowness: shed at once past the in-flight cap of
        // the request's class rather than queue, and bound each request's
        // time.
        .layer(axum::middleware::from_fn_with_state(
            admission::InFlight::new(config.max_in_flight),
            admission::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            config.request_timeout,
            admission::deadline,
        ))
        // Credentials before any body is read, by the route's scope; then
        // whether the request fits its route (path, method, content type).
        // (Left out when no users are set: nothing to check.)
        .option_layer(
            (!config.auth_users.is_empty() || !config.admin_users.is_empty()).then(|| {
                axum::middleware::from_fn_with_state(
                    Auth::new(&config.auth_users, &config.admin_users),
                    auth::require,
                )
            }),
        )
        .layer(ValidateRequestHeaderLayer::custom(routing::RouteFit))
        // A declared body size over the limit is refused before reading it;
        // undeclared sizes are capped while reading (HTTP) or decoding (gRPC).
        .layer(ValidateRequestHeaderLayer::custom(admission::DeclaredSize(
            config.max_body_bytes,
        )))
        .service(routes);
    Router::new().fallback_service(svc)
}

/// The smaller stack of the lifecycle port: spans, panics, CORS.
pub fn lifecycle(routes: Router, cors_allowed: &str) -> Router {
    routes
        .layer(cors::layer(cors_allowed))
        .layer(axum::middleware::from_fn(admission::catch_panic))
        .layer(TraceLayer::new_for_http().make_span_with(crate::trace::request_span))
}
