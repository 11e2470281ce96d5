//! The hot store's default byte budget when the operator sets none: half of what the machine
//! has for it (free disk under a local hot store, available memory for `memory://`), so a
//! flood of segments pauses the executor instead of filling the disk or the memory. Redis
//! keeps its own limit (`maxmemory`, with `noeviction`): no default there.

use std::path::Path;

/// The share of the free space a default budget takes.
const SHARE: u64 = 2;

/// The default budget for the hot store `spec` (see [`crate::open_hot`]), or `None` when it
/// has none (Redis) or the free space cannot be read.
pub fn default_hot_budget(spec: &str) -> Option<u64> {
    let spec = spec.trim();
    if spec.starts_with("redis") {
        return None;
    }
    if spec == "memory://" || spec == "memory:" {
        return available_memory().map(|m| m / SHARE);
    }
    let path = spec.strip_prefix("file://").unwrap_or(spec);
    free_disk(Path::new(path)).map(|f| f / SHARE)
}

/// Bytes free for unprivileged users on the file system holding `path` (or its nearest
/// existing ancestor: the hot store's directory may not exist yet).
fn free_disk(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_memory_stores_get_half_the_room_redis_none() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_disk(dir.path()).expect("statvfs works here");
        let budget = default_hot_budget(&dir.path().join("hot/not-yet").display().to_string());
        // Free space moves while other processes write: compare within 64 MiB.
        let budget = budget.expect("a local hot store gets a budget");
        assert!(budget.abs_diff(free / 2) < 64 << 20, "{budget} vs half of {free}");
        let mem = default_hot_budget("memory://").expect("meminfo readable");
        assert!(mem > 0 && mem <= available_memory().unwrap() / 2 + (64 << 20));
        assert_eq!(default_hot_budget("redis://127.0.0.1:6379"), None);
    }
}
