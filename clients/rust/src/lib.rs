//! A gRPC client for prom-aggregation-gateway.
//!
//! Push batches of Prometheus `MetricFamily` messages; the gateway adds them
//! into its aggregate, each batch all or nothing.
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
        }
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
    /// Pushgateway's grouping key); returns the series touched.
    pub async fn push<K: Into<String>, V: Into<String>>(
        &mut self,
        families: Vec<MetricFamily>,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Result<u64, tonic::Status> {
        let req = PushRequest {
            metric_families: families,
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        };
        let res = self.inner.push(self.request(req)).await?;
        Ok(res.into_inner().series)
    }

    /// Pushes a stream of batches, each applied all or nothing; returns the
    /// series touched over all of them.
    pub async fn push_stream(
        &mut self,
        batches: impl tokio_stream::Stream<Item = PushRequest> + Send + 'static,
    ) -> Result<u64, tonic::Status> {
        let res = self.inner.push_stream(self.request(batches)).await?;
        Ok(res.into_inner().series)
    }
}
