//! HTTP routes (contract §2): push, delete, scrape, health, status, admin.
//!
//! Handlers only read the request, call the decode stage, the aggregator and
//! the encode stage, and map the result; rules live in those stages.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use http_body_util::BodyExt;
use tower_http::compression::{CompressionLayer, CompressionLevel};

use crate::decode::{self, path};
use crate::error::Rejection;
use crate::format::Format;
use crate::gateway::Gateway;
use crate::idempotency;
use crate::ingest::{Deadline, Ingested, PushSlots, Ticket, run_sized};
use crate::memory::Reservation;
use crate::routes::Protocol;
use crate::routes::{self, Handler, Route};

use super::headers::header_str;

/// Bodies above this are decoded off the async workers.
const BLOCKING_BODY: usize = 256 << 10;

/// The gateway's HTTP routes on `--listen`, built from
/// [`routes::MAIN`] (no fallback: `transport::app` sets it after merging
/// the gRPC routes).
pub fn router(gw: Gateway) -> Router {
    build(routes::MAIN).with_state(gw)
}

/// The routes on `--lifecycle-listen`: health and the gateway's own metrics,
/// from [`routes::LIFECYCLE`].
pub fn lifecycle_router(gw: Gateway) -> Router {
    build(routes::LIFECYCLE).fallback(not_found).with_state(gw)
}

/// The table's HTTP rows as axum routes (gRPC rows are tonic's).
fn build(table: &'static [Route]) -> Router<Gateway> {
    let mut paths: Vec<(&str, MethodRouter<Gateway>)> = Vec::new();
    for route in table {
        let Ok(filter) = MethodFilter::try_from(route.method.clone()) else {
            continue;
        };
        let Some(one) = handler(route.handler, filter) else {
            continue;
        };
        match paths.iter_mut().find(|(p, _)| *p == route.path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(one),
            None => paths.push((route.path, one)),
        }
    }
    paths
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
}

/// The handler of an HTTP row; `None` for gRPC rows (tonic serves them).
fn handler(h: Handler, filter: MethodFilter) -> Option<MethodRouter<Gateway>> {
    Some(match h {
        Handler::Scrape => on(filter, super::scrape::scrape),
        Handler::Push => on(filter, push),
        Handler::OtlpMetrics => on(filter, otlp_metrics),
        Handler::Delete => on(filter, delete),
        Handler::Wipe => on(filter, wipe),
        Handler::Status => on(filter, crate::status::summary::status),
        Handler::Families => on(filter, crate::status::api::families),
        Handler::Series => on(filter, crate::status::api::series),
        Handler::Cardinality => on(filter, crate::status::cardinality::cardinality),
        Handler::Groups => on(filter, crate::status::api::groups),
        Handler::Rejections => on(filter, crate::status::api::rejections),
        Handler::Page => on(filter, crate::status::page::page),
        Handler::Script => on(filter, crate::status::page::script),
        Handler::Style => on(filter, crate::status::page::style),
        Handler::Icon => on(filter, crate::status::page::icon),
        // The scrape compresses (and caches) itself; the self-metrics use
        // the layer, at the fastest level.
        Handler::SelfMetrics => on(filter, self_metrics)
            .layer(CompressionLayer::new().quality(CompressionLevel::Fastest)),
        Handler::Healthy => on(filter, healthy),
        Handler::Ready => on(filter, ready),
        Handler::GrpcPush
        | Handler::GrpcPushStream
        | Handler::GrpcOtlpExport
        | Handler::GrpcHealth
        | Handler::GrpcReflection => return None,
    })
}

/// The answer for unknown paths.
pub async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("no route for {}\n", uri.path()),
    )
        .into_response()
}

/// Reads a body, refusing more than `limit` bytes, each frame reserved
/// from the byte budget before it is kept. (A declared length over the
/// limit was refused by the middleware before the body was read.)
async fn read_body(
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
    reservation: &mut Reservation,
) -> Result<bytes::Bytes, Rejection> {
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    // A body that comes in one frame (the common case) is kept as it came;
    // from a second frame on, the frames are copied into one buffer.
    let mut first: Option<bytes::Bytes> = None;
    let mut joined = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Rejection::invalid(format!("could not read the body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let held = first.as_ref().map_or(0, |f| f.len()) + joined.len();
        if held + data.len() > limit {
            return Err(Rejection::BodyTooLarge { limit });
        }
        if held == 0 && first.is_none() {
            reservation.grow(data.len())?;
            first = Some(data);
            continue;
        }
        let needed = held + data.len();
        if needed > joined.capacity() {
            // Grown by doubling, sized from the declared length only up to
            // 1 MiB (a claim, not trusted further), each growth reserved
            // before it is allocated.
            let hint = declared.map_or(0, |n| (n as usize).min(1 << 20));
            let grown = needed.max(2 * joined.capacity()).max(hint).min(limit);
            reservation.grow(grown - joined.capacity())?;
            joined.reserve(grown - joined.len());
        }
        if let Some(f) = first.take() {
            joined.extend_from_slice(&f);
            // The first frame now lives in `joined`: its own bytes go.
            reservation.shrink(f.len());
        }
        joined.extend_from_slice(&data);
    }
    Ok(first.unwrap_or_else(|| joined.freeze()))
}

/// `POST`/`PUT /metrics[/<labels>]`: decode, then apply all or nothing,
/// unless the deadline passed first (then 408 and nothing applied).
async fn push(
    State(gw): State<Gateway>,
    deadline: Option<Extension<Deadline>>,
    slots: Option<Extension<PushSlots>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let deadline = deadline.map(|Extension(Deadline(at))| at);
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    let Some(format) = Format::from_content_type(content_type) else {
        return Rejection::UnsupportedMediaType(format!(
            "unsupported Content-Type {content_type:?}"
        ))
        .into_response();
    };
    let result = gw
        .recorded(
            Protocol::Http,
            uri.path(),
            push_inner(
                &gw,
                deadline,
                slots.as_ref().map(|Extension(s)| s),
                &uri,
                &headers,
                body,
                Wire::Exposition(format),
            ),
        )
        .await;
    match result {
        Ok(_) => StatusCode::OK.into_response(),
        Err(r) => r.into_response(),
    }
}

/// What a push body is in.
#[derive(Debug, Clone, Copy)]
enum Wire {
    /// An exposition format, with the push path's labels.
    Exposition(Format),
    /// An OTLP `ExportMetricsServiceRequest`, protobuf or JSON.
    Otlp {
        /// OTLP/JSON rather than protobuf.
        json: bool,
    },
}

/// `POST /v1/metrics`: an OTLP/HTTP metrics export, through the same
/// reading, limits and aggregate as any push; answered as OTLP/HTTP
/// asks: an empty `ExportMetricsServiceResponse`, or a `google.rpc.Status`
/// with the HTTP status (429 and 503 are the retryable ones; a refused
/// request changed nothing, so a retry cannot count twice).
async fn otlp_metrics(
    State(gw): State<Gateway>,
    deadline: Option<Extension<Deadline>>,
    slots: Option<Extension<PushSlots>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let deadline = deadline.map(|Extension(Deadline(at))| at);
    let json = header_str(&headers, header::CONTENT_TYPE).is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/json")
    });
    let result = gw
        .recorded(
            Protocol::Http,
            uri.path(),
            push_inner(
                &gw,
                deadline,
                slots.as_ref().map(|Extension(s)| s),
                &uri,
                &headers,
                body,
                Wire::Otlp { json },
            ),
        )
        .await;
    // Answered in the request's encoding.
    let content_type = [(
        header::CONTENT_TYPE,
        if json {
            "application/json"
        } else {
            "application/x-protobuf"
        },
    )];
    match result {
        Ok(_) if json => (StatusCode::OK, content_type, "{}").into_response(),
        Ok(_) => (StatusCode::OK, content_type).into_response(),
        Err(r) => {
            let status = r.status();
            let grpc = tonic::Status::from(r);
            let body = if json {
                serde_json::json!({"code": grpc.code() as i32, "message": grpc.message()})
                    .to_string()
                    .into_bytes()
            } else {
                // google.rpc.Status { int32 code = 1; string message = 2; }
                let mut body = Vec::new();
                crate::wire::uint(&mut body, 1, grpc.code() as u64);
                crate::wire::bytes(&mut body, 2, grpc.message().as_bytes());
                body
            };
            (status, content_type, body).into_response()
        }
    }
}

async fn push_inner(
    gw: &Gateway,
    deadline: Option<std::time::Instant>,
    slots: Option<&PushSlots>,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    wire: Wire,
) -> Result<Ingested, Rejection> {
    let config = gw.config();
    let limit = config.max_body_bytes;
    let labels = match wire {
        Wire::Exposition(_) => path_labels(gw, uri)?,
        Wire::Otlp { .. } => Vec::new(),
    };
    let path_len = uri.path().len();
    let key = match (gw.idempotency(), headers.get(idempotency::HEADER)) {
        (Some(keys), Some(v)) => Some((keys, idempotency::parse_key(v.as_bytes())?)),
        _ => None,
    };
    // Dropped with this future: a push not applied by then never will be.
    let (ticket, _guard) = Ticket::new(deadline);
    let mut reservation = gw.memory().reservation();
    // The body must arrive by --body-read-timeout, and by the deadline.
    let read_by = Instant::now() + config.body_read_timeout;
    let read_by = deadline.map_or(read_by, |d| d.min(read_by));
    let raw = tokio::time::timeout_at(
        read_by.into(),
        read_body(headers, body, limit, &mut reservation),
    )
    .await
    .map_err(|_| Rejection::Timeout)??;
    let encoding = header_str(headers, header::CONTENT_ENCODING).map(str::to_owned);
    // A request with the key of one applied is answered as it was.
    let key = match key {
        Some((keys, key)) => {
            match begin_keyed(keys, key, uri, headers, encoding.as_deref(), &raw).await? {
                idempotency::Begin::Replay(series) => {
                    return Ok(Ingested { series, samples: 0 });
                }
                idempotency::Begin::New(guard) => Some(guard),
            }
        }
        None => None,
    };
    // The in-flight slot, held until the push is answered: taken only now
    // that the body is here.
    let _slot = slots.map(PushSlots::take).transpose()?;
    // Off the async workers when the body is large, or would be once
    // decompressed: a small compressed body is inflated here up to the
    // threshold, and past it handed over whole.
    let before = reservation.bytes();
    let here = BLOCKING_BODY.min(limit);
    let body = if raw.len() > here {
        None
    } else {
        match decode::decompress(encoding.as_deref(), raw.clone(), here, &mut reservation) {
            Ok(body) => Some(body),
            Err(Rejection::BodyTooLarge { .. }) if limit > here => {
                reservation.shrink(reservation.bytes() - before);
                None
            }
            Err(Rejection::BodyTooLarge { .. }) => return Err(Rejection::BodyTooLarge { limit }),
            Err(e) => return Err(e),
        }
    };
    let gw = gw.clone();
    let ingested = run_sized(body.is_none(), move || {
        let body = match body {
            Some(body) => body,
            None => decode::decompress(encoding.as_deref(), raw, limit, &mut reservation)?,
        };
        let input = body.len() + path_len;
        gw.ingest(labels, &ticket, reservation, input, |opts| match wire {
            Wire::Exposition(format) => decode::decode(&body, format, opts),
            Wire::Otlp { json: false } => gw.decode_otlp(&body, opts),
            Wire::Otlp { json: true } => {
                let raw = decode::otlp::json::to_protobuf(&body, &|n| opts.charge_bytes(n, 0))?;
                gw.decode_otlp(&raw, opts)
            }
        })
    })
    .await?;
    if let Some(key) = key {
        key.applied(ingested.series);
    }
    Ok(ingested)
}

/// Begins a push's `Idempotency-Key` on a digest of its route, content
/// type, encoding and body (taken off the async workers when the body is
/// large).
async fn begin_keyed<'k>(
    keys: &'k idempotency::Keys,
    key: &str,
    uri: &Uri,
    headers: &HeaderMap,
    encoding: Option<&str>,
    raw: &bytes::Bytes,
) -> Result<idempotency::Begin<'k>, Rejection> {
    let route = uri.path().to_owned();
    let content_type = header_str(headers, header::CONTENT_TYPE)
        .unwrap_or("")
        .to_owned();
    let coding = encoding.unwrap_or_default().to_owned();
    let body = raw.clone();
    let fingerprint = run_sized(raw.len() > BLOCKING_BODY, move || {
        Ok(idempotency::fingerprint(
            &route,
            &content_type,
            &coding,
            &body,
        ))
    })
    .await?;
    keys.begin(key, fingerprint)
}

/// The labels of a push or delete path. A path longer than its labels may
/// ever be (three bytes of percent-encoding per byte of `--max-label-bytes`)
/// is refused before it is split.
fn path_labels(gw: &Gateway, uri: &Uri) -> Result<Vec<(String, String)>, Rejection> {
    let path = uri.path();
    let most = gw
        .config()
        .limits
        .max_label_bytes
        .saturating_mul(3)
        .saturating_add(64);
    if path.len() > most {
        return Err(Rejection::invalid(format!(
            "path of {} bytes is longer than any path whose labels fit --max-label-bytes",
            path.len()
        )));
    }
    path::parse(path.strip_prefix("/metrics").unwrap_or(""))
}

/// `DELETE /metrics/<labels>`: drop every series holding all the pairs.
async fn delete(State(gw): State<Gateway>, uri: Uri) -> Response {
    let labels = match path_labels(&gw, &uri) {
        // Pairs with empty values match series without the label: alone
        // they would match everything.
        Ok(l) if l.iter().all(|(_, v)| v.is_empty()) => {
            return Rejection::invalid(
                "DELETE needs at least one <name>/<value> pair with a non-empty value; PUT /api/v1/admin/wipe drops everything",
            )
            .into_response();
        }
        // Each pair is compared with every series: as many as a series
        // may hold, no more.
        Ok(l) if l.len() > gw.config().limits.max_labels => {
            return Rejection::invalid(format!(
                "DELETE gives {} label pairs, over the limit of {} (--max-labels)",
                l.len(),
                gw.config().limits.max_labels
            ))
            .into_response();
        }
        Ok(l) => l,
        Err(r) => return r.into_response(),
    };
    let dropped = gw.aggregator().delete(&labels);
    gw.activity().forget(&labels);
    // 202 as the Pushgateway answers: client_golang's `Pusher::Delete`
    // treats anything else as a failure.
    (StatusCode::ACCEPTED, format!("deleted {dropped} series\n")).into_response()
}

/// 202, as the Pushgateway answers its wipe.
async fn wipe(State(gw): State<Gateway>) -> Response {
    let dropped = gw.aggregator().wipe();
    gw.activity().forget(&[]);
    (StatusCode::ACCEPTED, format!("wiped {dropped} series\n")).into_response()
}

async fn healthy() -> Response {
    json(serde_json::json!({"status": "healthy"}))
}

async fn ready() -> Response {
    json(serde_json::json!({"status": "ready"}))
}

/// The gateway's own metrics, in the format the `Accept` header asks for.
async fn self_metrics(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    if let Some(keys) = gw.idempotency() {
        gw.telemetry().idempotency(keys.stats());
    }
    let body = gw.telemetry().render_as(gw.aggregator(), format);
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

fn json(v: serde_json::Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{v}\n"),
    )
        .into_response()
}
