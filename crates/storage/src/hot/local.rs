//! The embedded hot store: one file per blob under a directory.
//!
//! Writes go to a temporary file and are renamed into place, so readers never see a partial blob
//! and a crash leaves no half-written one under its key. Usage is summed on open and then tracked
//! in memory, so one process must own the directory (embedded mode); distributed agents share
//! Redis instead.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use tracing::{debug, info};

use super::{ledger::Ledger, store::HotStore};
use crate::{
    Error, Result,
    key::{validate_key, validate_prefix},
};

/// Directory (inside the store's) for in-progress writes; removed on open.
const TMP_DIR: &str = ".tiffin-tmp";

/// A [`HotStore`] of files under a directory.
#[derive(Debug)]
pub struct LocalHotStore {
    root: PathBuf,
    ledger: Ledger,
    /// Serialises "stat old size, rename, account" so usage stays exact under concurrent puts of
    /// one key; data is written to the temporary file outside it.
    commit: tokio::sync::Mutex<()>,
    tmp_seq: AtomicU64,
}

fn file_len(path: &Path) -> Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io("stat hot blob", path, e)),
    }
}

/// Every blob file under `dir` as (key, size), keys relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list hot store directory", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list hot store directory", dir, e))?;
        let path = entry.path();
        if dir == root && entry.file_name() == TMP_DIR {
            continue;
        }
        let ty = entry.file_type().map_err(|e| Error::io("stat hot blob", &path, e))?;
        if ty.is_dir() {
            walk(root, &path, out)?;
        } else if ty.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let len = entry.metadata().map_err(|e| Error::io("stat hot blob", &path, e))?.len();
            out.push((key, len));
        }
    }
    Ok(())
}

impl LocalHotStore {
    /// Opens (creating if needed) a store in `dir` with an optional byte budget. Leftover
    /// temporary files from a crash are removed and usage is summed from the files present.
    pub async fn open(dir: impl AsRef<Path>, budget: Option<u64>) -> Result<Self> {
        let root = dir.as_ref().to_path_buf();
        let scan_root = root.clone();
        let usage = tokio::task::spawn_blocking(move || -> Result<u64> {
            let root = scan_root;
            std::fs::create_dir_all(&root)
                .map_err(|e| Error::io("create hot store directory", &root, e))?;
            let tmp = root.join(TMP_DIR);
            match std::fs::remove_dir_all(&tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("clean hot store temporary files", &tmp, e)),
            }
            std::fs::create_dir_all(&tmp)
                .map_err(|e| Error::io("create hot store directory", &tmp, e))?;
            let mut blobs = Vec::new();
            walk(&root, &root, &mut blobs)?;
            Ok(blobs.iter().map(|(_, n)| n).sum())
        })
        .await
        .map_err(|e| Error::io("open hot store", &root, std::io::Error::other(e)))??;
        info!(dir = %root.display(), usage, ?budget, "opened local hot store");
        Ok(Self {
            root,
            ledger: Ledger::new(budget, usage),
            commit: tokio::sync::Mutex::new(()),
            tmp_seq: AtomicU64::new(0),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    async fn write(&self, key: &str, data: Bytes, within_budget: bool) -> Result<bool> {
        let path = self.path(key)?;
        let new = data.len() as u64;
        if within_budget && !self.ledger.admits(file_len(&path)?, new) {
            return Ok(false);
        }
        let tmp = self.root.join(TMP_DIR).join(format!(
            "{}-{}",
            std::process::id(),
            self.tmp_seq.fetch_add(1, Ordering::Relaxed)
        ));
        tokio::fs::write(&tmp, &data).await.map_err(|e| Error::io("write hot blob", &tmp, e))?;
        let _guard = self.commit.lock().await;
        let old = file_len(&path)?;
        if within_budget && !self.ledger.admits(old, new) {
            drop(_guard);
            let _ = tokio::fs::remove_file(&tmp).await;
            return Ok(false);
        }
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Error::io("create hot blob directory", parent, e))?;
        }
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(Error::io("commit hot blob", &path, e));
        }
        self.ledger.replace(old, new);
        debug!(key, size = new, usage = self.ledger.usage(), "hot put");
        Ok(true)
    }

    /// Removes empty directories from `dir` up to (not including) the root.
    fn prune_dirs(&self, mut dir: Option<&Path>) {
        while let Some(d) = dir {
            if d == self.root || !d.starts_with(&self.root) || std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    async fn remove(&self, key: &str, path: &Path) -> Result<bool> {
        let _guard = self.commit.lock().await;
        let old = match tokio::fs::metadata(path).await {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("stat hot blob", path, e)),
        };
        match tokio::fs::remove_file(path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("delete hot blob", path, e)),
        }
        self.ledger.remove(old);
        drop(_guard);
        self.prune_dirs(path.parent());
        debug!(key, size = old, "hot delete");
        Ok(true)
    }
}

#[async_trait]
impl HotStore for LocalHotStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn budget(&self) -> Option<u64> {
        self.ledger.budget()
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.write(key, data, false).await.map(|_| ())
    }

    async fn try_put_within_budget(&self, key: &str, data: Bytes) -> Result<bool> {
        self.write(key, data, true).await
    }

    async fn get_opt(&self, key: &str) -> Result<Option<Bytes>> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            // A key whose "directory" is a blob (`a` stored, `a/b` asked) is simply missing.
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(None),
            Err(e) => Err(Error::io("read hot blob", &path, e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        Ok(tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        self.remove(key, &path).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        validate_prefix(prefix)?;
        let parent = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let start = if parent.is_empty() { self.root.clone() } else { self.root.join(parent) };
        let root = self.root.clone();
        let blobs = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &start, &mut out).map(|_| out)
        })
        .await
        .map_err(|e| {
            Error::io("list hot store directory", &self.root, std::io::Error::other(e))
        })??;
        let mut deleted = 0;
        for (key, _) in blobs.into_iter().filter(|(k, _)| k.starts_with(prefix)) {
            if self.remove(&key, &self.root.join(&key)).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    async fn usage(&self) -> Result<u64> {
        Ok(self.ledger.usage())
    }

    async fn peak_usage(&self) -> Result<u64> {
        Ok(self.ledger.peak())
    }

    async fn reset_peak(&self) -> Result<()> {
        self.ledger.reset_peak();
        Ok(())
    }

    async fn wait_for_room(&self, bytes: u64, timeout: Duration) -> Result<()> {
        self.ledger.wait_for_room(bytes, timeout).await
    }
}
