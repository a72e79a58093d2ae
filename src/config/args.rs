//! The flags as given: each also read from `PAG_<FLAG>`, the Go gateway's
//! names accepted as aliases.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::aggregate::{GaugeMode, StartTimes};
use crate::trace::LogFormat;
use crate::units::{parse_duration, parse_size};

/// Command-line flags, as given.
#[derive(Debug, Clone, Parser)]
#[command(name = "prom-aggregation-gateway", version, about)]
pub struct Args {
    /// Address for HTTP (push, scrape, API). Go-style `:8080` means all interfaces.
    #[arg(
        long,
        env = "PAG_LISTEN",
        default_value = "0.0.0.0:8080",
        alias = "apiListen"
    )]
    pub listen: String,

    /// Optional separate address for gRPC (it is always served on --listen too).
    #[arg(long, env = "PAG_GRPC_LISTEN")]
    pub grpc_listen: Option<String>,

    /// Optional separate address for health checks and the gateway's own metrics.
    #[arg(
        long,
        env = "PAG_LIFECYCLE_LISTEN",
        aliases = ["lifecycleListen", "metricsListen"]
    )]
    pub lifecycle_listen: Option<String>,

    /// `Access-Control-Allow-Origin` for push and scrape (`*` for any origin).
    #[arg(long, env = "PAG_CORS", default_value = "*")]
    pub cors: String,

    /// Largest push body, after decompression too (e.g. 16MiB, 512KiB, 1000000).
    #[arg(long, env = "PAG_MAX_BODY_BYTES", default_value = "16MiB", value_parser = parse_size)]
    pub max_body_bytes: usize,

    /// Most bytes held for senders' data: the aggregate (labels, values,
    /// buckets, kept scrape renderings) and requests in progress (bodies,
    /// decompressed bodies, decoded pushes). A push that would exceed it is
    /// refused whole (429). Default: half the memory of the cgroup or
    /// machine.
    #[arg(long, env = "PAG_MAX_MEMORY", value_parser = parse_size)]
    pub max_memory: Option<usize>,

    /// Most bytes of renderings a scrape format keeps for the next scrapes
    /// (the whole scrape while unchanged, and each family's while it is).
    /// Past it (about 300k series at the default), scrapes render afresh
    /// and stream as they render, keeping nothing: at a million series,
    /// keeping renderings would cost more memory than the series.
    #[arg(long, env = "PAG_SCRAPE_KEEP_BYTES", default_value = "32MiB", value_parser = parse_size)]
    pub scrape_keep_bytes: usize,

    /// Most distinct classic histogram bucket bounds in one family; a push
    /// that would exceed it is refused whole (429).
    #[arg(long, env = "PAG_MAX_BUCKETS", default_value_t = 256)]
    pub max_buckets: usize,

    /// Most buckets of one native histogram series: past it the resolution
    /// is lowered (as Prometheus does), and a series that cannot fit even at
    /// the coarsest schema is refused.
    #[arg(long, env = "PAG_MAX_NATIVE_BUCKETS", default_value_t = 160)]
    pub max_native_buckets: usize,

    /// Most bytes of label names and values on one series, path and request
    /// labels included.
    #[arg(long, env = "PAG_MAX_LABEL_BYTES", default_value = "16KiB", value_parser = parse_size)]
    pub max_label_bytes: usize,

    /// Longest a push body may take to arrive (HTTP bodies and gRPC unary
    /// calls); then 408 / DEADLINE_EXCEEDED.
    #[arg(long, env = "PAG_BODY_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,

    /// A connection with no request in progress for this long is closed
    /// (HTTP/1 keep-alive and HTTP/2 alike).
    #[arg(long, env = "PAG_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Longest a write to a client may stall (a client that stops reading
    /// its response); then the connection is closed.
    #[arg(long, env = "PAG_WRITE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// Most open connections per listener; past it the one idle longest is
    /// closed to make room, or the new one at once when none is idle.
    #[arg(long, env = "PAG_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Most series held; a push that would exceed it is refused whole (429).
    #[arg(long, env = "PAG_MAX_SERIES", default_value_t = 1_000_000)]
    pub max_series: usize,

    /// How gauges pushed to the same series combine.
    #[arg(long, env = "PAG_GAUGE_MODE", value_enum, default_value_t = GaugeMode::Sum)]
    pub gauge_mode: GaugeMode,

    /// Label name removed from pushed series before aggregation (repeatable,
    /// or comma-separated).
    #[arg(long = "drop-label", env = "PAG_DROP_LABEL", value_delimiter = ',')]
    pub drop_labels: Vec<String>,

    /// OTLP resource attribute given to every point of the resource as a
    /// label (repeatable, or comma-separated), as Prometheus'
    /// `promote_resource_attributes`. None by default: attributes that
    /// name one producer would keep producers' sums apart.
    #[arg(
        long = "otlp-promote-resource-attribute",
        env = "PAG_OTLP_PROMOTE_RESOURCE_ATTRIBUTES",
        value_delimiter = ','
    )]
    pub otlp_promote: Vec<String>,

    /// Path prefix the gateway is served under (behind an ingress), as the
    /// Pushgateway's: `/<prefix>/metrics`, `/<prefix>/` (the status page)...
    /// Requests without it are served too. Default: the path of
    /// `--web.external-url`.
    #[arg(long = "web.route-prefix", env = "PAG_WEB_ROUTE_PREFIX")]
    pub web_route_prefix: Option<String>,

    /// The URL the gateway is reached at from outside (behind a proxy);
    /// its path is the default `--web.route-prefix`.
    #[arg(long = "web.external-url", env = "PAG_WEB_EXTERNAL_URL")]
    pub web_external_url: Option<String>,

    /// Keep `push_time_seconds` and `push_failure_time_seconds` gauges per
    /// grouping key in the aggregate, as the Pushgateway does.
    #[arg(long, env = "PAG_PUSH_TIME_METRICS")]
    pub push_time_metrics: bool,

    /// `user=password` pairs (or `user=$2y$...` bcrypt hashes) required for
    /// push, delete and admin over HTTP and gRPC (repeatable, or comma-separated).
    #[arg(
        long,
        env = "PAG_AUTH_USERS",
        alias = "AuthUsers",
        value_delimiter = ','
    )]
    pub auth_users: Vec<String>,

    /// Requests handled at once; more are refused at once with 503 / UNAVAILABLE.
    #[arg(long, env = "PAG_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,

    /// Longest a request may take (e.g. 30s, 500ms, 2m); then 408 / DEADLINE_EXCEEDED.
    #[arg(long, env = "PAG_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// `user=password` pairs for admin calls (wipe, DELETE). When set, push
    /// credentials no longer open them.
    #[arg(long, env = "PAG_ADMIN_USERS", value_delimiter = ',')]
    pub admin_users: Vec<String>,

    /// Most labels on one series.
    #[arg(long, env = "PAG_MAX_LABELS", default_value_t = 64)]
    pub max_labels: usize,

    /// Longest label name or metric name, in bytes.
    #[arg(long, env = "PAG_MAX_NAME_LENGTH", default_value_t = 256)]
    pub max_name_length: usize,

    /// Longest label value, in bytes.
    #[arg(long, env = "PAG_MAX_LABEL_VALUE_LENGTH", default_value_t = 4096)]
    pub max_label_value_length: usize,

    /// Most series in one push (one gRPC message).
    #[arg(long, env = "PAG_MAX_SERIES_PER_PUSH", default_value_t = 200_000)]
    pub max_series_per_push: usize,

    /// Drop series not pushed to for this long (e.g. 10m); off when unset.
    #[arg(long, env = "PAG_SERIES_TTL", value_parser = parse_duration)]
    pub series_ttl: Option<Duration>,

    /// Start times of counters, histograms and summaries (OpenMetrics
    /// `_created`, protobuf `created_timestamp`): `always` gives each the
    /// earliest its senders gave, else the time the gateway made it;
    /// `given` only the senders' own (Prometheus before 2.50, and later
    /// ones without `created-timestamp-zero-ingestion`, store each
    /// OpenMetrics `_created` as a series of its own).
    #[arg(long, env = "PAG_START_TIMES", value_enum, default_value_t = StartTimes::Always)]
    pub start_times: StartTimes,

    /// How long a push's `Idempotency-Key` is remembered after it was
    /// applied: a request with it within this time applies nothing. 0
    /// turns keys off (they are then ignored).
    #[arg(long, env = "PAG_IDEMPOTENCY_WINDOW", default_value = "10m", value_parser = parse_duration)]
    pub idempotency_window: Duration,

    /// Aggregation rules (YAML): per metric, how pushes add up (sum,
    /// total for cumulative senders, last/max/min), which labels the
    /// output keeps, and a TTL. Re-read on SIGHUP and when it changes.
    #[arg(long, env = "PAG_RULES")]
    pub rules: Option<PathBuf>,

    /// How often the rules file is checked for changes.
    #[arg(long, env = "PAG_RULES_CHECK_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub rules_check_interval: Duration,

    /// Remote-write the aggregate to this receiver every
    /// --remote-write-interval (repeatable; comma-separated in the env).
    #[arg(
        long = "remote-write-url",
        env = "PAG_REMOTE_WRITE_URL",
        value_delimiter = ','
    )]
    pub remote_write_urls: Vec<String>,

    /// Remote-write targets with headers, credentials or TLS (YAML).
    #[arg(long, env = "PAG_REMOTE_WRITE_CONFIG")]
    pub remote_write_config: Option<PathBuf>,

    /// How often the aggregate is remote-written.
    #[arg(long, env = "PAG_REMOTE_WRITE_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub remote_write_interval: Duration,

    /// Most samples in one remote-write request.
    #[arg(
        long,
        env = "PAG_REMOTE_WRITE_MAX_SAMPLES_PER_SEND",
        default_value_t = 5000
    )]
    pub remote_write_max_samples_per_send: usize,

    /// The label remote-written series carry to tell replicas apart
    /// (empty: none). Pushes may not carry it while remote-write is on.
    #[arg(long, env = "PAG_REPLICA_LABEL", default_value = "gateway_replica")]
    pub replica_label: String,

    /// This replica's value of --replica-label (default: the host name,
    /// which is the pod's name in Kubernetes).
    #[arg(long, env = "PAG_REPLICA")]
    pub replica: Option<String>,

    /// Snapshot file of the aggregate: restored at start, written every
    /// --persistence-interval and at shutdown.
    #[arg(long, env = "PAG_PERSISTENCE_FILE")]
    pub persistence_file: Option<PathBuf>,

    /// How often the snapshot is written.
    #[arg(long, env = "PAG_PERSISTENCE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub persistence_interval: Duration,

    /// Start empty when the snapshot file is corrupt (default: refuse to start).
    #[arg(long, env = "PAG_PERSISTENCE_DISCARD_CORRUPT")]
    pub persistence_discard_corrupt: bool,

    /// PEM certificate chain: serve TLS (HTTP/1.1, HTTP/2 and gRPC) on every listener.
    #[arg(long, env = "PAG_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "PAG_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA bundle: require client certificates signed by it (mTLS).
    #[arg(long, env = "PAG_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Longest a client may take to send request headers (slowloris guard).
    #[arg(long, env = "PAG_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// On SIGTERM, how long in-flight requests may take to finish.
    #[arg(long, env = "PAG_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log format.
    #[arg(long, env = "PAG_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}
