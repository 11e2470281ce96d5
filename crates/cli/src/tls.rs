//! The TLS flags (docs/operations.md, "TLS"): `--tls-cert`/`--tls-key` of the servers (`tiffin
//! up`, `tiffin api`, `tiffin market verifier`) and `--ca-file` of every client.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use tiffin_tls::ServerTls;

#[derive(Args, Clone, Debug, Default)]
pub struct ServerTlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first); needs
    /// --tls-key. Reloaded on SIGHUP and when the file changes, without dropping connections.
    /// Default: plain HTTP.
    #[arg(long, env = "TIFFIN_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert; reloaded with it.
    #[arg(long, env = "TIFFIN_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

impl ServerTlsArgs {
    /// The server's TLS, when both files are given (coded errors otherwise).
    pub fn load(&self) -> Result<Option<ServerTls>> {
        Ok(tiffin_tls::tls_pair(self.tls_cert.as_deref(), self.tls_key.as_deref())?)
    }
}

#[derive(Args, Clone, Debug, Default)]
pub struct CaArgs {
    /// The CA certificate(s) (PEM) that signed the servers' TLS certificates: `https://`
    /// URLs are then trusted only when this CA signed them. Default: the system's roots.
    #[arg(long, env = "TIFFIN_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

impl CaArgs {
    /// Lets `bonsai-sdk`'s own HTTP client, which cannot be handed a CA, trust `--ca-file` too:
    /// its root store reads `SSL_CERT_FILE` (besides the built-in roots). The file is checked
    /// first. Call before any thread starts (it sets the environment).
    pub fn trust_for_bonsai_sdk(&self) -> Result<()> {
        let Some(ca) = &self.ca_file else { return Ok(()) };
        tiffin_tls::ca_roots(ca)?;
        // SAFETY: called from `run` of a subcommand before its runtime starts: the process
        // has one thread, so nothing reads the environment meanwhile.
        unsafe { std::env::set_var("SSL_CERT_FILE", ca) };
        Ok(())
    }

    pub fn path(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }
}

/// `err` with the TLS code first when a server's certificate was refused somewhere in its
/// chain (`TIFFIN-TLS-005`), so every client says so the same way.
pub fn explain(err: anyhow::Error) -> anyhow::Error {
    let refused = err.chain().find_map(tiffin_tls::untrusted_certificate);
    match refused {
        Some(tls) => err.context(tls.to_string()),
        None => err,
    }
}
