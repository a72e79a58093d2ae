//! Refusals of the stack itself: overload, timeout, a declared body over the
//! limit, and panics, each answered in the caller's protocol.

use std::panic::AssertUnwindSafe;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tower_http::validate_request::ValidateRequest;

use super::routing::matched;
use crate::error::{Rejection, is_grpc};
use crate::ingest::{Deadline, PushSlots};
use crate::routes::Handler;

/// The in-flight caps (`--max-in-flight`), one per class of route, so one
/// class cannot take the slots another needs: pushes (whose bodies may
/// arrive slowly) apart from scrapes, status and admin calls; health and
/// readiness take no slot at all, as they hold nothing. Past a cap a
/// request is refused at once (503 / `UNAVAILABLE`) rather than queued.
#[derive(Debug, Clone)]
pub struct InFlight {
    pushes: Arc<Semaphore>,
    views: Arc<Semaphore>,
    others: Arc<Semaphore>,
}

/// Status API views computed at once, at most: each reads the whole
/// aggregate or activity table, so a flood of them (64 clients polling a
/// page of 20k families made pushes wait 0.2 to 0.9 s) is shed rather
/// than run. The status page asks for two at a time.
const VIEWS_AT_ONCE: usize = 8;

impl InFlight {
    /// Caps of `max` requests per class.
    pub fn new(max: usize) -> InFlight {
        InFlight {
            pushes: Arc::new(Semaphore::new(max)),
            views: Arc::new(Semaphore::new(VIEWS_AT_ONCE.min(max))),
            others: Arc::new(Semaphore::new(max)),
        }
    }
}

/// Admits a request under its class's cap, holding the slot until its
/// response is ready. HTTP pushes are given the cap to take their slot
/// from once their body has arrived ([`PushSlots`]).
pub async fn admit(State(caps): State<InFlight>, mut req: Request, next: Next) -> Response {
    let cap = match matched(&req).map(|r| r.handler) {
        Some(Handler::Healthy | Handler::Ready | Handler::GrpcHealth) => None,
        Some(Handler::Push | Handler::OtlpMetrics) => {
            req.extensions_mut().insert(PushSlots(caps.pushes.clone()));
            None
        }
        Some(Handler::GrpcPush | Handler::GrpcPushStream | Handler::GrpcOtlpExport) => {
            Some(&caps.pushes)
        }
        Some(
            Handler::Status
            | Handler::Families
            | Handler::Series
            | Handler::Cardinality
            | Handler::Groups
            | Handler::Rejections,
        ) => Some(&caps.views),
        // Listed, not a wildcard: a new handler must be put in a class.
        Some(
            Handler::Scrape
            | Handler::Delete
            | Handler::Wipe
            | Handler::Page
            | Handler::Script
            | Handler::Style
            | Handler::Icon
            | Handler::SelfMetrics
            | Handler::GrpcReflection,
        )
        | None => Some(&caps.others),
    };
    let _slot = match cap.map(|c| c.clone().try_acquire_owned()) {
        None => None,
        Some(Ok(slot)) => Some(slot),
        Some(Err(_)) => return Rejection::Overloaded.respond(is_grpc(&req)),
    };
    next.run(req).await
}

/// Bounds each request's time by `--request-timeout`: a request still
/// running at its deadline is dropped and answered 408 / DEADLINE_EXCEEDED.
/// Pushes are the exception: they get the deadline in their extensions and
/// answer by it themselves, because dropping a push whose work runs on a
/// blocking thread would answer "timed out" and apply it anyway; they
/// instead decide once, under the aggregate's locks, to apply or to time
/// out (see [`crate::ingest::Ticket`]).
pub async fn deadline(State(timeout): State<Duration>, mut req: Request, next: Next) -> Response {
    let at = Instant::now() + timeout;
    req.extensions_mut().insert(Deadline(at));
    let answers_itself = matched(&req).is_some_and(|r| {
        matches!(
            r.handler,
            Handler::Push
                | Handler::OtlpMetrics
                | Handler::GrpcPush
                | Handler::GrpcPushStream
                | Handler::GrpcOtlpExport
        )
    });
    if answers_itself {
        return next.run(req).await;
    }
    let grpc = is_grpc(&req);
    match tokio::time::timeout_at(at.into(), next.run(req)).await {
        Ok(res) => res,
        Err(_) => Rejection::Timeout.respond(grpc),
    }
}

/// Turns a panic below into a 500 (INTERNAL for gRPC). Our own layer rather
/// than tower-http's `CatchPanicLayer`, whose handler cannot see the request
/// and so cannot answer a gRPC call in gRPC.
pub async fn catch_panic(req: Request, next: Next) -> Response {
    let grpc = is_grpc(&req);
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(res) => res,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!("handler panicked: {what}");
            Rejection::Internal.respond(grpc)
        }
    }
}

/// Refuses a request whose `Content-Length` is over the body limit.
#[derive(Debug, Clone, Copy)]
pub struct DeclaredSize(pub usize);

impl<B> ValidateRequest<B> for DeclaredSize {
    type ResponseBody = Body;

    fn validate(&mut self, req: &mut axum::http::Request<B>) -> Result<(), Response> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.0 as u64) {
            return Err(Rejection::BodyTooLarge { limit: self.0 }.respond(is_grpc(req)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn panics_become_500_or_internal() {
        let app = Router::new()
            .route("/", get(boom))
            .layer(axum::middleware::from_fn(super::catch_panic));
        let res = app
            .clone()
            .oneshot(
                axum::http::Request::get("/")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), 500);
        let req = axum::http::Request::get("/")
            .header("content-type", "application/grpc")
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["grpc-status"], "13");
    }
}
