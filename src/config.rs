//! Flags (contract §1): raw clap [`Args`], each also read from `PAG_<FLAG>`, and
//! the validated [`Config`] the rest of the gateway uses. The Go gateway's
//! flag names are accepted as aliases so its scripts and Helm values work.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::aggregate::GaugeMode;
pub use crate::aggregate::StartTimes;
pub use crate::secret::Secret;
pub use crate::tls::TlsFiles;
pub use crate::trace::LogFormat;
pub use crate::units::{parse_duration, parse_size};

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

fn parse_users(flag: &str, pairs: &[String]) -> Result<Vec<(String, Secret)>, String> {
    let mut users = Vec::new();
    for pair in pairs.iter().filter(|p| !p.is_empty()) {
        let (user, pass) = pair
            .split_once('=')
            .ok_or_else(|| format!("{flag}: {:?} is not user=password", redact(pair)))?;
        if user.is_empty() || pass.is_empty() || user.contains(':') {
            return Err(format!("{flag}: {:?} is not user=password", redact(pair)));
        }
        let secret = if ["$2a$", "$2b$", "$2y$"].iter().any(|p| pass.starts_with(p)) {
            Secret::Bcrypt(pass.to_string())
        } else {
            Secret::Plain(pass.to_string())
        };
        users.push((user.to_string(), secret));
    }
    Ok(users)
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--listen`.
    pub listen: SocketAddr,
    /// `--lifecycle-listen`.
    pub lifecycle_listen: Option<SocketAddr>,
    /// `--grpc-listen`.
    pub grpc_listen: Option<SocketAddr>,
    /// `--auth-users`, parsed.
    pub auth_users: Vec<(String, Secret)>,
    /// `--max-in-flight`.
    pub max_in_flight: usize,
    /// `--request-timeout`.
    pub request_timeout: Duration,
    /// `--admin-users`, parsed.
    pub admin_users: Vec<(String, Secret)>,
    /// Per-series and per-push limits.
    pub limits: crate::model::Limits,
    /// `--series-ttl`.
    pub series_ttl: Option<Duration>,
    /// `--start-times`.
    pub start_times: StartTimes,
    /// `--idempotency-window`; `None`: keys are ignored.
    pub idempotency_window: Option<Duration>,
    /// `--rules`.
    pub rules_file: Option<PathBuf>,
    /// `--rules-check-interval`.
    pub rules_check_interval: Duration,
    /// The remote-write output (`--remote-write-url`,
    /// `--remote-write-config` and their flags), if any target is given.
    pub remote_write: Option<std::sync::Arc<crate::remote_write::config::Settings>>,
    /// `--persistence-file`.
    pub persistence_file: Option<PathBuf>,
    /// `--persistence-interval`.
    pub persistence_interval: Duration,
    /// `--persistence-discard-corrupt`.
    pub persistence_discard_corrupt: bool,
    /// What series ages, the expiry sweep and the snapshot interval are
    /// measured on: the system's clock (tests set a manual one).
    pub clock: crate::clock::Clock,
    /// TLS files, when TLS is on.
    pub tls: Option<TlsFiles>,
    /// `--header-read-timeout`.
    pub header_read_timeout: Duration,
    /// `--shutdown-timeout`.
    pub shutdown_timeout: Duration,
    /// `--cors`.
    pub cors: String,
    /// `--max-body-bytes`.
    pub max_body_bytes: usize,
    /// `--max-series`.
    pub max_series: usize,
    /// `--max-memory`, or its default.
    pub max_memory: usize,
    /// `--scrape-keep-bytes`.
    pub scrape_keep_bytes: usize,
    /// `--body-read-timeout`.
    pub body_read_timeout: Duration,
    /// `--idle-timeout`.
    pub idle_timeout: Duration,
    /// `--write-timeout`.
    pub write_timeout: Duration,
    /// `--max-connections`.
    pub max_connections: usize,
    /// `--gauge-mode`.
    pub gauge_mode: GaugeMode,
    /// `--drop-label`, validated.
    pub drop_labels: Vec<String>,
    /// `--otlp-promote-resource-attribute`.
    pub otlp_promote: Vec<String>,
    /// `--web.route-prefix` (or the path of `--web.external-url`),
    /// normalized: starts with `/`, no trailing `/`; `None` for none.
    pub route_prefix: Option<std::sync::Arc<str>>,
    /// `--web.external-url`: its origin is the status page's own.
    pub external_url: Option<String>,
    /// `--push-time-metrics`.
    pub push_time_metrics: bool,
    /// `--log-format`.
    pub log_format: LogFormat,
}

impl Default for Config {
    fn default() -> Config {
        Config::try_from(Args::parse_from(["prom-aggregation-gateway"]))
            .expect("the default flags are valid")
    }
}

impl TryFrom<Args> for Config {
    type Error = String;

    fn try_from(a: Args) -> Result<Config, String> {
        for l in &a.drop_labels {
            if !crate::model::labels::is_label_name(l) {
                return Err(format!("--drop-label: invalid label name {l:?}"));
            }
        }
        if a.otlp_promote.iter().any(|a| a.is_empty()) {
            return Err("--otlp-promote-resource-attribute: an empty attribute name".into());
        }
        let route_prefix = route_prefix(&a)?;
        let auth_users = parse_users("--auth-users", &a.auth_users)?;
        let admin_users = parse_users("--admin-users", &a.admin_users)?;
        if a.persistence_interval.is_zero() {
            return Err("--persistence-interval must be above 0".into());
        }
        if a.max_in_flight == 0 {
            return Err("--max-in-flight must be above 0".into());
        }
        if a.max_body_bytes == 0 {
            return Err("--max-body-bytes must be above 0".into());
        }
        for (flag, v) in [
            ("--max-connections", a.max_connections),
            ("--max-buckets", a.max_buckets),
            ("--max-native-buckets", a.max_native_buckets),
            ("--max-label-bytes", a.max_label_bytes),
        ] {
            if v == 0 {
                return Err(format!("{flag} must be above 0"));
            }
        }
        for (flag, d) in [
            ("--body-read-timeout", a.body_read_timeout),
            ("--idle-timeout", a.idle_timeout),
            ("--write-timeout", a.write_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("{flag} must be above 0"));
            }
        }
        let max_memory = a.max_memory.unwrap_or_else(crate::memory::default_limit);
        if max_memory < 1 << 20 {
            return Err("--max-memory must be at least 1MiB".into());
        }
        let remote_write = remote_write(&a)?;
        axum::http::HeaderValue::from_str(&a.cors)
            .map_err(|_| format!("--cors: {:?} is not a valid header value", a.cors))?;
        Ok(Config {
            listen: parse_addr(&a.listen).map_err(|e| format!("--listen: {e}"))?,
            lifecycle_listen: a
                .lifecycle_listen
                .as_deref()
                .map(parse_addr)
                .transpose()
                .map_err(|e| format!("--lifecycle-listen: {e}"))?,
            grpc_listen: a
                .grpc_listen
                .as_deref()
                .map(parse_addr)
                .transpose()
                .map_err(|e| format!("--grpc-listen: {e}"))?,
            auth_users,
            admin_users,
            limits: crate::model::Limits {
                max_labels: a.max_labels,
                max_name_length: a.max_name_length,
                max_label_value_length: a.max_label_value_length,
                max_series_per_push: a.max_series_per_push,
                max_label_bytes: a.max_label_bytes,
                max_native_buckets: a.max_native_buckets,
                max_buckets: a.max_buckets,
            },
            series_ttl: a.series_ttl.filter(|d| !d.is_zero()),
            idempotency_window: Some(a.idempotency_window).filter(|d| !d.is_zero()),
            start_times: a.start_times,
            rules_file: a.rules,
            remote_write,
            rules_check_interval: a.rules_check_interval.max(Duration::from_millis(100)),
            persistence_file: a.persistence_file,
            persistence_interval: a.persistence_interval,
            persistence_discard_corrupt: a.persistence_discard_corrupt,
            clock: crate::clock::Clock::system(),
            tls: match (a.tls_cert, a.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert,
                    key,
                    client_ca: a.tls_client_ca,
                }),
                _ => None,
            },
            header_read_timeout: a.header_read_timeout,
            shutdown_timeout: a.shutdown_timeout,
            max_in_flight: a.max_in_flight,
            request_timeout: a.request_timeout,
            cors: a.cors,
            max_body_bytes: a.max_body_bytes,
            max_series: a.max_series,
            max_memory,
            scrape_keep_bytes: a.scrape_keep_bytes,
            body_read_timeout: a.body_read_timeout,
            idle_timeout: a.idle_timeout,
            write_timeout: a.write_timeout,
            max_connections: a.max_connections,
            gauge_mode: a.gauge_mode,
            drop_labels: a.drop_labels,
            otlp_promote: a.otlp_promote,
            route_prefix,
            external_url: a.web_external_url,
            push_time_metrics: a.push_time_metrics,
            log_format: a.log_format,
        })
    }
}

/// The path prefix of `--web.route-prefix`, else of `--web.external-url`.
fn route_prefix(a: &Args) -> Result<Option<std::sync::Arc<str>>, String> {
    let prefix = match (&a.web_route_prefix, &a.web_external_url) {
        (Some(p), _) => p.clone(),
        (None, Some(url)) => {
            let shown = crate::error::redacted_url(url);
            let uri: axum::http::Uri = url
                .parse()
                .map_err(|e| format!("--web.external-url {shown:?}: {e}"))?;
            if uri.scheme().is_none() || uri.authority().is_none() {
                return Err(format!(
                    "--web.external-url {shown:?}: an absolute URL is needed (http://host/path)"
                ));
            }
            uri.path().to_string()
        }
        (None, None) => return Ok(None),
    };
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.contains(['?', '#', '%'])
        || trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "--web.route-prefix {prefix:?}: a path of plain segments is needed (/gateway)"
        ));
    }
    // Under a prefix, paths without it are served as they are: a prefix
    // that is one of the gateway's own paths would take those away.
    let first = trimmed.split('/').next().unwrap_or_default();
    if let Some(taken) = crate::routes::MAIN
        .iter()
        .find(|r| r.path.trim_start_matches('/').split('/').next() == Some(first))
    {
        return Err(format!(
            "--web.route-prefix {prefix:?}: /{first} is the gateway's own (as in {}); choose another prefix",
            taken.path
        ));
    }
    Ok(Some(format!("/{trimmed}").into()))
}

/// The remote-write settings of the flags, checked; `None` without targets.
fn remote_write(
    a: &Args,
) -> Result<Option<std::sync::Arc<crate::remote_write::config::Settings>>, String> {
    use crate::remote_write::config;
    let targets = config::targets(&a.remote_write_urls, a.remote_write_config.as_deref())?;
    if targets.is_empty() {
        return Ok(None);
    }
    if a.remote_write_interval < Duration::from_secs(1) {
        return Err("--remote-write-interval must be at least 1s".into());
    }
    if a.remote_write_max_samples_per_send == 0 {
        return Err("--remote-write-max-samples-per-send must be above 0".into());
    }
    let replica = if a.replica_label.is_empty() {
        None
    } else {
        config::check_replica_label(&a.replica_label)?;
        let value = match &a.replica {
            Some(v) if v.is_empty() => return Err("--replica is empty".into()),
            Some(v) => v.clone(),
            None => config::host_name(),
        };
        Some((a.replica_label.as_str().into(), value))
    };
    Ok(Some(std::sync::Arc::new(
        crate::remote_write::config::Settings {
            targets,
            interval: a.remote_write_interval,
            max_samples_per_send: a.remote_write_max_samples_per_send,
            replica,
        },
    )))
}

/// Parses `host:port`, `[v6]:port`, or Go's `:port` (all interfaces).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .map_err(|_| format!("{s:?} is not an address like 0.0.0.0:8080 or :8080"))
}

fn redact(pair: &str) -> String {
    match pair.split_once('=') {
        Some((user, _)) => format!("{user}=***"),
        None => "***".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_aliases() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.max_body_bytes, 16 << 20);
        let a = Args::parse_from(["pag", "--apiListen", ":9000", "--lifecycleListen", ":9001"]);
        let c = Config::try_from(a).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.lifecycle_listen.unwrap().port(), 9001);
        // The older weaveworks gateway's name for the same port.
        let a = Args::parse_from(["pag", "--listen", ":9000", "--metricsListen", ":9002"]);
        let c = Config::try_from(a).unwrap();
        assert_eq!(c.lifecycle_listen.unwrap().port(), 9002);
    }

    #[test]
    fn auth_users_and_durations() {
        let a = Args::parse_from([
            "pag",
            "--AuthUsers",
            "a=b,c=$2y$05$abc",
            "--request-timeout",
            "500ms",
        ]);
        let c = Config::try_from(a).unwrap();
        assert_eq!(c.auth_users[0], ("a".into(), Secret::Plain("b".into())));
        assert!(matches!(c.auth_users[1].1, Secret::Bcrypt(_)));
        assert_eq!(c.request_timeout, Duration::from_millis(500));
        let err =
            Config::try_from(Args::parse_from(["pag", "--auth-users", "nopass"])).unwrap_err();
        assert!(
            !err.contains("nopass=") && err.contains("user=password"),
            "{err}"
        );
        assert!(parse_duration("10").is_err());
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn drop_labels_split_and_validated() {
        let a = Args::parse_from(["pag", "--drop-label", "a,b", "--drop-label", "c"]);
        assert_eq!(Config::try_from(a).unwrap().drop_labels, ["a", "b", "c"]);
        let a = Args::parse_from(["pag", "--drop-label", "1x"]);
        assert!(Config::try_from(a).is_err());
    }
}
