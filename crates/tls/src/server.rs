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

    /// The certificate in use (DER), e.g. to tell which one a reload left in place.
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

/// A connection's byte stream: plain TCP, or TLS over it.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// An accepted connection as the server reads it: `stream` itself without `tls`, else after a
/// TLS handshake that must end within `timeout` (a client that stalls it holds no task for
/// longer than one that stalls its headers). `None` when the handshake fails or times out.
pub async fn accept(
    stream: tokio::net::TcpStream,
    tls: Option<&TlsAcceptor>,
    timeout: Duration,
) -> Option<Box<dyn Io>> {
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else { return Some(Box::new(stream)) };
    match tokio::time::timeout(timeout, tls.accept(stream)).await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestCa;

    #[test]
    fn a_pair_loads_only_when_both_files_hold_a_certificate_and_its_key() {
        let (ca, other) = (TestCa::new("a"), TestCa::new("b"));
        let good = ca.issue_localhost("good");
        let foreign = other.issue_localhost("foreign");
        let empty = ca.dir().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let missing = ca.dir().join("missing.pem");
        /// Name, --tls-cert, --tls-key, the code expected (none: loads).
        type Case<'a> = (&'a str, Option<&'a Path>, Option<&'a Path>, Option<&'a str>);
        let cases: [Case; 7] = [
            ("both", Some(&good.cert), Some(&good.key), None),
            ("neither: plain HTTP", None, None, None),
            ("cert only", Some(&good.cert), None, Some("TIFFIN-TLS-004")),
            ("key only", None, Some(&good.key), Some("TIFFIN-TLS-004")),
            ("missing cert", Some(&missing), Some(&good.key), Some("TIFFIN-TLS-001")),
            ("no certificate", Some(&empty), Some(&good.key), Some("TIFFIN-TLS-002")),
            ("another's key", Some(&good.cert), Some(&foreign.key), Some("TIFFIN-TLS-003")),
        ];
        for (name, cert, key, want) in cases {
            match (tls_pair(cert, key), want) {
                (Ok(_), None) => {}
                (Err(e), Some(code)) => {
                    assert_eq!(e.code(), code, "{name}: {e}");
                    assert!(e.to_string().starts_with(code), "{name}: {e}");
                    let key_text = std::fs::read_to_string(&foreign.key).unwrap();
                    let body = key_text.lines().nth(1).unwrap();
                    assert!(!e.to_string().contains(body), "{name}: no key bytes in errors");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        let empty_key = ca.dir().join("empty-key.pem");
        std::fs::write(&empty_key, "").unwrap();
        let err = ServerTls::load(&good.cert, &empty_key).unwrap_err();
        assert_eq!(err.code(), "TIFFIN-TLS-003", "{err}");
    }

    #[test]
    fn a_failed_reload_keeps_the_certificate_in_use() {
        let ca = TestCa::new("a");
        let files = ca.issue_localhost("srv");
        let tls = ServerTls::load(&files.cert, &files.key).unwrap();
        let before = tls.current_certificate();
        assert!(!tls.reload_if_changed().unwrap(), "nothing changed");
        std::fs::write(&files.cert, "half-written").unwrap();
        assert_eq!(tls.reload_if_changed().unwrap_err().code(), "TIFFIN-TLS-002");
        assert_eq!(tls.current_certificate(), before, "the old certificate stays");
        let renewed = ca.issue_localhost("renewed");
        std::fs::copy(&renewed.cert, &files.cert).unwrap();
        std::fs::copy(&renewed.key, &files.key).unwrap();
        assert!(tls.reload_if_changed().unwrap());
        assert_ne!(tls.current_certificate(), before, "the new certificate is in use");
    }

    #[tokio::test]
    async fn sighup_reloads_the_certificate() {
        let ca = TestCa::new("a");
        let files = ca.issue_localhost("srv");
        let tls = ServerTls::load(&files.cert, &files.key).unwrap();
        let before = tls.current_certificate();
        // A poll too slow to matter: only the signal can reload within the test.
        let reloader = tls.spawn_reloader(Duration::from_secs(3600)).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await; // its first, immediate check
        let renewed = ca.issue_localhost("renewed");
        std::fs::copy(&renewed.cert, &files.cert).unwrap();
        std::fs::copy(&renewed.key, &files.key).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(tls.current_certificate(), before, "nothing reloads it yet");
        let pid = std::process::id().to_string();
        let sent = std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tls.current_certificate() == before {
            assert!(std::time::Instant::now() < deadline, "SIGHUP did not reload");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        reloader.abort();
    }
}
