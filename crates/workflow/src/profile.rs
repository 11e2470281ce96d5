//! What an agent says about itself in every presence report (`TaskDb::agent_seen`): its host,
//! version, cores, memory, GPU, and the settings that say how much it takes on. Operators see
//! it in `GET /admin/agents`; the API reads `heartbeat_secs` back to tell dead agents apart.
//!
//! Detection reads Linux's `/proc` and `/dev` once, at start; the parsers are pure and tested
//! here. A host without those files reports what it can (0 bytes of memory, no GPU).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An agent's description of itself, stored as its registry entry's `info`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentProfile {
    /// Host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `unknown`).
    pub host: String,
    /// The Tiffin version the agent runs.
    pub version: String,
    /// CPU cores it may use.
    pub cores: u32,
    /// Total memory of the host, in bytes (0 when unknown).
    pub memory_bytes: u64,
    /// GPU models, comma separated (`none` without a GPU).
    pub gpu: String,
    /// Number of GPUs.
    pub gpus: u32,
    /// The largest segment (po2) it accepts.
    pub max_po2: u32,
    /// Tasks it works on at once.
    pub concurrency: u32,
    /// How often it reports, in seconds.
    pub heartbeat_secs: f64,
}

impl AgentProfile {
    /// Describes this host and an agent's settings: the largest segment it accepts, how many
    /// tasks it takes at once and how often it reports.
    pub fn detect(max_po2: u32, concurrency: usize, heartbeat: Duration) -> Self {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let (gpu, gpus) = gpu_summary(&nvidia_models(), nvidia_devices());
        AgentProfile {
            host: host_name(read("/proc/sys/kernel/hostname"), std::env::var("HOSTNAME").ok()),
            version: env!("CARGO_PKG_VERSION").to_string(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            memory_bytes: read("/proc/meminfo").as_deref().and_then(mem_total).unwrap_or(0),
            gpu,
            gpus,
            max_po2,
            concurrency: concurrency.max(1) as u32,
            heartbeat_secs: heartbeat.as_secs_f64(),
        }
    }

    /// The profile as the JSON the registry stores.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a profile serializes")
    }
}

/// The first non-empty of the kernel's host name and `$HOSTNAME`.
fn host_name(kernel: Option<String>, env: Option<String>) -> String {
    [kernel, env]
        .into_iter()
        .flatten()
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `MemTotal` of `/proc/meminfo` in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    Some(match words.next() {
        Some("kB") => n * 1024,
        _ => n,
    })
}

/// The `Model:` line of an NVIDIA driver's per-GPU `information` file.
fn nvidia_model(information: &str) -> Option<String> {
    let line = information.lines().find(|l| l.starts_with("Model:"))?;
    Some(line["Model:".len()..].trim().to_string()).filter(|m| !m.is_empty())
}

/// (`gpu`, `gpus`) from the models the driver names and the device files present: models when
/// known, else `nvidia` per device file; `none` when neither shows a GPU.
fn gpu_summary(models: &[String], devices: usize) -> (String, u32) {
    if !models.is_empty() {
        return (models.join(", "), models.len() as u32);
    }
    if devices > 0 {
        return (vec!["nvidia"; devices].join(", "), devices as u32);
    }
    ("none".into(), 0)
}

/// Whether a `/dev` entry is an NVIDIA GPU (`nvidia0`, `nvidia1`, …; not `nvidiactl`).
fn is_nvidia_gpu(file: &str) -> bool {
    file.strip_prefix("nvidia")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn nvidia_models() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/driver/nvidia/gpus") else { return Vec::new() };
    let mut models: Vec<String> = dir
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("information")).ok())
        .filter_map(|info| nvidia_model(&info))
        .collect();
    models.sort();
    models
}

fn nvidia_devices() -> usize {
    let Ok(dir) = std::fs::read_dir(Path::new("/dev")) else { return 0 };
    dir.flatten().filter(|e| e.file_name().to_str().is_some_and(is_nvidia_gpu)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_falls_back_to_the_environment_then_unknown() {
        assert_eq!(host_name(Some("gpu-7\n".into()), Some("env".into())), "gpu-7");
        assert_eq!(host_name(Some(" \n".into()), Some("env".into())), "env");
        assert_eq!(host_name(None, None), "unknown");
    }

    #[test]
    fn memory_comes_from_mem_total() {
        let meminfo = "MemFree:  10 kB\nMemTotal:       24683664 kB\nSwapTotal: 0 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_683_664 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots\n"), None);
    }

    #[test]
    fn gpus_are_named_by_model_or_device_else_none() {
        let info = "Model: \t\t NVIDIA H200\nIRQ:   42\nGPU UUID: GPU-1\n";
        assert_eq!(nvidia_model(info).as_deref(), Some("NVIDIA H200"));
        assert_eq!(nvidia_model("IRQ: 1\n"), None);
        let h200 = vec!["NVIDIA H200".to_string(); 2];
        assert_eq!(gpu_summary(&h200, 2), ("NVIDIA H200, NVIDIA H200".into(), 2));
        assert_eq!(gpu_summary(&[], 1), ("nvidia".into(), 1));
        assert_eq!(gpu_summary(&[], 0), ("none".into(), 0));
        assert!(is_nvidia_gpu("nvidia0") && is_nvidia_gpu("nvidia12"));
        assert!(!is_nvidia_gpu("nvidiactl") && !is_nvidia_gpu("nvidia") && !is_nvidia_gpu("nvme0"));
    }

    #[test]
    fn a_profile_carries_the_agent_settings() {
        let p = AgentProfile::detect(20, 3, Duration::from_secs(5));
        assert_eq!((p.max_po2, p.concurrency, p.heartbeat_secs), (20, 3, 5.0));
        assert!(p.cores >= 1 && !p.host.is_empty());
        assert_eq!(p.version, env!("CARGO_PKG_VERSION"));
        let back: AgentProfile = serde_json::from_value(p.to_json()).unwrap();
        assert_eq!(back, p);
    }
}
