//! The actor crate's one error type.

use actix::MailboxError;

/// Everything that can go wrong between an engine and the subsystem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database said no: bad SQL, a constraint, a full disk, a closed
    /// store... The core error names the statement or path.
    #[error(transparent)]
    Db(#[from] walguard::Error),

    /// The actor that should answer is gone (stopped, shut down, or its
    /// arbiter died), or dropped the request.
    #[error("{actor} did not answer")]
    Mailbox {
        /// `DbActor`, `CheckpointActor` or `MetricsActor`.
        actor: &'static str,
        /// What actix said.
        #[source]
        source: MailboxError,
    },

    /// The subsystem was shut down ([`WalGuard::shutdown`](crate::WalGuard::shutdown)):
    /// the writer takes no more requests.
    #[error("walguard was shut down; the writer takes no more requests")]
    ShutDown,

    /// The system was started outside a running actix `System`.
    #[error(
        "walguard must be started inside a running actix System (use #[actix::main] or System::new().block_on)"
    )]
    NoSystem,
}

impl Error {
    pub(crate) fn mailbox(actor: &'static str) -> impl FnOnce(MailboxError) -> Self {
        move |source| Self::Mailbox { actor, source }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
