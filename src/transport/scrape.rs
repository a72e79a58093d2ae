//! Scrapes: the kept whole rendering while the aggregate is unchanged,
//! else rendered (inline when small, else on a thread of the scrape's own,
//! at a lower priority than pushes) and streamed through a [`pipe`] of a
//! few chunks, never holding a large rendering whole.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::encode;
use crate::error::Rejection;
use crate::format::Format;
use crate::gateway::Gateway;
use crate::ingest::run_sized;

use super::headers::header_str;
use super::pipe;
use super::server::Connection;

/// Aggregates of more series than this are rendered on a blocking thread.
const BLOCKING_SCRAPE: usize = 10_000;

/// `GET /metrics`: the aggregate, in the format `Accept` asks for, gzipped
/// when `Accept-Encoding` allows: the kept rendering when unchanged; else,
/// up to what is kept (`--scrape-keep-bytes`), rendered whole (on a blocking
/// thread past 10k series) and sent with its length; past it rendered on a
/// blocking thread and streamed as it renders, so no scrape holds a whole
/// large rendering.
pub(super) async fn scrape(
    State(gw): State<Gateway>,
    connection: Option<Extension<Connection>>,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let format = Format::negotiate(header_str(&headers, header::ACCEPT));
    let gzip = accepts_gzip(header_str(&headers, header::ACCEPT_ENCODING));
    let cache = gw.scrape_cache();
    let kept = cache.kept(gw.aggregator(), format, gzip);
    let series = gw.aggregator().series_count();
    let (body, len) = match kept {
        Some(r) => whole(r),
        // Small, or kept once rendered: rendered whole, sent with its length.
        None if series <= BLOCKING_SCRAPE || cache.keeps(series) => {
            let gw2 = gw.clone();
            let rendered = run_sized(series > BLOCKING_SCRAPE, move || {
                gw2.scrape_cache()
                    .render(gw2.aggregator(), format, gzip)
                    .ok_or(Rejection::Internal)
            });
            match rendered.await {
                Ok(r) => whole(r),
                // Never an empty 200: Prometheus would read it as every
                // series gone.
                Err(r) => return r.into_response(),
            }
        }
        None => {
            let connection = connection.map(|Extension(c)| c);
            let body = streamed(gw.clone(), format, gzip, started, connection).await;
            (body, None)
        }
    };
    if len.is_some() {
        gw.telemetry().scrape(format, started.elapsed());
    }
    let mut res = ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
    let h = res.headers_mut();
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    h.insert(
        header::VARY,
        HeaderValue::from_static("accept, accept-encoding"),
    );
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    res
}

/// A whole rendering as a body (its chunks are shared with every scrape of
/// the same state), and its length.
fn whole(rendering: encode::Rendering) -> (Body, Option<usize>) {
    let len = rendering.len();
    let body = match rendering.chunks() {
        [one] => Body::from(one.clone()),
        _ => Body::from_stream(futures_util::stream::iter(
            (0..rendering.chunks().len())
                .map(move |i| Ok::<_, std::convert::Infallible>(rendering.chunks()[i].clone())),
        )),
    };
    (body, Some(len))
}

/// The nice value of a streamed scrape's render thread (see [`streamed`]).
const RENDER_NICE: i32 = 10;

/// A streamed scrape stalled this long gives its turn up when another
/// scrape waits for one.
const STALL_YIELD: Duration = Duration::from_secs(1);

/// A large scrape, rendered on a thread of its own two chunks ahead of the
/// socket. A client that stops reading stalls the renderer; it gives up
/// (dropping its view of the aggregate and its turn) once stalled for
/// `--write-timeout`, or for a second when another scrape waits for a
/// turn, so [`encode::STREAMS`] clients that never read cannot hold every
/// scrape back. That holds over HTTP/2 too, where a peer granting no
/// flow-control window stalls a stream without stalling the socket. A
/// renderer that gave up closes the client's connection (at once over
/// HTTP/1.1; over HTTP/2 after the other streams had `--write-timeout` to
/// finish), so the chunk hyper still holds for it goes (else each stalled
/// client a turn passed over would keep one until the connection idled
/// out). Should the renderer stop
/// short for any reason, the body ends in an error (the connection or
/// stream is cut), never as a shorter scrape Prometheus would take for
/// series gone.
async fn streamed(
    gw: Gateway,
    format: Format,
    gzip: bool,
    started: Instant,
    connection: Option<Connection>,
) -> Body {
    // Waits (within --request-timeout) while as many streams render as
    // the cache allows: each holds a few chunks, and a render is a core's
    // work for a while.
    let permit = gw.scrape_cache().stream_permit().await;
    let (tx, rx) = pipe::pipe();
    let span = tracing::Span::current();
    let write_timeout = gw.config().write_timeout;
    let render = move || {
        // Below the threads that take pushes: a full render is a core's
        // work for a long while, and on a machine whose cores are all busy
        // the pushes it runs beside must not queue behind it (figures in
        // bench/README.md, "Scrapes beside pushes"). The thread is
        // the scrape's own: an unprivileged thread cannot take its
        // priority back, so not one of the shared blocking threads. Best
        // effort (an error leaves the priority as it was).
        let _ = rustix::process::setpriority_process(None, RENDER_NICE);
        let _in = span.enter();
        let _permit = permit;
        let cache = gw.scrape_cache();
        let give_up = |stalled: Duration| {
            stalled >= write_timeout || (stalled >= STALL_YIELD && cache.turn_wanted())
        };
        // `render_to` stops without failing when the body refuses a chunk.
        let mut refused = false;
        let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.render_to(gw.aggregator(), format, gzip, &mut |chunk| {
                let sent = tx.send(chunk, give_up);
                refused |= !sent;
                sent
            })
        }));
        // Unless finished, the body ends in an error when `tx` is dropped.
        match rendered {
            Ok(true) if !refused => {
                tx.finish();
                gw.telemetry().scrape(format, started.elapsed());
            }
            Ok(_) if tx.gave_up() => {
                tracing::debug!("streamed scrape given up: its client stopped reading");
                if let Some(c) = &connection {
                    c.close();
                }
            }
            Ok(true) => tracing::debug!("streamed scrape stopped: client gone"),
            Ok(false) => tracing::warn!("streamed scrape rendering failed"),
            Err(_) => tracing::warn!("streamed scrape rendering panicked"),
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("scrape-render".into())
        .spawn(render)
    {
        // Out of threads: the scrape fails (never an empty 200).
        tracing::warn!("scrape not rendered: {e}");
        return Body::from_stream(futures_util::stream::once(async move {
            Err::<bytes::Bytes, _>(std::io::Error::other("scrape rendering not started"))
        }));
    }
    Body::from_stream(rx)
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*` with q above 0).
fn accepts_gzip(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
    })
}
