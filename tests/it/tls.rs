//! TLS on every listener: HTTPS pushes and scrapes, gRPC over TLS (HTTP/2
//! by ALPN), client certificates (mTLS), and a reload when the files change.
//! Certificates are made by the test with rcgen.

use std::sync::Arc;
use std::time::Duration;

use prom_aggregation_gateway::Config;
use prom_aggregation_gateway::config::TlsFiles;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::TempDir as Dir;
use crate::support::{Gateway, counter, eventually, request};

/// A CA made for one test, and leaf certificates it signs.
pub struct Pki {
    pub ca_pem: String,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca,
        }
    }

    /// A leaf certificate and key (PEM) for these names.
    pub fn leaf(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write_server_files(dir: &Dir, pki: &Pki, client_ca: Option<&Pki>) -> TlsFiles {
    let (cert, key) = pki.leaf(&["localhost", "127.0.0.1"]);
    let files = TlsFiles {
        cert: dir.path.join("server.pem"),
        key: dir.path.join("server.key"),
        client_ca: client_ca.map(|_| dir.path.join("client-ca.pem")),
    };
    std::fs::write(&files.cert, cert).unwrap();
    std::fs::write(&files.key, key).unwrap();
    if let (Some(path), Some(ca)) = (&files.client_ca, client_ca) {
        std::fs::write(path, &ca.ca_pem).unwrap();
    }
    files
}

fn client_config(
    ca_pem: &str,
    identity: Option<(String, String)>,
    alpn: &[u8],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

/// One HTTP/1.1 request over TLS; the status and body, or why it failed.
async fn https(
    addr: &str,
    ca_pem: &str,
    identity: Option<(String, String)>,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(client_config(ca_pem, identity, b"http/1.1")));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A gateway serving TLS with these files; its address, and the gateway
/// (stopped when dropped).
async fn start(tls: TlsFiles) -> (String, Gateway) {
    let gw = Gateway::start_with(Config {
        tls: Some(tls),
        ..Config::default()
    })
    .await;
    (gw.addr.to_string(), gw)
}

#[tokio::test]
async fn https_and_grpc_over_tls() {
    let dir = Dir::new("tls");
    let pki = Pki::new();
    let (addr, _stop) = start(write_server_files(&dir, &pki, None)).await;
    let (status, body) = https(
        &addr,
        &pki.ca_pem,
        None,
        "POST",
        "/metrics/job/tls",
        "# TYPE c counter\nc 2\n",
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    // gRPC over TLS: tonic negotiates h2 by ALPN.
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = prom_aggregation_gateway_client::pb::aggregation_gateway::v1::aggregation_gateway_client::AggregationGatewayClient::new(channel);
    client
        .push(request(vec![counter("c", &[], 3.0)], &[("job", "tls")]))
        .await
        .unwrap();
    let (status, body) = https(&addr, &pki.ca_pem, None, "GET", "/metrics", "")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        body,
        "# HELP c c help\n# TYPE c counter\nc{job=\"tls\"} 5\n"
    );
    // Plain HTTP on the TLS port gets nowhere.
    let plain = reqwest::get(format!("http://{addr}/metrics")).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

#[tokio::test]
async fn client_certificates_are_required_with_a_client_ca() {
    let dir = Dir::new("mtls");
    let server_pki = Pki::new();
    let client_pki = Pki::new();
    let (addr, _stop) = start(write_server_files(&dir, &server_pki, Some(&client_pki))).await;
    let refused = https(&addr, &server_pki.ca_pem, None, "GET", "/-/healthy", "").await;
    assert!(refused.is_err(), "no client certificate, yet: {refused:?}");
    let stranger = Pki::new().leaf(&["client"]);
    let refused = https(
        &addr,
        &server_pki.ca_pem,
        Some(stranger),
        "GET",
        "/-/healthy",
        "",
    )
    .await;
    assert!(
        refused.is_err(),
        "unknown client certificate, yet: {refused:?}"
    );
    let good = client_pki.leaf(&["client"]);
    let (status, _) = https(
        &addr,
        &server_pki.ca_pem,
        Some(good),
        "GET",
        "/-/healthy",
        "",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn certificates_reload_when_the_files_change() {
    let dir = Dir::new("reload");
    let old = Pki::new();
    let files = write_server_files(&dir, &old, None);
    let (addr, _stop) = start(files.clone()).await;
    assert_eq!(
        https(&addr, &old.ca_pem, None, "GET", "/-/healthy", "")
            .await
            .unwrap()
            .0,
        200
    );
    // Replace the files with a certificate from another CA (written to a
    // temp name and renamed, as cert managers do).
    let new = Pki::new();
    let (cert, key) = new.leaf(&["localhost"]);
    std::fs::write(dir.path.join("k.tmp"), key).unwrap();
    std::fs::rename(dir.path.join("k.tmp"), &files.key).unwrap();
    std::fs::write(dir.path.join("c.tmp"), cert).unwrap();
    std::fs::rename(dir.path.join("c.tmp"), &files.cert).unwrap();
    let (addr, ca) = (&addr, &new.ca_pem);
    eventually(
        "the new certificate served",
        Duration::from_secs(30),
        || async move {
            matches!(
                https(addr, ca, None, "GET", "/-/healthy", "").await,
                Ok((200, _))
            )
            .then_some(())
        },
    )
    .await;
    assert!(
        https(addr, &old.ca_pem, None, "GET", "/-/healthy", "")
            .await
            .is_err()
    );
}
