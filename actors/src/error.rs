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

    /// Windows refused the console control handler
    /// ([`ConsoleEvents::listen`](crate::console::ConsoleEvents::listen)).
    #[cfg(windows)]
    #[error("cannot listen for the console {event} event")]
    ConsoleHandler {
        /// The event whose listener failed.
        event: crate::console::ConsoleEvent,
        /// What Windows said.
        #[source]
        source: std::io::Error,
    },

    /// The settings' whole shutdown ([`WalGuard::shutdown_budget`](crate::WalGuard::shutdown_budget))
    /// is longer than a console event leaves
    /// ([`console::check_budget`](crate::console::check_budget)).
    #[cfg(windows)]
    #[error(
        "the clean shutdown may take {needs:?}, longer than the {budget:?} a Windows console event leaves; lower database.busy_timeout or checkpoint.shutdown_timeout"
    )]
    ConsoleBudget {
        /// What the shutdown may take with these settings.
        needs: std::time::Duration,
        /// What the console event leaves.
        budget: std::time::Duration,
    },

    /// The shutdown after a console event had not answered at the end of
    /// the budget.
    #[cfg(windows)]
    #[error("the shutdown after the console {event} event did not finish within {budget:?}")]
    ConsoleDeadline {
        /// The event that started the shutdown.
        event: crate::console::ConsoleEvent,
        /// The budget it had.
        budget: std::time::Duration,
    },
}

impl Error {
    pub(crate) fn mailbox(actor: &'static str) -> impl FnOnce(MailboxError) -> Self {
        move |source| Self::Mailbox { actor, source }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
