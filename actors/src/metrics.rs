//! `MetricsActor`: receives every checkpoint result, logs it, keeps the
//! session statistics, and watches the exposure.
//!
//! A thin shell over [`walguard::SessionStats`] and
//! [`walguard::exposure::ExposureTracker`]:
//!
//! - one `tracing` event per checkpoint (target `walguard::checkpoint`), a
//!   rolling window of `metrics.window` samples, and at the end of the
//!   session one `walguard::session` event with the aggregate. If the actor
//!   stops without [`Finish`] (the system went down), it still emits the
//!   aggregate from `stopped`;
//! - every checkpoint also goes to the [`metrics`] facade
//!   ([`crate::telemetry`]);
//! - once [`WatchExposure`] arrives (see [`WalGuard::watch_exposure`]), it
//!   asks `DbActor` at a steady period what is durable and how many frames
//!   the WAL holds, keeps the exposure ("durable through", age, exposed
//!   commits), updates the WAL and exposure gauges, and warns once per
//!   starvation episode (target `walguard::exposure`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult,
    SpawnHandle, WrapFuture,
};
use walguard::exposure::{Exposure, ExposureTracker};
use walguard::{Durability, SessionReport, SessionStats, Statement};

use crate::db::DbActor;
use crate::error::{Error, Result};
use crate::messages::{
    CheckpointDone, Finish, GetDurability, GetReport, Query, Restarted, TickSkipped,
};
use crate::system::WalGuard;
use crate::telemetry;

/// Default period of the exposure watch: 1 s. The exposure age is an upper
/// bound that may be off by up to one period.
pub const DEFAULT_WATCH_PERIOD: Duration = Duration::from_secs(1);

/// The read-only status query the watch sends `DbActor`: a NOOP checkpoint
/// copies nothing and takes no lock, and answers the WAL's frame count.
const WAL_STATUS_SQL: &str = "PRAGMA wal_checkpoint(NOOP)";

/// `MetricsActor`: start watching the exposure (replaces a running watch).
#[derive(Debug, Clone)]
pub struct WatchExposure {
    /// Where to ask for durability and WAL frames.
    pub db: Addr<DbActor>,
    /// The database file; its `-wal` file is measured.
    pub database: PathBuf,
    /// The checkpoint interval: starvation is reported past two of them.
    pub interval: Duration,
    /// How often to look.
    pub every: Duration,
}

impl Message for WatchExposure {
    type Result = ();
}

/// `MetricsActor`: everything a live status display needs, in one answer.
#[derive(Debug, Clone, Copy)]
pub struct GetStatus;

impl Message for GetStatus {
    type Result = Status;
}

/// The live status: the session so far, and what the exposure watch last
/// saw (all `None` before its first look, or without a watch).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Status {
    /// Checkpoint counts, the window aggregate, the last checkpoint.
    pub report: SessionReport,
    /// The exposure at the last look.
    pub exposure: Option<Exposure>,
    /// Whether a starvation episode is going on.
    pub starving: bool,
    /// Frames in the WAL at the last look.
    pub wal_frames: Option<i64>,
    /// Size of the `-wal` file at the last look (0 when absent).
    pub wal_bytes: Option<u64>,
    /// Durability at the last look.
    pub durability: Option<Durability>,
}

#[derive(Debug)]
struct Watch {
    db: Addr<DbActor>,
    wal_path: PathBuf,
    tracker: ExposureTracker,
    timer: SpawnHandle,
    in_flight: bool,
    seen: bool,
    wal_frames: Option<i64>,
    wal_bytes: Option<u64>,
    durability: Option<Durability>,
}

/// The actor that keeps checkpoint statistics.
#[derive(Debug)]
pub struct MetricsActor {
    stats: SessionStats,
    finished: bool,
    watch: Option<Watch>,
}

impl MetricsActor {
    /// Statistics with a rolling window of `window` samples.
    #[must_use]
    pub fn new(window: usize) -> Self {
        Self {
            stats: SessionStats::new(window),
            finished: false,
            watch: None,
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
        let durability = watch.db.send(GetDurability);
        let frames = watch.db.send(Query(Statement::new(WAL_STATUS_SQL)));
        let ask = async move { (durability.await, frames.await) };
        ctx.spawn(ask.into_actor(self).map(|(durability, frames), act, ctx| {
            let Some(watch) = act.watch.as_mut() else {
                return;
            };
            watch.in_flight = false;
            let (Ok(durability), Ok(frames)) = (durability, frames) else {
                // DbActor is gone: the session is over; stop looking.
                ctx.cancel_future(watch.timer);
                act.watch = None;
                return;
            };
            watch.wal_frames = frames.ok().and_then(|rows| wal_frames(&rows));
            watch.wal_bytes = Some(file_len(&watch.wal_path));
            watch.durability = durability;
            if let Some(d) = durability {
                if let Some(event) = watch.tracker.observe(Instant::now(), &d) {
                    event.log(watch.tracker.threshold());
                }
                watch.seen = true;
                telemetry::record_exposure(&watch.tracker.exposure());
            }
            if let Some(frames) = watch.wal_frames {
                telemetry::record_wal_frames(frames);
            }
            if let Some(bytes) = watch.wal_bytes {
                telemetry::record_wal_bytes(bytes);
            }
        }));
    }

    fn stop_watch(&mut self, ctx: &mut Context<Self>, durability: Option<Durability>) {
        if let Some(mut watch) = self.watch.take() {
            ctx.cancel_future(watch.timer);
            if let Some(d) = durability {
                watch.tracker.observe(Instant::now(), &d);
                telemetry::record_exposure(&watch.tracker.exposure());
            }
            telemetry::record_wal_bytes(file_len(&watch.wal_path));
        }
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
fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The `-wal` file SQLite keeps beside `database`.
#[must_use]
pub fn wal_path(database: &std::path::Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        if !self.finished {
            self.finished = true;
            self.stats.report().log();
        }
    }
}

impl Handler<CheckpointDone> for MetricsActor {
    type Result = ();

    fn handle(&mut self, msg: CheckpointDone, _: &mut Self::Context) {
        msg.0.log();
        telemetry::record_checkpoint(&msg.0);
        self.stats.record(&msg.0);
    }
}

impl Handler<TickSkipped> for MetricsActor {
    type Result = ();

    fn handle(&mut self, _: TickSkipped, _: &mut Self::Context) {
        tracing::debug!(target: "walguard::checkpoint", "interval tick skipped: a checkpoint is in flight or the tick is a catch-up burst");
        self.stats.record_skipped();
    }
}

impl Handler<Restarted> for MetricsActor {
    type Result = ();

    fn handle(&mut self, _: Restarted, _: &mut Self::Context) {
        self.stats.record_restart();
    }
}

impl Handler<GetReport> for MetricsActor {
    type Result = MessageResult<GetReport>;

    fn handle(&mut self, _: GetReport, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.stats.report())
    }
}

impl Handler<WatchExposure> for MetricsActor {
    type Result = ();

    fn handle(&mut self, msg: WatchExposure, ctx: &mut Self::Context) {
        if let Some(old) = self.watch.take() {
            ctx.cancel_future(old.timer);
        }
        let timer = ctx.run_interval(msg.every.max(Duration::from_millis(1)), Self::look);
        self.watch = Some(Watch {
            db: msg.db,
            wal_path: wal_path(&msg.database),
            tracker: ExposureTracker::new(msg.interval, Instant::now()),
            timer,
            in_flight: false,
            seen: false,
            wal_frames: None,
            wal_bytes: None,
            durability: None,
        });
        // A first look now, so a status asked for right away has figures.
        self.look(ctx);
    }
}

impl Handler<GetStatus> for MetricsActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        let watch = self.watch.as_ref();
        MessageResult(Status {
            report: self.stats.report(),
            exposure: watch.filter(|w| w.seen).map(|w| w.tracker.exposure()),
            starving: watch.is_some_and(|w| w.tracker.is_starving()),
            wal_frames: watch.and_then(|w| w.wal_frames),
            wal_bytes: watch.and_then(|w| w.wal_bytes),
            durability: watch.and_then(|w| w.durability),
        })
    }
}

impl Handler<Finish> for MetricsActor {
    type Result = MessageResult<Finish>;

    fn handle(&mut self, msg: Finish, ctx: &mut Self::Context) -> Self::Result {
        self.stop_watch(ctx, msg.0.durability);
        let report = self.stats.report().with_db(msg.0);
        if !self.finished {
            self.finished = true;
            report.log();
        }
        MessageResult(report)
    }
}

impl WalGuard {
    /// Starts the exposure watch: every `every` (e.g.
    /// [`DEFAULT_WATCH_PERIOD`]), `MetricsActor` asks `DbActor` what is
    /// durable and how many frames the WAL holds, updates the gauges of
    /// [`crate::telemetry`], and warns once per episode when the exposure
    /// passes two checkpoint intervals (checkpoint starvation). Calling it
    /// again replaces the running watch. The watch ends with the session.
    pub fn watch_exposure(&self, every: Duration) {
        self.metrics_actor().do_send(WatchExposure {
            db: self.db().addr().clone(),
            database: self.settings().database.path.clone(),
            interval: self.settings().checkpoint.interval,
            every,
        });
    }

    /// The live status: checkpoint counts and timings so far, and what the
    /// exposure watch last saw.
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] when `MetricsActor` is gone.
    pub async fn status(&self) -> Result<Status> {
        self.metrics_actor()
            .send(GetStatus)
            .await
            .map_err(Error::mailbox("MetricsActor"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use walguard::{CheckpointMode, Settings, Statement};

    use crate::{Placement, WalGuard};

    /// Waits (bounded) until the watch's status satisfies `done`.
    async fn status_until(
        guard: &WalGuard,
        done: impl Fn(&super::Status) -> bool,
    ) -> super::Status {
        for _ in 0..500 {
            let status = guard.status().await.unwrap();
            if done(&status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the exposure watch never reached the expected state");
    }

    /// The watch sees commits become exposed, the WAL grow, and a caught-up
    /// checkpoint make everything durable again.
    #[actix_rt::test]
    async fn the_watch_follows_exposure_and_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::for_database(dir.path().join("w.db"));
        // No size-triggered checkpoint: only the manual one below.
        settings.checkpoint.size_threshold_frames = 0;
        settings.database.wal_autocheckpoint = 0;
        let guard = WalGuard::builder(settings)
            .db_placement(Placement::Current)
            .start()
            .unwrap();
        guard.watch_exposure(Duration::from_millis(5));
        let db = guard.db();
        db.execute("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)")
            .await
            .unwrap();
        for k in 0..4 {
            db.execute(Statement::new("INSERT INTO kv VALUES (?1, 'x')").bind(k))
                .await
                .unwrap();
        }
        let status = status_until(&guard, |s| s.exposure.is_some_and(|e| e.commits() == 5)).await;
        assert!(status.wal_frames.is_some_and(|f| f > 0), "{status:?}");
        assert!(status.wal_bytes.is_some_and(|b| b > 0), "{status:?}");
        assert!(!status.starving);

        let report = db.checkpoint(CheckpointMode::Passive).await.unwrap();
        assert_eq!(report.outcome().as_str(), "completed");
        let status = status_until(&guard, |s| s.exposure.is_some_and(|e| e.is_clear())).await;
        let exposure = status.exposure.unwrap();
        assert_eq!(exposure.durable_commits(), 5);
        assert_eq!(exposure.age(), Duration::ZERO);

        let report = guard.shutdown().await.unwrap();
        assert_eq!(report.db.writes_acknowledged, 5);
    }
}
