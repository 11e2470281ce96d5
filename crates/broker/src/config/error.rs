//! Errors of the broker's configuration, each with a stable code `TIFFIN-BROKER-00x`
//! (001..009 belong to the configuration; 006..009 are reserved).

use std::path::PathBuf;

/// Everything that can go wrong reading, checking or watching `broker.toml`.
#[derive(Debug, thiserror::Error, tiffin_codes::Coded)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("TIFFIN-BROKER-001: cannot read the broker config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, a value of the wrong type or an unreadable value (an amount,
    /// an address, a priority name); `message` is toml's, with the line and column.
    #[error("TIFFIN-BROKER-002: {}{message}", key_prefix(key))]
    Parse {
        /// The key as `section.key`, when the error could be placed on one.
        key: Option<String>,
        /// toml's message.
        message: String,
    },
    /// A value of the right type that is out of range.
    #[error("TIFFIN-BROKER-003: invalid {key}: {reason}")]
    Invalid {
        /// The key as `section.key`.
        key: String,
        /// What the value must be.
        reason: String,
    },
    /// The file's directory could not be watched for changes.
    #[error("TIFFIN-BROKER-004: cannot watch {} for changes: {source}", path.display())]
    Watch {
        /// The watched directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: notify::Error,
    },
    /// The configuration could not be written as TOML.
    #[error("TIFFIN-BROKER-005: cannot write the broker config as TOML: {0}")]
    Serialize(#[from] toml::ser::Error),
}

impl ConfigError {
    /// The key the error is about, as `section.key`, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Parse { key, .. } => key.as_deref(),
            Self::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// A toml error in `text`, placed on the `section.key` its position falls in.
    pub(crate) fn parse(text: &str, error: &toml::de::Error) -> Self {
        let key = error.span().and_then(|span| key_at(text, span.start));
        Self::Parse { key, message: error.to_string().trim_end().to_string() }
    }

    /// `key` (as `section.key`) holds a value out of range.
    pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> Self {
        Self::Invalid { key: key.to_string(), reason: reason.into() }
    }
}

fn key_prefix(key: &Option<String>) -> String {
    key.as_ref().map(|key| format!("{key}: ")).unwrap_or_default()
}

/// What one line of a TOML file starts.
enum Line<'a> {
    /// `[section]` (or `[[section]]`).
    Header(&'a str),
    /// `key = …`.
    Key(&'a str),
    /// Anything else: blank, a comment, an array's continuation.
    Other,
}

/// The `section.key` (or the section, for a `[section]` line) that byte `offset` of `text`
/// belongs to: the nearest key line at or above it and the header above that. toml's errors
/// carry the position, not the key path, of what they refuse.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let at = before.matches('\n').count();
    let mut lines = text.lines().take(at + 1).collect::<Vec<_>>().into_iter().rev();
    let key = loop {
        match classify(lines.next()?) {
            Line::Header(section) => return Some(section.to_string()),
            Line::Key(key) => break key,
            Line::Other => {}
        }
    };
    let section = lines.find_map(|line| match classify(line) {
        Line::Header(section) => Some(section),
        _ => None,
    });
    Some(section.map_or_else(|| key.to_string(), |section| format!("{section}.{key}")))
}

/// What `line` is.
fn classify(line: &str) -> Line<'_> {
    let line = line.trim();
    if let Some(header) = line.strip_prefix('[') {
        let name = header.trim_start_matches('[').split(']').next().unwrap_or_default().trim();
        return if name.is_empty() { Line::Other } else { Line::Header(unquote(name)) };
    }
    match line.split_once('=') {
        Some((key, _)) if is_key(key.trim()) => Line::Key(unquote(key.trim())),
        _ => Line::Other,
    }
}

/// Whether `key` is a bare, dotted or quoted TOML key (not a string in an array).
fn is_key(key: &str) -> bool {
    let bare = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let quoted = key.len() >= 2 && key.starts_with('"') && key.ends_with('"');
    !key.is_empty() && (key.chars().all(bare) || quoted)
}

fn unquote(key: &str) -> &str {
    key.strip_prefix('"').and_then(|key| key.strip_suffix('"')).unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "top = 1\n[market]\n# a comment\nmin_mcycle_price = \"x\"\n\
                        list = [\n  \"a\",\n  \"b\",\n]\n[prover]\n";

    fn offset_of(needle: &str) -> usize {
        TEXT.find(needle).unwrap()
    }

    #[test]
    fn positions_map_to_section_and_key() {
        assert_eq!(key_at(TEXT, 0).as_deref(), Some("top"));
        assert_eq!(key_at(TEXT, offset_of("\"x\"")).as_deref(), Some("market.min_mcycle_price"));
        assert_eq!(key_at(TEXT, offset_of("\"b\"")).as_deref(), Some("market.list"));
        assert_eq!(key_at(TEXT, offset_of("prover")).as_deref(), Some("prover"));
        assert_eq!(key_at(TEXT, offset_of("# a")).as_deref(), Some("market"), "no key above");
    }

    #[test]
    fn codes_lead_the_message() {
        let err = ConfigError::invalid("market.max_concurrent_proofs", "must be at least 1");
        assert_eq!(err.code(), "TIFFIN-BROKER-003");
        assert_eq!(err.key(), Some("market.max_concurrent_proofs"));
        assert_eq!(
            err.to_string(),
            "TIFFIN-BROKER-003: invalid market.max_concurrent_proofs: must be at least 1"
        );
        let err = ConfigError::Parse { key: None, message: "m".into() };
        assert_eq!(err.to_string(), "TIFFIN-BROKER-002: m");
    }
}
