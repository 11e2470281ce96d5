//! The HTTP face of the verifier: the broker (or a requestor) posts a receipt, the service
//! verifies it and answers with the seal the market accepts.
//!
//! - `GET  /v1/info`: the attestor address and the set-builder image id.
//! - `POST /v1/attest/{image_id}`, body = the receipt (bincode, as the Bonsai API serves it):
//!   `{image_id, journal, claim_digest, seal}` (hex) for `ProofMarket.fulfill`.
//! - `POST /v1/attest-root`, body = a set-builder receipt: `{root, claim_digest, seal}` for
//!   `ProofMarket.submitRoot`.
//!
//! Errors are `{"code": "TIFFIN-VERIFIER-0xx", "message": ...}`. Memory and CPU are bounded by
//! configuration: bodies over `max_receipt_bytes` are refused while they stream in, at most
//! `max_concurrent` verifications run at once (on blocking threads), and a body must arrive
//! within `body_timeout`.

use crate::attest::Verifier;
use crate::error::VerifierError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tiffin_zkvm::ImageId;
use tokio::sync::Semaphore;

/// Limits of one verifier service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub max_receipt_bytes: usize,
    pub max_concurrent: usize,
    pub body_timeout: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            max_receipt_bytes: 64 << 20,
            max_concurrent: 2,
            body_timeout: Duration::from_secs(60),
        }
    }
}

struct Shared {
    verifier: Verifier,
    config: ServiceConfig,
    slots: Semaphore,
}

impl Shared {
    /// Runs one verification on a blocking thread, at most `max_concurrent` at once.
    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Verifier) -> Result<T, VerifierError> + Send + 'static,
    ) -> Result<T, VerifierError> {
        let _slot = self.slots.acquire().await.map_err(|_| VerifierError::Unavailable)?;
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || work(&shared.verifier))
            .await
            .map_err(|_| VerifierError::Unavailable)?
    }

    async fn read(&self, body: Body) -> Result<axum::body::Bytes, VerifierError> {
        let limit = self.config.max_receipt_bytes;
        match tokio::time::timeout(self.config.body_timeout, axum::body::to_bytes(body, limit))
            .await
        {
            Err(_) => Err(VerifierError::BodyTimeout(self.config.body_timeout)),
            Ok(Err(_)) => Err(VerifierError::TooLarge { limit }),
            Ok(Ok(bytes)) => Ok(bytes),
        }
    }
}

/// The service's routes.
pub fn router(verifier: Verifier, config: ServiceConfig) -> Router {
    let slots = Semaphore::new(config.max_concurrent.max(1));
    let shared = Arc::new(Shared { verifier, config, slots });
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/attest/{image_id}", post(attest))
        .route("/v1/attest-root", post(attest_root))
        .with_state(shared)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    verifier: Verifier,
    config: ServiceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(verifier, config)).with_graceful_shutdown(shutdown).await
}

async fn info(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "attestor": shared.verifier.attestor_address().to_string(),
        "set_builder_image_id": shared.verifier.set_builder().to_hex(),
    }))
}

async fn attest(
    State(shared): State<Arc<Shared>>,
    Path(image_id): Path<String>,
    body: Body,
) -> Response {
    let result = async {
        let image: ImageId = image_id
            .parse()
            .map_err(|e: tiffin_zkvm::ZkvmError| VerifierError::BadImageId(e.to_string()))?;
        let bytes = shared.read(body).await?;
        shared.run(move |v| v.attest_receipt(&bytes, image)).await
    }
    .await;
    respond(result.map(|a| {
        json!({
            "image_id": hex_of(a.image_id.as_slice()),
            "journal": hex_of(&a.journal),
            "claim_digest": hex_of(a.claim_digest.as_slice()),
            "seal": hex_of(&a.seal),
        })
    }))
}

async fn attest_root(State(shared): State<Arc<Shared>>, body: Body) -> Response {
    let result = async {
        let bytes = shared.read(body).await?;
        shared.run(move |v| v.attest_root(&bytes)).await
    }
    .await;
    respond(result.map(|a| {
        json!({
            "root": hex_of(a.root.as_slice()),
            "claim_digest": hex_of(a.claim_digest.as_slice()),
            "seal": hex_of(&a.seal),
        })
    }))
}

fn hex_of(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn respond(result: Result<Value, VerifierError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(code = e.code(), "{e}");
            } else {
                tracing::info!(code = e.code(), "refused: {e}");
            }
            let status =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Json(json!({ "code": e.code(), "message": e.to_string() }))).into_response()
        }
    }
}
