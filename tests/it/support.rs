//! A gateway under test and a small HTTP client for it.

use std::time::{Duration, Instant};

use prom_aggregation_gateway::Config;
pub use prom_aggregation_gateway_client::PushRequest;
use prom_aggregation_gateway_client::families;
use prom_aggregation_gateway_client::pb::aggregation_gateway::v1::aggregation_gateway_client::AggregationGatewayClient;
pub use prom_aggregation_gateway_client::pb::io::prometheus::client as pb;

/// The generated gRPC client over a tonic channel.
pub type GrpcClient = AggregationGatewayClient<tonic::transport::Channel>;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running gateway on `127.0.0.1:<ephemeral>`; stopped when dropped.
pub struct Gateway {
    /// `http://` (or `https://` with TLS) and the main listener's address.
    pub base: String,
    /// The main listener's address.
    pub addr: std::net::SocketAddr,
    /// The separate gRPC listener's base, when asked for.
    pub grpc_base: Option<String>,
    /// The lifecycle listener's base, when asked for.
    pub lifecycle_base: Option<String>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Which listeners besides the main one a gateway gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listen {
    pub grpc: bool,
    pub lifecycle: bool,
}

/// Polls `check` until it gives `Some`, failing the test with `what` after
/// `within`: the one way tests wait for something to happen (never a fixed
/// sleep). Bind references outside and use `async move` blocks.
pub async fn eventually<T, Fut>(what: &str, within: Duration, mut check: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A response's status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Gateway {
    pub async fn start() -> Gateway {
        Gateway::start_with(Config::default()).await
    }

    pub async fn start_with(config: Config) -> Gateway {
        Gateway::start_on(config, Listen::default()).await
    }

    /// A gateway in this process (`prom_aggregation_gateway::serve`) on
    /// ephemeral loopback ports: the main listener, and the others `listen`
    /// asks for. With TLS in `config` the base is `https://` (the tests'
    /// plain client cannot use it: TLS tests bring their own).
    pub async fn start_on(config: Config, listen: Listen) -> Gateway {
        async fn bind() -> TcpListener {
            TcpListener::bind("127.0.0.1:0").await.unwrap()
        }
        let main = bind().await;
        let addr = main.local_addr().unwrap();
        let grpc = if listen.grpc {
            Some(bind().await)
        } else {
            None
        };
        let lifecycle = if listen.lifecycle {
            Some(bind().await)
        } else {
            None
        };
        let base_of = |l: &TcpListener| format!("http://{}", l.local_addr().unwrap());
        let (grpc_base, lifecycle_base) =
            (grpc.as_ref().map(base_of), lifecycle.as_ref().map(base_of));
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let (tx, rx) = oneshot::channel::<()>();
        let listeners = prom_aggregation_gateway::transport::Listeners {
            main,
            grpc,
            lifecycle,
        };
        let served = tokio::spawn(prom_aggregation_gateway::serve(config, listeners, async {
            let _ = rx.await;
        }));
        let gw = Gateway {
            base: format!("{scheme}://{addr}"),
            addr,
            grpc_base,
            lifecycle_base,
            client: reqwest::Client::new(),
            stop: Some(tx),
            served: Some(served),
        };
        // The listeners are bound: connections wait in their backlogs until
        // the server (restoring a snapshot first, if any) accepts them.
        if scheme == "http" {
            // Health is the lifecycle listener's, when there is one.
            let health = gw.lifecycle_base.as_ref().unwrap_or(&gw.base);
            let (client, url) = (&gw.client, format!("{health}/-/healthy"));
            eventually("gateway healthy", Duration::from_secs(10), || {
                let url = url.clone();
                async move {
                    let r = client.get(url).send().await.ok()?;
                    (r.status() == 200).then_some(())
                }
            })
            .await;
        }
        gw
    }

    /// Stops the gateway as a shutdown signal does; what `serve` returned.
    pub async fn stop(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().map(|s| s.send(()));
        self.served.take().unwrap().await.unwrap()
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{}", self.base, path))
            .body(body);
        for (k, v) in headers {
            req = req.header(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let r = req.send().await.expect("request failed");
        let reply = Reply {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.unwrap().to_vec(),
        };
        // Whatever a write left behind must scrape validly in every format.
        if matches!(method, "POST" | "PUT" | "DELETE") && (200..300).contains(&reply.status) {
            self.check_valid().await;
        }
        reply
    }

    /// Scrapes in text, OpenMetrics and protobuf and checks each with the
    /// validity oracle (`tests/oracle`); panics naming the broken rule.
    pub async fn check_valid(&self) {
        check_valid(&self.client, &self.base).await;
    }

    /// A gRPC client of the push service on the same port.
    pub async fn grpc(&self) -> GrpcClient {
        grpc_client(&self.base).await
    }

    pub async fn push(&self, path: &str, body: &str) -> Reply {
        self.request("POST", path, &[], body.to_string()).await
    }

    /// Pushes and asserts success, printing the reason otherwise.
    pub async fn push_ok(&self, path: &str, body: &str) {
        let r = self.push(path, body).await;
        assert_eq!(r.status, 200, "push to {path} failed: {}\n{body}", r.text());
    }

    /// The text-format scrape, after checking every format's with the
    /// validity oracle.
    pub async fn scrape(&self) -> String {
        self.check_valid().await;
        let r = self.request("GET", "/metrics", &[], "").await;
        assert_eq!(r.status, 200);
        r.text()
    }

    /// A value from the gateway's own metrics (`name{labels}` as printed;
    /// 0 when absent).
    pub async fn self_metric(&self, series: &str) -> f64 {
        let r = self.request("GET", "/-/metrics", &[], "").await;
        self_metric_in(&r.text(), series)
    }
}

/// The value of `series` (`name{labels}` as printed) in a self-metrics
/// page; 0 when absent.
pub fn self_metric_in(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Starts the binary with `args`, which must refuse to start; its stderr.
pub fn refused_start(args: &[&str]) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prom-aggregation-gateway"))
        .args(args)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{args:?} started");
    err
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The protobuf scrape, decoded.
pub async fn scrape_protobuf(gw: &Gateway) -> Vec<pb::MetricFamily> {
    use prost::Message;
    let r = gw
        .request("GET", "/metrics", &[("accept", ACCEPT_PROTOBUF)], "")
        .await;
    assert_eq!(r.status, 200);
    let mut buf = &r.body[..];
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(pb::MetricFamily::decode_length_delimited(&mut buf).unwrap());
    }
    out
}

/// The Accept headers of the three scrape formats.
pub const ACCEPT_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";
/// Delimited protobuf, as Prometheus asks for it (and as a push's
/// `Content-Type`).
pub const ACCEPT_PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Scrapes `base` in every format and checks each with the oracle.
pub async fn check_valid(client: &reqwest::Client, base: &str) {
    let mut bodies = Vec::new();
    for accept in ["text/plain", ACCEPT_OPENMETRICS, ACCEPT_PROTOBUF] {
        let r = client
            .get(format!("{base}/metrics"))
            .header("accept", accept)
            .send()
            .await
            .expect("scrape failed");
        assert_eq!(r.status(), 200, "scrape as {accept}");
        bodies.push(r.bytes().await.unwrap());
    }
    if let Err(e) = pag_oracle::check_all(&bodies[0], &bodies[1], &bodies[2]) {
        panic!(
            "an accepted push left an invalid scrape: {e}\n--- text ---\n{}\n--- openmetrics ---\n{}",
            String::from_utf8_lossy(&bodies[0]),
            String::from_utf8_lossy(&bodies[1])
        );
    }
}

/// Asserts equality, printing both sides in full on a mismatch.
#[track_caller]
pub fn assert_text_eq(actual: &str, expected: &str, what: &str) {
    if actual != expected {
        panic!("{what}: mismatch\n--- expected ---\n{expected}\n--- actual ---\n{actual}\n---");
    }
}

/// The conformance cases, `tests/conformance`.
pub fn conformance_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    assert!(
        dir.is_dir(),
        "conformance cases not found at {}",
        dir.display()
    );
    dir
}

/// A connected gRPC channel to `base` (`http://host:port`).
pub async fn channel(base: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(base.to_string())
        .unwrap()
        .connect()
        .await
        .expect("gRPC connect")
}

/// A push-service client for `base`.
pub async fn grpc_client(base: &str) -> GrpcClient {
    AggregationGatewayClient::new(channel(base).await)
}

/// The gateway binary as a child process on a free loopback port, for what
/// needs a real process: signals, kill -9, restarts, start-up failures.
pub struct Process {
    pub child: std::process::Child,
    pub base: String,
    pub port: u16,
}

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Process {
    /// Starts the binary with `args` on `port` and waits until it is healthy.
    pub async fn start_on(port: u16, args: &[&str]) -> Process {
        Process::start_env(port, args, &[]).await
    }

    /// [`Process::start_on`] with these environment variables set.
    pub async fn start_env(port: u16, args: &[&str], env: &[(&str, &str)]) -> Process {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_prom-aggregation-gateway"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the gateway binary");
        let mut p = Process {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
        };
        let client = reqwest::Client::new();
        let url = format!("{}/-/healthy", p.base);
        eventually("gateway binary healthy", Duration::from_secs(20), || {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("gateway exited at start ({status}): {}", p.stderr());
            }
            let (client, url) = (&client, url.clone());
            async move {
                let r = client.get(url).send().await.ok()?;
                (r.status() == 200).then_some(())
            }
        })
        .await;
        p
    }

    pub async fn start(args: &[&str]) -> Process {
        Process::start_on(free_port(), args).await
    }

    /// What the process wrote to stderr (after it exited).
    pub fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    }

    /// Sends a signal (`TERM`, `KILL`, `HUP`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit (with a deadline); its exit status.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "gateway did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn scrape(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A value from the gateway's own metrics (`name{labels}` as printed).
    pub async fn self_metric(&self, series: &str) -> f64 {
        let text = reqwest::get(format!("{}/-/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        self_metric_in(&text, series)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a sample line `series value` in a text scrape.
pub fn sample_value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A throwaway folder under the target dir, removed on drop.
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// Protobuf and gRPC builders, on the Rust client's (`clients/rust`) where
// they fit: tests build what a client of the gateway builds.

pub fn label(name: &str, value: &str) -> pb::LabelPair {
    pb::LabelPair {
        name: Some(name.into()),
        value: Some(value.into()),
    }
}

/// A counter family of one series, with help `<name> help`.
pub fn counter(name: &str, labels: &[(&str, &str)], v: f64) -> pb::MetricFamily {
    families::counter(name, &format!("{name} help"), labels, v)
}

/// A classic histogram family of one unlabelled series, without help.
pub fn histogram(name: &str, bounds: &[(f64, u64)], count: u64, sum: f64) -> pb::MetricFamily {
    families::histogram(name, "", &[], bounds, count, sum)
}

pub fn request(families: Vec<pb::MetricFamily>, labels: &[(&str, &str)]) -> PushRequest {
    PushRequest {
        metric_families: families,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Families as a delimited protobuf body.
pub fn delimited(families: &[pb::MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        prost::Message::encode_length_delimited(f, &mut out).unwrap();
    }
    out
}

/// A gateway config whose one push user is `sender` / `s3cret`
/// ([`SENDER_AUTH`]).
pub fn with_sender(config: Config) -> Config {
    Config {
        auth_users: vec![(
            "sender".into(),
            prom_aggregation_gateway::config::Secret::Plain("s3cret".into()),
        )],
        ..config
    }
}

/// The `Authorization` value of [`with_sender`]'s user.
pub const SENDER_AUTH: &str = "Basic c2VuZGVyOnMzY3JldA==";
