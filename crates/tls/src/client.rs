//! The client side: trust exactly the CA of `--ca-file`, and recognise a refusal.

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::TlsError;

/// The certificates (PEM) of `path`, at least one.
pub(crate) fn read_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::read(what, path, e))?;
    let shown = || path.display().to_string();
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate { path: shown(), reason: format!("bad PEM: {e}") })?;
    if certs.is_empty() {
        let reason = "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".to_string();
        return Err(TlsError::Certificate { path: shown(), reason });
    }
    Ok(certs)
}

/// A root store holding the CA certificates of `ca_file` (PEM) and nothing else.
pub fn ca_roots(ca_file: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certificates("CA file", ca_file)? {
        roots.add(cert).map_err(|e| TlsError::Certificate {
            path: ca_file.display().to_string(),
            reason: format!("not a CA certificate rustls accepts: {e}"),
        })?;
    }
    Ok(roots)
}

/// A rustls client config trusting exactly `ca_file`'s CAs.
pub fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(ca_roots(ca_file)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A reqwest client builder for our HTTP links: with a CA file it trusts exactly that CA
/// (neither the system's nor the built-in roots); without one, the system roots.
pub fn reqwest_client(ca_file: Option<&Path>) -> Result<reqwest::ClientBuilder, TlsError> {
    let builder = reqwest::Client::builder();
    let Some(ca_file) = ca_file else { return Ok(builder) };
    let config = client_config(ca_file)?;
    Ok(builder.use_preconfigured_tls(rustls::ClientConfig::clone(&config)))
}

/// When `err` (or any error in its chain) is a refused server certificate, the coded error
/// that says so (`TIFFIN-TLS-005`); `None` otherwise. Libraries wrap rustls's error in their
/// own and in `std::io::Error`s, so the chain is searched, and their texts as a last resort.
pub fn untrusted_certificate(err: &(dyn StdError + 'static)) -> Option<TlsError> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(detail) = refused(e) {
            return Some(TlsError::Untrusted { detail });
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && let Some(detail) = refused(inner)
        {
            return Some(TlsError::Untrusted { detail });
        }
        next = e.source();
    }
    None
}

/// The reason when `e` is rustls's refusal of a certificate (or says so in its text).
fn refused(e: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(rustls::Error::InvalidCertificate(reason)) = e.downcast_ref::<rustls::Error>() {
        return Some(format!("{reason:?}"));
    }
    let text = e.to_string();
    const MARK: &str = "invalid peer certificate: ";
    text.find(MARK).map(|at| {
        let rest = &text[at + MARK.len()..];
        rest.split([' ', ',', ')', '"', ';']).next().unwrap_or(rest).to_string()
    })
}

/// Connects to `host:port` and makes a TLS handshake trusting exactly `ca_file`: the coded
/// refusal (`TIFFIN-TLS-005`) when the server's certificate is not trusted, at once — clients
/// that retry connection errors (object_store retries for two minutes) would hide it. A server
/// that cannot be reached passes: the client reports that itself, retrying as it should.
pub async fn probe(host: &str, port: u16, ca_file: &Path) -> Result<(), TlsError> {
    let config = client_config(ca_file)?;
    let Ok(name) = rustls::pki_types::ServerName::try_from(host.to_string()) else {
        return Ok(());
    };
    let connect = tokio::net::TcpStream::connect((host, port));
    let Ok(Ok(tcp)) = tokio::time::timeout(PROBE_TIMEOUT, connect).await else { return Ok(()) };
    let handshake = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
    match tokio::time::timeout(PROBE_TIMEOUT, handshake).await {
        Ok(Err(e)) => untrusted_certificate(&e).map_or(Ok(()), Err),
        _ => Ok(()),
    }
}

/// How long [`probe`] waits to connect, and then for the handshake.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
