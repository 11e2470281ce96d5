//! TLS for every link of a Tiffin cluster (docs/operations.md, "TLS"), with rustls and the `ring`
//! crypto provider (the stack reqwest already builds here; no aws-lc):
//!
//! - [`ServerTls`]: the certificate and key an HTTPS server (`tiffin up`, `tiffin api`,
//!   `tiffin market verifier`) presents, reloaded on SIGHUP or when the files change; open
//!   connections keep the certificate they started with, new handshakes get the new one.
//! - [`ca_roots`], [`reqwest_client`]: clients that trust exactly the CA of `--ca-file`.
//! - [`serve`]: the HTTP/1 connections of a listener, with a header-read timeout, an optional
//!   connection cap and graceful shutdown (the API's and the verifier's servers).
//! - [`untrusted_certificate`]: recognises, anywhere in an error's chain, a server certificate
//!   that no trusted CA signed, so every client reports it with one code (`TIFFIN-TLS-005`).
//!
//! | code           | meaning                                                                 |
//! |----------------|-------------------------------------------------------------------------|
//! | TIFFIN-TLS-001 | a certificate, key or CA file cannot be read                            |
//! | TIFFIN-TLS-002 | the file holds no PEM certificate, or a malformed one                   |
//! | TIFFIN-TLS-003 | the key file holds no usable private key, or not the certificate's key  |
//! | TIFFIN-TLS-004 | only one of --tls-cert and --tls-key was given                          |
//! | TIFFIN-TLS-005 | the server's certificate was refused: not signed by the CA of --ca-file |

mod client;
mod error;
mod http;
mod server;
#[cfg(test)]
mod server_tests;
#[cfg(feature = "testing")]
pub mod testing;

pub use client::{ca_roots, client_config, probe, reqwest_client, untrusted_certificate};
pub use error::TlsError;
pub use http::{ServeLimits, serve, stopped};
pub use server::{Io, RELOAD_POLL, ServerTls, accept, tls_pair};
pub use tokio_rustls::TlsAcceptor;

/// Installs ring as the process's rustls crypto provider (idempotent). Libraries that build
/// rustls configs with the process default (reqwest, redis) need one when both providers could
/// be compiled in; call it first thing in `main`.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The codes of this crate, for the docs check.
pub const CODES: [&str; 5] =
    ["TIFFIN-TLS-001", "TIFFIN-TLS-002", "TIFFIN-TLS-003", "TIFFIN-TLS-004", "TIFFIN-TLS-005"];

#[cfg(test)]
mod docs {
    #[test]
    fn operations_guide_lists_every_code() {
        let doc = include_str!("../../../docs/operations.md");
        for code in super::CODES {
            assert!(doc.contains(code), "docs/operations.md does not list {code}");
        }
    }
}
