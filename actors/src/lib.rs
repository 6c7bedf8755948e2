//! The actix shell of walguard: `DbActor`, `CheckpointActor`,
//! `MetricsActor` and `ExposureWatch`, and [`WalGuard`], the system that
//! wires and stops them.
//!
//! ```
//! use walguard::{Settings, Statement};
//! use walguard_actors::WalGuard;
//!
//! let dir = tempfile::tempdir()?;
//! let settings = Settings::for_database(dir.path().join("engine.db"));
//! let report = actix::System::new().block_on(async move {
//!     let guard = WalGuard::start(settings)?;
//!     guard.start_checkpoint_loop();
//!     let db = guard.db();
//!     db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, qty INTEGER)").await?;
//!     db.execute(Statement::new("INSERT INTO orders (qty) VALUES (?1)").bind(5)).await?;
//!     // A read, on a read connection beside the writer: it sees every
//!     // write answered before it.
//!     let qty: i64 = db
//!         .read(|conn| conn.query_row("SELECT sum(qty) FROM orders", [], |r| r.get(0)))
//!         .await?;
//!     assert_eq!(qty, 5);
//!     guard.shutdown().await
//! })?;
//! assert_eq!(report.db.writes_acknowledged, 2);
//! assert_eq!(report.reads.map(|r| r.counts().served), Some(1));
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Overview
//!
//! - [`DbActor`] owns the only write connection ([`walguard::Store`]) and
//!   serializes every write; it is a thin shell that drains its lane into
//!   [`walguard::writer::Writer`], where the writer's policy lives.
//!   [`DbHandle`] is its one door, for engines and actors alike: statements
//!   ([`DbHandle::execute`], group-committed), transactions, typed
//!   closures ([`DbHandle::call`]), checkpoints and figures. A failing
//!   statement returns an error to its sender; the actor keeps serving.
//! - Reads ([`DbHandle::read`], [`DbHandle::query`]) take no lane and no
//!   actor: they run on the read connections of a
//!   [`walguard::read::ReadPool`] (`read.connections`, each on its own
//!   thread, one snapshot per read), concurrently with the writes, bounded
//!   by `read.max_snapshot_age`. The shutdown closes them before its
//!   TRUNCATE.
//! - [`CheckpointActor`] fires PASSIVE checkpoints on an actix `run_interval`
//!   (opt-in), never two in flight, and runs under a `Supervisor` that
//!   restarts it after a fault. Its module doc states the whole policy.
//! - [`MetricsActor`] receives every checkpoint result, logs it, keeps the
//!   rolling window, emits the end-of-session aggregate, and answers the
//!   live status ([`WalGuard::status`]).
//! - [`ExposureWatch`] ([`WalGuard::watch_exposure`]) keeps the exposure
//!   gauges and the checkpoint-starvation warning current.
//! - [`WalGuard::shutdown`] stops them in order and returns the
//!   [`walguard::SessionReport`].
//! - On Windows, `console` runs the clean shutdown on a console close,
//!   logoff or system shutdown, inside the time Windows gives
//!   (`console::shutdown_on_console_event`).
//! - [`telemetry`] names every metric walguard records through the `metrics`
//!   facade (plug in any exporter).
//!
//! # Layout
//!
//! One file per actor, and its messages in the file of the same name under
//! [`messages`]: `db.rs` (the shell of [`walguard::writer::Writer`]),
//! `checkpoint.rs`, `metrics.rs`, `exposure.rs`; `lane.rs` and `handle.rs`
//! ([`DbHandle`]) are the one road to `DbActor`. The modules depend one
//! way: `messages` on none of them; `db` on `lane`; `handle` on `db`; the
//! other actors on `handle` and `messages` (and on the addresses of the
//! actors they send to); [`system`] on all of them, and none of them on
//! `system`.
//!
//! # Testing your engine on a simulated clock
//!
//! Actix timers are tokio timers. Call `tokio::time::pause()` at the top of
//! an `#[actix_rt::test]` (tokio's `test-util` feature), place `DbActor` on
//! the current arbiter with [`Placement::Current`], and let virtual time run:
//! ten virtual minutes take milliseconds. See `actors/tests/` for examples.
//!
//! # Crate features
//!
//! None by default: an engine gets no argument parser, log formatter,
//! exporter or plotter (the `walguard` command is the `walguard-cli` crate,
//! the benchmark `walguard-bench`).
//!
//! - `testing`: fault-injection hooks for tests (and the core's power-loss
//!   VFS shim). Never in a production build.
//! - `bench`: `DbHandle::execute_from_thread`, for the open-loop
//!   benchmark's generator (`walguard-bench`).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod checkpoint;
// Windows only: it listens for console events through tokio's Windows
// signal listeners, which exist only there.
#[cfg(windows)]
pub mod console;
// Windows only: the event both `console` and `error` name (a leaf, so the
// arrows between them run one way); public as `console::ConsoleEvent`.
#[cfg(windows)]
mod console_event;
pub mod db;
pub mod error;
pub mod exposure;
mod handle;
mod lane;
pub mod messages;
pub mod metrics;
pub mod replication;
pub mod system;
pub mod telemetry;

pub use checkpoint::CheckpointActor;
pub use db::DbActor;
pub use db::Placement;
pub use error::{Error, ReplicationError, Result};
pub use exposure::ExposureWatch;
pub use handle::DbHandle;
pub use metrics::MetricsActor;
pub use system::{WalGuard, WalGuardBuilder};
