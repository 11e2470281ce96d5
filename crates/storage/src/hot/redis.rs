//! The distributed hot store on Redis.
//!
//! Every agent process shares one Redis. Blobs live under `<namespace>:blob:<key>`; usage and
//! peak are counters (`<namespace>:usage`, `<namespace>:peak`) updated by Lua scripts in the same
//! atomic step as each write or delete, so all processes see one exact usage number, overwrites
//! are counted once, and a budgeted put cannot overshoot under concurrency.
//!
//! On connect the store refuses a Redis whose `maxmemory-policy` evicts keys: an evicted segment
//! is a lost input and a failed job (Bento shipped `allkeys-lru`). Standalone Redis only: the
//! scripts touch several keys, which Redis Cluster would need in one hash slot.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::{AsyncCommands, Script, aio::ConnectionManager};
use tracing::{info, warn};

use super::store::HotStore;
use crate::{
    Error, Result,
    cold::redact_url,
    key::{validate_key, validate_prefix},
};

/// Default key namespace (the `namespace=` parameter of the Redis URL overrides it).
pub const DEFAULT_NAMESPACE: &str = "tiffin";

/// How long connecting (with retries) may take before giving up with a coded error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// KEYS: blob, usage, peak. ARGV: data, budget (-1 for none). Returns 1 if written, 0 if refused.
const PUT_SCRIPT: &str = r"
local old = redis.call('STRLEN', KEYS[1])
local new = string.len(ARGV[1])
local budget = tonumber(ARGV[2])
local usage = tonumber(redis.call('GET', KEYS[2]) or '0')
if budget >= 0 and usage - old + new > budget then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
usage = redis.call('INCRBY', KEYS[2], new - old)
if usage > tonumber(redis.call('GET', KEYS[3]) or '0') then redis.call('SET', KEYS[3], usage) end
return 1
";

/// KEYS: usage, blob... Returns how many blobs existed and were deleted.
const DELETE_SCRIPT: &str = r"
local freed, deleted = 0, 0
for i = 2, #KEYS do
  local size = redis.call('STRLEN', KEYS[i])
  if redis.call('DEL', KEYS[i]) == 1 then
    freed = freed + size
    deleted = deleted + 1
  end
end
if freed > 0 then redis.call('DECRBY', KEYS[1], freed) end
return deleted
";

/// KEYS: usage, peak. Sets the peak to the current usage.
const RESET_PEAK_SCRIPT: &str = r"
redis.call('SET', KEYS[2], tonumber(redis.call('GET', KEYS[1]) or '0'))
return 1
";

/// A [`HotStore`] on a standalone Redis server (which must run with `noeviction`).
#[derive(Clone)]
pub struct RedisHotStore {
    conn: ConnectionManager,
    url: String,
    namespace: String,
    budget: Option<u64>,
    put: Script,
    delete: Script,
    reset_peak: Script,
}

impl std::fmt::Debug for RedisHotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHotStore")
            .field("url", &self.url)
            .field("namespace", &self.namespace)
            .field("budget", &self.budget)
            .finish()
    }
}

/// Escapes Redis glob characters so a prefix matches literally in `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits `redis://…?namespace=NS` into the URL the client understands and the namespace.
pub(crate) fn split_namespace(spec: &str) -> Result<(String, Option<String>)> {
    let mut url = url::Url::parse(spec)
        .map_err(|e| Error::config("Redis URL", redact_url(spec), e.to_string()))?;
    if !matches!(url.scheme(), "redis" | "rediss" | "redis+unix" | "unix") {
        return Err(Error::config(
            "Redis URL",
            redact_url(spec),
            "it must start with redis:// or rediss://",
        ));
    }
    let mut namespace = None;
    let rest: Vec<(String, String)> = url
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "namespace" {
                namespace = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    if rest.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(rest);
    }
    if let Some(ns) = &namespace
        && (ns.is_empty() || ns.contains(|c: char| c.is_whitespace() || c.is_control()))
    {
        return Err(Error::config(
            "Redis namespace",
            ns.clone(),
            "it must be non-empty, without spaces",
        ));
    }
    Ok((url.to_string(), namespace))
}

/// A client for `url`, trusting exactly `ca_file` when given (which needs `rediss://`).
fn open_client(
    url: &str,
    ca_file: Option<&std::path::Path>,
) -> std::result::Result<redis::Client, String> {
    let Some(ca) = ca_file else { return redis::Client::open(url).map_err(|e| e.to_string()) };
    if !url.starts_with("rediss://") {
        return Err("a CA file (--ca-file) needs a rediss:// URL".into());
    }
    let pem = std::fs::read(ca).map_err(|e| format!("reading CA file {}: {e}", ca.display()))?;
    let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
    redis::Client::build_with_tls(url, certs).map_err(|e| e.to_string())
}

/// Opens the reconnecting connection, giving up after [`CONNECT_TIMEOUT`].
async fn connect_manager(
    client: &redis::Client,
    shown: &str,
) -> Result<redis::aio::ConnectionManager> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(5))
        .set_response_timeout(Duration::from_secs(60))
        // Reconnects: up to 2 retries about 1 s apart; later commands reconnect again.
        .set_factor(2)
        .set_max_delay(1_000)
        .set_number_of_retries(2);
    let connect_err = |source| Error::Redis { op: "connect", url: shown.to_string(), source };
    tokio::time::timeout(CONNECT_TIMEOUT, client.get_connection_manager_with_config(config))
        .await
        .map_err(|_| {
            connect_err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {CONNECT_TIMEOUT:?}"),
            )))
        })?
        .map_err(connect_err)
}

/// Refuses a server that may evict keys, and warns where `budget` exceeds its `maxmemory`.
async fn check_memory_policy(
    conn: &mut redis::aio::ConnectionManager,
    shown: &str,
    budget: Option<u64>,
) -> Result<()> {
    let policy: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async(conn).await.map_err(
            |e| Error::RedisPolicyUnknown { url: shown.to_string(), reason: e.to_string() },
        )?;
    let policy = policy.get(1).cloned().ok_or_else(|| Error::RedisPolicyUnknown {
        url: shown.to_string(),
        reason: "CONFIG GET returned no value".to_string(),
    })?;
    if policy != "noeviction" {
        return Err(Error::RedisEvictingPolicy { url: shown.to_string(), policy });
    }
    let maxmemory: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(conn)
        .await
        .unwrap_or_default();
    let maxmemory: u64 = maxmemory.get(1).and_then(|m| m.parse().ok()).unwrap_or(0);
    if let Some(budget) = budget
        && maxmemory > 0
        && budget > maxmemory
    {
        warn!(
            budget,
            maxmemory,
            "hot-store budget exceeds Redis maxmemory; writes will fail with OOM before the budget is reached"
        );
    }
    Ok(())
}

impl RedisHotStore {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`, optionally `?namespace=NS`,
    /// which overrides `namespace`), checks that the server does not evict keys, and loads the
    /// scripts. `namespace` prefixes every key, so clusters can share a Redis.
    pub async fn connect(url: &str, namespace: Option<&str>, budget: Option<u64>) -> Result<Self> {
        Self::connect_with_ca(url, namespace, budget, None).await
    }

    /// [`connect`](Self::connect) to a `rediss://` server whose certificate `ca_file` (PEM)
    /// signed; with a CA file only that CA is trusted, without one the system's roots.
    pub async fn connect_with_ca(
        url: &str,
        namespace: Option<&str>,
        budget: Option<u64>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self> {
        let (client_url, url_namespace) = split_namespace(url)?;
        let namespace = url_namespace
            .or(namespace.map(str::to_string))
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        let shown = redact_url(url);
        let client = open_client(&client_url, ca_file)
            .map_err(|e| Error::config("Redis URL", shown.clone(), e))?;
        let mut conn = connect_manager(&client, &shown).await?;
        check_memory_policy(&mut conn, &shown, budget).await?;
        let store = Self {
            conn,
            url: shown,
            namespace,
            budget,
            put: Script::new(PUT_SCRIPT),
            delete: Script::new(DELETE_SCRIPT),
            reset_peak: Script::new(RESET_PEAK_SCRIPT),
        };
        store.load_scripts().await?;
        info!(url = %store.url, namespace = %store.namespace, ?budget, "connected to Redis hot store");
        Ok(store)
    }

    /// Loads the scripts now, so a 50 MB put is not sent twice on a NOSCRIPT miss.
    async fn load_scripts(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        for script in [&self.put, &self.delete, &self.reset_peak] {
            script
                .prepare_invoke()
                .load_async(&mut conn)
                .await
                .map_err(self.err("load scripts"))?;
        }
        Ok(())
    }

    /// The key namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn blob_key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}:blob:{key}", self.namespace))
    }

    fn usage_key(&self) -> String {
        format!("{}:usage", self.namespace)
    }

    fn peak_key(&self) -> String {
        format!("{}:peak", self.namespace)
    }

    fn err(&self, op: &'static str) -> impl FnOnce(redis::RedisError) -> Error + '_ {
        move |source| Error::Redis { op, url: self.url.clone(), source }
    }

    async fn write(&self, key: &str, data: Bytes, budget: Option<u64>) -> Result<bool> {
        let blob = self.blob_key(key)?;
        let budget = budget.map_or(-1i64, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let written: i64 = self
            .put
            .key(blob)
            .key(self.usage_key())
            .key(self.peak_key())
            .arg(data.as_ref())
            .arg(budget)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(self.err("put"))?;
        Ok(written == 1)
    }

    async fn counter(&self, key: String, op: &'static str) -> Result<u64> {
        let v: Option<i64> = self.conn.clone().get(key).await.map_err(self.err(op))?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }
}

#[async_trait]
impl HotStore for RedisHotStore {
    fn describe(&self) -> String {
        format!("{} (namespace {})", self.url, self.namespace)
    }

    fn budget(&self) -> Option<u64> {
        self.budget
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.write(key, data, None).await.map(|_| ())
    }

    async fn try_put_within_budget(&self, key: &str, data: Bytes) -> Result<bool> {
        self.write(key, data, self.budget).await
    }

    async fn get_opt(&self, key: &str) -> Result<Option<Bytes>> {
        let blob = self.blob_key(key)?;
        let v: Option<Vec<u8>> = self.conn.clone().get(blob).await.map_err(self.err("get"))?;
        Ok(v.map(Bytes::from))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let blob = self.blob_key(key)?;
        self.conn.clone().exists(blob).await.map_err(self.err("exists"))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let blob = self.blob_key(key)?;
        let n: i64 = self
            .delete
            .key(self.usage_key())
            .key(blob)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(self.err("delete"))?;
        Ok(n > 0)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        validate_prefix(prefix)?;
        let pattern = format!("{}*", glob_escape(&format!("{}:blob:{prefix}", self.namespace)));
        let mut conn = self.conn.clone();
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(self.err("delete_prefix scan"))?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        let mut deleted = 0u64;
        for batch in keys.chunks(256) {
            let mut inv = self.delete.key(self.usage_key());
            for k in batch {
                inv.key(k);
            }
            let n: i64 = inv
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(self.err("delete_prefix"))?;
            deleted += n.max(0) as u64;
        }
        Ok(deleted)
    }

    async fn usage(&self) -> Result<u64> {
        self.counter(self.usage_key(), "usage").await
    }

    async fn peak_usage(&self) -> Result<u64> {
        self.counter(self.peak_key(), "peak_usage").await
    }

    async fn reset_peak(&self) -> Result<()> {
        let _: i64 = self
            .reset_peak
            .key(self.usage_key())
            .key(self.peak_key())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(self.err("reset_peak"))?;
        Ok(())
    }
}
