//! `tiffin market verifier`: runs the verifier service (crate `tiffin-verifier`).

use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context as _, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use tiffin_market::Attestor;
use tiffin_verifier::{BearerToken, ServiceConfig, Verifier, read_secret_file};
use tiffin_zkvm::ImageId;

#[derive(Args)]
pub struct VerifierArgs {
    /// Address to listen on (port 0: any free port; the URL is printed). Keep it on loopback or
    /// a private network.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// A file holding the attestor key (hex) the market's AttestationVerifier trusts; only its
    /// owner may read it (mode 0600). Keep the key only here. Takes precedence over
    /// --attestor-key.
    #[arg(long, env = "TIFFIN_ATTESTOR_KEY_FILE")]
    attestor_key_file: Option<PathBuf>,
    /// The attestor key itself (fallback: visible to local users in the process list and
    /// environment; prefer --attestor-key-file).
    #[arg(long, env = "TIFFIN_ATTESTOR_KEY", hide_env_values = true)]
    attestor_key: Option<String>,
    /// A file (mode 0600) holding a token: clients of /v1/attest* must then send
    /// `Authorization: Bearer TOKEN`.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The set-builder image whose journals are batch roots (default: the bundled guest).
    #[arg(long)]
    set_builder_image_id: Option<String>,
    /// Receipts above this many bytes are refused.
    #[arg(long, default_value_t = 64 << 20)]
    max_receipt_bytes: usize,
    /// Verifications running at once (each takes a core for a moment, and holds its body).
    #[arg(long, default_value_t = 2)]
    max_concurrent: usize,
    /// Requests that may wait for a verification slot; more are answered 503 at once.
    #[arg(long, default_value_t = 8)]
    max_queue: usize,
    /// Seconds a queued request waits for a slot before it is answered 503.
    #[arg(long, default_value_t = 30)]
    queue_wait_secs: u64,
    /// Seconds a receipt's body may take to arrive.
    #[arg(long, default_value_t = 60)]
    body_timeout_secs: u64,
    /// Seconds a connection may take to send its request headers.
    #[arg(long, default_value_t = 10)]
    header_timeout_secs: u64,
    /// Connections open at once; more are closed as they arrive.
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
    #[command(flatten)]
    tls: crate::tls::ServerTlsArgs,
}

pub async fn run(args: VerifierArgs) -> Result<()> {
    let key = attestor_key(&args)?;
    let key: PrivateKeySigner = key.parse().context("the attestor key is not a 32-byte hex key")?;
    let set_builder = match &args.set_builder_image_id {
        Some(hex) => hex.trim().trim_start_matches("0x").parse::<ImageId>()?,
        None => ImageId::from_words(tiffin_guests::SET_BUILDER.image_id),
    };
    let token = args.token_file.as_deref().map(read_secret_file).transpose()?;
    let verifier = Verifier::new(Attestor::new(key), set_builder);
    let config = ServiceConfig {
        max_receipt_bytes: args.max_receipt_bytes,
        max_concurrent: args.max_concurrent,
        max_queue: args.max_queue,
        queue_wait: Duration::from_secs(args.queue_wait_secs),
        body_timeout: Duration::from_secs(args.body_timeout_secs),
        header_read_timeout: Duration::from_secs(args.header_timeout_secs),
        max_connections: args.max_connections,
        token: token.map(BearerToken::new),
        tls: args.tls.load()?,
    };
    if std::env::var_os("RISC0_DEV_MODE").is_some() {
        tracing::warn!("RISC0_DEV_MODE is set: ignored, fake receipts are refused all the same");
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("attestor: {}", verifier.attestor_address());
    println!("set builder: {set_builder}");
    println!("token: {}", if config.token.is_some() { "required" } else { "none" });
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    println!("verifier listening on {scheme}://{}", listener.local_addr()?);
    let _reloader = match &config.tls {
        Some(tls) => Some(tls.spawn_reloader(tiffin_tls::RELOAD_POLL)?),
        None => None,
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tiffin_verifier::serve(listener, verifier, config, shutdown).await?;
    Ok(())
}

/// The key from --attestor-key-file, else from --attestor-key / TIFFIN_ATTESTOR_KEY.
fn attestor_key(args: &VerifierArgs) -> Result<String> {
    match (&args.attestor_key_file, &args.attestor_key) {
        (Some(path), _) => Ok(read_secret_file(path)?),
        (None, Some(key)) => Ok(key.trim().to_string()),
        (None, None) => anyhow::bail!(
            "no attestor key: pass --attestor-key-file FILE (mode 0600), or set TIFFIN_ATTESTOR_KEY"
        ),
    }
}
