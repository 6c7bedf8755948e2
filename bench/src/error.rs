//! What can end a benchmark run ([`BenchError`]).

use std::path::{Path, PathBuf};

/// What can end a benchmark run.
///
/// This crate's one error enum; its [`BenchError::Actors`] variant carries
/// the engine library's [`walguard_actors::Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Starting the system, the schema, a write, the row count or the
    /// shutdown failed.
    #[error("benchmark on {}: cannot {what}", path.display())]
    Actors {
        /// What was being done, e.g. `start the system`.
        what: &'static str,
        /// The benchmark database.
        path: PathBuf,
        /// What the subsystem said (boxed: it is large).
        #[source]
        source: Box<walguard_actors::Error>,
    },

    /// A writer task ended without an answer (it panicked or was
    /// cancelled).
    #[error("benchmark on {}: a writer task ended abnormally", path.display())]
    Writer {
        /// The benchmark database.
        path: PathBuf,
        /// What the runtime said.
        #[source]
        source: tokio::task::JoinError,
    },

    /// After the run the table does not hold one row per acknowledged write.
    #[error("benchmark on {}: expected {expected} rows after the run, found {found}", path.display())]
    RowCount {
        /// The benchmark database.
        path: PathBuf,
        /// Writes acknowledged.
        expected: u64,
        /// Rows counted.
        found: u64,
    },

    /// The open loop could not be set up or its bookkeeping broke.
    #[error("benchmark on {}: open loop: {reason}", path.display())]
    OpenLoop {
        /// The benchmark database.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The chart could not be drawn or written.
    #[error("cannot write the chart {}: {reason}", path.display())]
    Chart {
        /// The SVG file asked for.
        path: PathBuf,
        /// What the drawing backend said.
        reason: String,
    },
}

impl BenchError {
    /// The `map_err` for a step of the subsystem that failed on the
    /// benchmark database at `path`; `what` names the step.
    pub(crate) fn actors(
        path: &Path,
        what: &'static str,
    ) -> impl FnOnce(walguard_actors::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Actors {
            what,
            path,
            source: Box::new(source),
        }
    }
}
