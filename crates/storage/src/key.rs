//! Blob keys: plain '/'-separated strings such as `images/<id>` or `jobs/<job>/receipt`.
//!
//! Every backend validates keys the same way, so a key that works in the embedded (local) stores
//! also works on S3 and Redis, and no key can escape a local store's directory.

use crate::{Error, Result};

/// Checks that `key` is a usable blob key: non-empty, no leading or trailing '/', no empty,
/// `.` or `..` segments, no control characters, backslashes or '#', and at most 1024 bytes.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidKey { key: key.to_string(), reason });
    if key.is_empty() {
        return bad("it is empty");
    }
    if key.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if key.chars().any(|c| c.is_control()) {
        return bad("it contains control characters");
    }
    if key.contains('\\') {
        return bad("it contains a backslash");
    }
    if key.contains('#') {
        return bad("'#' is reserved (the local object store names its partial uploads with it)");
    }
    for segment in key.split('/') {
        match segment {
            "" => return bad("it has an empty segment (leading, trailing or doubled '/')"),
            "." | ".." => return bad("it has a '.' or '..' segment"),
            s if s.starts_with(".tiffin-tmp") => {
                return bad("segments starting with '.tiffin-tmp' are reserved");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a key prefix for `list` and `delete_prefix`: empty (everything) or a key prefix whose
/// complete segments are valid. A prefix is a plain string prefix: `jobs/a` matches `jobs/a/x`
/// and `jobs/ab`; end it with '/' to mean one "directory".
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    validate_key(trimmed).map_err(|e| match e {
        Error::InvalidKey { reason, .. } => Error::InvalidKey { key: prefix.to_string(), reason },
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "images/abc", "jobs/j1/receipt", "a.b/c-d_e"] {
            validate_key(ok).unwrap();
        }
        for bad in ["", "/a", "a/", "a//b", "../x", "a/./b", "a\nb", "a\\b", "a#1"] {
            let e = validate_key(bad).unwrap_err();
            assert_eq!(e.code(), "TIFFIN-STORAGE-002", "{bad:?}");
        }
        validate_prefix("").unwrap();
        validate_prefix("jobs/").unwrap();
        validate_prefix("jobs/a").unwrap();
        assert!(validate_prefix("/jobs").is_err());
    }
}
