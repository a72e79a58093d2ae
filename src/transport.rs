//! Transport stage: sockets in. `http` holds the axum routes and `grpc` the
//! tonic services; [`serve`] merges them into one router (gRPC is told apart
//! by its paths and `content-type: application/grpc`), puts the one
//! middleware stack around it, and serves it on `--listen` (and
//! `--grpc-listen`), with the lifecycle routes on `--lifecycle-listen`, each
//! through `server.rs`'s accept loop (TLS, header timeout, drain).

pub mod grpc;
mod headers;
pub(crate) mod http;
mod pipe;
mod scrape;
mod server;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::middleware;

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

/// Serves until `shutdown` completes, then stops accepting and lets
/// in-flight requests finish (up to `--shutdown-timeout`).
pub async fn serve(
    gateway: Gateway,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = gateway.config();
    let tls = match &config.tls {
        Some(files) => Some(crate::tls::Tls::load(files).map_err(std::io::Error::other)?),
        None => None,
    };
    let (tx, rx) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(tx);
    });
    if let Some(tls) = &tls {
        tls.clone().watch(rx.clone());
    }
    let opts = server::ConnOptions {
        header_read_timeout: config.header_read_timeout,
        drain_timeout: config.shutdown_timeout,
        idle_timeout: config.idle_timeout,
        write_timeout: config.write_timeout,
        max_connections: config.max_connections,
        tls,
    };
    let app = app(&gateway).await;
    let mut tasks = vec![tokio::spawn(server::run(
        listeners.main,
        app.clone(),
        opts.clone(),
        rx.clone(),
    ))];
    if let Some(l) = listeners.grpc {
        tasks.push(tokio::spawn(server::run(l, app, opts.clone(), rx.clone())));
    }
    if let Some(l) = listeners.lifecycle {
        let routes = middleware::lifecycle(http::lifecycle_router(gateway.clone()), &config.cors);
        tasks.push(tokio::spawn(server::run(l, routes, opts, rx)));
    }
    for t in tasks {
        t.await.map_err(std::io::Error::other)?;
    }
    Ok(())
}
