//! Flags (SPEC §1): raw clap [`Args`], each also read from `PAG_<FLAG>`, and
//! the validated [`Config`] the rest of the gateway uses. The Go gateway's
//! flag names are accepted as aliases so its scripts and Helm values work.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::aggregate::GaugeMode;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

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
    #[arg(long, env = "PAG_LIFECYCLE_LISTEN", alias = "lifecycleListen")]
    pub lifecycle_listen: Option<String>,

    /// `Access-Control-Allow-Origin` for push and scrape (`*` for any origin).
    #[arg(long, env = "PAG_CORS", default_value = "*")]
    pub cors: String,

    /// Largest push body, after decompression too (e.g. 16MiB, 512KiB, 1000000).
    #[arg(long, env = "PAG_MAX_BODY_BYTES", default_value = "16MiB", value_parser = parse_size)]
    pub max_body_bytes: usize,

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

    /// Log format.
    #[arg(long, env = "PAG_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A user's password as configured.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Compared in constant time.
    Plain(String),
    /// A bcrypt hash (`$2a$`, `$2b$`, `$2y$`).
    Bcrypt(String),
}

impl std::fmt::Debug for Secret {
    // Never print credentials, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Plain(***)"),
            Secret::Bcrypt(_) => f.write_str("Bcrypt(***)"),
        }
    }
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
    /// `--cors`.
    pub cors: String,
    /// `--max-body-bytes`.
    pub max_body_bytes: usize,
    /// `--max-series`.
    pub max_series: usize,
    /// `--gauge-mode`.
    pub gauge_mode: GaugeMode,
    /// `--drop-label`, validated.
    pub drop_labels: Vec<String>,
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
        let mut auth_users = Vec::new();
        for pair in a.auth_users.iter().filter(|p| !p.is_empty()) {
            let (user, pass) = pair
                .split_once('=')
                .ok_or_else(|| format!("--auth-users: {:?} is not user=password", redact(pair)))?;
            if user.is_empty() || pass.is_empty() || user.contains(':') {
                return Err(format!(
                    "--auth-users: {:?} is not user=password",
                    redact(pair)
                ));
            }
            let secret = if ["$2a$", "$2b$", "$2y$"].iter().any(|p| pass.starts_with(p)) {
                Secret::Bcrypt(pass.to_string())
            } else {
                Secret::Plain(pass.to_string())
            };
            auth_users.push((user.to_string(), secret));
        }
        if a.max_in_flight == 0 {
            return Err("--max-in-flight must be above 0".into());
        }
        if a.max_body_bytes == 0 {
            return Err("--max-body-bytes must be above 0".into());
        }
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
            max_in_flight: a.max_in_flight,
            request_timeout: a.request_timeout,
            cors: a.cors,
            max_body_bytes: a.max_body_bytes,
            max_series: a.max_series,
            gauge_mode: a.gauge_mode,
            drop_labels: a.drop_labels,
            log_format: a.log_format,
        })
    }
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

/// Parses a duration: a number with `ms`, `s`, `m` or `h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: give a unit (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Parses a byte size: a number, optionally with KiB, MiB, GiB (or KB, MB,
/// GB as powers of 1000).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 16MiB"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
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
