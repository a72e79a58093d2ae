//! Transport stage: sockets in. `http` holds the axum routes and `grpc` the
//! tonic services; [`serve`] merges them into one router (gRPC is told apart
//! by its paths and `content-type: application/grpc`), puts the one
//! middleware stack around it, and serves it on `--listen` (and
//! `--grpc-listen`), with the lifecycle routes on `--lifecycle-listen`.

pub mod grpc;
pub mod http;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

use crate::{Gateway, middleware};

/// The listeners to serve on.
#[derive(Debug)]
pub struct Listeners {
    /// `--listen`: HTTP/1.1, h2c and gRPC.
    pub main: TcpListener,
    /// `--grpc-listen`: the same stack again, for deployments that want a
    /// separate gRPC port.
    pub grpc: Option<TcpListener>,
    /// `--lifecycle-listen`: health and self-metrics.
    pub lifecycle: Option<TcpListener>,
}

/// The full application: HTTP routes and gRPC services in the one stack.
pub async fn app(gateway: &Gateway) -> Router {
    let routes = http::router(gateway.clone())
        .merge(grpc::router(gateway.clone()).await)
        // tonic's routes carry a catch-all fallback answering gRPC
        // UNIMPLEMENTED with HTTP 200; unknown HTTP paths must get a 404.
        .fallback(http::not_found);
    middleware::stack(routes, gateway)
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    gateway: Gateway,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(&gateway).await;
    let (tx, rx) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(tx);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let mut side = Vec::new();
    if let Some(l) = listeners.grpc {
        let serve = axum::serve(l, app.clone()).with_graceful_shutdown(stopped(rx.clone()));
        side.push(tokio::spawn(serve.into_future()));
    }
    if let Some(l) = listeners.lifecycle {
        let routes = middleware::lifecycle(
            http::lifecycle_router(gateway.clone()),
            &gateway.config().cors,
        );
        let serve = axum::serve(l, routes).with_graceful_shutdown(stopped(rx.clone()));
        side.push(tokio::spawn(serve.into_future()));
    }
    axum::serve(listeners.main, app)
        .with_graceful_shutdown(stopped(rx))
        .await?;
    for s in side {
        s.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}
