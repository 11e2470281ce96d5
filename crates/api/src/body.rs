//! Request bodies under their kind's cap and pace ([`crate::limits`]), with our error codes:
//! small ones (JSON, images, receipts) read whole, inputs streamed into the cold store part by
//! part so a 1 GiB input never sits in memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream};
use axum::http::HeaderMap;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::time::Instant;
use tiffin_storage::ColdStore;
use tokio::time::{Sleep, sleep_until};
use tokio_util::io::StreamReader;

use crate::error::ApiError;
use crate::limits::Cap;

/// How much of an oversized body we read and throw away before answering 413. Most clients
/// (reqwest, curl without `Expect: 100-continue`) write the whole body before reading the
/// response; if we answered and closed at once, the unread bytes would make the kernel reset
/// the connection and the client would see "connection reset" instead of our coded error.
/// Past this grace (or [`DRAIN_TIME`]) we stop reading and hyper closes the connection, so a
/// hostile sender cannot make us swallow an endless stream.
const DRAIN_GRACE: u64 = 8 << 20;
/// Longest we keep draining an oversized body.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// A request body's data under a [`Cap`]: each chunk is counted against the cap (413 past it)
/// and must come before the body falls behind the cap's [`Pace`](crate::limits::Pace) (408).
struct Limited {
    inner: BodyDataStream,
    cap: Cap,
    seen: u64,
    start: Instant,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl Limited {
    fn new(body: Body, cap: Cap) -> Self {
        let start = Instant::now();
        let deadline = cap.pace.deadline(start, 0).map(|d| Box::pin(sleep_until(d.into())));
        Self { inner: body.into_data_stream(), cap, seen: 0, start, deadline }
    }

    fn too_large(&self) -> ApiError {
        let kind = self.cap.kind;
        ApiError::TooLarge { what: kind.name(), limit: self.cap.bytes, flag: kind.flag() }
    }

    fn too_slow(&self) -> ApiError {
        let pace = self.cap.pace;
        ApiError::SlowBody {
            what: self.cap.kind.name(),
            min_rate: pace.min_bytes_per_sec,
            grace_secs: pace.grace.as_secs(),
        }
    }

    /// Reads and discards what is left of a refused body, up to [`DRAIN_GRACE`] bytes past
    /// the cap and for at most [`DRAIN_TIME`].
    async fn drain(mut self) {
        let stop = self.cap.bytes.saturating_add(DRAIN_GRACE);
        let discard = async {
            while let Some(Ok(chunk)) = self.inner.next().await {
                self.seen += chunk.len() as u64;
                if self.seen > stop {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
    }
}

impl Stream for Limited {
    type Item = Result<Bytes, ApiError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.cap.bytes {
                    return Poll::Ready(Some(Err(self.too_large())));
                }
                if let Some(d) = self.cap.pace.deadline(self.start, self.seen)
                    && let Some(sleep) = self.deadline.as_mut()
                {
                    sleep.as_mut().reset(d.into());
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(ApiError::InvalidBody(format!("reading the body: {e}")))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let late = self.deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if late { Poll::Ready(Some(Err(self.too_slow()))) } else { Poll::Pending }
            }
        }
    }
}

/// The declared `Content-Length`, if any.
pub(crate) fn declared(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Rejects a declared `Content-Length` over the cap before storing anything (what was sent is
/// drained, see [`DRAIN_GRACE`]); otherwise hands the body back, counted against the cap.
async fn limited(headers: &HeaderMap, body: Body, cap: Cap) -> Result<Limited, ApiError> {
    let body = Limited::new(body, cap);
    match declared(headers) {
        Some(n) if n > cap.bytes => {
            let err = body.too_large();
            if n <= DRAIN_GRACE {
                body.drain().await;
            }
            Err(err)
        }
        _ => Ok(body),
    }
}

/// Reads the whole body: 413 past the cap, 408 when it falls behind the cap's pace.
pub async fn read(headers: &HeaderMap, body: Body, cap: Cap) -> Result<Bytes, ApiError> {
    let mut stream = limited(headers, body, cap).await?;
    let mut buf = BytesMut::with_capacity(declared(headers).unwrap_or(0) as usize);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => buf.extend_from_slice(&chunk),
            Err(e @ ApiError::TooLarge { .. }) => {
                stream.drain().await;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(buf.freeze())
}

/// Reads and parses a JSON body: syntax errors are TIFFIN-API-010, shape errors (missing
/// fields, wrong types, negative numbers) TIFFIN-API-011.
pub async fn json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    cap: Cap,
) -> Result<T, ApiError> {
    let bytes = read(headers, body, cap).await?;
    if bytes.is_empty() {
        return Err(ApiError::MalformedJson("the body is empty; send a JSON object".into()));
    }
    serde_json::from_slice(&bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidBody(e.to_string()),
        _ => ApiError::MalformedJson(e.to_string()),
    })
}

/// A blob streamed into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Bytes written.
    pub size: u64,
    /// Hex SHA-256 of those bytes.
    pub sha256: String,
}

/// Streams the body into the cold store under `key`, hashing it on the way; returns its size
/// and digest. Past the cap, or behind its pace, the upload is abandoned (the store never shows
/// a partial blob) and 413 or 408 returned.
pub async fn stream_to_store(
    headers: &HeaderMap,
    body: Body,
    cap: Cap,
    store: &Arc<dyn ColdStore>,
    key: &str,
) -> Result<Stored, ApiError> {
    let body = limited(headers, body, cap).await?;
    // The store sees I/O errors; the first one's reason is kept for the answer.
    let failure = Arc::new(Mutex::new(None));
    let f = failure.clone();
    let mut hasher = Sha256::new();
    let stream = body.inspect_ok(|chunk| hasher.update(chunk)).map_err(move |e| {
        let io = std::io::Error::other(e.to_string());
        f.lock().unwrap().get_or_insert(e);
        io
    });
    let mut reader = StreamReader::new(stream);
    let stored = store.put_reader(key, &mut reader).await;
    let failed = failure.lock().unwrap().take();
    match (stored, failed) {
        (Ok(size), None) => {
            drop(reader);
            Ok(Stored { size, sha256: hex::encode(hasher.finalize()) })
        }
        (_, Some(e)) => {
            let _ = store.delete(key).await;
            if matches!(e, ApiError::TooLarge { .. }) {
                reader.into_inner().into_inner().into_inner().drain().await;
            }
            Err(e)
        }
        (Err(e), None) => {
            let _ = store.delete(key).await;
            Err(e.into())
        }
    }
}
