//! S3 cold-store URLs: their settings ([`S3Config`]) and the redaction that keeps their secrets
//! out of messages ([`redact_url`]).

use std::fmt;

use url::Url;

use crate::{Error, Result, validate_prefix};

/// Settings of an S3-compatible cold store.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket ("" for none), from the URL's path.
    pub prefix: String,
    /// Endpoint URL for non-AWS servers (MinIO, Garage, s3s-fs); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region (any value for most non-AWS servers).
    pub region: String,
    /// Access key id; `None` uses `AWS_ACCESS_KEY_ID` (or other AWS credential sources).
    pub access_key_id: Option<String>,
    /// Secret key; `None` uses `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// Session token, for temporary credentials.
    pub session_token: Option<String>,
    /// Allow plain HTTP (loopback MinIO/s3s-fs); defaults to true when the endpoint is `http://`.
    pub allow_http: bool,
    /// Path-style requests (`endpoint/bucket/key`); defaults to true when an endpoint is given.
    pub path_style: bool,
    /// A CA certificate (PEM) an `https://` endpoint's certificate is signed by (`--ca-file`).
    pub ca_file: Option<std::path::PathBuf>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn parse_bool(what: &'static str, spec: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(Error::config(
            what,
            redact_url(spec),
            format!("{value:?} is not a boolean (true/false)"),
        )),
    }
}

/// Removes secrets (passwords, secret keys, tokens) from a URL so it can be logged or shown.
pub fn redact_url(spec: &str) -> String {
    let Ok(mut url) = Url::parse(spec) else {
        return spec.split('?').next().unwrap_or("").to_string();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = matches!(
                    k.as_ref(),
                    "secret_access_key" | "secret_key" | "session_token" | "token" | "password"
                );
                (k.into_owned(), if secret { "***".to_string() } else { v.into_owned() })
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// What [`S3Config::parse`]'s errors name.
const WHAT: &str = "S3 cold store URL";

/// Parses the URL of `spec` and checks its scheme, bucket, lack of credentials and prefix.
fn parse_location(spec: &str) -> Result<(Url, String, String)> {
    let url = Url::parse(spec).map_err(|e| Error::config(WHAT, redact_url(spec), e.to_string()))?;
    if url.scheme() != "s3" {
        return Err(Error::config(WHAT, redact_url(spec), "it must start with s3://"));
    }
    let bucket = url.host_str().unwrap_or("").to_string();
    if bucket.is_empty() {
        return Err(Error::config(WHAT, redact_url(spec), "no bucket: use s3://BUCKET?endpoint=…"));
    }
    if url.username() != "" || url.password().is_some() {
        return Err(Error::config(
            WHAT,
            redact_url(spec),
            "put credentials in access_key_id= / secret_access_key= query parameters or AWS_* variables, not user:pass@",
        ));
    }
    let prefix = url.path().trim_matches('/').to_string();
    if !prefix.is_empty() {
        validate_prefix(&prefix)
            .map_err(|e| Error::config(WHAT, redact_url(spec), e.to_string()))?;
    }
    Ok((url, bucket, prefix))
}

/// The `endpoint=` parameter `v`: an http(s) URL, without a trailing slash.
fn parse_endpoint(spec: &str, v: &str) -> Result<String> {
    let parsed = Url::parse(v)
        .map_err(|e| Error::config(WHAT, redact_url(spec), format!("endpoint {v:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::config(
            WHAT,
            redact_url(spec),
            format!("endpoint {v:?} must be http:// or https://"),
        ));
    }
    Ok(v.trim_end_matches('/').to_string())
}

impl S3Config {
    /// Parses `s3://bucket[/prefix][?endpoint=URL&region=R&access_key_id=K&secret_access_key=S
    /// &session_token=T&allow_http=BOOL&path_style=BOOL]`. Keys not given in the URL come from
    /// the usual AWS environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, …). Region
    /// defaults to `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.
    pub fn parse(spec: &str) -> Result<Self> {
        let (url, bucket, prefix) = parse_location(spec)?;
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".to_string());
        let mut config = S3Config {
            bucket,
            prefix,
            endpoint: None,
            region,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            allow_http: false,
            path_style: false,
            ca_file: None,
        };
        let (allow_http, path_style) = config.apply_query(&url, spec)?;
        let http = config.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
        config.allow_http = allow_http.unwrap_or(http);
        config.path_style = path_style.unwrap_or(config.endpoint.is_some());
        if config.access_key_id.is_some() != config.secret_access_key.is_some() {
            return Err(Error::config(
                WHAT,
                redact_url(spec),
                "give both access_key_id and secret_access_key, or neither",
            ));
        }
        Ok(config)
    }

    /// Applies the URL's query parameters; returns `allow_http` and `path_style` where given.
    fn apply_query(&mut self, url: &Url, spec: &str) -> Result<(Option<bool>, Option<bool>)> {
        let (mut allow_http, mut path_style) = (None, None);
        for (k, v) in url.query_pairs() {
            let v = v.into_owned();
            match k.as_ref() {
                "endpoint" => self.endpoint = Some(parse_endpoint(spec, &v)?),
                "region" => self.region = v,
                "access_key_id" | "access_key" => self.access_key_id = Some(v),
                "secret_access_key" | "secret_key" => self.secret_access_key = Some(v),
                "session_token" | "token" => self.session_token = Some(v),
                "allow_http" => allow_http = Some(parse_bool(WHAT, spec, &v)?),
                "path_style" => path_style = Some(parse_bool(WHAT, spec, &v)?),
                other => {
                    return Err(Error::config(
                        WHAT,
                        redact_url(spec),
                        format!(
                            "unknown parameter {other:?}; known: endpoint, region, access_key_id, \
                             secret_access_key, session_token, allow_http, path_style"
                        ),
                    ));
                }
            }
        }
        Ok((allow_http, path_style))
    }

    /// A description without secrets, for logs.
    pub fn describe(&self) -> String {
        let mut s = format!("s3://{}", self.bucket);
        if !self.prefix.is_empty() {
            s.push('/');
            s.push_str(&self.prefix);
        }
        match &self.endpoint {
            Some(e) => s.push_str(&format!(" (endpoint {e}, region {})", self.region)),
            None => s.push_str(&format!(" (AWS, region {})", self.region)),
        }
        s
    }
}
