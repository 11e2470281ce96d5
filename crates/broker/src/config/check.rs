//! The range checks of `validate()`, each naming the key it refuses as `section.key`.

use super::error::ConfigError;
use alloy::primitives::U256;

/// `value` of `key` must be at least `min`.
pub(super) fn at_least(key: &str, value: u64, min: u64) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::invalid(key, format!("must be at least {min}, got {value}")));
    }
    Ok(())
}

/// `value` of `key` must be at most `max`.
pub(super) fn at_most(key: &str, value: u64, max: u64) -> Result<(), ConfigError> {
    if value > max {
        return Err(ConfigError::invalid(key, format!("must be at most {max}, got {value}")));
    }
    Ok(())
}

/// When both are set, a warning threshold must not be below its error threshold (the warning
/// comes first as the balance falls). `show` writes an amount.
pub(super) fn warn_not_below_error(
    (warn_key, warn): (&str, Option<U256>),
    (error_key, error): (&str, Option<U256>),
    show: fn(U256) -> String,
) -> Result<(), ConfigError> {
    match (warn, error) {
        (Some(warn), Some(error)) if warn < error => Err(ConfigError::invalid(
            warn_key,
            format!("must be at least {error_key} ({}), got {}", show(error), show(warn)),
        )),
        _ => Ok(()),
    }
}
