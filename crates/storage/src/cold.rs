//! The cold store: durable blobs (images, inputs, final receipts, logs).
//!
//! One implementation, [`ObjectColdStore`], over the `object_store` crate, so the embedded local
//! directory and S3-compatible servers (AWS, MinIO, Garage, s3s-fs) behave the same and pass one
//! conformance suite. Big uploads and downloads stream in parts and are never buffered whole.

use std::{fmt, path::Path as FsPath, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    ObjectStore, PutPayload, WriteMultipart, aws::AmazonS3Builder, local::LocalFileSystem,
    memory::InMemory, path::Path, prefix::PrefixStore,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tracing::{debug, instrument};
use url::Url;

pub use crate::s3::{S3Config, redact_url};
use crate::{
    Error, Result,
    key::{validate_key, validate_prefix},
};

/// A stream of a blob's bytes, in chunks as they arrive.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// Part size of multipart uploads, and the size above which uploads from a reader or file switch
/// from one PUT to a multipart upload (S3 needs parts of at least 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// How many parts of one multipart upload are in flight at once.
const PART_CONCURRENCY: usize = 4;

/// A blob's key and size, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The key, e.g. `jobs/<job>/receipt`.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// Durable blob storage for images, inputs, receipts and logs.
///
/// Keys are '/'-separated strings (see [`crate::validate_key`]). Writes are atomic: a reader sees
/// the old blob or the new one, never a part. Deleting a missing key is not an error, so cleanup
/// is idempotent.
#[async_trait]
pub trait ColdStore: Send + Sync + fmt::Debug {
    /// A human-readable description without secrets, e.g. `s3://bucket (endpoint …)`, for logs.
    fn describe(&self) -> String;

    /// Writes (or overwrites) `key` with `data`.
    async fn put(&self, key: &str, data: Bytes) -> Result<()>;

    /// Writes `key` from a reader, streaming in [`PART_SIZE`] parts (multipart above that), so a
    /// big upload is never held in memory whole. Returns the number of bytes written.
    async fn put_reader(
        &self,
        key: &str,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64>;

    /// Writes `key` from a local file, streaming. Returns the number of bytes written.
    async fn put_file(&self, key: &str, path: &FsPath) -> Result<u64> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::io("open upload source", path, e))?;
        self.put_reader(key, &mut file).await
    }

    /// Reads the whole blob. A missing key gives [`Error::NotFound`] (`TIFFIN-STORAGE-010`).
    async fn get(&self, key: &str) -> Result<Bytes>;

    /// Reads the blob as a stream of chunks, for blobs too big to hold whole.
    async fn get_stream(&self, key: &str) -> Result<ByteStream>;

    /// Downloads the blob into a local file (written to a temporary name, then renamed, so a
    /// failed download never leaves a partial file under `path`). Returns the size.
    async fn get_to_file(&self, key: &str, path: &FsPath) -> Result<u64> {
        let mut stream = self.get_stream(key).await?;
        let tmp = path.with_extension("tiffin-partial");
        let result: Result<u64> = async {
            let mut file =
                tokio::fs::File::create(&tmp).await.map_err(|e| Error::io("create", &tmp, e))?;
            let mut size = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                size += chunk.len() as u64;
                file.write_all(&chunk).await.map_err(|e| Error::io("write", &tmp, e))?;
            }
            file.flush().await.map_err(|e| Error::io("flush", &tmp, e))?;
            file.sync_all().await.map_err(|e| Error::io("sync", &tmp, e))?;
            tokio::fs::rename(&tmp, path).await.map_err(|e| Error::io("rename", path, e))?;
            Ok(size)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// The blob's size, or `None` when it does not exist.
    async fn head(&self, key: &str) -> Result<Option<BlobInfo>>;

    /// Whether the blob exists.
    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.head(key).await?.is_some())
    }

    /// Deletes `key`; deleting a missing key succeeds (cleanup must be idempotent).
    async fn delete(&self, key: &str) -> Result<()>;

    /// Deletes every blob whose key starts with `prefix` (a plain string prefix; end it with '/'
    /// for one "directory", e.g. `jobs/<job>/`). Returns how many were deleted.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;

    /// Lists the blobs whose key starts with `prefix` (plain string prefix, "" for all), sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobInfo>>;

    /// Verifies the store is usable — reachable, bucket present, credentials accepted — with one
    /// cheap read, so a process fails at start with a clear error instead of on its first job.
    async fn check(&self) -> Result<()>;
}

/// The [`ColdStore`] over any `object_store` backend: local directory, S3, or memory.
#[derive(Clone)]
pub struct ObjectColdStore {
    store: Arc<dyn ObjectStore>,
    description: String,
    /// The directory of a local store: its writes are fsynced (file, then each directory up to
    /// here) before `put` returns, which `object_store`'s local backend does not do, so an
    /// acknowledged blob survives a power loss.
    local_root: Option<std::path::PathBuf>,
}

impl fmt::Debug for ObjectColdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectColdStore").field("store", &self.description).finish()
    }
}

fn object_path(key: &str) -> Result<Path> {
    validate_key(key)?;
    Path::parse(key).map_err(|_| Error::InvalidKey {
        key: key.to_string(),
        reason: "the object store cannot represent it",
    })
}

impl ObjectColdStore {
    /// Wraps an existing `object_store` backend (for callers that build their own).
    pub fn new(store: Arc<dyn ObjectStore>, description: impl Into<String>) -> Self {
        Self { store, description: description.into(), local_root: None }
    }

    /// A store in a local directory (created if missing): the embedded default.
    pub fn local(dir: impl AsRef<FsPath>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("create cold store directory", dir, e))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| {
                Error::config("cold store directory", dir.display().to_string(), e.to_string())
            })?
            .with_automatic_cleanup(true);
        let mut store = Self::new(Arc::new(fs), format!("file://{}", dir.display()));
        store.local_root = Some(dir.canonicalize().map_err(|e| Error::io("resolve", dir, e))?);
        Ok(store)
    }

    /// A store in memory, for tests.
    pub fn memory() -> Self {
        Self::new(Arc::new(InMemory::new()), "memory://")
    }

    /// An S3-compatible store.
    pub fn s3(config: &S3Config) -> Result<Self> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            // Retries with backoff (100 ms doubling, at most 15 s apart) ride out an object
            // store that restarts or drops connections for about half a minute: three
            // retries gave up after 0.7 s, and the chaos suite's S3 restart lost a job.
            .with_retry(object_store::RetryConfig {
                max_retries: 10,
                retry_timeout: Duration::from_secs(120),
                ..Default::default()
            });
        if let Some(ca) = &config.ca_file {
            let bad = |e: String| Error::config("S3 CA file", ca.display().to_string(), e);
            let pem = std::fs::read(ca).map_err(|e| bad(e.to_string()))?;
            let cert = object_store::Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))?;
            builder = builder.with_client_options(
                object_store::ClientOptions::new().with_root_certificate(cert),
            );
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(config.allow_http)
                .with_virtual_hosted_style_request(!config.path_style);
        }
        if let Some(key) = &config.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &config.session_token {
            builder = builder.with_token(token);
        }
        let s3 = builder
            .build()
            .map_err(|e| Error::config("S3 cold store", config.describe(), e.to_string()))?;
        let store: Arc<dyn ObjectStore> = if config.prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(
                s3,
                Path::parse(&config.prefix).map_err(|e| {
                    Error::config("S3 cold store prefix", config.prefix.clone(), e.to_string())
                })?,
            ))
        };
        Ok(Self::new(store, config.describe()))
    }

    /// Opens a cold store from a config string (the `--store` flag):
    /// - `file:///abs/path` or a plain path: local directory;
    /// - `memory://`: in memory (tests);
    /// - `s3://bucket[/prefix]?endpoint=http://127.0.0.1:9000&region=us-east-1` — see [`S3Config::parse`].
    pub fn open(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(Error::config(
                "cold store URL",
                spec,
                "it is empty; use a path, file:///path or s3://bucket?endpoint=…",
            ));
        }
        if spec == "memory://" || spec == "memory:" {
            return Ok(Self::memory());
        }
        if spec.starts_with("s3://") {
            return Self::s3(&S3Config::parse(spec)?);
        }
        if let Some(rest) = spec.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(Error::config(
                    "cold store URL",
                    spec,
                    "file URLs need an absolute path: file:///abs/path",
                ));
            }
            let url = Url::parse(spec)
                .map_err(|e| Error::config("cold store URL", spec, e.to_string()))?;
            let path = url
                .to_file_path()
                .map_err(|_| Error::config("cold store URL", spec, "not a local file path"))?;
            return Self::local(path);
        }
        if let Some((scheme, _)) = spec.split_once("://") {
            return Err(Error::config(
                "cold store URL",
                spec,
                format!(
                    "unknown scheme {scheme:?}; use a path, file:///path, s3://bucket?endpoint=… or memory://"
                ),
            ));
        }
        Self::local(spec)
    }

    async fn put_multipart(
        &self,
        key: &str,
        path: &Path,
        first: Bytes,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(|e| Error::cold("start multipart upload", key, e))?;
        let mut write = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut size = first.len() as u64;
        write.put(first);
        let result: Result<()> = async {
            loop {
                let chunk = read_chunk(reader, PART_SIZE).await?;
                if chunk.is_empty() {
                    return Ok(());
                }
                size += chunk.len() as u64;
                write
                    .wait_for_capacity(PART_CONCURRENCY)
                    .await
                    .map_err(|e| Error::cold("upload part", key, e))?;
                write.put(chunk);
            }
        }
        .await;
        match result {
            Ok(()) => {
                write
                    .finish()
                    .await
                    .map_err(|e| Error::cold("complete multipart upload", key, e))?;
                Ok(size)
            }
            Err(e) => {
                let _ = write.abort().await;
                Err(e)
            }
        }
    }
}

impl ObjectColdStore {
    /// Makes a local store's new blob durable before `put` returns (remote stores acknowledge
    /// durably already).
    async fn sync_local(&self, key: &str) -> Result<()> {
        match &self.local_root {
            Some(root) => crate::durable::sync_tree(root.clone(), key).await,
            None => Ok(()),
        }
    }
}

/// Reads up to `limit` bytes (fewer only at EOF).
async fn read_chunk(reader: &mut (dyn AsyncRead + Send + Unpin), limit: usize) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(limit.min(1024 * 1024));
    while buf.len() < limit {
        if buf.capacity() == buf.len() {
            buf.reserve((limit - buf.len()).min(1024 * 1024));
        }
        let n = reader
            .read_buf(&mut buf)
            .await
            .map_err(|e| Error::io("read upload source", "<reader>", e))?;
        if n == 0 {
            break;
        }
    }
    Ok(buf.freeze())
}

#[async_trait]
impl ColdStore for ObjectColdStore {
    fn describe(&self) -> String {
        self.description.clone()
    }

    #[instrument(level = "debug", skip(self, data), fields(size = data.len()))]
    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        let path = object_path(key)?;
        if data.len() > PART_SIZE {
            self.put_multipart(key, &path, data, &mut tokio::io::empty()).await?;
            return self.sync_local(key).await;
        }
        self.store
            .put(&path, PutPayload::from(data))
            .await
            .map_err(|e| Error::cold("put", key, e))?;
        self.sync_local(key).await
    }

    #[instrument(level = "debug", skip(self, reader))]
    async fn put_reader(
        &self,
        key: &str,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        let path = object_path(key)?;
        let first = read_chunk(reader, PART_SIZE).await?;
        if first.len() < PART_SIZE {
            let size = first.len() as u64;
            self.store
                .put(&path, PutPayload::from(first))
                .await
                .map_err(|e| Error::cold("put", key, e))?;
            self.sync_local(key).await?;
            return Ok(size);
        }
        let size = self.put_multipart(key, &path, first, reader).await?;
        self.sync_local(key).await?;
        debug!(key, size, "multipart upload complete");
        Ok(size)
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let path = object_path(key)?;
        let result = self.store.get(&path).await.map_err(|e| Error::cold("get", key, e))?;
        result.bytes().await.map_err(|e| Error::cold("get", key, e))
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        let path = object_path(key)?;
        let result = self.store.get(&path).await.map_err(|e| Error::cold("get", key, e))?;
        let key = key.to_string();
        Ok(result.into_stream().map_err(move |e| Error::cold("get", &key, e)).boxed())
    }

    async fn head(&self, key: &str) -> Result<Option<BlobInfo>> {
        let path = object_path(key)?;
        match self.store.head(&path).await {
            Ok(meta) => Ok(Some(BlobInfo { key: key.to_string(), size: meta.size })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::cold("head", key, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = object_path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::cold("delete", key, e)),
        }
    }

    #[instrument(level = "debug", skip(self))]
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let blobs = self.list(prefix).await?;
        let paths = futures::stream::iter(blobs.into_iter().map(|b| Ok(Path::from(b.key)))).boxed();
        let mut deleted = 0u64;
        let mut results = self.store.delete_stream(paths);
        while let Some(result) = results.next().await {
            match result {
                Ok(_) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::cold("delete_prefix", prefix, e)),
            }
        }
        Ok(deleted)
    }

    async fn check(&self) -> Result<()> {
        // One page of a listing at most: cheap even on a huge bucket.
        match self.store.list(None).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(Error::cold("check (list)", "", e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobInfo>> {
        validate_prefix(prefix)?;
        // object_store lists by whole path segments; list the parent "directory" and filter, so
        // prefixes are plain string prefixes in every backend (like the hot store's).
        let parent = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let parent = if parent.is_empty() { None } else { Some(object_path(parent)?) };
        let mut out: Vec<BlobInfo> = self
            .store
            .list(parent.as_ref())
            .map_err(|e| Error::cold("list", prefix, e))
            .try_filter_map(|meta| async move {
                let key = meta.location.to_string();
                Ok(key.starts_with(prefix).then_some(BlobInfo { key, size: meta.size }))
            })
            .try_collect()
            .await?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}
