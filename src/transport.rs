//! Transport stage: sockets in, routes and the middleware every route shares.
//!
//! `http` holds the axum routes; this module puts the layers around them once
//! and serves the listeners.

pub mod http;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::Gateway;

/// The layers around every route, outermost first: a span per request (so a
/// panic or a CORS answer is traced too), panics turned into a 500 rather than
/// a dropped connection, and CORS, which answers preflights before routing.
fn layered(router: Router, cors: &str) -> Router {
    let origin = if cors == "*" {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            cors.split(',')
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok()),
        )
    };
    let cors = CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::any())
        .max_age(Duration::from_secs(600));
    router
        .layer(cors)
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
}

/// Serves the gateway on `listener` (and the health/self-metrics routes on
/// `lifecycle`, when given) until `shutdown` completes, then lets in-flight
/// requests finish.
pub async fn serve(
    gateway: Gateway,
    listener: TcpListener,
    lifecycle: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cors = gateway.config().cors.clone();
    let main = layered(http::router(gateway.clone()), &cors);
    let (tx, rx) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(tx);
    });
    let wait = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let side = lifecycle.map(|l| {
        let app = layered(http::lifecycle_router(gateway.clone()), &cors);
        tokio::spawn(
            axum::serve(l, app)
                .with_graceful_shutdown(wait(rx.clone()))
                .into_future(),
        )
    });
    axum::serve(listener, main)
        .with_graceful_shutdown(wait(rx))
        .await?;
    if let Some(side) = side {
        side.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}
