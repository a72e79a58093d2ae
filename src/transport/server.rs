//! The accept loop: TCP (and TLS) connections served by hyper's HTTP/1.1 +
//! HTTP/2 auto builder. Our own loop rather than `axum::serve`, which has no
//! header-read timeout (slowloris), no TLS and no drain deadline.
//!
//! Every connection is bounded at every stage: at most `--max-connections`
//! are open (past it the connection idle longest is closed to make room,
//! and when none is idle the new one is closed at once); the TLS handshake and the request
//! headers must arrive within `--header-read-timeout`; a connection with no
//! request in progress for `--idle-timeout` is closed (HTTP/1 keep-alive and
//! HTTP/2 alike, pings or not); a write that stalls for `--write-timeout`
//! (a client that stops reading) closes it. Bodies are bounded by the push
//! handlers (`--body-read-timeout`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::tls::Tls;

/// Most bytes of one request's head (request line and headers, HTTP/1.1;
/// the decoded header list, HTTP/2). Bounds what a connection can hold
/// before a request reaches the middleware, where every other byte is
/// reserved from `--max-memory`.
const MAX_HEADER_BYTES: u32 = 64 << 10;

/// Connection settings shared by every listener.
#[derive(Debug, Clone)]
pub struct ConnOptions {
    /// Time a client has to send request headers (and finish a TLS handshake).
    pub header_read_timeout: Duration,
    /// Time in-flight requests get after shutdown begins.
    pub drain_timeout: Duration,
    /// A connection with no request in progress this long is closed.
    pub idle_timeout: Duration,
    /// A write stalled this long closes the connection.
    pub write_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
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
        .header_read_timeout(opts.header_read_timeout)
        // hyper buffers up to ~400 KiB of an unfinished request head per
        // connection: 1000 connections each sending a header that never
        // ends held 394 MiB outside --max-memory (at the default 4096
        // connections, 1.6 GiB). Past this, 431.
        .max_buf_size(MAX_HEADER_BYTES as usize);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20))
        // hyper's default allows 16 MiB of headers per request: far more
        // than any client sends, and a path that size is split into labels.
        .max_header_list_size(MAX_HEADER_BYTES);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(opts.max_connections));
    let open = Arc::new(Open::default());
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
        // Past --max-connections: the connection idle longest makes room
        // (idle ones are what a flood of connections holds, and a health
        // probe must still get in); with none idle, closed at once.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) if open.evict_idlest() => {
                match tokio::time::timeout(EVICTION_WAIT, slots.clone().acquire_owned()).await {
                    Ok(Ok(slot)) => slot,
                    _ => {
                        tracing::debug!("connection refused: --max-connections reached");
                        continue;
                    }
                }
            }
            Err(_) => {
                tracing::debug!("connection refused: --max-connections reached, none idle");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (builder, opts, stop) = (builder.clone(), opts.clone(), stop.clone());
        let app = app.clone();
        let activity = open.add();
        let open = open.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _registered = Registered(open, activity.clone());
            let tcp = StallGuard::new(tcp, opts.write_timeout);
            match &opts.tls {
                None => connection(&builder, tcp, app, &opts, stop, activity).await,
                Some(tls) => {
                    // The handshake is bounded like header reading, so a
                    // silent client holds nothing else.
                    let accepted =
                        tokio::time::timeout(opts.header_read_timeout, tls.acceptor().accept(tcp))
                            .await;
                    match accepted {
                        Ok(Ok(stream)) => {
                            connection(&builder, stream, app, &opts, stop, activity).await
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    // Every connection holds a slot: all slots back means all closed.
    let all = u32::try_from(opts.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(opts.drain_timeout, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            "shutdown: requests still open after {:?}, closing them",
            opts.drain_timeout
        );
    }
}

/// Serves one connection until it ends, is idle for `--idle-timeout`, or
/// the gateway shuts down; a connection asked to close that does not
/// within the write timeout (a response nobody reads) is dropped.
async fn connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    app: Router,
    opts: &ConnOptions,
    mut stop: watch::Receiver<()>,
    activity: Arc<Activity>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = TowerToHyperService::new(Tracked {
        inner: app,
        activity: activity.clone(),
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(tick_for(opts.idle_timeout.min(opts.header_read_timeout)));
    let mut closing: Option<tokio::time::Instant> = None;
    loop {
        let close_by = closing.unwrap_or_else(|| tokio::time::Instant::now() + YEAR);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.changed(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(tokio::time::Instant::now() + opts.drain_timeout);
            }
            // A response gave up on its client: closed at once, so what
            // hyper holds for the connection goes too.
            _ = activity.cut.notified() => return,
            // The same over HTTP/2, where other streams may be another
            // client's (a proxy's shared connection): no new streams, and
            // those in flight get the write timeout to finish.
            _ = activity.wind_down.notified(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(tokio::time::Instant::now() + opts.write_timeout);
            }
            _ = activity.evict.notified(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(tokio::time::Instant::now() + EVICTION_WAIT);
            }
            _ = tick.tick(), if closing.is_none() => {
                // Before its first request a connection is still in protocol
                // detection or its first headers: --header-read-timeout.
                let served = activity.served.load(Ordering::Relaxed);
                let limit = if served {
                    opts.idle_timeout
                } else {
                    opts.idle_timeout.min(opts.header_read_timeout)
                };
                if activity.idle_for() >= limit {
                    // Nothing was ever asked on it: nothing to finish politely.
                    if !served {
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + opts.write_timeout);
                }
            }
            _ = tokio::time::sleep_until(close_by), if closing.is_some() => return,
        }
    }
}

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long a new connection waits for an evicted idle one to close.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// The open connections of a listener, to find the one idle longest.
#[derive(Debug, Default)]
struct Open {
    conns: parking_lot::Mutex<std::collections::HashMap<u64, Arc<Activity>>>,
    next: AtomicU64,
}

impl Open {
    fn add(&self) -> Arc<Activity> {
        let activity = Activity::new(self.next.fetch_add(1, Ordering::Relaxed));
        self.conns.lock().insert(activity.id, activity.clone());
        activity
    }

    /// Asks the connection idle longest (not already asked) to close;
    /// whether there was one.
    fn evict_idlest(&self) -> bool {
        let conns = self.conns.lock();
        let victim = conns
            .values()
            .filter(|a| !a.evicted.load(Ordering::Acquire))
            .filter_map(|a| Some((a.idle()?, a)))
            .max_by_key(|(idle, _)| *idle);
        match victim {
            Some((_, a)) => {
                a.evicted.store(true, Ordering::Release);
                a.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Takes a connection out of [`Open`] when its task ends.
struct Registered(Arc<Open>, Arc<Activity>);

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.conns.lock().remove(&self.1.id);
    }
}

/// How often idleness is looked at: a tenth of the timeout, within
/// 100 ms..1 s.
fn tick_for(idle: Duration) -> Duration {
    (idle / 10).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Requests in progress on one connection, and since when none is.
#[derive(Debug)]
struct Activity {
    id: u64,
    /// Set when asked to close to make room.
    evicted: std::sync::atomic::AtomicBool,
    evict: tokio::sync::Notify,
    /// Closes the connection at once ([`Connection::close`]).
    cut: tokio::sync::Notify,
    /// Winds the connection down ([`Connection::close`], HTTP/2).
    wind_down: tokio::sync::Notify,
    /// Set by the first request.
    served: std::sync::atomic::AtomicBool,
    open: AtomicUsize,
    /// Microseconds since `epoch` when the last request finished.
    last: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn new(id: u64) -> Arc<Activity> {
        Arc::new(Activity {
            id,
            evicted: Default::default(),
            evict: tokio::sync::Notify::new(),
            cut: tokio::sync::Notify::new(),
            wind_down: tokio::sync::Notify::new(),
            served: Default::default(),
            open: AtomicUsize::new(0),
            last: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// How long no request has been in progress; `None` while one is.
    fn idle(&self) -> Option<Duration> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(Duration::from_micros(
            self.now_us()
                .saturating_sub(self.last.load(Ordering::Acquire)),
        ))
    }

    /// How long no request has been in progress (zero while one is).
    fn idle_for(&self) -> Duration {
        self.idle().unwrap_or_default()
    }
}

/// The connection a GET request came in on, in the request's extensions.
#[derive(Clone, Debug)]
pub struct Connection {
    activity: Arc<Activity>,
    /// HTTP/2: other requests, perhaps other clients', share it.
    multiplexed: bool,
}

impl Connection {
    /// For a response that gave up on a client that stopped reading, whose
    /// unsent bytes hyper would otherwise hold until a timeout. An HTTP/1.1
    /// connection carries that request alone: closed now. An HTTP/2 one
    /// may carry other clients' requests (a proxy's shared connection): it
    /// takes no new streams, and the ones in flight get `--write-timeout`
    /// to finish before it is closed.
    pub fn close(&self) {
        // Stored permits: the connection's loop sees them even if it is
        // not waiting at this instant.
        if self.multiplexed {
            self.activity.wind_down.notify_one();
        } else {
            self.activity.cut.notify_one();
        }
    }
}

/// Marks a request in progress until its response future is done (or
/// dropped).
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.last.store(self.0.now_us(), Ordering::Release);
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The app, counting the connection's requests in progress.
#[derive(Clone)]
struct Tracked {
    inner: Router,
    activity: Arc<Activity>,
}

impl<B> tower::Service<axum::http::Request<B>> for Tracked
where
    Router: tower::Service<axum::http::Request<B>>,
    <Router as tower::Service<axum::http::Request<B>>>::Future: Send + 'static,
{
    type Response = <Router as tower::Service<axum::http::Request<B>>>::Response;
    type Error = <Router as tower::Service<axum::http::Request<B>>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<axum::http::Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        // Only GET responses are long enough to stall (scrapes); pushes,
        // the hot path, are answered in a few bytes and skip the insert.
        if req.method() == axum::http::Method::GET {
            let multiplexed = req.version() >= axum::http::Version::HTTP_2;
            req.extensions_mut().insert(Connection {
                activity: self.activity.clone(),
                multiplexed,
            });
        }
        self.activity.open.fetch_add(1, Ordering::AcqRel);
        self.activity.served.store(true, Ordering::Relaxed);
        let guard = InProgress(self.activity.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            drop(guard);
            res
        })
    }
}

/// A socket whose writes fail with `TimedOut` once one has made no progress
/// for the write timeout: a client that stops reading its response cannot
/// hold the connection (and the response's bytes) for longer.
struct StallGuard<T> {
    inner: T,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> StallGuard<T> {
    fn new(inner: T, timeout: Duration) -> StallGuard<T> {
        StallGuard {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Maps a pending write to an error once it has been pending too long;
    /// any progress resets the clock.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Pending => {
                let timeout = self.timeout;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "write stalled past --write-timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
