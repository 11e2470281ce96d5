//! The proving speed in force ([`crate::speed`] decides; this reads and measures): the
//! cluster's capacity report is read every [`CLUSTER_EVERY`] (with `peak_prove_khz` unset and
//! a capacity key), the measured speed is refreshed from the database whenever a proof
//! finishes, and without any speed at start the broker proves one small calibration job on
//! the cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::context::{Broker, wall_clock};
use super::inputs::forget_input;
use crate::cluster::SessionEnd;
use crate::error::{BrokerError, Result};
use crate::params;
use crate::speed::{self, Source};

/// Proofs the measured speed averages over.
const SAMPLES: u32 = 20;
/// How often the cluster's capacity is read.
pub const CLUSTER_EVERY: Duration = Duration::from_secs(15);
/// The job size the cluster is asked about (its speed for a new job hardly depends on it).
const ASK_CYCLES: u64 = 1 << 24;

/// The cluster's, the measured and the calibrated speeds, as last read.
pub type Known = speed::Known;

/// The speed to plan with now (kHz) and where it came from.
pub fn current(b: &Broker) -> Option<(u64, Source)> {
    let known = *b.speeds.lock().expect("speed lock");
    speed::in_force(Known { configured: b.config().market.peak_prove_khz, ..known })
}

/// Reads the cluster's capacity report now and then, while `peak_prove_khz` is unset and the
/// broker has the cluster's capacity key. A failed read keeps the last speed a while: after
/// three in a row the broker falls back to its own measurements.
pub async fn watch_cluster(b: Arc<Broker>) -> BrokerError {
    let mut failures = 0u32;
    loop {
        if b.cluster.reads_capacity() && b.config().market.peak_prove_khz.is_none() {
            let read = b.cluster.capacity_khz(ASK_CYCLES).await;
            let cluster = match read {
                Ok(khz) => {
                    failures = 0;
                    khz
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!("reading the cluster's capacity ({failures}): {e}");
                    let last = b.speeds.lock().expect("speed lock").cluster;
                    last.filter(|_| failures < 3)
                }
            };
            set(&b, |k| k.cluster = cluster);
        }
        tokio::time::sleep(CLUSTER_EVERY).await;
    }
}

/// Changes the known speeds, logging a change of the speed in force.
fn set(b: &Broker, change: impl FnOnce(&mut Known)) {
    let before = current(b);
    change(&mut b.speeds.lock().expect("speed lock"));
    let after = current(b);
    if before != after
        && let Some((khz, source)) = after
    {
        tracing::info!(khz, source = source.as_str(), "proving speed");
    }
}

/// The speed to plan with now (kHz), if any.
pub fn khz(b: &Broker) -> Option<u64> {
    current(b).map(|(k, _)| k)
}

/// Re-reads the measured and calibrated speeds from the database.
pub async fn refresh(b: &Broker) -> Result<()> {
    let measured = speed::measured_khz(&b.db.proof_samples(SAMPLES).await?);
    let calibrated = b.db.calibration().await?;
    let cluster = match b.config().market.peak_prove_khz {
        None if b.cluster.reads_capacity() => {
            b.cluster.capacity_khz(ASK_CYCLES).await.ok().flatten()
        }
        _ => None,
    };
    set(b, |k| *k = Known { cluster: cluster.or(k.cluster), measured, calibrated, ..*k });
    Ok(())
}

/// At start: without any speed, proves one small calibration job (the bundled echo guest) on
/// the cluster, retrying until it succeeds; until then nothing is locked.
pub fn calibrate_if_needed(b: &Arc<Broker>) {
    if current(b).is_some() {
        return;
    }
    let b = b.clone();
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(1);
        loop {
            match calibrate(&b).await {
                Ok(khz) => {
                    tracing::info!(khz, "calibration proof done");
                    return;
                }
                Err(e) => tracing::warn!("calibration proof failed: {e}; retrying in {wait:?}"),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(60));
        }
    });
}

async fn calibrate(b: &Broker) -> Result<u64> {
    tracing::info!("no proving speed known (peak_prove_khz unset, no proofs yet): calibrating");
    let echo = &tiffin_guests::ECHO;
    let image = hex::encode(echo.image_id_bytes());
    if !b.cluster.has_image(&image).await? {
        b.cluster.upload_image(&image, echo.program.to_vec()).await?;
    }
    let input = b.cluster.upload_input(vec![0u8; 64]).await?;
    let cfg = b.config();
    let kind = params::receipt_kind(&cfg);
    let started = Instant::now();
    let session = b.cluster.start(&image, &input, &[], false, Some(1 << 22), kind).await?;
    let poll = Duration::from_millis(cfg.prover.status_poll_ms);
    let end = b.cluster.wait(&session, poll, cfg.prover.status_poll_retry_count).await;
    forget_input(b, Some(&input)).await;
    let millis = started.elapsed().as_millis().max(1) as u64;
    let cycles = match end? {
        SessionEnd::Succeeded { cycles } => cycles,
        SessionEnd::Failed { status, error } => {
            return Err(BrokerError::Proving(format!("calibration {session}: {status}: {error}")));
        }
    };
    let khz = speed::measured_khz(&[speed::Sample { cycles, millis }]).unwrap_or(1);
    b.db.set_calibration(khz, wall_clock()).await?;
    refresh(b).await?;
    Ok(khz)
}
