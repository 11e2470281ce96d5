//! Hot reload: [`ConfigWatcher`] re-reads `broker.toml` when it changes and publishes each new
//! valid configuration; a bad edit is logged (naming the key) and the previous configuration
//! stays in force.
//!
//! The file's directory is watched, not the file, so editors that save by writing a new file
//! and renaming it over the old one are seen too. Changes are re-read once the file has been
//! quiet for [`SETTLE`], so a save in several writes is read once, whole.

use super::{error::ConfigError, file::BrokerConfig};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;
use tokio::sync::watch;

/// How long the file must be quiet after a change before it is re-read.
const SETTLE: Duration = Duration::from_millis(200);

/// Watches `broker.toml` while it lives; dropping it stops watching (the receivers then see
/// the channel close).
#[derive(Debug)]
pub struct ConfigWatcher {
    path: PathBuf,
    _watcher: RecommendedWatcher,
}

impl ConfigWatcher {
    /// Loads and validates the file at `path` (failing as [`BrokerConfig::load`] does), starts
    /// watching it, and returns the watcher with a receiver that holds the configuration in
    /// force: the file as loaded now, then each valid edit. Needs no tokio runtime.
    pub fn start(
        path: &Path,
    ) -> Result<(ConfigWatcher, watch::Receiver<Arc<BrokerConfig>>), ConfigError> {
        let config = BrokerConfig::load(path)?;
        let (sender, receiver) = watch::channel(Arc::new(config));
        let dir = watched_dir(path);
        let watch_error = |source| ConfigError::Watch { path: dir.clone(), source };
        let (changes, changed) = mpsc::channel();
        let name = path.file_name().map(OsStr::to_os_string).unwrap_or_default();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            if touches(&event, &name) {
                // The reloader is gone only when the receivers are: nothing to tell.
                let _ = changes.send(());
            }
        })
        .map_err(watch_error)?;
        watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(watch_error)?;
        let file = path.to_path_buf();
        std::thread::Builder::new()
            .name("broker-config-watch".into())
            .spawn(move || reload_on_change(&file, &changed, &sender))
            .map_err(|e| watch_error(notify::Error::io(e)))?;
        tracing::info!(path = %path.display(), "watching the broker config for changes");
        Ok((ConfigWatcher { path: path.to_path_buf(), _watcher: watcher }, receiver))
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn watched_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether `event` may have changed the file called `name` (reads do not).
fn touches(event: &notify::Result<Event>, name: &OsString) -> bool {
    match event {
        Ok(event) => {
            !matches!(event.kind, EventKind::Access(_))
                && event.paths.iter().any(|path| path.file_name() == Some(name.as_os_str()))
        }
        Err(error) => {
            tracing::warn!(%error, "watching the broker config");
            false
        }
    }
}

/// Re-reads `path` after each burst of changes until the watcher or every receiver is gone.
fn reload_on_change(
    path: &Path,
    changed: &mpsc::Receiver<()>,
    sender: &watch::Sender<Arc<BrokerConfig>>,
) {
    while changed.recv().is_ok() {
        while changed.recv_timeout(SETTLE).is_ok() {}
        if sender.is_closed() {
            return;
        }
        reload(path, sender);
    }
}

/// Publishes the file at `path` if it is valid and differs from the configuration in force;
/// otherwise logs why it was refused and keeps the configuration in force.
fn reload(path: &Path, sender: &watch::Sender<Arc<BrokerConfig>>) {
    // A file caught between truncation and the write that follows (or emptied by mistake)
    // would publish every default: the allow list gone, max_collateral back to 10 TFC.
    if std::fs::read_to_string(path).is_ok_and(|text| text.trim().is_empty()) {
        tracing::warn!(
            path = %path.display(),
            "the broker config file is empty; the previous broker config stays in force"
        );
        return;
    }
    match BrokerConfig::load(path) {
        Ok(config) => {
            let published = sender.send_if_modified(|current| {
                let differs = **current != config;
                if differs {
                    *current = Arc::new(config);
                }
                differs
            });
            if published {
                tracing::info!(path = %path.display(), "reloaded the broker config");
            }
        }
        Err(error) => tracing::error!(
            path = %path.display(),
            code = error.code(),
            key = error.key(),
            "{error}; the previous broker config stays in force"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;
    use tokio::time::timeout;

    fn gwei(n: u64) -> U256 {
        U256::from(n * 1_000_000_000)
    }

    fn price_file(price: &str) -> String {
        format!("[market]\nmin_mcycle_price = \"{price}\"\n")
    }

    /// Waits (a few seconds at most) for the next published configuration.
    async fn next(receiver: &mut watch::Receiver<Arc<BrokerConfig>>) -> Arc<BrokerConfig> {
        timeout(Duration::from_secs(5), receiver.changed())
            .await
            .expect("no reload within 5 s")
            .expect("the watcher stopped");
        receiver.borrow_and_update().clone()
    }

    #[tokio::test]
    async fn edits_are_published_and_bad_edits_keep_the_old_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.toml");
        std::fs::write(&path, price_file("1 gwei")).unwrap();
        let (watcher, mut receiver) = ConfigWatcher::start(&path).unwrap();
        assert_eq!(watcher.path(), path);
        assert_eq!(receiver.borrow_and_update().market.min_mcycle_price, gwei(1));

        std::fs::write(&path, price_file("2 gwei")).unwrap();
        assert_eq!(next(&mut receiver).await.market.min_mcycle_price, gwei(2));

        std::fs::write(&path, "[market]\nmin_mcycle_pricee = \"3 gwei\"\n").unwrap();
        tokio::time::sleep(SETTLE * 5).await;
        assert!(!receiver.has_changed().unwrap(), "a broken file was published");
        assert_eq!(receiver.borrow().market.min_mcycle_price, gwei(2));

        // As editors save: a new file renamed over the old one.
        let fresh = dir.path().join(".broker.toml.swp");
        std::fs::write(&fresh, price_file("4 gwei")).unwrap();
        std::fs::rename(&fresh, &path).unwrap();
        assert_eq!(next(&mut receiver).await.market.min_mcycle_price, gwei(4));

        // Failed before the fix: an emptied file published the defaults.
        std::fs::write(&path, "").unwrap();
        tokio::time::sleep(SETTLE * 5).await;
        assert!(!receiver.has_changed().unwrap(), "an empty file was published");
        assert_eq!(receiver.borrow().market.min_mcycle_price, gwei(4));

        drop(watcher);
        let closed = timeout(Duration::from_secs(5), receiver.changed()).await;
        assert!(matches!(closed, Ok(Err(_))), "dropping the watcher did not close the channel");
    }

    #[tokio::test]
    async fn other_files_in_the_directory_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.toml");
        std::fs::write(&path, price_file("1 gwei")).unwrap();
        let (_watcher, mut receiver) = ConfigWatcher::start(&path).unwrap();
        std::fs::write(dir.path().join("other.toml"), price_file("9 gwei")).unwrap();
        tokio::time::sleep(SETTLE * 5).await;
        assert!(!receiver.has_changed().unwrap());
        assert_eq!(receiver.borrow_and_update().market.min_mcycle_price, gwei(1));
    }

    #[test]
    fn a_missing_or_bad_file_fails_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.toml");
        assert_eq!(ConfigWatcher::start(&path).unwrap_err().code(), "TIFFIN-BROKER-001");
        std::fs::write(&path, "[batcher]\nmin_batch_size = 0\n").unwrap();
        let err = ConfigWatcher::start(&path).unwrap_err();
        assert_eq!(err.key(), Some("batcher.min_batch_size"));
    }

    #[test]
    fn a_bare_file_name_is_watched_in_the_current_directory() {
        assert_eq!(watched_dir(Path::new("broker.toml")), PathBuf::from("."));
        assert_eq!(watched_dir(Path::new("/etc/tiffin/broker.toml")), PathBuf::from("/etc/tiffin"));
    }
}
