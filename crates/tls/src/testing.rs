//! Test support (feature `testing`): certificate authorities made at test time (rcgen), and a
//! TLS terminator to put in front of a test server that speaks only plain TCP (s3s-fs).

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};

use crate::ServerTls;

/// A throwaway CA with its files in a temporary directory (removed on drop).
pub struct TestCa {
    dir: tempfile::TempDir,
    name: String,
    cert: Certificate,
    key: KeyPair,
}

/// A certificate issued by a [`TestCa`]: the PEM files of the certificate and its key (0600).
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn write(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
    f.write_all(text.as_bytes()).unwrap();
}

impl TestCa {
    /// A new CA named `name` (its certificate in `<dir>/<name>-ca.pem`).
    pub fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("tiffin-tls-").tempdir().expect("a temp dir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("Tiffin test CA {name}"));
        let key = KeyPair::generate().expect("a CA key");
        let cert = params.self_signed(&key).expect("a self-signed CA");
        write(&dir.path().join(format!("{name}-ca.pem")), &cert.pem());
        Self { dir, name: name.to_string(), cert, key }
    }

    /// The CA's certificate (PEM), for `--ca-file`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join(format!("{}-ca.pem", self.name))
    }

    /// The directory holding the CA's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A server certificate for `hosts` (names or IP addresses), as `<dir>/<file>.pem` and
    /// `<dir>/<file>-key.pem`.
    pub fn issue(&self, file: &str, hosts: &[&str]) -> Issued {
        let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("server params");
        params.distinguished_name.push(DnType::CommonName, hosts.first().copied().unwrap_or(file));
        let key = KeyPair::generate().expect("a server key");
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("a signed certificate");
        let issued = Issued {
            cert: self.dir.path().join(format!("{file}.pem")),
            key: self.dir.path().join(format!("{file}-key.pem")),
        };
        write(&issued.cert, &cert.pem());
        write(&issued.key, &key.serialize_pem());
        issued
    }

    /// [`issue`](Self::issue) for `localhost` and `127.0.0.1`.
    pub fn issue_localhost(&self, file: &str) -> Issued {
        self.issue(file, &["localhost", "127.0.0.1"])
    }
}

/// Serves TLS with `tls` on a free loopback port, passing the plain bytes on to `upstream`;
/// runs until the runtime ends. Returns the address to connect to.
pub async fn tls_terminator(tls: ServerTls, upstream: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = tls.acceptor();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    Ok(addr)
}
