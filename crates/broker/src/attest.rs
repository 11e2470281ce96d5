//! The verifier service (`tiffin market verifier`) as the broker uses it: it verifies a receipt
//! and answers with the seal the market's verifier accepts. The broker never holds the
//! attestor key.

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes};
use serde_json::Value;

use crate::error::{BrokerError, Result};

/// A seal for `ProofMarket.fulfill`.
#[derive(Debug, Clone)]
pub struct SealedJournal {
    pub journal: Bytes,
    pub seal: Bytes,
}

/// A seal for `ProofMarket.submitRoot`.
#[derive(Debug, Clone)]
pub struct SealedRoot {
    pub root: B256,
    pub seal: Bytes,
}

#[derive(Clone)]
pub struct VerifierService {
    http: reqwest::Client,
    url: String,
    /// The bearer token the service asks for (`tiffin market verifier --token-file`).
    token: Option<String>,
}

impl std::fmt::Debug for VerifierService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("VerifierService").field("url", &self.url).finish_non_exhaustive()
    }
}

impl VerifierService {
    pub fn new(url: &str) -> Self {
        Self::with_ca(url, None).expect("a client without a CA file builds")
    }

    /// A service served over HTTPS with a certificate `ca_file` signed (trusted alone).
    pub fn with_ca(url: &str, ca_file: Option<&std::path::Path>) -> Result<Self> {
        let http = tiffin_tls::reqwest_client(ca_file)
            .map_err(|e| BrokerError::Verifier(e.to_string()))?
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| BrokerError::Verifier(e.to_string()))?;
        Ok(Self { http, url: url.trim_end_matches('/').to_string(), token: None })
    }

    /// Sends `token` as `Authorization: Bearer` with every request.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Seals `receipt` (bincode) of a run of `image_id`, for `prover` to submit (a seal is
    /// bound to the account that sends it).
    pub async fn attest(
        &self,
        image_id: B256,
        receipt: Vec<u8>,
        prover: Address,
    ) -> Result<SealedJournal> {
        let path = format!("/v1/attest/{}?prover={prover}", hex::encode(image_id));
        let body = self.post(&path, receipt).await?;
        Ok(SealedJournal {
            journal: field(&body, "journal")?.into(),
            seal: field(&body, "seal")?.into(),
        })
    }

    /// Seals a set-builder receipt's root, for `prover` to submit.
    pub async fn attest_root(&self, receipt: Vec<u8>, prover: Address) -> Result<SealedRoot> {
        let body = self.post(&format!("/v1/attest-root?prover={prover}"), receipt).await?;
        let root = field(&body, "root")?;
        if root.len() != 32 {
            return Err(BrokerError::Verifier(format!("a root of {} bytes", root.len())));
        }
        Ok(SealedRoot { root: B256::from_slice(&root), seal: field(&body, "seal")?.into() })
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> Result<Value> {
        let url = format!("{}{path}", self.url);
        let mut request = self.http.post(&url).body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let res = request
            .send()
            .await
            .map_err(|e| BrokerError::Verifier(format!("{url}: {}", crate::error::describe(&e))))?;
        let status = res.status();
        let body: Value =
            res.json().await.map_err(|e| BrokerError::Verifier(format!("{url}: {e}")))?;
        if !status.is_success() {
            return Err(BrokerError::Verifier(format!(
                "{} {}",
                body["code"].as_str().unwrap_or("?"),
                body["message"].as_str().unwrap_or("?")
            )));
        }
        Ok(body)
    }
}

fn field(body: &Value, key: &str) -> Result<Vec<u8>> {
    let text = body[key].as_str().unwrap_or_default();
    hex::decode(text.trim_start_matches("0x"))
        .map_err(|e| BrokerError::Verifier(format!("{key} is not hex: {e}")))
}
