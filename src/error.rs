//! The library's error type: every variant names the file, field or argument at fault.

use std::path::PathBuf;

/// Errors raised by the spex library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is out of its valid range.
    #[error("invalid `{field}`: {reason}")]
    InvalidArgument {
        /// The parameter's name as the library spells it (e.g. `shard`, `layers`); the CLI names
        /// its flag.
        field: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },

    /// A file could not be read, written or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file at fault.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A plan or spectrum is over another number of players than the job's heads.
    #[error("{source_name}: for {found} players, but layers {layers} hold {expected} heads")]
    PlayersMismatch {
        /// Where the plan or spectrum came from (a folder or file).
        source_name: String,
        /// Its number of players.
        found: usize,
        /// The job's number of head players.
        expected: usize,
        /// The job's layers, e.g. `0-29`.
        layers: String,
    },

    /// A spectrum from a run over the heads of other layers than the job's.
    #[error("{source_name} is over the heads of layers {theirs}, but this job's players are layers {ours}")]
    LayersMismatch {
        /// The file that records the spectrum's layers (heads.json).
        source_name: String,
        /// The spectrum's layers, e.g. `2-3`.
        theirs: String,
        /// The job's layers.
        ours: String,
    },

    /// A spectrum (prune's `--from`) over another number of heads than the job's players.
    #[error("{source_name}: a spectrum over {found} heads, but layers {layers} hold {expected}")]
    SpectrumPlayersMismatch {
        /// The spectrum file.
        source_name: String,
        /// Its number of players.
        found: usize,
        /// The job's number of head players.
        expected: usize,
        /// The job's layers, e.g. `0-29`.
        layers: String,
        /// Query heads per layer of the model.
        heads_per_layer: usize,
    },

    /// An output folder holds another plan than the job's options make.
    #[error("{path} holds another plan than these options make ({differences}); use another output folder, or the options that made it")]
    PlanMismatch {
        /// The folder's plan.json.
        path: PathBuf,
        /// The first setting that differs, as plan.json names it (`budget`, `seed`, ...).
        field: String,
        /// Its value in the folder's plan.json.
        theirs: String,
        /// Every differing setting: `budget 200 there, 300 here; ...`.
        differences: String,
    },

    /// The caller stopped a job between two stored batches ([`crate::progress::Watch`]).
    #[error("stopped by the caller with {stored} of {total} values stored in {path}; the same job run again resumes there")]
    Interrupted {
        /// The value log the job was filling.
        path: PathBuf,
        /// Values stored in it for this stage.
        stored: usize,
        /// Values the stage needs.
        total: usize,
    },

    /// The math failed: a design, a decoder, values that do not fit a plan.
    #[error(transparent)]
    Sparse(#[from] crate::sparse::Error),

    /// Finding, loading or running a model failed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

/// A value function's error as the math sees it: the math's own errors come back unwrapped.
impl From<Error> for crate::sparse::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Sparse(inner) => inner,
            other => crate::sparse::Error::value_function(other),
        }
    }
}

/// Result alias for the library.
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
}
