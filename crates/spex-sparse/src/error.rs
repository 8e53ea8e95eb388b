//! The math's error type: every variant names the field, the plan or the values at fault.

use std::path::PathBuf;

/// Errors raised by the decoders, spectra and indices.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is out of its valid range.
    #[error("invalid `{field}`: {reason}")]
    InvalidArgument {
        /// The parameter's name as the library spells it (e.g. `budget`, `keep_probability`).
        field: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },

    /// The budget cannot pay for the method's smallest design.
    #[error("budget {budget} is too small for {method} with n = {n}: the smallest budget that works is {minimum}")]
    BudgetTooSmall {
        /// The method's name.
        method: String,
        /// Number of players.
        n: usize,
        /// The budget asked for (evaluations).
        budget: usize,
        /// The smallest budget the method accepts for this n.
        minimum: usize,
    },

    /// Values handed to a decoder do not fit its plan.
    #[error("values do not fit the plan: {0}")]
    ValuesMismatch(String),

    /// Values contain NaN or infinities.
    #[error("values contain {count} non-finite number(s) (NaN or infinite) at row(s) {rows}")]
    NonFiniteValues {
        /// How many rows are not finite.
        count: usize,
        /// The first offending rows, comma separated.
        rows: String,
    },

    /// A stored plan or spectrum read from `path` is inconsistent.
    #[error("{path}: {reason}")]
    File {
        /// The file the plan or spectrum was read from.
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },

    /// A plan or a decoder would need more memory than the machine has available.
    #[error("{what} need {} of memory, but {} is available ({origin}); lower `{field}`", approx_bytes(*.needed), human_bytes(*.available))]
    InsufficientMemory {
        /// What would be allocated, e.g. "the plan's 10000000000 masks over 270 players".
        what: String,
        /// The parameter that sets the size (`budget`, `held_out`).
        field: String,
        /// Bytes needed (saturated at `u64::MAX`).
        needed: u64,
        /// Bytes available.
        available: u64,
        /// Where the available figure comes from.
        origin: String,
    },

    /// A value function (e.g. a model's forward pass) failed; its own error, unchanged.
    #[error(transparent)]
    ValueFunction(Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias for the math.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::File`].
    pub fn file(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::File {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// Wraps a value function's own error.
    pub fn value_function(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::ValueFunction(Box::new(err))
    }
}

/// Checks that every value is finite; names the offending rows otherwise.
pub fn check_finite(values: &[f64]) -> Result<()> {
    let bad: Vec<usize> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_finite())
        .map(|(i, _)| i)
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<String> = bad.iter().take(10).map(|i| i.to_string()).collect();
    if bad.len() > 10 {
        rows.push(format!("... ({} more)", bad.len() - 10));
    }
    Err(Error::NonFiniteValues {
        count: bad.len(),
        rows: rows.join(", "),
    })
}

/// An estimate of `bytes` for people: `about 400.0 GB`; `u64::MAX` (a saturated count) reads
/// as `more than 18 EB`.
fn approx_bytes(bytes: u64) -> String {
    if bytes == u64::MAX {
        return "more than 18 EB".to_string();
    }
    format!("about {}", human_bytes(bytes))
}

/// `bytes` for people: `512 B`, `3.2 MB`, `400.0 GB`, ... (decimal units).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_in_decimal_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(400_000_000_000), "400.0 GB");
        assert_eq!(human_bytes(3_200_000), "3.2 MB");
        assert_eq!(approx_bytes(3_200_000), "about 3.2 MB");
        assert_eq!(approx_bytes(u64::MAX), "more than 18 EB");
    }
}
