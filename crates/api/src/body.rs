//! Request bodies under the configured size limit, with our error codes: small ones (JSON,
//! images, receipts) read whole, inputs streamed into the cold store part by part so a 1 GiB
//! input never sits in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use tiffin_storage::ColdStore;
use tokio_util::io::StreamReader;

use crate::ApiError;

/// How much of an oversized body we read and throw away before answering 413. Most clients
/// (reqwest, curl without `Expect: 100-continue`) write the whole body before reading the
/// response; if we answered and closed at once, the unread bytes would make the kernel reset
/// the connection and the client would see "connection reset" instead of our coded error.
/// Past this grace (or [`DRAIN_TIME`]) we stop reading and hyper closes the connection, so a
/// hostile sender cannot make us swallow an endless stream.
const DRAIN_GRACE: u64 = 8 << 20;
/// Longest we keep draining an oversized body.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads and discards what is left of a refused body, up to [`DRAIN_GRACE`] bytes.
async fn drain<S, E>(mut stream: S)
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
{
    let discard = async {
        let mut seen = 0u64;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len() as u64;
            if seen > DRAIN_GRACE {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

/// The declared `Content-Length`, if any.
fn declared(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Rejects a declared `Content-Length` over the limit before storing anything (what was
/// sent is drained, see [`DRAIN_GRACE`]); otherwise hands the body back.
async fn check_declared(headers: &HeaderMap, body: Body, limit: u64) -> Result<Body, ApiError> {
    match declared(headers) {
        Some(n) if n > limit => {
            if n <= DRAIN_GRACE {
                drain(body.into_data_stream()).await;
            }
            Err(ApiError::TooLarge { limit })
        }
        _ => Ok(body),
    }
}

/// Reads the whole body, failing with 413 past `limit` bytes.
pub async fn read(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let mut stream = check_declared(headers, body, limit).await?.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidBody(format!("reading the body: {e}")))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            drain(stream).await;
            return Err(ApiError::TooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads and parses a JSON body: syntax errors are TIFFIN-API-010, shape errors (missing
/// fields, wrong types, negative numbers) TIFFIN-API-011.
pub async fn json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> Result<T, ApiError> {
    let bytes = read(headers, body, limit).await?;
    if bytes.is_empty() {
        return Err(ApiError::MalformedJson("the body is empty; send a JSON object".into()));
    }
    serde_json::from_slice(&bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidBody(e.to_string()),
        _ => ApiError::MalformedJson(e.to_string()),
    })
}

/// Streams the body into the cold store under `key`; returns the size. Past `limit` the
/// upload is abandoned (the store never shows a partial blob) and 413 returned.
pub async fn stream_to_store(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
    store: &Arc<dyn ColdStore>,
    key: &str,
) -> Result<u64, ApiError> {
    let body = check_declared(headers, body, limit).await?;
    let over = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (o, s) = (over.clone(), seen.clone());
    let stream = body.into_data_stream().map_err(std::io::Error::other).and_then(move |chunk| {
        let total = s.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
        let result = if total > limit {
            o.store(true, Ordering::Relaxed);
            Err(std::io::Error::other("body over the size limit"))
        } else {
            Ok(chunk)
        };
        futures::future::ready(result)
    });
    let mut reader = StreamReader::new(Box::pin(stream));
    match store.put_reader(key, &mut reader).await {
        Ok(n) => Ok(n),
        Err(_) if over.load(Ordering::Relaxed) => {
            let _ = store.delete(key).await;
            // The wrapped stream keeps yielding (an error per chunk, still counted in `seen`)
            // until the body ends; stop once the grace is used up.
            let rest = reader
                .into_inner()
                .take_while(move |_| {
                    futures::future::ready(seen.load(Ordering::Relaxed) <= limit + DRAIN_GRACE)
                })
                .map(|_| Ok::<_, ()>(Bytes::new()));
            drain(Box::pin(rest)).await;
            Err(ApiError::TooLarge { limit })
        }
        Err(e) => {
            let _ = store.delete(key).await;
            Err(e.into())
        }
    }
}
