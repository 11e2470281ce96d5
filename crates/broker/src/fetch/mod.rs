//! Fetching a request's program and input. Every field of a request is written by someone who
//! may want the operator to lose, so a request URL is fetched only when it is
//!
//! - `tiffin-sample://NAME` (the bundled samples, as `tiffin market submit --sample` names them);
//! - `http(s)://` to public addresses only: every name is resolved and refused if any of its
//!   addresses is loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved or
//!   unspecified (IPv4 and IPv6, mapped forms included; [`address`]); the connection goes to the
//!   addresses checked; each redirect hop is checked the same way ([`guard`]);
//! - or under one of the operator's `allowed_url_prefixes` (a local mirror; `file://` too).
//!
//! Everything else (`file://` above all: `/proc/self/environ` holds the broker's keys) is
//! refused with `TIFFIN-BROKER-019`. Each fetch has a connect timeout and a total time budget
//! (retries included), and every read is counted against `max_file_size` as it arrives: a
//! length the server or the file system reports is never trusted. Operator-set locations
//! (priority lists, the set-builder guest) use [`Fetcher::operator`], which trusts any URL.

pub mod address;
pub mod guard;

use std::path::PathBuf;
use std::time::Duration;

use tiffin_market::Input;
use tiffin_market::request::{INPUT_INLINE, INPUT_URL};
use tokio::io::AsyncReadExt;

use crate::error::{BrokerError, Result};

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default total time for one document, retries included (`market.fetch_timeout_secs`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Limits of one fetcher.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// For request URLs: public addresses only, redirects checked.
    guarded: reqwest::Client,
    /// For operator-trusted URLs: no address check, no redirects.
    trusted: reqwest::Client,
    pub max_bytes: u64,
    pub retries: u32,
    /// Total time for one document, retries included.
    pub timeout: Duration,
    /// Where fetched programs are kept by image id (none: fetched each time).
    pub cache_dir: Option<PathBuf>,
    /// URL prefixes the operator trusts (`market.allowed_url_prefixes`).
    pub allowed_prefixes: Vec<String>,
    /// Whether every URL is trusted (operator-set locations only).
    trust_all: bool,
}

impl Fetcher {
    /// A fetcher for request URLs (the strict policy above).
    pub fn new(max_bytes: u64, retries: u32, cache_dir: Option<PathBuf>) -> Self {
        let guarded = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .dns_resolver(guard::resolver())
            .redirect(guard::redirects())
            .build()
            .expect("an HTTP client builds");
        let trusted = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client builds");
        Self {
            guarded,
            trusted,
            max_bytes,
            retries,
            timeout: DEFAULT_TIMEOUT,
            cache_dir,
            allowed_prefixes: Vec::new(),
            trust_all: false,
        }
    }

    /// A fetcher for locations the operator wrote (any scheme, any address).
    pub fn operator(max_bytes: u64, retries: u32) -> Self {
        Self { trust_all: true, ..Self::new(max_bytes, retries, None) }
    }

    /// Also trusts URLs under `prefixes` (compared with the normalised URL).
    pub fn allowing(mut self, prefixes: &[String]) -> Self {
        self.allowed_prefixes = prefixes.to_vec();
        self
    }

    /// With a total time budget per document.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The program for `image_id` (hex) from `url`, from the cache when it holds it. Fetched
    /// bytes are cached only by [`Fetcher::remember_program`], once the cluster has accepted
    /// them as that image, so a bad URL cannot poison the cache.
    pub async fn program(&self, image_id: &str, url: &str) -> Result<Vec<u8>> {
        if let Some(path) = self.cached(image_id)
            && let Ok(bytes) = tokio::fs::read(path).await
        {
            return Ok(bytes);
        }
        self.document("program", url).await
    }

    /// Keeps `program` in the cache as `image_id` (the cluster checked that it is).
    pub async fn remember_program(&self, image_id: &str, program: &[u8]) {
        if let Some(path) = self.cached(image_id) {
            // A cache that cannot be written only costs a fetch next time.
            let _ = tokio::fs::create_dir_all(path.parent().expect("a file in a dir")).await;
            let _ = tokio::fs::write(path, program).await;
        }
    }

    fn cached(&self, image_id: &str) -> Option<PathBuf> {
        let hex_only = !image_id.is_empty() && image_id.bytes().all(|c| c.is_ascii_hexdigit());
        let dir = self.cache_dir.as_ref().filter(|_| hex_only)?;
        Some(dir.join(format!("{image_id}.bin")))
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

    /// The document at `url` (`what` names it in errors), within the cap and the time budget,
    /// with retries. A refused URL is not retried.
    pub async fn document(&self, what: &'static str, url: &str) -> Result<Vec<u8>> {
        let attempts = async {
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
        };
        tokio::time::timeout(self.timeout, attempts).await.unwrap_or_else(|_| {
            Err(BrokerError::Fetch {
                what,
                detail: format!("{url}: no answer within {} s", self.timeout.as_secs()),
            })
        })
    }

    async fn once(&self, what: &'static str, url: &str) -> Result<Vec<u8>> {
        if let Some(name) = url.strip_prefix("tiffin-sample://") {
            let guest = tiffin_guests::ALL.iter().find(|g| g.name == name);
            return guest.map(|g| g.program.to_vec()).ok_or_else(|| BrokerError::Fetch {
                what,
                detail: format!("no bundled sample {name:?}"),
            });
        }
        if self.trust_all
            && let Some(path) = url.strip_prefix("file://")
        {
            // The operator's own paths may be relative (`lists/priority.json`).
            return self.read_file(what, PathBuf::from(path)).await;
        }
        let refused = |reason: String| BrokerError::UrlRefused { what, reason };
        let parsed = reqwest::Url::parse(url).map_err(|e| refused(format!("{url:?}: {e}")))?;
        let trusted = self.trust_all
            || self.allowed_prefixes.iter().any(|p| parsed.as_str().starts_with(p.as_str()));
        if parsed.scheme() == "file" {
            if !trusted {
                return Err(refused(format!(
                    "{parsed}: file URLs are read only under market.allowed_url_prefixes"
                )));
            }
            let path = parsed.to_file_path().map_err(|_| refused(format!("{parsed}: no path")))?;
            return self.read_file(what, path).await;
        }
        if !trusted && let Some(why) = guard::refuse_hop(&parsed) {
            return Err(refused(format!("{parsed}: {why}")));
        }
        // Names are checked here for a clear refusal, and again by the client's resolver for
        // the connection itself (a second answer cannot rebind the name to an inner address).
        if !trusted && let Some(url::Host::Domain(host)) = parsed.host() {
            match guard::public_addrs(host).await {
                Ok(_) => {}
                Err(guard::Refusal::Unresolved(why)) => {
                    return Err(BrokerError::Fetch { what, detail: why });
                }
                Err(guard::Refusal::Internal(why)) => return Err(refused(why)),
            }
        }
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(refused(format!("{parsed}: only http, https and tiffin-sample URLs")));
        }
        let client = if trusted { &self.trusted } else { &self.guarded };
        self.read_http(what, client, parsed).await
    }

    /// A regular file, read through a counting reader. Opened without blocking, so a FIFO or a
    /// device (`/dev/zero`) is refused instead of read for ever.
    async fn read_file(&self, what: &'static str, path: PathBuf) -> Result<Vec<u8>> {
        let fetch_err = |detail: String| BrokerError::Fetch { what, detail };
        let shown = path.display().to_string();
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .await
            .map_err(|e| fetch_err(format!("{shown}: {e}")))?;
        let meta = file.metadata().await.map_err(|e| fetch_err(format!("{shown}: {e}")))?;
        if !meta.is_file() {
            return Err(BrokerError::UrlRefused {
                what,
                reason: format!("{shown} is not a regular file"),
            });
        }
        let mut bytes = Vec::new();
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| fetch_err(format!("{shown}: {e}")))?;
        self.capped(what, bytes.len() as u64)?;
        Ok(bytes)
    }

    async fn read_http(
        &self,
        what: &'static str,
        client: &reqwest::Client,
        url: reqwest::Url,
    ) -> Result<Vec<u8>> {
        let fetch_err = |detail: String| BrokerError::Fetch { what, detail };
        let mut res = client.get(url.clone()).send().await.map_err(|e| {
            let chain = std::iter::successors(std::error::Error::source(&e), |s| s.source())
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            fetch_err(format!("{url}: {e}: {chain}"))
        })?;
        if !res.status().is_success() {
            return Err(fetch_err(format!("{url}: {}", res.status())));
        }
        // A declared length only refuses early; the bytes are counted as they arrive.
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
mod tests;
