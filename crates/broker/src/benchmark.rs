//! `tiffin broker benchmark`: proves market requests on the cluster, one after the other, and
//! measures the cluster's proving speed in kHz (thousands of cycles per second) — the figure
//! `peak_prove_khz` wants.

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use tiffin_market::ProofRequest;

use crate::chain::{Chain, MarketEvent};
use crate::cluster::{Cluster, ReceiptKind, SessionEnd};
use crate::error::{BrokerError, Result};
use crate::fetch::Fetcher;

/// One request proven.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: U256,
    pub cycles: u64,
    pub seconds: f64,
}

impl Run {
    pub fn khz(&self) -> f64 {
        self.cycles as f64 / self.seconds.max(1e-3) / 1000.0
    }
}

/// The requests submitted on-chain with these ids (read from the market's events).
pub async fn find_requests(chain: &Chain, ids: &[U256], chunk: u64) -> Result<Vec<ProofRequest>> {
    let head = chain.head().await?;
    let events = chain.events(0, head, chunk).await?;
    ids.iter()
        .map(|id| {
            events
                .iter()
                .find_map(|e| match e {
                    MarketEvent::Submitted { request } if request.id == *id => {
                        Some((**request).clone())
                    }
                    _ => None,
                })
                .ok_or_else(|| {
                    BrokerError::Chain(format!("no request {id:#x} was submitted on-chain"))
                })
        })
        .collect()
}

/// Proves `request` on `cluster` and times it.
pub async fn prove(
    cluster: &Cluster,
    fetcher: &Fetcher,
    request: &ProofRequest,
    kind: ReceiptKind,
) -> Result<Run> {
    let image = hex::encode(request.requirements.imageId);
    if !cluster.has_image(&image).await? {
        cluster.upload_image(&image, fetcher.program(&image, &request.imageUrl).await?).await?;
    }
    let input = cluster.upload_input(fetcher.input(&request.input).await?).await?;
    let started = Instant::now();
    let session = cluster.start(&image, &input, &[], false, None, kind).await?;
    match cluster.wait(&session, Duration::from_millis(250), 5).await? {
        SessionEnd::Succeeded { cycles } => {
            Ok(Run { id: request.id, cycles, seconds: started.elapsed().as_secs_f64() })
        }
        SessionEnd::Failed { status, error } => Err(BrokerError::Proving(format!(
            "{:#x}: session {session} ended {status}: {error}",
            request.id
        ))),
    }
}

/// The speed over all runs: total cycles over total time.
pub fn overall_khz(runs: &[Run]) -> f64 {
    let cycles: u64 = runs.iter().map(|r| r.cycles).sum();
    let seconds: f64 = runs.iter().map(|r| r.seconds).sum();
    cycles as f64 / seconds.max(1e-3) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_is_total_cycles_over_total_time() {
        let runs = [
            Run { id: U256::from(1), cycles: 1_000_000, seconds: 10.0 },
            Run { id: U256::from(2), cycles: 3_000_000, seconds: 10.0 },
        ];
        assert_eq!(runs[0].khz(), 100.0);
        assert_eq!(overall_khz(&runs), 200.0);
        assert_eq!(overall_khz(&[]), 0.0);
    }
}
