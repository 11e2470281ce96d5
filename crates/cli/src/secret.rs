//! Secrets from files: keys are read from a file only its owner can read, so they stay out of
//! `/proc/PID/cmdline`, out of the environment (which a guest must never see: a hostile request
//! once asked the broker for `file:///proc/self/environ`) and out of every log.
//!
//! | code            | meaning                                                        |
//! |-----------------|----------------------------------------------------------------|
//! | TIFFIN-CLI-001  | the key file is readable by group or others (chmod 600 it)     |
//! | TIFFIN-CLI-002  | the key file cannot be read, or holds no key                   |

use std::path::Path;

use anyhow::Result;

/// The secret in `path` (surrounding whitespace trimmed): refused when group or others may
/// read the file, when it is not a regular file, too large or empty. The one secret-file reader
/// is the verifier's ([`tiffin_verifier::read_secret_file`]); this gives its refusals the CLI's
/// codes. The error never holds the secret.
pub fn read(path: &Path) -> Result<String> {
    use tiffin_verifier::VerifierError;
    tiffin_verifier::read_secret_file(path).map_err(|e| match e {
        VerifierError::SecretFileOpen { path, mode } => anyhow::anyhow!(
            "TIFFIN-CLI-001: key file {path} has mode {mode:04o}: group or others can read it; \
             run `chmod 600 {path}`"
        ),
        VerifierError::SecretFile { path, reason } => {
            anyhow::anyhow!("TIFFIN-CLI-002: key file {path}: {reason}")
        }
        other => anyhow::anyhow!("TIFFIN-CLI-002: key file {}: {other}", path.display()),
    })
}

/// The secret from `file` when given, else `fallback` (a flag or environment variable).
pub fn from_file_or(file: Option<&Path>, fallback: Option<&str>) -> Result<Option<String>> {
    match file {
        Some(path) => read(path).map(Some),
        None => Ok(fallback.map(str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn only_owner_readable_non_empty_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        let table: &[(&str, &str, u32, Result<&str, &str>)] = &[
            ("owner only", "0xabc\n", 0o600, Ok("0xabc")),
            ("owner read-only", "  key  ", 0o400, Ok("key")),
            ("group readable", "s3cr3t", 0o640, Err("TIFFIN-CLI-001")),
            ("world readable", "s3cr3t", 0o644, Err("TIFFIN-CLI-001")),
            ("empty", "\n", 0o600, Err("TIFFIN-CLI-002")),
        ];
        for (name, text, mode, want) in table {
            let path = write(&name.replace(' ', "-"), text, *mode);
            match (read(&path), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{name}"),
                (Err(e), Err(code)) => {
                    assert!(e.to_string().starts_with(code), "{name}: {e}");
                    let shown = e.to_string();
                    assert!(text.trim().is_empty() || !shown.contains(text.trim()), "{name}");
                }
                (got, want) => panic!("{name}: {got:?}, want {want:?}"),
            }
        }
        let missing = read(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().starts_with("TIFFIN-CLI-002"), "{missing}");
        assert_eq!(from_file_or(None, Some("env")).unwrap().as_deref(), Some("env"));
    }
}
