//! SIGHUP as reload requests: the TLS files and the rules file are both
//! re-read on it.

/// The process's SIGHUPs, one `next` per signal.
pub(crate) struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Starts listening (nothing arrives where the platform has no SIGHUP
    /// or the handler cannot be installed).
    pub(crate) fn new() -> Hangups {
        Hangups {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    /// Waits for the next SIGHUP (for ever when there is none to wait for).
    pub(crate) async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = self.signal.as_mut() {
            signal.recv().await;
            return;
        }
        std::future::pending::<()>().await
    }
}
