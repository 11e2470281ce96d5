//! Building the stores from CLI-style strings (`--store`, `--hot-store` / `--redis-url`,
//! `--hot-budget-bytes`), with embedded defaults under the data dir, so every binary and test
//! opens stores the same way and bad strings fail early with a coded error.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    ColdStore, Error, HotStore, LocalHotStore, MemoryHotStore, ObjectColdStore, RedisHotStore,
    Result, budget::default_hot_budget, cold::redact_url,
};

/// Opens a cold store from a config string: a path or `file:///abs/path` (local directory),
/// `s3://bucket[/prefix]?endpoint=…&region=…` (S3-compatible; see [`crate::S3Config::parse`]),
/// or `memory://` (tests).
pub fn open_cold(spec: &str) -> Result<Arc<dyn ColdStore>> {
    Ok(Arc::new(ObjectColdStore::open(spec)?))
}

/// Opens a hot store from a config string: `redis://[:pw@]host:port[/db][?namespace=NS]` or
/// `rediss://…` (Redis; `namespace` defaults to `tiffin`), a path or `file:///abs/path` (local
/// files), or `memory://`. `budget` is the byte budget (`None`: unlimited).
pub async fn open_hot(spec: &str, budget: Option<u64>) -> Result<Arc<dyn HotStore>> {
    open_hot_with_ca(spec, budget, None).await
}

/// [`open_hot`], trusting exactly `ca_file` (PEM) for a `rediss://` server.
pub async fn open_hot_with_ca(
    spec: &str,
    budget: Option<u64>,
    ca_file: Option<&Path>,
) -> Result<Arc<dyn HotStore>> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(Error::config(
            "hot store URL",
            spec,
            "it is empty; use redis://host:port, a path, file:///path or memory://",
        ));
    }
    if spec.starts_with("redis://")
        || spec.starts_with("rediss://")
        || spec.starts_with("redis+unix://")
    {
        return Ok(Arc::new(RedisHotStore::connect_with_ca(spec, None, budget, ca_file).await?));
    }
    if spec == "memory://" || spec == "memory:" {
        return Ok(Arc::new(MemoryHotStore::new(budget)));
    }
    if let Some(rest) = spec.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(Error::config(
                "hot store URL",
                spec,
                "file URLs need an absolute path: file:///abs/path",
            ));
        }
        let url = url::Url::parse(spec)
            .map_err(|e| Error::config("hot store URL", spec, e.to_string()))?;
        let path = url
            .to_file_path()
            .map_err(|_| Error::config("hot store URL", spec, "not a local file path"))?;
        return Ok(Arc::new(LocalHotStore::open(path, budget).await?));
    }
    if let Some((scheme, _)) = spec.split_once("://") {
        return Err(Error::config(
            "hot store URL",
            redact_url(spec),
            format!(
                "unknown scheme {scheme:?}; use redis://host:port, a path, file:///path or memory://"
            ),
        ));
    }
    Ok(Arc::new(LocalHotStore::open(spec, budget).await?))
}

/// Parses a byte size for `--hot-budget-bytes`: a plain number of bytes, or one with a unit
/// (`K`/`KB` = 1000, `KiB` = 1024, likewise `M`, `G`, `T`), e.g. `512MiB`, `2GB`, `1048576`.
pub fn parse_byte_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = |reason: &str| Error::config("byte size", s, reason.to_string());
    let num: u64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| bad("expected a number of bytes, e.g. 536870912 or 512MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => {
            return Err(bad("unknown unit; use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"));
        }
    };
    num.checked_mul(mult).ok_or_else(|| bad("too large"))
}

/// Secrets the stores' URLs may leave out, read from files by the CLI (`--redis-password-file`,
/// `--s3-access-key-file`, `--s3-secret-key-file`); never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreSecrets {
    /// Replaces the password of a `redis://` / `rediss://` URL.
    pub redis_password: Option<String>,
    /// The S3 access key id and secret key (over those of the URL or the environment).
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
}

impl std::fmt::Debug for StoreSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreSecrets(<redacted>)")
    }
}

/// Where the stores live: the CLI's store flags, with embedded defaults under `data_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The data dir (`--data-dir`); embedded stores go in `<data_dir>/cold` and `<data_dir>/hot`.
    pub data_dir: PathBuf,
    /// `--store`: the cold store ([`open_cold`]); `None` for `<data_dir>/cold`.
    pub store: Option<String>,
    /// `--hot-store` or `--redis-url`: the hot store ([`open_hot`]); `None` for `<data_dir>/hot`.
    pub hot_store: Option<String>,
    /// `--hot-budget-bytes`: the hot store's byte budget; `None` for the default (half the
    /// free disk or memory of a local hot store, see [`default_hot_budget`]).
    pub hot_budget_bytes: Option<u64>,
    /// `--ca-file`: the CA (PEM) that signed the certificates of `rediss://` and `https://` S3
    /// servers; `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Secrets kept out of the URLs.
    pub secrets: StoreSecrets,
}

impl StoreConfig {
    /// Embedded defaults under `data_dir`, the default budget.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self {
            data_dir: data_dir.as_ref().to_path_buf(),
            store: None,
            hot_store: None,
            hot_budget_bytes: None,
            ca_file: None,
            secrets: StoreSecrets::default(),
        }
    }

    /// The cold store config string in effect.
    pub fn cold_spec(&self) -> String {
        self.store.clone().unwrap_or_else(|| self.data_dir.join("cold").display().to_string())
    }

    /// The hot store config string in effect.
    pub fn hot_spec(&self) -> String {
        self.hot_store.clone().unwrap_or_else(|| self.data_dir.join("hot").display().to_string())
    }

    /// Opens both stores and checks the cold one ([`ColdStore::check`]); Redis is checked on
    /// connect (reachable, `noeviction`).
    pub async fn open(&self) -> Result<Stores> {
        let cold: Arc<dyn ColdStore> = match self.s3_config()? {
            Some(s3) => {
                probe_s3(&s3).await?;
                Arc::new(ObjectColdStore::s3(&s3)?)
            }
            None => open_cold(&self.cold_spec())?,
        };
        cold.check().await?;
        let budget = self.hot_budget_bytes.or_else(|| default_hot_budget(&self.hot_spec()));
        let hot = open_hot_with_ca(&self.hot_url()?, budget, self.ca_file.as_deref()).await?;
        tracing::info!(cold = %cold.describe(), hot = %hot.describe(), ?budget, "stores opened");
        Ok(Stores { cold, hot })
    }
}

impl StoreConfig {
    /// An S3 cold store's settings, with the CA file and the keys from files applied.
    fn s3_config(&self) -> Result<Option<crate::S3Config>> {
        let spec = self.cold_spec();
        if !spec.trim().starts_with("s3://") {
            return Ok(None);
        }
        let mut s3 = crate::S3Config::parse(spec.trim())?;
        s3.ca_file = self.ca_file.clone();
        if let Some(key) = &self.secrets.s3_access_key_id {
            s3.access_key_id = Some(key.clone());
        }
        if let Some(secret) = &self.secrets.s3_secret_access_key {
            s3.secret_access_key = Some(secret.clone());
        }
        Ok(Some(s3))
    }

    /// The hot store's URL with the password from [`StoreSecrets`] put in.
    fn hot_url(&self) -> Result<String> {
        let spec = self.hot_spec();
        let Some(password) = &self.secrets.redis_password else { return Ok(spec) };
        if !(spec.starts_with("redis://") || spec.starts_with("rediss://")) {
            return Err(Error::config(
                "hot store URL",
                redact_url(&spec),
                "a Redis password \
                                      needs a redis:// or rediss:// hot store",
            ));
        }
        let mut url = url::Url::parse(&spec)
            .map_err(|e| Error::config("hot store URL", redact_url(&spec), e.to_string()))?;
        url.set_password(Some(password))
            .map_err(|()| Error::config("hot store URL", redact_url(&spec), "no host"))?;
        Ok(url.to_string())
    }
}

/// With a CA file, a TLS handshake with an `https://` S3 endpoint first: a certificate the CA
/// did not sign is refused at once (`TIFFIN-TLS-005`), not after object_store's two minutes of
/// retrying what it takes for a connection error.
async fn probe_s3(s3: &crate::S3Config) -> Result<()> {
    let (Some(ca), Some(endpoint)) = (&s3.ca_file, &s3.endpoint) else { return Ok(()) };
    let Ok(url) = url::Url::parse(endpoint) else { return Ok(()) };
    let (Some(host), "https") = (url.host_str(), url.scheme()) else { return Ok(()) };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    tiffin_tls::probe(host, url.port().unwrap_or(443), ca)
        .await
        .map_err(|e| Error::config("S3 endpoint", endpoint.clone(), e.to_string()))
}

/// The two stores a Tiffin process uses.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Durable blobs: images, inputs, receipts, logs.
    pub cold: Arc<dyn ColdStore>,
    /// Intermediate blobs: segments, lifted and joined receipts.
    pub hot: Arc<dyn HotStore>,
}

impl Stores {
    /// Both stores in memory (tests), with an optional hot budget.
    pub fn memory(hot_budget: Option<u64>) -> Self {
        Self {
            cold: Arc::new(ObjectColdStore::memory()),
            hot: Arc::new(MemoryHotStore::new(hot_budget)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("123").unwrap(), 123);
        assert_eq!(parse_byte_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_byte_size("2 GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_byte_size("1_000").unwrap(), 1000);
        for bad in ["", "MiB", "12 parsecs", "99999999999999999999", "1e6"] {
            assert_eq!(parse_byte_size(bad).unwrap_err().code(), "TIFFIN-STORAGE-001", "{bad}");
        }
    }
}
