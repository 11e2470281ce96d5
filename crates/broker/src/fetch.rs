//! Fetching a request's program and input: `http(s)://` and `file://` URLs and the bundled
//! samples (`tiffin-sample://NAME`, as `tiffin market submit --sample` names them), never more than
//! `max_file_size` bytes (a hostile requestor may point at anything), retried
//! `max_fetch_retries` times.

use std::path::PathBuf;
use std::time::Duration;

use tiffin_market::Input;
use tiffin_market::request::{INPUT_INLINE, INPUT_URL};

use crate::error::{BrokerError, Result};

/// Limits of one fetcher.
#[derive(Debug, Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    pub max_bytes: u64,
    pub retries: u32,
    /// Where fetched programs are kept by image id (none: fetched each time).
    pub cache_dir: Option<PathBuf>,
}

impl Fetcher {
    pub fn new(max_bytes: u64, retries: u32, cache_dir: Option<PathBuf>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a default HTTP client builds");
        Self { http, max_bytes, retries, cache_dir }
    }

    /// The program for `image_id` (hex) from `url`, through the cache.
    pub async fn program(&self, image_id: &str, url: &str) -> Result<Vec<u8>> {
        let cached = self.cache_dir.as_ref().map(|d| d.join(format!("{image_id}.bin")));
        if let Some(path) = &cached
            && let Ok(bytes) = tokio::fs::read(path).await
        {
            return Ok(bytes);
        }
        let bytes = self.document("program", url).await?;
        if let Some(path) = &cached {
            // A cache that cannot be written only costs a fetch next time.
            let _ = tokio::fs::create_dir_all(path.parent().expect("a file in a dir")).await;
            let _ = tokio::fs::write(path, &bytes).await;
        }
        Ok(bytes)
    }

    /// The guest's input bytes.
    pub async fn input(&self, input: &Input) -> Result<Vec<u8>> {
        match input.inputType {
            INPUT_INLINE => {
                self.capped("input", input.data.len() as u64).map(|_| input.data.to_vec())
            }
            INPUT_URL => {
                let url = std::str::from_utf8(&input.data).map_err(|_| BrokerError::Fetch {
                    what: "input",
                    detail: "the input URL is not UTF-8".into(),
                })?;
                self.document("input", url).await
            }
            other => {
                Err(BrokerError::Fetch { what: "input", detail: format!("input type {other}") })
            }
        }
    }

    /// The size of the input (inline only; a URL's size is known once fetched).
    pub fn inline_size(input: &Input) -> Option<u64> {
        (input.inputType == INPUT_INLINE).then_some(input.data.len() as u64)
    }

    fn capped(&self, what: &'static str, len: u64) -> Result<()> {
        if len > self.max_bytes {
            return Err(BrokerError::TooLarge { what, limit: self.max_bytes });
        }
        Ok(())
    }

    /// The document at `url` (`what` names it in errors), within the cap, with retries.
    pub async fn document(&self, what: &'static str, url: &str) -> Result<Vec<u8>> {
        let mut attempt = 0;
        loop {
            match self.once(what, url).await {
                Err(BrokerError::Fetch { detail, .. }) if attempt < self.retries => {
                    attempt += 1;
                    tracing::debug!(url, "fetch failed ({attempt}/{}): {detail}", self.retries);
                    tokio::time::sleep(Duration::from_millis(250 << attempt.min(5))).await;
                }
                other => return other,
            }
        }
    }

    async fn once(&self, what: &'static str, url: &str) -> Result<Vec<u8>> {
        let fetch_err = |detail: String| BrokerError::Fetch { what, detail };
        if let Some(name) = url.strip_prefix("tiffin-sample://") {
            let guest = tiffin_guests::ALL.iter().find(|g| g.name == name);
            return guest
                .map(|g| g.program.to_vec())
                .ok_or_else(|| fetch_err(format!("no bundled sample {name:?}")));
        }
        if let Some(path) = url.strip_prefix("file://") {
            let len = tokio::fs::metadata(path)
                .await
                .map_err(|e| fetch_err(format!("{url}: {e}")))?
                .len();
            self.capped(what, len)?;
            return tokio::fs::read(path).await.map_err(|e| fetch_err(format!("{url}: {e}")));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(fetch_err(format!("unsupported URL {url:?} (http, https or file)")));
        }
        let mut res =
            self.http.get(url).send().await.map_err(|e| fetch_err(format!("{url}: {e}")))?;
        if !res.status().is_success() {
            return Err(fetch_err(format!("{url}: {}", res.status())));
        }
        if let Some(len) = res.content_length() {
            self.capped(what, len)?;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| fetch_err(format!("{url}: {e}")))? {
            bytes.extend_from_slice(&chunk);
            self.capped(what, bytes.len() as u64)?;
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_are_read_within_the_cap_and_inputs_inline_or_by_url() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input");
        std::fs::write(&path, vec![7u8; 100]).unwrap();
        let url = format!("file://{}", path.display());
        let fetcher = Fetcher::new(100, 0, None);
        assert_eq!(fetcher.input(&Input::url(&url)).await.unwrap().len(), 100);
        assert_eq!(fetcher.input(&Input::inline(vec![1, 2])).await.unwrap(), vec![1, 2]);

        let small = Fetcher::new(99, 0, None);
        let err = small.input(&Input::url(&url)).await.unwrap_err();
        assert!(matches!(err, BrokerError::TooLarge { limit: 99, .. }), "{err}");
        let err = small.input(&Input::inline(vec![0; 100])).await.unwrap_err();
        assert_eq!(err.code(), "TIFFIN-BROKER-014");
        let err = fetcher.input(&Input::url("ftp://example/x")).await.unwrap_err();
        assert_eq!(err.code(), "TIFFIN-BROKER-013");
        let err = fetcher.input(&Input::url("file:///no/such/file")).await.unwrap_err();
        assert!(err.to_string().contains("/no/such/file"), "{err}");
        let echo = fetcher.program("e", "tiffin-sample://echo").await.unwrap();
        assert_eq!(echo, tiffin_guests::ECHO.program);
        let err = fetcher.program("x", "tiffin-sample://nope").await.unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[tokio::test]
    async fn programs_are_cached_by_image_id() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("guest.bin");
        std::fs::write(&program, b"R0BF...").unwrap();
        let fetcher = Fetcher::new(1 << 20, 0, Some(dir.path().join("cache")));
        let url = format!("file://{}", program.display());
        assert_eq!(fetcher.program("ab", &url).await.unwrap(), b"R0BF...");
        std::fs::remove_file(&program).unwrap();
        assert_eq!(fetcher.program("ab", &url).await.unwrap(), b"R0BF...", "from the cache");
    }
}
