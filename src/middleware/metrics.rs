//! Request metrics: every request by protocol, handler and status, and its
//! time through the whole stack.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::{Refused, is_grpc};
use crate::gateway::Gateway;
use crate::routes::Protocol;
use crate::routes::Scope;

/// Records the request once the answer is ready.
pub async fn record(State(gw): State<Gateway>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (protocol, handler) = classify(&req);
    // A push refused before its handler ran (credentials, size, load) is
    // kept in the ring of refusals here; the handlers keep their own.
    let push_path = super::routing::matched(&req)
        .filter(|r| r.scope == Scope::Push)
        .map(|_| req.uri().clone());
    let telemetry = gw.telemetry();
    telemetry.in_flight(protocol, handler, 1);
    // Counted out even when the client goes away and the future is dropped.
    let _out = scopeguard(|| telemetry.in_flight(protocol, handler, -1));
    let res = next.run(req).await;
    telemetry.request(protocol, handler, res.status().as_u16(), started.elapsed());
    if let (Some(uri), Some(Refused(rejection))) = (push_path, res.extensions().get::<Refused>()) {
        gw.activity().refused(protocol, uri.path(), rejection);
    }
    res
}

/// A fixed, small set of handler names (never the raw path: label values
/// must not grow with what clients send).
fn classify(req: &Request) -> (Protocol, &'static str) {
    match super::routing::matched(req) {
        Some(route) => (route.protocol(), route.handler.name()),
        None if req.method() == Method::OPTIONS => (Protocol::Http, "preflight"),
        None if is_grpc(req) => (Protocol::Grpc, "other"),
        None => (Protocol::Http, "other"),
    }
}

struct Guard<F: FnMut()>(F);

impl<F: FnMut()> Drop for Guard<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

fn scopeguard<F: FnMut()>(f: F) -> Guard<F> {
    Guard(f)
}
