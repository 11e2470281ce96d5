//! Secrets the service reads from files: the attestor key (`--attestor-key-file`) and the
//! bearer token clients must present (`--token-file`). A file that its group or others may read
//! is refused, and a secret read from a file stays out of `/proc/PID/cmdline` and out of the
//! environment that child processes and guests could see. Secrets never appear in `Debug`
//! output or in error messages.

use crate::error::VerifierError;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Larger files are refused: a key or a token is a line of text.
const MAX_SECRET_BYTES: u64 = 4096;

/// The trimmed text of the secret file at `path`, which only its owner may read.
pub fn read_secret_file(path: &Path) -> Result<String, VerifierError> {
    let shown = path.display().to_string();
    let fail =
        |reason: &str| VerifierError::SecretFile { path: shown.clone(), reason: reason.into() };
    let file = std::fs::File::open(path).map_err(|e| fail(&e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(&e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(VerifierError::SecretFileOpen { path: shown, mode });
    }
    let mut text = String::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|_| fail("not UTF-8 text"))?;
    if text.len() as u64 > MAX_SECRET_BYTES {
        return Err(fail("larger than 4096 bytes"));
    }
    let secret = text.trim();
    if secret.is_empty() {
        return Err(fail("empty"));
    }
    Ok(secret.to_string())
}

/// The token clients send as `Authorization: Bearer TOKEN`.
#[derive(Clone)]
pub struct BearerToken(String);

impl BearerToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Whether `header` (an `Authorization` value) carries this token; the comparison takes the
    /// same time wherever the first difference is.
    pub fn admits(&self, header: Option<&str>) -> bool {
        let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        let (given, want) = (given.trim().as_bytes(), self.0.as_bytes());
        given.len() == want.len()
            && given.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(mode: u32, text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        file
    }

    #[test]
    fn only_files_that_their_owner_alone_can_read_are_accepted() {
        let cases = [
            ("owner read-write", 0o600, "  0xsecret\n", Ok("0xsecret")),
            ("owner read-only", 0o400, "0xsecret", Ok("0xsecret")),
            ("group may read", 0o640, "0xsecret", Err("TIFFIN-VERIFIER-012")),
            ("others may read", 0o604, "0xsecret", Err("TIFFIN-VERIFIER-012")),
            ("world writable", 0o602, "0xsecret", Err("TIFFIN-VERIFIER-012")),
            ("empty", 0o600, " \n", Err("TIFFIN-VERIFIER-011")),
        ];
        for (name, mode, text, want) in cases {
            let file = file_with(mode, text);
            let got = read_secret_file(file.path());
            match (got, want) {
                (Ok(secret), Ok(want)) => assert_eq!(secret, want, "{name}"),
                (Err(e), Err(code)) => {
                    assert_eq!(e.code(), code, "{name}: {e}");
                    assert!(!e.to_string().contains("0xsecret"), "{name}: no content in {e}");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        let missing = read_secret_file(Path::new("/nonexistent/tiffin/key")).unwrap_err();
        assert_eq!(missing.code(), "TIFFIN-VERIFIER-011");
        let big = file_with(0o600, &"k".repeat(5000));
        assert_eq!(read_secret_file(big.path()).unwrap_err().code(), "TIFFIN-VERIFIER-011");
    }

    #[test]
    fn a_bearer_token_admits_exactly_itself_and_never_shows() {
        let token = BearerToken::new("s3cret-token");
        let cases = [
            ("right", Some("Bearer s3cret-token"), true),
            ("missing", None, false),
            ("no scheme", Some("s3cret-token"), false),
            ("other scheme", Some("Basic s3cret-token"), false),
            ("prefix only", Some("Bearer s3cret"), false),
            ("longer", Some("Bearer s3cret-token2"), false),
            ("empty", Some("Bearer "), false),
        ];
        for (name, header, want) in cases {
            assert_eq!(token.admits(header), want, "{name}");
        }
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
