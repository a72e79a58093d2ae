//! The accept loop: TCP (and TLS) connections served by hyper's HTTP/1.1 +
//! HTTP/2 auto builder. Our own loop rather than `axum::serve`, which has no
//! header-read timeout (slowloris), no TLS and no drain deadline.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::tls::Tls;

/// Connection settings shared by every listener.
#[derive(Debug, Clone)]
pub struct ConnOptions {
    /// Time a client has to send request headers (and finish a TLS handshake).
    pub header_read_timeout: Duration,
    /// Time in-flight requests get after shutdown begins.
    pub drain_timeout: Duration,
    /// TLS, when on.
    pub tls: Option<Arc<Tls>>,
}

/// Serves `app` on `listener` until `stop` fires, then stops accepting and
/// waits up to the drain timeout for open requests and streams to finish.
pub async fn run(
    listener: TcpListener,
    app: Router,
    opts: ConnOptions,
    mut stop: watch::Receiver<()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, _peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone());
        match &opts.tls {
            None => {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(conn);
            }
            Some(tls) => {
                // The handshake runs in the connection's own task, bounded
                // like header reading, so a silent client holds nothing else.
                let (acceptor, timeout) = (tls.acceptor(), opts.header_read_timeout);
                let (builder, watcher) = (builder.clone(), graceful.watcher());
                tokio::spawn(async move {
                    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let conn =
                                builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                            let _ = watcher.watch(conn.into_owned()).await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(opts.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "shutdown: requests still open after {:?}, closing them",
            opts.drain_timeout
        );
    }
}
