//! The flags of `tiffin up` and `tiffin api` that bound what requests may take (body caps,
//! request slots, timeouts, tenant rates): see docs/api.md, "Limits".

use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use tiffin_api::limits::{Limits, Pace};
use tiffin_storage::parse_byte_size;

#[derive(Args, Clone)]
pub struct LimitArgs {
    /// Largest program upload, e.g. `64MiB` (read whole to compute its image id; 413
    /// TIFFIN-API-040 past it).
    #[arg(long, env = "TIFFIN_MAX_IMAGE_SIZE", default_value = "64MiB")]
    pub max_image_size: String,
    /// Largest receipt upload, e.g. `64MiB` (read whole to verify it; 413 TIFFIN-API-040).
    #[arg(long, env = "TIFFIN_MAX_RECEIPT_SIZE", default_value = "64MiB")]
    pub max_receipt_size: String,
    /// Largest JSON request body, e.g. `1MiB` (413 TIFFIN-API-040).
    #[arg(long, env = "TIFFIN_MAX_JSON_SIZE", default_value = "1MiB")]
    pub max_json_size: String,
    /// Largest input upload, e.g. `1GiB` (streamed to the store, never held whole; 413
    /// TIFFIN-API-040).
    #[arg(long, alias = "max-body-size", env = "TIFFIN_MAX_INPUT_SIZE", default_value = "1GiB")]
    pub max_input_size: String,
    /// Requests served at once; more are answered 503 TIFFIN-API-053 with Retry-After at
    /// once (/health, /metrics and /openapi.json are always served).
    #[arg(long, env = "TIFFIN_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// Seconds a GET may take before it is answered 408 TIFFIN-API-042.
    #[arg(long, env = "TIFFIN_REQUEST_TIMEOUT", default_value_t = 60)]
    pub request_timeout: u64,
    /// Slowest average rate an upload body may arrive at after --upload-grace, e.g. `64KiB`
    /// (per second; 0 disables); a slower one is answered 408 TIFFIN-API-041.
    #[arg(long, env = "TIFFIN_UPLOAD_MIN_RATE", default_value = "64KiB")]
    pub upload_min_rate: String,
    /// Seconds an upload may take before --upload-min-rate is owed.
    #[arg(long, env = "TIFFIN_UPLOAD_GRACE", default_value_t = 10)]
    pub upload_grace: u64,
    /// Seconds a client may take to send a request's headers before its connection is closed.
    #[arg(long, env = "TIFFIN_HEADER_READ_TIMEOUT", default_value_t = 30)]
    pub header_read_timeout: u64,
    /// Requests per second each tenant may make, in bursts of as many (0: unlimited); over it,
    /// 429 TIFFIN-API-052 with Retry-After.
    #[arg(long, env = "TIFFIN_TENANT_REQUESTS_PER_SEC", default_value_t = 100)]
    pub tenant_requests_per_sec: u32,
}

impl LimitArgs {
    /// The limits these flags set.
    pub fn limits(&self) -> Result<Limits> {
        let size = |flag: &str, v: &str| parse_byte_size(v).with_context(|| format!("--{flag}"));
        anyhow::ensure!(self.max_concurrent_requests > 0, "--max-concurrent-requests must be > 0");
        Ok(Limits {
            max_image_bytes: size("max-image-size", &self.max_image_size)?,
            max_receipt_bytes: size("max-receipt-size", &self.max_receipt_size)?,
            max_json_bytes: size("max-json-size", &self.max_json_size)?,
            max_input_bytes: size("max-input-size", &self.max_input_size)?,
            max_concurrent_requests: self.max_concurrent_requests,
            request_timeout: Duration::from_secs(self.request_timeout),
            upload_pace: Pace {
                min_bytes_per_sec: size("upload-min-rate", &self.upload_min_rate)?,
                grace: Duration::from_secs(self.upload_grace),
            },
            header_read_timeout: Duration::from_secs(self.header_read_timeout),
            tenant_requests_per_sec: self.tenant_requests_per_sec,
        })
    }
}
