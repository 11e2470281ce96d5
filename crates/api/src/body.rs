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

/// Rejects a declared `Content-Length` over the limit before reading anything.
fn check_declared(headers: &HeaderMap, limit: u64) -> Result<(), ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(ApiError::TooLarge { limit }),
        _ => Ok(()),
    }
}

/// Reads the whole body, failing with 413 past `limit` bytes.
pub async fn read(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, ApiError> {
    check_declared(headers, limit)?;
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidBody(format!("reading the body: {e}")))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::TooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads and parses a JSON body: syntax errors are TIFFIN-API-010, shape errors (missing
/// fields, wrong types, negative numbers) TIFFIN-API-011.
pub async fn json<T: DeserializeOwned>(headers: &HeaderMap, body: Body, limit: u64) -> Result<T, ApiError> {
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
    check_declared(headers, limit)?;
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
            Err(ApiError::TooLarge { limit })
        }
        Err(e) => {
            let _ = store.delete(key).await;
            Err(e.into())
        }
    }
}
