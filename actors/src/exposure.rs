//! `ExposureWatch`: looks at `DbActor` at a steady period and keeps the
//! exposure current.
//!
//! A thin shell over [`walguard::exposure::ExposureTracker`]. Once
//! [`WatchExposure`] arrives (see
//! [`WalGuard::watch_exposure`](crate::WalGuard::watch_exposure)), it asks
//! `DbActor` every period what is durable and how many frames the WAL
//! holds, and measures the `-wal` file; then it
//!
//! - keeps the exposure ("durable through", age, exposed commits) and warns
//!   once per starvation episode (target `walguard::exposure`); when
//!   checkpoints come back partial or busy, a second warning names what
//!   pins the WAL: walguard's own oldest read (connection, SQL text or
//!   `closure`, age) or a connection outside walguard;
//! - updates the WAL and exposure gauges of [`crate::telemetry`];
//! - sends what it saw to `MetricsActor` (`ExposureSeen`), which answers
//!   the live status.
//!
//! The watch ends with `EndWatch` (the shutdown sends it) or when
//! `DbActor` is gone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient, SpawnHandle, WrapFuture,
};
use walguard::Statement;
use walguard::exposure::{ExposureEvent, ExposureTracker, StarvationCause};
use walguard::read::RunningRead;

use crate::DbHandle;
use crate::messages::{CheckpointDone, EndWatch, ExposureSeen, ExposureView, WatchExposure};
use crate::telemetry;

/// The `-wal` file SQLite keeps beside a database; its one home is the core
/// ([`walguard::files`]), re-exported here where it used to live.
pub use walguard::files::wal_path;

/// Default period of the exposure watch: 1 s. The exposure age is an upper
/// bound that may be off by up to one period.
pub const DEFAULT_WATCH_PERIOD: Duration = Duration::from_secs(1);

/// The read-only status query the watch sends `DbActor`: a NOOP checkpoint
/// copies nothing and takes no lock, and answers the WAL's frame count.
const WAL_STATUS_SQL: &str = "PRAGMA wal_checkpoint(NOOP)";

/// A running watch.
#[derive(Debug)]
struct Watch {
    tracker: ExposureTracker,
    timer: SpawnHandle,
    in_flight: bool,
    seen: bool,
}

/// The actor that watches the exposure. Idle until [`WatchExposure`].
#[derive(Debug)]
pub struct ExposureWatch {
    db: DbHandle,
    wal_path: PathBuf,
    interval: Duration,
    seen_by: Option<Recipient<ExposureSeen>>,
    watch: Option<Watch>,
}

impl ExposureWatch {
    /// A watch of the database at `database`, asking `db`; starvation is
    /// reported past two checkpoint `interval`s. What it sees goes to
    /// `seen_by` when given (`MetricsActor`, for the live status).
    #[must_use]
    pub(crate) fn new(
        db: DbHandle,
        database: &Path,
        interval: Duration,
        seen_by: Option<Recipient<ExposureSeen>>,
    ) -> Self {
        Self {
            db,
            wal_path: wal_path(database),
            interval,
            seen_by,
            watch: None,
        }
    }

    fn publish(&self, view: Option<ExposureView>) {
        if let Some(seen_by) = &self.seen_by {
            seen_by.do_send(ExposureSeen(view));
        }
    }

    fn look(&mut self, ctx: &mut Context<Self>) {
        let Some(watch) = self.watch.as_mut() else {
            return;
        };
        if watch.in_flight {
            return;
        }
        watch.in_flight = true;
        let db = self.db.clone();
        let ask = async move {
            let (durability, frames) = tokio::join!(
                db.durability(),
                db.query_on_writer(Statement::new(WAL_STATUS_SQL))
            );
            // A database error is an answer; only a writer gone is not.
            let frames = match frames {
                Ok(rows) => Ok(Ok(rows)),
                Err(crate::Error::Db(e)) => Ok(Err(e)),
                Err(gone) => Err(gone),
            };
            (durability, frames)
        };
        ctx.spawn(ask.into_actor(self).map(|(durability, frames), act, ctx| {
            let Some(watch) = act.watch.as_mut() else {
                return;
            };
            watch.in_flight = false;
            let (Ok(durability), Ok(frames)) = (durability, frames) else {
                // DbActor is gone: the session is over; stop looking.
                ctx.cancel_future(watch.timer);
                act.watch = None;
                act.publish(None);
                return;
            };
            let wal_frames = frames.ok().and_then(|rows| wal_frames(&rows));
            let wal_bytes = file_len(&act.wal_path);
            if let Some(d) = durability {
                if let Some(event) = watch.tracker.observe(Instant::now(), &d) {
                    event.log(watch.tracker.threshold());
                    if let ExposureEvent::Starved {
                        cause: StarvationCause::ReaderPinning | StarvationCause::Busy,
                        ..
                    } = &event
                    {
                        let by = pinned_by(act.db.reads().map(|r| r.running()).as_deref());
                        tracing::warn!(target: "walguard::exposure", pinned_by = %by, "the WAL is pinned by {by}");
                    }
                }
                watch.seen = true;
                telemetry::record_exposure(&watch.tracker.exposure());
            }
            if let Some(frames) = wal_frames {
                telemetry::record_wal_frames(frames);
            }
            telemetry::record_wal_bytes(wal_bytes);
            if let Some(reads) = act.db.reads() {
                telemetry::record_reads(&reads.stats());
            }
            let pinned = (watch.seen && !watch.tracker.exposure().is_clear())
                .then(|| watch.tracker.cause())
                .filter(|c| matches!(c, StarvationCause::ReaderPinning | StarvationCause::Busy))
                .map(|_| pinned_by(act.db.reads().map(|r| r.running()).as_deref()));
            let view = ExposureView {
                exposure: watch.seen.then(|| watch.tracker.exposure()),
                starving: watch.tracker.is_starving(),
                starvation_cause: (watch.seen && !watch.tracker.exposure().is_clear())
                    .then(|| watch.tracker.cause()),
                pinned_by: pinned,
                wal_frames,
                wal_bytes: Some(wal_bytes),
                durability,
            };
            act.publish(Some(view));
        }));
    }
}

/// What pins the WAL, for the starvation warning and the status: the
/// oldest of walguard's own reads running now (its connection, SQL text
/// or `closure`, age), or, when none runs (or there is no read pool), a
/// connection outside walguard.
fn pinned_by(running: Option<&[RunningRead]>) -> String {
    match running.and_then(<[RunningRead]>::first) {
        Some(read) => format!("walguard's own {read}"),
        None => "a connection outside walguard (no read of walguard's is running)".to_owned(),
    }
}

/// The `log` column of a `wal_checkpoint` row; `None` when not in WAL mode.
fn wal_frames(rows: &walguard::ResultSet) -> Option<i64> {
    match rows.rows().first()?.get(1)? {
        rusqlite::types::Value::Integer(n) if *n >= 0 => Some(*n),
        _ => None,
    }
}

/// The size of a file, 0 when it does not exist (a WAL deleted on close).
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

impl Actor for ExposureWatch {
    type Context = Context<Self>;
}

impl Handler<CheckpointDone> for ExposureWatch {
    type Result = ();

    /// Every checkpoint `DbActor` ran, whatever asked for it: what the
    /// starvation warning names as its cause.
    fn handle(&mut self, msg: CheckpointDone, _: &mut Self::Context) {
        if let Some(watch) = self.watch.as_mut() {
            watch.tracker.note_checkpoint(&msg.0);
        }
    }
}

impl Handler<WatchExposure> for ExposureWatch {
    type Result = ();

    fn handle(&mut self, msg: WatchExposure, ctx: &mut Self::Context) {
        if let Some(old) = self.watch.take() {
            ctx.cancel_future(old.timer);
            self.publish(None);
        }
        let timer = ctx.run_interval(msg.every.max(Duration::from_millis(1)), Self::look);
        self.watch = Some(Watch {
            tracker: ExposureTracker::new(self.interval, Instant::now()),
            timer,
            in_flight: false,
            seen: false,
        });
        // A first look now, so a status asked for right away has figures.
        self.look(ctx);
    }
}

impl Handler<EndWatch> for ExposureWatch {
    type Result = ();

    fn handle(&mut self, msg: EndWatch, ctx: &mut Self::Context) {
        if let Some(mut watch) = self.watch.take() {
            ctx.cancel_future(watch.timer);
            if let Some(d) = msg.durability {
                watch.tracker.observe(Instant::now(), &d);
                telemetry::record_exposure(&watch.tracker.exposure());
            }
            telemetry::record_wal_bytes(file_len(&self.wal_path));
            self.publish(None);
        }
    }
}
