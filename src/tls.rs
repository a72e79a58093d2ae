//! TLS for every listener (contract §1): rustls with the ring provider, ALPN
//! `h2` then `http/1.1` (so gRPC and HTTP/2 work over TLS), client
//! certificates required when `--tls-client-ca` is given. The configuration
//! is re-read on SIGHUP and when a file's modification time changes; a
//! failed reload keeps the previous one and says why in the log.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

/// The PEM files TLS is served from (re-read on SIGHUP or change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
    /// CA bundle for client certificates (mTLS), if required.
    pub client_ca: Option<PathBuf>,
}

/// How often the files' modification times are checked.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// The live TLS configuration of the gateway.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<TlsAcceptor>,
    stamps: Mutex<Vec<Option<SystemTime>>>,
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The PEM certificates of a file (at least one).
pub(crate) fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile_certs(&mut BufReader::new(file))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    Ok(certs)
}

fn rustls_pemfile_certs(
    r: &mut dyn std::io::BufRead,
) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_reader_iter(r)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))
}

/// The PEM private key of a file.
pub(crate) fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("{}: no usable private key: {e}", path.display()))
}

fn build(files: &TlsFiles) -> Result<ServerConfig, String> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs(&files.cert)?, key(&files.key)?)
        .map_err(|e| format!("{} / {}: {e}", files.cert.display(), files.key.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn stamps(files: &TlsFiles) -> Vec<Option<SystemTime>> {
    [
        Some(&files.cert),
        Some(&files.key),
        files.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    .collect()
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl Tls {
    /// Loads the files; an error names the file.
    pub fn load(files: &TlsFiles) -> Result<Arc<Tls>, String> {
        let config = build(files)?;
        Ok(Arc::new(Tls {
            files: files.clone(),
            current: RwLock::new(TlsAcceptor::from(Arc::new(config))),
            stamps: Mutex::new(stamps(files)),
        }))
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current.read().clone()
    }

    /// Re-reads the files; on error the old configuration stays.
    pub fn reload(&self) -> Result<(), String> {
        let config = build(&self.files)?;
        *self.current.write() = TlsAcceptor::from(Arc::new(config));
        *self.stamps.lock() = stamps(&self.files);
        Ok(())
    }

    fn changed(&self) -> bool {
        *self.stamps.lock() != stamps(&self.files)
    }

    /// Reloads on SIGHUP and on file changes until `stop` fires.
    pub fn watch(self: Arc<Tls>, mut stop: tokio::sync::watch::Receiver<()>) {
        tokio::spawn(async move {
            let mut hangups = crate::hangup::Hangups::new();
            let mut tick = tokio::time::interval(WATCH_EVERY);
            loop {
                let why = tokio::select! {
                    _ = stop.changed() => return,
                    _ = hangups.next() => "SIGHUP",
                    _ = tick.tick() => {
                        if !self.changed() { continue; }
                        "file change"
                    }
                };
                match self.reload() {
                    Ok(()) => tracing::info!("TLS certificates reloaded ({why})"),
                    Err(e) => {
                        // Keep serving with the old files; do not retry
                        // until they change again.
                        *self.stamps.lock() = stamps(&self.files);
                        tracing::error!(
                            "TLS reload failed ({why}), keeping the previous certificates: {e}"
                        )
                    }
                }
            }
        });
    }
}
