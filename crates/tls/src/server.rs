//! The server side: a certificate that reloads without a restart. The resolver hands each new
//! handshake the certificate of the moment (an `Arc` swapped under a lock), so a reload never
//! touches connections already open.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::TlsError;
use crate::client::read_certificates;

/// How often the certificate and key files are checked for changes.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// The pair from `--tls-cert` / `--tls-key`: both or neither.
pub fn tls_pair(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<ServerTls>, TlsError> {
    match (cert, key) {
        (Some(cert), Some(key)) => ServerTls::load(cert, key).map(Some),
        (None, None) => Ok(None),
        _ => Err(TlsError::Pair),
    }
}

/// The files' modification times and sizes: a change of either means "reload".
type Stamp = Option<(SystemTime, u64, SystemTime, u64)>;

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let meta =
        |p: &Path| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
    let (c, k) = (meta(cert)?, meta(key)?);
    Some((c.0, c.1, k.0, k.1))
}

#[derive(Debug)]
struct Resolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files as last loaded (or last tried).
    seen: Mutex<Stamp>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// Reads and checks a certificate chain and its key.
fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = read_certificates("certificate file", cert)?;
    let pem = std::fs::read(key).map_err(|e| TlsError::read("key file", key, e))?;
    let bad_key = |reason: String| TlsError::Key { path: key.display().to_string(), reason };
    // Never the key's bytes in an error: only what kind of problem it is.
    let der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|_| bad_key("no PEM private key (PKCS#8, PKCS#1 or SEC1) in it".into()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|_| bad_key("a private key of a type rustls cannot sign with".into()))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|_| {
        bad_key(format!("not the private key of the certificate in {}", cert.display()))
    })?;
    Ok(Arc::new(certified))
}

/// The certificate an HTTPS server presents, reloadable; cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    resolver: Arc<Resolver>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("cert", &self.resolver.cert_path).finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads `cert` (PEM chain, leaf first) and `key` (PEM private key); refuses a key that is
    /// not the certificate's.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let seen = stamp(cert, key);
        let resolver = Arc::new(Resolver {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            current: RwLock::new(load_pair(cert, key)?),
            seen: Mutex::new(seen),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { resolver, acceptor: TlsAcceptor::from(Arc::new(config)) })
    }

    /// Accepts TLS on accepted TCP connections.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Reads the files again; on an error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let r = &self.resolver;
        *r.seen.lock().unwrap_or_else(|e| e.into_inner()) = stamp(&r.cert_path, &r.key_path);
        let fresh = load_pair(&r.cert_path, &r.key_path)?;
        *r.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Reloads when the files changed since the last (tried) load; whether it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let r = &self.resolver;
        let now = stamp(&r.cert_path, &r.key_path);
        if now.is_none() || *r.seen.lock().unwrap_or_else(|e| e.into_inner()) == now {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// The SHA-less identity of the certificate in use: its DER bytes (tests compare them).
    pub fn current_certificate(&self) -> Vec<u8> {
        let current = self.resolver.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        current.cert.first().map(|c| c.to_vec()).unwrap_or_default()
    }

    /// Reloads on SIGHUP and when the files change (checked every `poll`), logging the
    /// outcome, until the task is aborted.
    pub fn spawn_reloader(&self, poll: Duration) -> std::io::Result<JoinHandle<()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        let tls = self.clone();
        Ok(tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let outcome = tokio::select! {
                    _ = hup.recv() => tls.reload().map(|()| true),
                    _ = tick.tick() => tls.reload_if_changed(),
                };
                let cert = tls.resolver.cert_path.display().to_string();
                match outcome {
                    Ok(true) => tracing::info!(%cert, "TLS certificate reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(%cert, error = %e, "TLS certificate not reloaded; \
                                             the previous one stays in use"),
                }
            }
        }))
    }
}
