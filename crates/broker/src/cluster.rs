//! The cluster as the broker sees it: the Bonsai REST API (`tiffin up`, `tiffin api` or any
//! Bonsai-compatible endpoint), through the same `bonsai-sdk` client Bonsai users have. Only
//! session creation is sent by hand, to carry Tiffin's `receipt_kind` extension.

use std::path::Path;
use std::time::Duration;

use bonsai_sdk::non_blocking::{Client, SessionId};
use serde_json::json;

use crate::error::{BrokerError, Result, describe};

/// The RISC Zero version the cluster is asked to prove with.
pub const ZKVM_VERSION: &str = "3.1.0-rc.1";

/// How a proving session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    Succinct,
    Composite,
}

impl ReceiptKind {
    fn as_str(self) -> &'static str {
        match self {
            ReceiptKind::Succinct => "succinct",
            ReceiptKind::Composite => "composite",
        }
    }
}

/// A finished session.
#[derive(Debug, Clone)]
pub enum SessionEnd {
    Succeeded { cycles: u64 },
    Failed { status: String, error: String },
}

/// A session's status right now.
#[derive(Debug, Clone)]
pub enum SessionState {
    Running,
    Ended(SessionEnd),
}

/// What a session runs.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    pub image_id: &'a str,
    pub input: &'a str,
    pub assumptions: &'a [String],
    pub execute_only: bool,
    /// In cycles.
    pub cycle_limit: Option<u64>,
    pub kind: ReceiptKind,
}

#[derive(Clone)]
pub struct Cluster {
    client: Client,
    http: reqwest::Client,
    url: String,
    api_key: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("url", &self.url).finish_non_exhaustive()
    }
}

fn cluster_err(what: &str) -> impl FnOnce(bonsai_sdk::SdkErr) -> BrokerError + '_ {
    move |e| BrokerError::Cluster(format!("{what}: {}", describe(&e)))
}

impl Cluster {
    pub fn new(url: &str, api_key: &str) -> Result<Self> {
        Self::with_ca(url, api_key, None)
    }

    /// A cluster served over HTTPS with a certificate `ca_file` signed. The hand-made requests
    /// trust exactly that CA; `bonsai-sdk`'s client cannot be given one and trusts the system's
    /// roots and `SSL_CERT_FILE`, which `tiffin broker --ca-file` points at it.
    pub fn with_ca(url: &str, api_key: &str, ca_file: Option<&Path>) -> Result<Self> {
        let url = url.trim_end_matches('/').to_string();
        let client = Client::from_parts(url.clone(), api_key.to_string(), ZKVM_VERSION)
            .map_err(cluster_err("building the API client"))?;
        let http = tiffin_tls::reqwest_client(ca_file)
            .map_err(|e| BrokerError::Cluster(e.to_string()))?
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| BrokerError::Cluster(e.to_string()))?;
        Ok(Self { client, http, url, api_key: api_key.to_string() })
    }

    /// True when the API answers its version route.
    pub async fn healthy(&self) -> bool {
        self.client.version().await.is_ok()
    }

    /// Uploads `program` under `image_id` (hex) unless the cluster has it; the cluster checks
    /// that the program's image id is `image_id`.
    pub async fn upload_image(&self, image_id: &str, program: Vec<u8>) -> Result<()> {
        self.client
            .upload_img(image_id, program)
            .await
            .map_err(cluster_err("uploading the image"))?;
        Ok(())
    }

    pub async fn has_image(&self, image_id: &str) -> Result<bool> {
        self.client.has_img(image_id).await.map_err(cluster_err("looking up the image"))
    }

    pub async fn upload_input(&self, input: Vec<u8>) -> Result<String> {
        self.client.upload_input(input).await.map_err(cluster_err("uploading the input"))
    }

    /// Deletes an input this key uploaded.
    pub async fn delete_input(&self, input_id: &str) -> Result<()> {
        self.client.input_delete(input_id).await.map_err(cluster_err("deleting an input"))
    }

    pub async fn upload_receipt(&self, receipt: Vec<u8>) -> Result<String> {
        self.client.upload_receipt(receipt).await.map_err(cluster_err("uploading a receipt"))
    }

    /// Starts a session; `cycle_limit` in cycles (the API takes millions, rounded up).
    pub async fn start(
        &self,
        image_id: &str,
        input: &str,
        assumptions: &[String],
        execute_only: bool,
        cycle_limit: Option<u64>,
        kind: ReceiptKind,
    ) -> Result<String> {
        let session = NewSession { image_id, input, assumptions, execute_only, cycle_limit, kind };
        self.start_due(session, None).await
    }

    /// Starts a session due by `deadline` (unix seconds; Tiffin's extension: the cluster claims
    /// its tasks before the tenant's later-due work).
    pub async fn start_due(&self, s: NewSession<'_>, deadline: Option<u64>) -> Result<String> {
        let limit_m = s.cycle_limit.map(|c| c.div_ceil(1_000_000).max(1));
        let mut body = json!({
            "img": s.image_id,
            "input": s.input,
            "assumptions": s.assumptions,
            "execute_only": s.execute_only,
            "exec_cycle_limit": limit_m,
            "receipt_kind": s.kind.as_str(),
        });
        if let Some(deadline) = deadline {
            body["deadline"] = json!(deadline);
        }
        let res = self
            .http
            .post(format!("{}/sessions/create", self.url))
            .header("x-api-key", &self.api_key)
            .header("x-risc0-version", ZKVM_VERSION)
            .json(&body)
            .send()
            .await
            .map_err(|e| BrokerError::Cluster(format!("creating a session: {}", describe(&e))))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(BrokerError::Cluster(format!("creating a session: {status}: {text}")));
        }
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| BrokerError::Cluster(format!("creating a session: {e}: {text}")))?;
        value["uuid"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| BrokerError::Cluster(format!("creating a session: no uuid in {text}")))
    }

    pub async fn state(&self, session: &str) -> Result<SessionState> {
        let s = SessionId::new(session.to_string())
            .status(&self.client)
            .await
            .map_err(cluster_err("reading a session's status"))?;
        Ok(match s.status.as_str() {
            "RUNNING" => SessionState::Running,
            "SUCCEEDED" => SessionState::Ended(SessionEnd::Succeeded {
                cycles: s.stats.map(|st| st.total_cycles).unwrap_or(0),
            }),
            _ => SessionState::Ended(SessionEnd::Failed {
                status: s.status,
                error: s.error_msg.unwrap_or_default(),
            }),
        })
    }

    /// Polls `session` every `poll` until it ends; `retries` failed polls in a row give up.
    pub async fn wait(&self, session: &str, poll: Duration, retries: u32) -> Result<SessionEnd> {
        let mut failures = 0;
        loop {
            match self.state(session).await {
                Ok(SessionState::Ended(end)) => return Ok(end),
                Ok(SessionState::Running) => failures = 0,
                Err(e) if failures >= retries => return Err(e),
                Err(e) => {
                    failures += 1;
                    tracing::warn!(session, "status poll failed ({failures}/{retries}): {e}");
                }
            }
            tokio::time::sleep(poll).await;
        }
    }

    pub async fn journal(&self, session: &str) -> Result<Vec<u8>> {
        SessionId::new(session.to_string())
            .exec_only_journal(&self.client)
            .await
            .map_err(cluster_err("reading a preflight's journal"))
    }

    /// The session's receipt (bincode, as the API serves it).
    pub async fn receipt(&self, session: &str) -> Result<Vec<u8>> {
        self.client
            .receipt_download(&SessionId::new(session.to_string()))
            .await
            .map_err(cluster_err("downloading a receipt"))
    }

    pub async fn stop(&self, session: &str) -> Result<()> {
        SessionId::new(session.to_string())
            .stop(&self.client)
            .await
            .map_err(cluster_err("stopping a session"))
    }
}
