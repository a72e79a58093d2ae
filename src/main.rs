//! The `prom-aggregation-gateway` binary: flags, logging, listeners, signals.

use std::process::ExitCode;

use clap::Parser;
use prom_aggregation_gateway::config::{Args, Config};
use prom_aggregation_gateway::transport::Listeners;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::try_from(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("prom-aggregation-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let _trace = match prom_aggregation_gateway::trace::init(config.log_format) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("prom-aggregation-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let listeners = match bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        listen = %config.listen,
        grpc = ?config.grpc_listen,
        lifecycle = ?config.lifecycle_listen,
        "serving"
    );
    match prom_aggregation_gateway::serve(config, listeners, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("prom-aggregation-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bind(config: &Config) -> Result<Listeners, String> {
    async fn one(addr: std::net::SocketAddr) -> Result<TcpListener, String> {
        TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    }
    Ok(Listeners {
        main: one(config.listen).await?,
        grpc: match config.grpc_listen {
            Some(a) => Some(one(a).await?),
            None => None,
        },
        lifecycle: match config.lifecycle_listen {
            Some(a) => Some(one(a).await?),
            None => None,
        },
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
