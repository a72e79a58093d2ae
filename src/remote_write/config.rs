//! Remote-write targets: `--remote-write-url` (repeatable) for plain
//! ones, `--remote-write-config` (YAML) for targets with headers,
//! credentials or TLS.
//!
//! ```yaml
//! targets:
//!   - url: https://mimir.example/api/v1/push
//!     name: mimir                # the `target` label of the self-metrics
//!     protocol: "2.0"            # default "1.0"
//!     headers: {X-Scope-OrgID: team-a}
//!     basic_auth: {username: gw, password_file: /secrets/password}
//!     # or: bearer_token_file: /secrets/token
//!     tls: {ca_file: /certs/ca.pem, cert_file: /certs/gw.pem, key_file: /certs/gw.key}
//!     timeout: 10s
//! ```
//!
//! Everything is read and checked at start: a wrong file stops the start
//! with a one-line reason, as a wrong flag does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Which remote-write message a target is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    /// `prometheus.WriteRequest` (remote-write 1.0).
    #[serde(rename = "1.0")]
    V1,
    /// `io.prometheus.write.v2.Request` (remote-write 2.0); falls back to
    /// 1.0 when the receiver does not confirm it.
    #[serde(rename = "2.0")]
    V2,
}

/// How a target is authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    // Never print credentials, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// The TLS files of a target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetTls {
    /// PEM CA bundle the receiver's certificate must chain to (default:
    /// the system's roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain (mTLS).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// One receiver the aggregate is remote-written to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The `target` label of its self-metrics: given, or the URL without
    /// credentials and query.
    pub name: String,
    /// Where requests are posted.
    pub url: hyper::Uri,
    /// The message sent first.
    pub protocol: Protocol,
    /// Extra headers (a tenant, as `X-Scope-OrgID`), checked valid.
    pub headers: Vec<(String, String)>,
    /// Credentials.
    pub auth: Option<Auth>,
    /// TLS files.
    pub tls: TargetTls,
    /// Longest one request may take.
    pub timeout: Duration,
}

/// The remote-write output's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The receivers.
    pub targets: Vec<Target>,
    /// How often a snapshot is sent (`--remote-write-interval`).
    pub interval: Duration,
    /// Most samples in one request (`--remote-write-max-samples-per-send`).
    pub max_samples_per_send: usize,
    /// The label telling replicas apart and this replica's value of it
    /// (`--replica-label`, `--replica`); `None` when the label is off.
    pub replica: Option<(std::sync::Arc<str>, String)>,
}

/// Labels the HA de-duplication of Mimir, Cortex and Thanos keys on: a
/// receiver keeps one replica's samples under them and drops the others',
/// which for summed counts loses the other replicas' counts.
const DEDUP_LABELS: [&str; 4] = ["__replica__", "replica", "prometheus_replica", "cluster"];

/// Checks `--replica-label`: a label name that no receiver de-duplicates
/// on.
pub fn check_replica_label(name: &str) -> Result<(), String> {
    if !crate::model::labels::is_label_name(name) || crate::model::labels::is_reserved_label(name) {
        return Err(format!(
            "--replica-label: {name:?} is not a label name a series may carry"
        ));
    }
    if DEDUP_LABELS.contains(&name) {
        return Err(format!(
            "--replica-label: {name:?} is a label HA de-duplication keys on (Mimir, Cortex, Thanos keep one replica's samples and drop the others' counts); use another, such as gateway_replica"
        ));
    }
    Ok(())
}

/// This machine's host name (a pod's name in Kubernetes), for `--replica`.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    targets: Vec<RawTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    url: String,
    name: Option<String>,
    protocol: Option<Protocol>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    basic_auth: Option<RawBasicAuth>,
    bearer_token: Option<String>,
    bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    tls: TargetTls,
    timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: String,
    password: Option<String>,
    password_file: Option<PathBuf>,
}

/// Longest a request may take by default: within one 15 s interval, with
/// room for a retry.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers the protocol sets itself.
const OWN_HEADERS: [&str; 7] = [
    "content-type",
    "content-encoding",
    "content-length",
    "host",
    "user-agent",
    "x-prometheus-remote-write-version",
    "authorization",
];

/// The targets of `--remote-write-url` and `--remote-write-config`, checked.
pub fn targets(urls: &[String], file: Option<&Path>) -> Result<Vec<Target>, String> {
    let mut targets = Vec::new();
    for url in urls.iter().filter(|u| !u.is_empty()) {
        targets.push(target(
            RawTarget {
                url: url.clone(),
                name: None,
                protocol: None,
                headers: Default::default(),
                basic_auth: None,
                bearer_token: None,
                bearer_token_file: None,
                tls: TargetTls::default(),
                timeout: None,
            },
            "--remote-write-url",
        )?);
    }
    if let Some(path) = file {
        let at = format!("--remote-write-config {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| format!("{at}: {e}"))?;
        let raw: RawFile = serde_saphyr::from_str(&text)
            .map_err(|e| format!("{at}: {}", e.to_string().replace('\n', " ")))?;
        for (i, t) in raw.targets.into_iter().enumerate() {
            targets.push(target(t, &format!("{at}, target {}", i + 1))?);
        }
    }
    let mut names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "remote-write target {:?} is given twice (give each a distinct name)",
            w[0]
        ));
    }
    Ok(targets)
}

fn target(raw: RawTarget, at: &str) -> Result<Target, String> {
    let url: hyper::Uri = raw.url.parse().map_err(|e| {
        let shown = crate::error::redacted_url(&raw.url);
        format!("{at}: url {shown:?}: {e}")
    })?;
    let (Some(scheme @ ("http" | "https")), Some(authority)) = (url.scheme_str(), url.authority())
    else {
        return Err(format!("{at}: url must be http:// or https:// with a host"));
    };
    if authority.as_str().contains('@') {
        return Err(format!(
            "{at}: url carries credentials; give them as basic_auth instead"
        ));
    }
    let name = match raw.name {
        Some(n) if !n.is_empty() => n,
        Some(_) => return Err(format!("{at}: name is empty")),
        None => format!("{scheme}://{authority}{}", url.path()),
    };
    let mut headers = Vec::new();
    for (k, v) in raw.headers {
        if OWN_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{at}: header {k} is set by the gateway (use basic_auth or bearer_token for credentials)"
            ));
        }
        hyper::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("{at}: {k:?} is not a header name"))?;
        hyper::header::HeaderValue::from_str(&v)
            .map_err(|_| format!("{at}: header {k} has a value not allowed in a header"))?;
        headers.push((k, v));
    }
    let read = |what: &str, path: &Path| -> Result<String, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{at}: {what} {}: {e}", path.display()))?;
        Ok(text.trim_end_matches(['\n', '\r']).to_string())
    };
    let bearer = match (raw.bearer_token, raw.bearer_token_file) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{at}: give bearer_token or bearer_token_file, not both"
            ));
        }
        (Some(t), None) => Some(t),
        (None, Some(f)) => Some(read("bearer_token_file", &f)?),
        (None, None) => None,
    };
    let basic = match raw.basic_auth {
        Some(b) => {
            let password = match (b.password, b.password_file) {
                (Some(_), Some(_)) => {
                    return Err(format!("{at}: give password or password_file, not both"));
                }
                (Some(p), None) => p,
                (None, Some(f)) => read("password_file", &f)?,
                (None, None) => String::new(),
            };
            Some(Auth::Basic {
                username: b.username,
                password,
            })
        }
        None => None,
    };
    let auth = match (basic, bearer) {
        (Some(_), Some(_)) => {
            return Err(format!("{at}: give basic_auth or a bearer token, not both"));
        }
        (b, t) => b.or(t.map(Auth::Bearer)),
    };
    if raw.tls.cert_file.is_some() != raw.tls.key_file.is_some() {
        return Err(format!("{at}: tls needs cert_file and key_file together"));
    }
    let timeout = match raw.timeout {
        Some(t) => crate::units::parse_duration(&t).map_err(|e| format!("{at}: timeout: {e}"))?,
        None => DEFAULT_TIMEOUT,
    };
    if timeout.is_zero() {
        return Err(format!("{at}: timeout must be above 0"));
    }
    Ok(Target {
        name,
        url,
        protocol: raw.protocol.unwrap_or(Protocol::V1),
        headers,
        auth,
        tls: raw.tls,
        timeout,
    })
}
