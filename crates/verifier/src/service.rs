//! The HTTP face of the verifier: the broker (or a requestor) posts a receipt, the service
//! verifies it and answers with the seal the market accepts.
//!
//! - `GET  /v1/info`: the attestor address and the set-builder image id.
//! - `POST /v1/attest/{image_id}?prover=0x…`, body = the receipt (bincode, as the Bonsai API
//!   serves it): `{image_id, journal, claim_digest, prover, seal}` (hex) for
//!   `ProofMarket.fulfill` sent by `prover` (the seal verifies for no other account).
//! - `POST /v1/attest-root?prover=0x…`, body = a set-builder receipt: `{root, claim_digest,
//!   prover, seal}` for `ProofMarket.submitRoot` sent by `prover`.
//!
//! Errors are `{"code": "TIFFIN-VERIFIER-0xx", "message": ...}`. Memory, CPU and sockets are
//! bounded by configuration ([`ServiceConfig`]): an optional bearer token is checked first; then
//! a request takes one of `max_concurrent` slots (or waits at most `queue_wait` in a queue of
//! `max_queue`, else 503 `TIFFIN-VERIFIER-009`) before a byte of its body is read; bodies over
//! `max_receipt_bytes` are refused while they stream in and must arrive within `body_timeout`;
//! verification runs on a blocking thread holding the slot. Connections must send their headers
//! within `header_read_timeout`, and at most `max_connections` are open. The service is meant to
//! listen on loopback or a private network, in front of the broker only.

use crate::attest::Verifier;
use crate::error::VerifierError;
use crate::secret::BearerToken;
use alloy::primitives::Address;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tiffin_zkvm::ImageId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits of one verifier service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub max_receipt_bytes: usize,
    /// Requests that read a body and verify it at once; each holds its slot from before the
    /// first body byte is read until its verification ends.
    pub max_concurrent: usize,
    /// Requests that may wait for a slot; one more is answered 503 at once.
    pub max_queue: usize,
    /// How long a queued request waits for a slot before it is answered 503.
    pub queue_wait: Duration,
    pub body_timeout: Duration,
    /// A connection must send its request headers within this.
    pub header_read_timeout: Duration,
    /// Connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// When set, `/v1/attest*` needs `Authorization: Bearer TOKEN` (`/v1/info` stays open).
    pub token: Option<BearerToken>,
    /// When set, HTTPS with this (reloadable) certificate; plain HTTP otherwise.
    pub tls: Option<tiffin_tls::ServerTls>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            max_receipt_bytes: 64 << 20,
            max_concurrent: 2,
            max_queue: 8,
            queue_wait: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 256,
            token: None,
            tls: None,
        }
    }
}

struct Shared {
    verifier: Verifier,
    config: ServiceConfig,
    slots: Arc<Semaphore>,
    queue: Semaphore,
}

impl Shared {
    /// Refuses a request without the configured token, before anything else is done for it.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), VerifierError> {
        let Some(token) = &self.config.token else { return Ok(()) };
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if token.admits(given) { Ok(()) } else { Err(VerifierError::Unauthorized) }
    }

    /// A verification slot: at once if one is free, else after a bounded wait in a bounded
    /// queue; `Busy` otherwise. Taken before the body is read, so bodies in memory are bounded
    /// by `max_concurrent` too.
    async fn admit(&self) -> Result<OwnedSemaphorePermit, VerifierError> {
        if let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(slot);
        }
        let wait = self.config.queue_wait;
        let _place = self.queue.try_acquire().map_err(|_| VerifierError::Busy(wait))?;
        match tokio::time::timeout(wait, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            Ok(Err(_)) => Err(VerifierError::Unavailable),
            Err(_) => Err(VerifierError::Busy(wait)),
        }
    }

    /// Takes a slot, reads the body and runs `work` on it on a blocking thread; the slot is
    /// held until `work` ends, even if the client goes away meanwhile.
    async fn verify<T: Send + 'static>(
        self: &Arc<Self>,
        body: Body,
        work: impl FnOnce(&Verifier, &[u8]) -> Result<T, VerifierError> + Send + 'static,
    ) -> Result<T, VerifierError> {
        let slot = self.admit().await?;
        let bytes = self.read(body).await?;
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work(&shared.verifier, &bytes)
        })
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
    let slots = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
    let queue = Semaphore::new(config.max_queue);
    let shared = Arc::new(Shared { verifier, config, slots, queue });
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/attest/{image_id}", post(attest))
        .route("/v1/attest-root", post(attest_root))
        .with_state(shared)
}

/// Serves `router` on `listener` until `shutdown` completes, with the connection limits of
/// `config` (header-read timeout, connection cap), over TLS when `config.tls` is set.
pub async fn serve(
    listener: tokio::net::TcpListener,
    verifier: Verifier,
    config: ServiceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let limits = tiffin_tls::ServeLimits {
        header_read_timeout: config.header_read_timeout,
        max_connections: Some(config.max_connections),
    };
    let tls = config.tls.as_ref().map(tiffin_tls::ServerTls::acceptor);
    let app = router(verifier, config);
    tiffin_tls::serve(listener, app, limits, tls, stopped).await
}

/// `?prover=0x…`: the account the seal is made out to.
#[derive(Deserialize)]
struct ProverQuery {
    prover: Option<String>,
}

impl ProverQuery {
    fn address(&self) -> Result<Address, VerifierError> {
        let text =
            self.prover.as_deref().ok_or_else(|| VerifierError::BadProver("missing".into()))?;
        text.trim().parse().map_err(|e| VerifierError::BadProver(format!("{text:?}: {e}")))
    }
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
    Query(query): Query<ProverQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        shared.authorize(&headers)?;
        let image: ImageId = image_id
            .parse()
            .map_err(|e: tiffin_zkvm::ZkvmError| VerifierError::BadImageId(e.to_string()))?;
        let prover = query.address()?;
        shared.verify(body, move |v, bytes| v.attest_receipt(bytes, image, prover)).await
    }
    .await;
    respond(result.map(|a| {
        json!({
            "image_id": hex_of(a.image_id.as_slice()),
            "journal": hex_of(&a.journal),
            "claim_digest": hex_of(a.claim_digest.as_slice()),
            "prover": a.prover.to_string(),
            "seal": hex_of(&a.seal),
        })
    }))
}

async fn attest_root(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<ProverQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        shared.authorize(&headers)?;
        let prover = query.address()?;
        shared.verify(body, move |v, bytes| v.attest_root(bytes, prover)).await
    }
    .await;
    respond(result.map(|a| {
        json!({
            "root": hex_of(a.root.as_slice()),
            "claim_digest": hex_of(a.claim_digest.as_slice()),
            "prover": a.prover.to_string(),
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
            if e.status() >= 500 && e.status() != 503 {
                tracing::error!(code = e.code(), "{e}");
            } else {
                tracing::info!(code = e.code(), "refused: {e}");
            }
            let status =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = Json(json!({ "code": e.code(), "message": e.to_string() }));
            if status == StatusCode::SERVICE_UNAVAILABLE {
                return (status, [(header::RETRY_AFTER, "1")], body).into_response();
            }
            (status, body).into_response()
        }
    }
}
