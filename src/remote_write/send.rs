//! One target's sender: posts each snapshot's requests in order, as the
//! remote-write spec asks of errors: 5xx, 429 and network errors are
//! retried with capped exponential backoff (honouring `Retry-After`);
//! other 4xx are dropped and counted, never retried (no retry storm).
//! While it waits to retry, a newer snapshot replaces the one it was
//! sending; the older one's staleness markers and zeros not yet sent are
//! carried into the next (bounded, see [`CARRY_BYTES`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::config::{Auth, Protocol, Target};
use super::encode::Batch;
use super::snapshot::Snapshot;
use crate::telemetry::RemoteWriteStats;

/// First wait before a retry; doubled per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between retries (Prometheus' own sender caps at 5 s; a
/// gateway sends one snapshot per interval, so it can wait longer).
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Most bytes of staleness markers and zeros kept for a target that could
/// not send them; past it the oldest are dropped and counted.
pub(crate) const CARRY_BYTES: usize = 64 << 20;
/// How long the last send at shutdown may take.
const LAST_SEND: Duration = Duration::from_secs(5);

/// One target, its client and its state.
pub(crate) struct Sender {
    target: Target,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Every request's headers: the protocol's (but for the version),
    /// the target's, its credentials.
    headers: HeaderMap,
    /// The protocol sent now (a 2.0 target falls back to 1.0 for good).
    protocol: AtomicU8,
    stats: RemoteWriteStats,
}

/// When the next request may go, after failures.
struct Backoff {
    /// The wait after the next failure (without `Retry-After`).
    next: Duration,
    /// No request before this.
    not_before: Option<Instant>,
}

/// What became of one request.
enum Outcome {
    Sent,
    Rejected,
    /// A newer snapshot came while waiting to retry.
    Superseded,
    /// The receiver does not take 2.0: resend as 1.0.
    FellBack,
    /// No newer snapshot will come: stop.
    Closed,
}

impl Sender {
    pub(crate) fn new(target: Target, stats: RemoteWriteStats) -> Result<Sender, String> {
        let tls = tls_config(&target)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let headers = request_headers(&target)?;
        stats.protocol(target.protocol);
        Ok(Sender {
            protocol: AtomicU8::new(target.protocol as u8),
            target,
            client,
            headers,
            stats,
        })
    }

    /// The protocol sent now.
    pub(crate) fn protocol(&self) -> Protocol {
        if self.protocol.load(Ordering::Relaxed) == Protocol::V2 as u8 {
            Protocol::V2
        } else {
            Protocol::V1
        }
    }

    /// Sends every snapshot published on `rx` until it closes, then the
    /// last one once more within [`LAST_SEND`] if it was not sent.
    pub(crate) async fn run(
        &self,
        mut rx: tokio::sync::watch::Receiver<Option<Arc<Snapshot>>>,
        wake: Arc<tokio::sync::Notify>,
    ) {
        let mut carry: VecDeque<Batch> = VecDeque::new();
        let mut backoff = Backoff {
            next: MIN_BACKOFF,
            not_before: None,
        };
        let mut unseen = false;
        let mut closing_at: Option<Instant> = None;
        loop {
            if !unseen && rx.changed().await.is_err() {
                return;
            }
            unseen = false;
            let Some(snapshot) = rx.borrow_and_update().clone() else {
                continue;
            };
            if closing_at.is_none() && rx.has_changed().is_err() {
                closing_at = Some(Instant::now());
            }
            self.stats.lag(snapshot.timestamp_ms);
            let Some(encoded) = snapshot.encoded(self.protocol()) else {
                // Encoded before this target fell back: the next one holds
                // 1.0.
                continue;
            };
            let queue: Vec<(&Batch, bool)> = carry
                .iter()
                .map(|b| (b, true))
                .chain(encoded.stale.iter().map(|b| (b, true)))
                .chain(encoded.zeros.iter().map(|b| (b, true)))
                .chain(encoded.values.iter().map(|b| (b, false)))
                .collect();
            let mut rejected = false;
            let mut sent_all = true;
            let mut stop_at = queue.len();
            for (at, (batch, _)) in queue.iter().enumerate() {
                let deadline = closing_at.map(|c| c + LAST_SEND);
                match self.send(batch, &mut rx, &mut backoff, deadline).await {
                    Outcome::Sent => {}
                    Outcome::Rejected => rejected = true,
                    Outcome::Superseded => {
                        self.stats.skipped();
                        unseen = true;
                        sent_all = false;
                        stop_at = at;
                        break;
                    }
                    Outcome::FellBack => {
                        wake.notify_one();
                        sent_all = false;
                        stop_at = at;
                        break;
                    }
                    Outcome::Closed => {
                        return;
                    }
                }
            }
            // Staleness markers and zeros not sent yet go with the next
            // snapshot: its values are newer than both.
            let unsent: Vec<Batch> = queue[stop_at..]
                .iter()
                .filter(|(_, stale)| *stale)
                .map(|(b, _)| (*b).clone())
                .collect();
            carry.clear();
            let mut bytes = 0;
            for b in unsent.into_iter().rev() {
                if bytes + b.body.len() > CARRY_BYTES {
                    self.stats.dropped("carry_full", b.samples);
                    continue;
                }
                bytes += b.body.len();
                carry.push_front(b);
            }
            if sent_all {
                self.stats.done(snapshot.timestamp_ms, !rejected);
            }
            if closing_at.is_some() && !unseen {
                return;
            }
        }
    }

    /// Posts one request until it is taken or refused for good, or a
    /// newer snapshot comes while waiting to retry.
    async fn send(
        &self,
        batch: &Batch,
        rx: &mut tokio::sync::watch::Receiver<Option<Arc<Snapshot>>>,
        backoff: &mut Backoff,
        deadline: Option<Instant>,
    ) -> Outcome {
        loop {
            // A wait asked for (backoff, `Retry-After`) holds for the
            // newest snapshot too.
            if let Some(t) = backoff.not_before.take()
                && t > Instant::now()
            {
                if deadline.is_some_and(|d| t > d) {
                    return Outcome::Closed;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(t.into()) => {}
                    _ = rx.changed(), if deadline.is_none() => {
                        backoff.not_before = Some(t);
                        return Outcome::Superseded;
                    }
                }
            }
            let protocol = self.protocol();
            let wait = match self.post(batch, protocol, deadline).await {
                Ok((status, headers, text)) => {
                    if status.is_success() {
                        if protocol == Protocol::V2
                            && !headers.contains_key("x-prometheus-remote-write-samples-written")
                        {
                            // A 1.0 receiver reads a 2.0 body as an empty
                            // 1.0 one and says yes: it did not confirm 2.0.
                            return self
                                .fall_back("no X-Prometheus-Remote-Write-Samples-Written header");
                        }
                        backoff.next = MIN_BACKOFF;
                        self.stats.sent(batch.samples, batch.body.len());
                        return Outcome::Sent;
                    }
                    if status == StatusCode::UNSUPPORTED_MEDIA_TYPE && protocol == Protocol::V2 {
                        return self.fall_back("415 Unsupported Media Type");
                    }
                    let retry = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if !retry {
                        self.stats.dropped("rejected", batch.samples);
                        tracing::warn!(
                            target_name = %self.target.name,
                            status = status.as_u16(),
                            reason = text.trim(),
                            samples = batch.samples,
                            "remote-write request refused; dropped"
                        );
                        return Outcome::Rejected;
                    }
                    let after = headers
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
                    tracing::debug!(target_name = %self.target.name, status = status.as_u16(), "remote-write retry");
                    after.unwrap_or(backoff.next)
                }
                Err(e) => {
                    tracing::debug!(target_name = %self.target.name, error = %e, "remote-write retry");
                    backoff.next
                }
            };
            self.stats.retry();
            backoff.next = (backoff.next * 2).min(MAX_BACKOFF);
            backoff.not_before = Some(Instant::now() + wait);
        }
    }

    fn fall_back(&self, why: &str) -> Outcome {
        tracing::warn!(
            target_name = %self.target.name,
            why,
            "receiver did not confirm remote-write 2.0; sending 1.0 from now on"
        );
        self.protocol.store(Protocol::V1 as u8, Ordering::Relaxed);
        self.stats.protocol(Protocol::V1);
        Outcome::FellBack
    }

    /// Posts one request; its status, headers and the first bytes of its
    /// body (for the log), or why there was no answer.
    async fn post(
        &self,
        batch: &Batch,
        protocol: Protocol,
        deadline: Option<Instant>,
    ) -> Result<(StatusCode, HeaderMap, String), String> {
        let (content_type, version) = match protocol {
            Protocol::V1 => ("application/x-protobuf", "0.1.0"),
            Protocol::V2 => (
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                "2.0.0",
            ),
        };
        let mut request = hyper::Request::post(self.target.url.clone())
            .body(Full::new(batch.body.clone()))
            .map_err(|e| e.to_string())?;
        let h = request.headers_mut();
        h.clone_from(&self.headers);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(
            HeaderName::from_static("x-prometheus-remote-write-version"),
            HeaderValue::from_static(version),
        );
        let limit = deadline.map_or(self.target.timeout, |d| {
            d.saturating_duration_since(Instant::now())
                .min(self.target.timeout)
        });
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let (parts, body) = response.into_parts();
            // Only an error's first bytes are read, for the log; a body
            // larger than that is not waited for.
            let mut text = String::new();
            if !parts.status.is_success() {
                let mut body = body;
                let mut read = Vec::new();
                while read.len() < 256 {
                    match body.frame().await {
                        Some(Ok(frame)) => {
                            if let Some(data) = frame.data_ref() {
                                read.extend_from_slice(data);
                            }
                        }
                        _ => break,
                    }
                }
                read.truncate(256);
                text = String::from_utf8_lossy(&read).into_owned();
            }
            Ok((parts.status, parts.headers, text))
        };
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| format!("no answer within {limit:?}"))?
    }
}

/// The headers every request to `target` carries, but the version (set
/// per request).
fn request_headers(target: &Target) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!(
            "prom-aggregation-gateway/",
            env!("CARGO_PKG_VERSION")
        )),
    );
    let bad = |what: &str| {
        format!(
            "remote-write target {}: {what} is not a valid header value",
            target.name
        )
    };
    for (k, v) in &target.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad(k))?;
        h.insert(name, HeaderValue::from_str(v).map_err(|_| bad(k))?);
    }
    let auth = match &target.auth {
        Some(Auth::Basic { username, password }) => {
            use base64::Engine;
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            Some(format!("Basic {pair}"))
        }
        Some(Auth::Bearer(token)) => Some(format!("Bearer {token}")),
        None => None,
    };
    if let Some(a) = auth {
        let mut value = HeaderValue::from_str(&a).map_err(|_| bad("the credential"))?;
        value.set_sensitive(true);
        h.insert(header::AUTHORIZATION, value);
    }
    Ok(h)
}

/// The target's TLS client config: its CA file, or the system's roots;
/// its client certificate, if any. On the `ring` provider the server
/// side uses too.
fn tls_config(target: &Target) -> Result<rustls::ClientConfig, String> {
    let at = |what: &str, e: &dyn std::fmt::Display| {
        format!("remote-write target {}: {what}: {e}", target.name)
    };
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| at("tls", &e))?;
    let builder = match &target.tls.ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in crate::tls::certs(path).map_err(|e| at("ca_file", &e))? {
                roots.add(cert).map_err(|e| at("ca_file", &e))?;
            }
            builder.with_root_certificates(roots)
        }
        None if target.url.scheme_str() == Some("https") => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .map_err(|e| at("system roots", &e))?
        }
        // Plain HTTP: no certificate is ever checked.
        None => builder.with_root_certificates(rustls::RootCertStore::empty()),
    };
    match (&target.tls.cert_file, &target.tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = crate::tls::certs(cert).map_err(|e| at("cert_file", &e))?;
            let key = crate::tls::key(key).map_err(|e| at("key_file", &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| at("client certificate", &e))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}
