//! `tiffin market verifier`: runs the verifier service (crate `tiffin-verifier`).

use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context as _, Result};
use clap::Args;
use tiffin_market::Attestor;
use tiffin_verifier::{ServiceConfig, Verifier};
use tiffin_zkvm::ImageId;

#[derive(Args)]
pub struct VerifierArgs {
    /// Address to listen on (port 0: any free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// The attestor key (hex) the market's AttestationVerifier trusts. Keep it only here.
    #[arg(long, env = "TIFFIN_ATTESTOR_KEY", hide_env_values = true)]
    attestor_key: String,
    /// The set-builder image whose journals are batch roots (default: the bundled guest).
    #[arg(long)]
    set_builder_image_id: Option<String>,
    /// Receipts above this many bytes are refused.
    #[arg(long, default_value_t = 64 << 20)]
    max_receipt_bytes: usize,
    /// Verifications running at once (each takes a core for a moment).
    #[arg(long, default_value_t = 2)]
    max_concurrent: usize,
}

pub async fn run(args: VerifierArgs) -> Result<()> {
    let key: PrivateKeySigner =
        args.attestor_key.trim().parse().context("TIFFIN_ATTESTOR_KEY is not a 32-byte hex key")?;
    let set_builder = match &args.set_builder_image_id {
        Some(hex) => hex.trim().trim_start_matches("0x").parse::<ImageId>()?,
        None => ImageId::from_words(tiffin_guests::SET_BUILDER.image_id),
    };
    let verifier = Verifier::new(Attestor::new(key), set_builder);
    let config = ServiceConfig {
        max_receipt_bytes: args.max_receipt_bytes,
        max_concurrent: args.max_concurrent,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("attestor: {}", verifier.attestor_address());
    println!("set builder: {set_builder}");
    println!("verifier listening on http://{}", listener.local_addr()?);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tiffin_verifier::serve(listener, verifier, config, shutdown).await?;
    Ok(())
}
