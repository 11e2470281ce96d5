//! Durability of local files: what a power loss cannot take back once a write is acknowledged.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Fsyncs the file `root/key`, then every directory from its parent up to `root` (a new file's
/// name lives in its directory, and a new directory's in its parent's), on a blocking thread.
pub(crate) async fn sync_tree(root: PathBuf, key: &str) -> Result<()> {
    let file = root.join(key);
    tokio::task::spawn_blocking(move || {
        sync(&file)?;
        let mut dir = file.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(&root)) {
            sync(d)?;
            dir = d.parent();
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::io("sync", key, std::io::Error::other(e)))?
}

fn sync(path: &Path) -> Result<()> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| Error::io("sync", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn syncs_a_nested_file_and_refuses_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("jobs/a")).unwrap();
        std::fs::write(root.join("jobs/a/receipt"), b"r").unwrap();
        sync_tree(root.clone(), "jobs/a/receipt").await.unwrap();
        let err = sync_tree(root, "jobs/a/missing").await.unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
