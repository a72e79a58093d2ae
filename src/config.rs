//! Flags (contract §1): raw clap [`Args`], each also read from `PAG_<FLAG>`, and
//! the validated [`Config`] the rest of the gateway uses. The Go gateway's
//! flag names are accepted as aliases so its scripts and Helm values work.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::aggregate::GaugeMode;
pub use crate::aggregate::StartTimes;
pub use crate::secret::Secret;
pub use crate::tls::TlsFiles;
pub use crate::trace::LogFormat;
pub use crate::units::{parse_duration, parse_size};
pub use args::Args;
use clap::Parser;

mod args;

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
        check(&a)?;
        let route_prefix = route_prefix(&a)?;
        let auth_users = parse_users("--auth-users", &a.auth_users)?;
        let admin_users = parse_users("--admin-users", &a.admin_users)?;
        let max_memory = a.max_memory.unwrap_or_else(crate::memory::default_limit);
        if max_memory < 1 << 20 {
            return Err("--max-memory must be at least 1MiB".into());
        }
        let remote_write = remote_write(&a)?;
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

/// The flags' checks that need no parsing: each refusal names its flag.
fn check(a: &Args) -> Result<(), String> {
    for l in &a.drop_labels {
        if !crate::model::labels::is_label_name(l) {
            return Err(format!("--drop-label: invalid label name {l:?}"));
        }
    }
    if a.otlp_promote.iter().any(|a| a.is_empty()) {
        return Err("--otlp-promote-resource-attribute: an empty attribute name".into());
    }
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
    axum::http::HeaderValue::from_str(&a.cors)
        .map_err(|_| format!("--cors: {:?} is not a valid header value", a.cors))?;
    Ok(())
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
