//! The library's error type: every variant names the file, field or argument at fault.

use std::path::PathBuf;

/// Errors raised by the spex library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument or parameter is out of its valid range.
    #[error("invalid argument `{arg}`: {reason}")]
    InvalidArgument {
        /// The argument's name, as the user would write it (e.g. `--budget`).
        arg: String,
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

    /// A file could not be read, written or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file at fault.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A value function (e.g. a model's forward pass) failed.
    #[error("value function failed")]
    ValueFunction(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// Finding, loading or running a model failed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(arg: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            arg: arg.into(),
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
