//! Windows console events: the clean shutdown on close, logoff and system
//! shutdown, inside the time Windows gives.
//!
//! When its console window is closed, its user logs off or the system
//! shuts down, Windows sends a console process `CTRL_CLOSE_EVENT`,
//! `CTRL_LOGOFF_EVENT` or `CTRL_SHUTDOWN_EVENT` and ends it about
//! [`SHUTDOWN_BUDGET`] (5 s) later, wherever it is. That kill loses no
//! acknowledged write (a commit is in the WAL file; the next open recovers
//! it), but it leaves the WAL un-checkpointed and the session unreported.
//! [`shutdown_on_console_event`] runs [`WalGuard::shutdown`] instead: drain,
//! TRUNCATE under its deadline, close, report, all within
//! [`CONSOLE_SHUTDOWN_BUDGET`].
//!
//! ```no_run
//! use walguard::Settings;
//! use walguard_actors::WalGuard;
//! use walguard_actors::console::{self, ConsoleEvents};
//!
//! #[actix::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let events = ConsoleEvents::listen()?; // before the work starts
//!     let guard = WalGuard::start(Settings::load(None)?)?;
//!     guard.start_checkpoint_loop();
//!     let db = guard.db().clone(); // hand this to the engine
//!     # drop(db);
//!     let stopped = console::shutdown_on_console_event(guard, events).await?;
//!     println!("{}: {}", stopped.event, stopped.report);
//!     Ok(()) // returning from main ends the process at once
//! }
//! ```
//!
//! # How the event arrives
//!
//! Windows calls the console control handler on a thread of its own and
//! ends the process as soon as the handler returns from one of these three
//! events. The listeners are tokio's ([`tokio::signal::windows`]), whose
//! handler wakes the listener and then never returns, so the process lives
//! on until it exits by itself (returning from `main`) or Windows' budget
//! runs out. Nothing here blocks that thread or extends the budget: the
//! shutdown runs on the actix system as usual, under its own deadlines
//! ([`WalGuard::shutdown_budget`], 4 s with the defaults), and
//! [`shutdown_on_console_event`] stops waiting at [`CONSOLE_SHUTDOWN_BUDGET`]
//! whatever happens.
//!
//! # A Windows service
//!
//! A service gets no console events: the service control manager sends its
//! stop and shutdown controls to the service's own control handler. Run
//! [`WalGuard::shutdown`] from there, and report `SERVICE_STOP_PENDING`
//! with a wait hint of at least [`WalGuard::shutdown_budget`];
//! docs/operations.md has the details.

use std::time::{Duration, Instant};

use tokio::signal::windows::{CtrlClose, CtrlLogoff, CtrlShutdown};
use walguard::SessionReport;
use walguard::settings::SHUTDOWN_BUDGET;

pub use crate::console_event::ConsoleEvent;
use crate::error::{Error, Result};
use crate::system::WalGuard;

/// The longest [`shutdown_on_console_event`] waits for the shutdown: the
/// time Windows gives, [`SHUTDOWN_BUDGET`], less 500 ms for printing the
/// report and exiting: 4.5 s.
pub const CONSOLE_SHUTDOWN_BUDGET: Duration =
    SHUTDOWN_BUDGET.saturating_sub(Duration::from_millis(500));

/// Listeners for the three console events. Create them early (before the
/// engine starts writing): an event that comes before any listener exists
/// ends the process with Windows' default action.
#[derive(Debug)]
pub struct ConsoleEvents {
    close: CtrlClose,
    logoff: CtrlLogoff,
    shutdown: CtrlShutdown,
}

impl ConsoleEvents {
    /// Installs the listeners.
    ///
    /// # Errors
    ///
    /// [`Error::ConsoleHandler`] when Windows refuses the console control
    /// handler (`SetConsoleCtrlHandler`).
    pub fn listen() -> Result<Self> {
        let err = |event| move |source| Error::ConsoleHandler { event, source };
        Ok(Self {
            close: tokio::signal::windows::ctrl_close().map_err(err(ConsoleEvent::Close))?,
            logoff: tokio::signal::windows::ctrl_logoff().map_err(err(ConsoleEvent::Logoff))?,
            shutdown: tokio::signal::windows::ctrl_shutdown()
                .map_err(err(ConsoleEvent::Shutdown))?,
        })
    }

    /// Waits for the next of the three events.
    pub async fn recv(&mut self) -> ConsoleEvent {
        tokio::select! {
            _ = self.close.recv() => ConsoleEvent::Close,
            _ = self.logoff.recv() => ConsoleEvent::Logoff,
            _ = self.shutdown.recv() => ConsoleEvent::Shutdown,
        }
    }
}

/// The end of a session stopped by a console event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConsoleShutdown {
    /// The event that stopped it.
    pub event: ConsoleEvent,
    /// The session report of [`WalGuard::shutdown`].
    pub report: SessionReport,
    /// From the event to the report.
    pub took: Duration,
}

/// Checks that `guard`'s whole shutdown fits in [`CONSOLE_SHUTDOWN_BUDGET`].
///
/// # Errors
///
/// [`Error::ConsoleBudget`] when [`WalGuard::shutdown_budget`] is longer:
/// Windows could end the process in the middle of the shutdown. Lower
/// `database.busy_timeout` or `checkpoint.shutdown_timeout`.
pub fn check_budget(guard: &WalGuard) -> Result<()> {
    let needs = guard.shutdown_budget();
    if needs > CONSOLE_SHUTDOWN_BUDGET {
        return Err(Error::ConsoleBudget {
            needs,
            budget: CONSOLE_SHUTDOWN_BUDGET,
        });
    }
    Ok(())
}

/// Waits for a console close, logoff or shutdown event, then runs
/// [`WalGuard::shutdown`] (drain, TRUNCATE under its deadline, close,
/// report) and returns its report, within [`CONSOLE_SHUTDOWN_BUDGET`] of
/// the event. Return from `main` (or exit) soon after: Windows ends the
/// process at [`SHUTDOWN_BUDGET`] anyway.
///
/// Stop the engine's own work when this returns or, better, select on
/// [`ConsoleEvents::recv`] yourself, stop the engine, and call
/// [`WalGuard::shutdown`] under [`CONSOLE_SHUTDOWN_BUDGET`]: this function
/// is that, for an engine that needs no step of its own.
///
/// # Errors
///
/// [`Error::ConsoleBudget`] at once, before waiting, when the settings'
/// shutdown does not fit the budget ([`check_budget`]);
/// [`Error::ConsoleDeadline`] when the shutdown has not answered at the end
/// of the budget (it cannot happen with a budget that fits, as
/// [`WalGuard::shutdown`] keeps its own deadlines); the errors of
/// [`WalGuard::shutdown`].
pub async fn shutdown_on_console_event(
    guard: WalGuard,
    mut events: ConsoleEvents,
) -> Result<ConsoleShutdown> {
    check_budget(&guard)?;
    let event = events.recv().await;
    tracing::info!(
        target: "walguard::system",
        event = %event,
        "console event: draining writes, then TRUNCATE and close"
    );
    let started = Instant::now();
    let report = tokio::time::timeout(CONSOLE_SHUTDOWN_BUDGET, guard.shutdown())
        .await
        .map_err(|_| Error::ConsoleDeadline {
            event,
            budget: CONSOLE_SHUTDOWN_BUDGET,
        })??;
    Ok(ConsoleShutdown {
        event,
        report,
        took: started.elapsed(),
    })
}
