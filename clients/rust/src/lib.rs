//! A gRPC client for prom-aggregation-gateway.
//!
//! Push batches of Prometheus `MetricFamily` messages; the gateway adds them
//! into its aggregate, each batch all or nothing. Every push carries an
//! `idempotency-key` and is retried with it when the answer is lost or the
//! gateway is briefly unavailable, so a retried push is counted once.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use prom_aggregation_gateway_client::{Client, families};
//!
//! let mut client = Client::connect("http://localhost:8080").await?;
//! let batch = vec![families::counter("jobs_total", "Jobs done", &[("queue", "a")], 1.0)];
//! let touched = client.push(batch, [("job", "worker")]).await?;
//! # let _ = touched; Ok(()) }
//! ```

#![warn(missing_docs)]

/// Generated protobuf and gRPC code.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/pb.rs"));
}

pub mod families;

use base64::Engine;
use pb::aggregation_gateway::v1::aggregation_gateway_client::AggregationGatewayClient;
pub use pb::aggregation_gateway::v1::{PushRequest, PushResponse};
pub use pb::io::prometheus::client::MetricFamily;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// A connection to a gateway.
#[derive(Debug, Clone)]
pub struct Client {
    inner: AggregationGatewayClient<Channel>,
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
    retries: u32,
    backoff: std::time::Duration,
}

/// Answers after which a push may not have been applied, or was applied
/// and its answer lost: retried with the same key, which the gateway
/// answers as the first without applying it again.
fn retryable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable | tonic::Code::Aborted | tonic::Code::DeadlineExceeded
    )
}

/// A new idempotency key: 128 bits from the standard library's randomly
/// seeded hasher (seeded from the OS once per thread), the time and a
/// counter, so keys of one process never repeat and others' are unlikely
/// to meet them.
pub fn new_idempotency_key() -> String {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = std::collections::hash_map::RandomState::new();
    let (a, b) = (
        seed.hash_one((n, nanos, 1u8)),
        seed.hash_one((n, nanos, 2u8)),
    );
    format!("{a:016x}{b:016x}")
}

impl Client {
    /// Connects to `endpoint` (e.g. `http://localhost:8080`).
    pub async fn connect(endpoint: impl Into<String>) -> Result<Client, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.into())?
            .connect()
            .await?;
        Ok(Client::new(channel))
    }

    /// A client over an existing channel.
    pub fn new(channel: Channel) -> Client {
        Client {
            inner: AggregationGatewayClient::new(channel),
            authorization: None,
            retries: 3,
            backoff: std::time::Duration::from_millis(100),
        }
    }

    /// Retries a push answered UNAVAILABLE, ABORTED or DEADLINE_EXCEEDED
    /// up to `retries` more times (default 3), waiting `backoff` (default
    /// 100 ms) and twice as long each time, with the push's key.
    pub fn with_retries(mut self, retries: u32, backoff: std::time::Duration) -> Client {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// Sends `user:password` as basic auth with every call (`--auth-users`).
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Client {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.authorization = MetadataValue::try_from(format!("Basic {token}")).ok();
        self
    }

    /// Compresses requests with gzip (the gateway accepts gzip and zstd).
    pub fn gzip(mut self) -> Client {
        self.inner = self
            .inner
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
        self
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(auth) = &self.authorization {
            req.metadata_mut().insert("authorization", auth.clone());
        }
        req
    }

    /// Pushes one batch with labels added to every series (like the
    /// Pushgateway's grouping key); returns the series touched. Sent with a
    /// new idempotency key and retried with it (see [`Client::with_retries`]).
    pub async fn push<K: Into<String>, V: Into<String>>(
        &mut self,
        families: Vec<MetricFamily>,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Result<u64, tonic::Status> {
        self.push_with_key(families, labels, &new_idempotency_key())
            .await
    }

    /// [`Client::push`] with a key of your own: within the gateway's
    /// window a push with a key it applied already is answered as then and
    /// not applied again, even across restarts of your program.
    pub async fn push_with_key<K: Into<String>, V: Into<String>>(
        &mut self,
        families: Vec<MetricFamily>,
        labels: impl IntoIterator<Item = (K, V)>,
        key: &str,
    ) -> Result<u64, tonic::Status> {
        let req = PushRequest {
            metric_families: families,
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        };
        let key = MetadataValue::try_from(key)
            .map_err(|_| tonic::Status::invalid_argument("idempotency key: not ASCII"))?;
        let mut attempt = 0;
        loop {
            let mut call = self.request(req.clone());
            call.metadata_mut().insert("idempotency-key", key.clone());
            match self.inner.push(call).await {
                Ok(res) => return Ok(res.into_inner().series),
                Err(e) if retryable(e.code()) && attempt < self.retries => {
                    tokio::time::sleep(self.backoff * 2u32.saturating_pow(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Pushes a stream of batches, each applied all or nothing; returns the
    /// series touched over all of them. A stream is neither keyed nor
    /// retried: a retry could not tell which batches were applied.
    pub async fn push_stream(
        &mut self,
        batches: impl tokio_stream::Stream<Item = PushRequest> + Send + 'static,
    ) -> Result<u64, tonic::Status> {
        let res = self.inner.push_stream(self.request(batches)).await?;
        Ok(res.into_inner().series)
    }
}
