//! Replication through Litestream: `ReplicationActor`, the Litestream
//! process it supervises, and the client of its control socket.
//!
//! - `replication/child.rs`: the `litestream` process (binary check,
//!   config file, start, stop) and `litestream restore`;
//! - `replication/control.rs`: [`ControlClient`], HTTP/1 over the Unix
//!   control socket;
//! - `replication/mod.rs`: [`ReplicationActor`].
//!
//! # The policy, in one place
//!
//! - **Replicated through.** Every `replication.sync_period` (every
//!   [`ACK_POLL_PERIOD`] under `ack: replicated`, when commits wait),
//!   the actor asks `DbActor` for its commit count, then asks Litestream
//!   to sync and wait (`/sync`, `wait: true`). A `synced` or `no_change`
//!   answer puts every commit counted before the call on the replica
//!   ([`walguard::replication::ReplicationTracker`]). The point goes to
//!   `DbActor` (held replies), `MetricsActor` (live status) and the
//!   `metrics` facade (gauges, lag in seconds). A lag above
//!   `replication.max_lag` is warned about once per episode.
//! - **Checkpoint ownership.** After the first answered sync, Litestream
//!   owns checkpointing: the interval loop stays quiet, and `DbActor`
//!   checkpoints only past `replication.wal_cap_frames`. After
//!   [`FAILED_SYNCS_BEFORE_TAKEOVER`] failed syncs in a row, or as soon as
//!   the Litestream walguard started exits, walguard takes it back. Each
//!   switch is logged (target `walguard::replication`).
//! - **Supervision.** A Litestream walguard started that exits is started
//!   again after a backoff that doubles from [`RESTART_BACKOFF_MIN`] to
//!   [`RESTART_BACKOFF_MAX`], and is reset by an answered sync.
//! - **Shutdown** ([`FinalSync`]): one last sync, bounded; then the
//!   Litestream walguard started is stopped and checkpointing handed back,
//!   so that the shutdown TRUNCATE that follows completes.

mod child;
mod control;

use std::path::PathBuf;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, MessageResult, Recipient,
    ResponseActFuture, WrapFuture,
};
use tokio::time::Instant;
use walguard::replication::{
    CheckpointHandover, CheckpointOwner, LagEvent, Replicated, ReplicationTracker,
};
use walguard::settings::{AckMode, ReplicationSettings, format_duration};

pub use child::{
    Child, Files, MAX_SOCKET_PATH_BYTES, ORPHAN_STOP_TIMEOUT, READY_TIMEOUT, REPLICA_PROBE_TIMEOUT,
    check_binary, litestream_holding, replica_exists, restore,
};
pub use control::{ControlClient, SyncAnswer};

use crate::checkpoint::CheckpointActor;
use crate::db::DbActor;
use crate::error::ReplicationError;
use crate::messages::{
    FinalSync, GetDurability, GetReplicated, KillLitestream, ReplicatedThrough, ReplicationSeen,
    SetCheckpointOwner,
};

/// Failed syncs in a row after which walguard takes checkpointing back from
/// a Litestream that still runs: 3.
pub const FAILED_SYNCS_BEFORE_TAKEOVER: u32 = 3;

/// First wait before restarting a Litestream that exited: 1 s.
pub const RESTART_BACKOFF_MIN: Duration = Duration::from_secs(1);

/// Longest wait before restarting a Litestream that exited: 30 s.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How often the actor looks for commits to sync under `ack: replicated`:
/// 10 ms, so a held reply waits for one sync, not for a period.
pub const ACK_POLL_PERIOD: Duration = Duration::from_millis(10);

/// The longest a periodic sync waits for Litestream's answer: 10 s (its
/// first sync uploads a snapshot).
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// With `replication.restore_on_start`: restores the database from the
/// replica when its file is missing (and the replica exists).
///
/// # Errors
///
/// [`ReplicationError`] when the binary is missing or the restore fails.
pub fn restore_if_missing(settings: &walguard::Settings) -> Result<(), ReplicationError> {
    let path = &settings.database.path;
    if path.exists() {
        return Ok(());
    }
    let r = &settings.replication;
    let files = Files::for_db(path, r.socket.as_deref())?;
    check_binary(&r.litestream_binary)?;
    restore(&r.litestream_binary, &files, r, path, true)?;
    tracing::info!(
        target: "walguard::replication",
        database = %path.display(),
        restored = path.exists(),
        "the database file was missing: restore from the replica on start"
    );
    Ok(())
}

/// Checks, before Litestream starts, that the replica belongs to this
/// database ([`walguard::replication::identity`]): restores the replica
/// (when one exists) into a scratch file beside the database, reads its
/// newest identity, and judges. A new, empty database is replaced by the
/// restored replica under `replication.restore_on_start`. Blocking (one
/// `litestream restore`: its time grows with the database).
///
/// An outside Litestream (`replication.socket`) whose binary is not here
/// cannot restore: the check is skipped, and the log says so.
///
/// # Errors
///
/// [`ReplicationError::ForeignReplica`],
/// [`ReplicationError::NewDatabaseWithReplica`] (both unless
/// `replication.replace_replica`), [`ReplicationError::Identity`], or the
/// restore's own errors.
pub fn check_identity(settings: &walguard::Settings) -> Result<(), ReplicationError> {
    use walguard::replication::identity::{self, Local, Verdict};
    let r = &settings.replication;
    let path = &settings.database.path;
    if let Err(e) = check_binary(&r.litestream_binary) {
        if r.socket.is_some() {
            tracing::warn!(target: "walguard::replication", error = %e, "cannot check the replica's identity without a litestream binary here; replicating as told");
            return Ok(());
        }
        return Err(e);
    }
    let unreadable = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |e: rusqlite::Error| ReplicationError::Identity {
            path,
            error: e.to_string(),
        }
    };
    let read = |file: &std::path::Path| -> Result<Local, ReplicationError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let conn = rusqlite::Connection::open_with_flags(file, flags).map_err(unreadable(file))?;
        Ok(Local {
            tokens: identity::tokens(&conn).map_err(unreadable(file))?,
            has_data: identity::has_own_schema(&conn).map_err(unreadable(file))?,
        })
    };
    let local = if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        read(path)?
    } else {
        Local::default()
    };
    let scratch = walguard::files::sibling(path, "-walguard-identity.db");
    let remove_scratch = || {
        for file in [
            scratch.clone(),
            walguard::files::wal_path(&scratch),
            walguard::files::shm_path(&scratch),
        ] {
            let _ = std::fs::remove_file(file);
        }
    };
    // What a start that was killed during this check left: its probe or
    // restore still running (they would write the scratch file later), and
    // the scratch file.
    let files = Files::for_db(path, r.socket.as_deref())?;
    child::stop_litestreams_with_arg(&child::probe_config(&files.db));
    child::stop_litestreams_with_arg(&child::restore_config(&scratch));
    remove_scratch();
    // A quick, bounded look first: a wrong endpoint fails here in seconds,
    // and without a replica nothing is restored.
    if replica_exists(&r.litestream_binary, &files, r)? {
        restore(&r.litestream_binary, &files, r, &scratch, true)?;
    }
    let replica = if scratch.exists() {
        let on_replica = read(&scratch);
        match on_replica {
            Ok(on_replica) => Some(on_replica.tokens),
            Err(e) => {
                remove_scratch();
                return Err(e);
            }
        }
    } else {
        None
    };
    let url = walguard::settings::redact(r.url.as_deref().unwrap_or_default());
    let verdict = identity::judge(&local, &replica);
    match verdict {
        Verdict::Replicate => {}
        Verdict::RestoreFirst if r.restore_on_start => {
            // The local file is new and empty: nothing of it is lost.
            for file in [
                path.clone(),
                walguard::files::wal_path(path),
                walguard::files::shm_path(path),
            ] {
                let _ = std::fs::remove_file(file);
            }
            std::fs::rename(&scratch, path).map_err(|source| ReplicationError::File {
                action: "move the restored replica into place",
                path: path.clone(),
                source,
            })?;
            tracing::info!(target: "walguard::replication", database = %path.display(), replica = %url, "the database was new and empty: restored from its replica first");
        }
        _ if r.replace_replica => {
            tracing::warn!(target: "walguard::replication", database = %path.display(), replica = %url, verdict = ?verdict, "the replica belongs to another database; replacing its history with this database (replication.replace_replica)");
        }
        Verdict::RestoreFirst => {
            remove_scratch();
            return Err(ReplicationError::NewDatabaseWithReplica {
                url,
                db: path.clone(),
            });
        }
        Verdict::Foreign { replica, local } => {
            remove_scratch();
            return Err(ReplicationError::ForeignReplica {
                url,
                db: path.clone(),
                replica: replica.unwrap_or_else(|| "none".to_owned()),
                local: local.unwrap_or_else(|| "none".to_owned()),
            });
        }
    }
    remove_scratch();
    Ok(())
}

/// Appends this start's identity token to the database
/// ([`walguard::replication::identity::stamp`]), through a connection of
/// its own, before Litestream's first sync carries it to the replica.
///
/// # Errors
///
/// [`ReplicationError::Identity`] when the write fails.
pub fn stamp_identity(settings: &walguard::Settings) -> Result<String, ReplicationError> {
    let path = &settings.database.path;
    let fail = |e: rusqlite::Error| ReplicationError::Identity {
        path: path.clone(),
        error: e.to_string(),
    };
    let conn = rusqlite::Connection::open(path).map_err(fail)?;
    conn.busy_timeout(settings.database.busy_timeout)
        .map_err(fail)?;
    walguard::replication::identity::stamp(&conn).map_err(fail)
}

/// A Litestream made ready by [`ReplicationActor::prepare`], for
/// [`ReplicationActor::new`].
#[derive(Debug)]
pub struct Prepared {
    files: Files,
    process: Process,
}

impl Prepared {
    /// Its files (config, socket, the database's absolute path).
    #[must_use]
    pub fn files(&self) -> &Files {
        &self.files
    }
}

/// Who runs Litestream.
#[derive(Debug)]
enum Process {
    /// walguard started it (and restarts it).
    Managed {
        binary: PathBuf,
        child: Option<Box<Child>>,
        /// A restarted child whose control socket is not open yet: since
        /// when (ticks poll it; nothing blocks on it).
        starting_since: Option<Instant>,
        restart_at: Option<Instant>,
        backoff: Duration,
        restarts: u64,
    },
    /// Someone else: walguard only talks to its socket.
    External,
}

/// Replicates through Litestream and tracks what the replica holds.
#[derive(Debug)]
pub struct ReplicationActor {
    settings: ReplicationSettings,
    files: Files,
    client: ControlClient,
    process: Process,
    db: Addr<DbActor>,
    checkpoint: Option<Addr<CheckpointActor>>,
    metrics: Option<Recipient<ReplicationSeen>>,
    tracker: ReplicationTracker,
    in_flight: bool,
    /// A commit count asked of `DbActor` outside a sync is on its way.
    looking: bool,
    failed_in_a_row: u32,
    last_sync: Option<Instant>,
    last_error: Option<String>,
    stopped: bool,
}

impl ReplicationActor {
    /// Starts replication for the database of `files` with `settings`:
    /// checks the binary, refuses a second Litestream, writes the config
    /// (0600) and starts `litestream replicate`, or, with
    /// `replication.socket` set, checks that an external Litestream
    /// answers there. The config hands Litestream walguard's checkpoint
    /// policy (`handover`; an outside Litestream keeps its own). Then one
    /// sync, so a bad URL, credential or endpoint
    /// fails here with an error naming it. Blocking; runs inside the actix
    /// `System` (the child's log is read on its runtime).
    ///
    /// # Errors
    ///
    /// [`ReplicationError`], naming the setting.
    pub fn prepare(
        settings: &ReplicationSettings,
        db: &std::path::Path,
        handover: CheckpointHandover,
    ) -> Result<Prepared, ReplicationError> {
        let files = Files::for_db(db, settings.socket.as_deref())?;
        files.check_socket_path()?;
        if settings
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("sftp://"))
            && std::env::var_os(walguard::replication::SFTP_KEY_PATH_ENV)
                .is_none_or(|v| v.is_empty())
        {
            return Err(ReplicationError::MissingEnvironment {
                variable: walguard::replication::SFTP_KEY_PATH_ENV,
            });
        }
        let process = if settings.socket.is_some() {
            Process::External
        } else {
            let binary = settings.litestream_binary.clone();
            check_binary(&binary)?;
            let _stopped = files.stop_orphans();
            files.check_no_other()?;
            files.write_config(settings, handover)?;
            let child = Child::start(&binary, &files, settings)?;
            Process::Managed {
                binary,
                child: Some(Box::new(child)),
                starting_since: None,
                restart_at: None,
                backoff: RESTART_BACKOFF_MIN,
                restarts: 0,
            }
        };
        // The first sync, on a thread of its own: this runs inside the
        // system's runtime, which cannot be blocked on from within.
        let client = ControlClient::new(&files.socket);
        let path = files.db.clone();
        let first = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ReplicationError::Control {
                    socket: client.socket().to_path_buf(),
                    endpoint: "/sync",
                    error: format!("cannot start a runtime for the first sync: {e}"),
                })?;
            runtime.block_on(client.sync(&path, SYNC_TIMEOUT))
        })
        .join()
        .unwrap_or_else(|_| {
            Err(ReplicationError::Control {
                socket: files.socket.clone(),
                endpoint: "/sync",
                error: "the first sync panicked".to_owned(),
            })
        });
        let fail = |process: Process, e: ReplicationError| {
            if let Process::Managed {
                child: Some(mut child),
                ..
            } = process
            {
                child.kill();
            }
            Err(e)
        };
        match first {
            Ok(answer) if answer.is_replicated() => Ok(Prepared { files, process }),
            Ok(answer) => fail(
                process,
                ReplicationError::Sync {
                    status: 200,
                    error: format!("unexpected status {:?}", answer.status),
                    blame: "replication.url",
                },
            ),
            Err(e) => fail(process, e),
        }
    }

    /// The actor, for a Litestream [`ReplicationActor::prepare`] made ready.
    #[must_use]
    pub fn new(
        settings: ReplicationSettings,
        prepared: Prepared,
        db: Addr<DbActor>,
        checkpoint: Option<Addr<CheckpointActor>>,
        metrics: Option<Recipient<ReplicationSeen>>,
    ) -> Self {
        let Prepared { files, process } = prepared;
        Self {
            tracker: ReplicationTracker::new(settings.max_lag, std::time::Instant::now()),
            client: ControlClient::new(&files.socket),
            settings,
            files,
            process,
            db,
            checkpoint,
            metrics,
            in_flight: false,
            looking: false,
            failed_in_a_row: 0,
            last_sync: None,
            last_error: None,
            stopped: false,
        }
    }

    fn set_owner(&mut self, owner: CheckpointOwner, why: &str) {
        if !self.tracker.set_owner(owner) {
            return;
        }
        match owner {
            CheckpointOwner::Litestream => tracing::info!(
                target: "walguard::replication",
                owner = owner.as_str(),
                wal_cap_frames = self.settings.wal_cap_frames,
                "litestream owns checkpointing now ({why}); walguard checkpoints only past the WAL cap"
            ),
            CheckpointOwner::Walguard if self.stopped => tracing::info!(
                target: "walguard::replication",
                owner = owner.as_str(),
                "walguard takes checkpointing back ({why})"
            ),
            CheckpointOwner::Walguard => tracing::warn!(
                target: "walguard::replication",
                owner = owner.as_str(),
                "walguard takes checkpointing back ({why})"
            ),
        }
        let msg = SetCheckpointOwner {
            owner,
            wal_cap_frames: self.settings.wal_cap_frames,
        };
        self.db.do_send(msg);
        if let Some(checkpoint) = &self.checkpoint {
            checkpoint.do_send(msg);
        }
    }

    /// The Litestream walguard started: exited? restart due? restarted
    /// and ready? Never blocks: a restart spawns the process, and later
    /// ticks look whether its control socket has opened.
    fn supervise(&mut self) {
        let Process::Managed {
            binary,
            child,
            starting_since,
            restart_at,
            backoff,
            restarts,
        } = &mut self.process
        else {
            return;
        };
        if let Some(running) = child {
            if let Some(since) = *starting_since
                && running.exited().is_none()
            {
                match Child::socket_open(&self.files) {
                    true => {
                        *starting_since = None;
                        *restarts += 1;
                        crate::telemetry::record_litestream_restart();
                        tracing::info!(target: "walguard::replication", pid = running.pid(), restarts = *restarts, "litestream restarted");
                        return;
                    }
                    false if since.elapsed() <= READY_TIMEOUT => return,
                    false => {
                        let error = running.not_ready(&self.files);
                        running.kill();
                        *child = None;
                        *starting_since = None;
                        tracing::warn!(target: "walguard::replication", error = %error, retry_in = %format_duration(*backoff), "cannot restart litestream");
                        *restart_at = Some(Instant::now() + *backoff);
                        *backoff = (*backoff * 2).min(RESTART_BACKOFF_MAX);
                        return;
                    }
                }
            }
            // Exited, while starting or after: the branch below says so.
            *starting_since = None;
            if let Some(status) = running.exited() {
                let tail = running.log_tail();
                *child = None;
                *restart_at = Some(Instant::now() + *backoff);
                tracing::warn!(
                    target: "walguard::replication",
                    status = %status,
                    restart_in = %format_duration(*backoff),
                    "litestream exited{tail}; restarting it after the backoff"
                );
                *backoff = (*backoff * 2).min(RESTART_BACKOFF_MAX);
                self.tracker.failed();
                self.set_owner(CheckpointOwner::Walguard, "litestream exited");
            }
            return;
        }
        if restart_at.is_some_and(|at| Instant::now() >= at) {
            *restart_at = None;
            match Child::spawn(binary, &self.files, &self.settings) {
                Ok(started) => {
                    *starting_since = Some(Instant::now());
                    *child = Some(Box::new(started));
                }
                Err(e) => {
                    tracing::warn!(target: "walguard::replication", error = %e, retry_in = %format_duration(*backoff), "cannot restart litestream");
                    *restart_at = Some(Instant::now() + *backoff);
                    *backoff = (*backoff * 2).min(RESTART_BACKOFF_MAX);
                }
            }
        }
    }

    fn litestream_running(&self) -> bool {
        match &self.process {
            Process::Managed {
                child,
                starting_since,
                ..
            } => child.is_some() && starting_since.is_none(),
            Process::External => true,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        self.supervise();
        self.observe_lag();
        // The local counts at every tick, so the lag starts counting within
        // a tick of a commit the replica lacks (not at the next sync).
        self.look(ctx);
        if self.in_flight || !self.litestream_running() {
            // No sync will tell the commits made meanwhile: look at them,
            // so the lag (and its warning, and the gauge) keeps growing
            // while Litestream is down or a sync hangs. Replies held for
            // the replica past `max_lag` are answered (not replicated)
            // even while no sync answers: a sync can hang for its whole
            // timeout (the S3 server gone).
            self.db.do_send(ReplicatedThrough(None));
            return;
        }
        let due = self
            .last_sync
            .is_none_or(|at| at.elapsed() >= self.settings.sync_period);
        let ack = self.settings.ack == AckMode::Replicated;
        if !due && !ack {
            return;
        }
        self.in_flight = true;
        if due {
            // Periods run from the start of a sync, not from its answer.
            self.last_sync = Some(Instant::now());
        }
        let db = self.db.clone();
        let client = self.client.clone();
        let path = self.files.db.clone();
        let replicated = self.tracker.replicated(std::time::Instant::now()).commits;
        let work = async move {
            let durability = db.send(GetDurability).await.ok().flatten()?;
            // Under ack: replicated, between periods, sync only when
            // commits wait for the replica.
            if !due && durability.commits() <= replicated {
                return None;
            }
            let started = std::time::Instant::now();
            let answer = client.sync(&path, SYNC_TIMEOUT).await;
            Some((durability, started, answer))
        };
        ctx.spawn(work.into_actor(self).map(|result, act, _| {
            act.in_flight = false;
            if let Some((durability, started, answer)) = result {
                act.answered(durability, started, answer);
            }
        }));
    }

    /// Asks `DbActor` for its commit count (one question at a time), for
    /// the lag while no sync answers.
    fn look(&mut self, ctx: &mut Context<Self>) {
        if self.looking {
            return;
        }
        self.looking = true;
        let db = self.db.clone();
        let ask = async move { db.send(GetDurability).await.ok().flatten() };
        ctx.spawn(ask.into_actor(self).map(|durability, act, _| {
            act.looking = false;
            if let Some(d) = durability {
                act.tracker
                    .see_local(d.commits(), d.writes(), std::time::Instant::now());
                act.observe_lag();
                act.publish();
            }
        }));
    }

    fn answered(
        &mut self,
        durability: walguard::Durability,
        started: std::time::Instant,
        answer: Result<SyncAnswer, ReplicationError>,
    ) {
        let ticket = self
            .tracker
            .begin(durability.commits(), durability.writes(), started);
        match answer {
            Ok(answer) if answer.is_replicated() => {
                self.tracker.synced(ticket);
                self.failed_in_a_row = 0;
                if self.last_error.take().is_some() {
                    tracing::info!(target: "walguard::replication", "litestream syncs again");
                }
                if let Process::Managed { backoff, .. } = &mut self.process {
                    *backoff = RESTART_BACKOFF_MIN;
                }
                self.set_owner(CheckpointOwner::Litestream, "it answers its syncs");
                self.db.do_send(ReplicatedThrough(Some(ticket.commits())));
            }
            other => {
                let error = match other {
                    Ok(answer) => format!("unexpected sync status {:?}", answer.status),
                    Err(e) => e.to_string(),
                };
                self.tracker.failed();
                self.failed_in_a_row += 1;
                crate::telemetry::record_sync_failure();
                if self.last_error.as_deref() != Some(error.as_str()) {
                    tracing::warn!(target: "walguard::replication", error = %error, failed_in_a_row = self.failed_in_a_row, "sync to the replica failed");
                    self.last_error = Some(error);
                }
                if self.failed_in_a_row >= FAILED_SYNCS_BEFORE_TAKEOVER {
                    self.set_owner(CheckpointOwner::Walguard, "litestream's syncs fail");
                }
                self.db.do_send(ReplicatedThrough(None));
            }
        }
        self.publish();
    }

    fn observe_lag(&mut self) {
        match self.tracker.observe(std::time::Instant::now()) {
            Some(LagEvent::Started { lag, commits }) => tracing::warn!(
                target: "walguard::replication",
                lag_s = walguard::settings::duration_s(lag),
                commits,
                max_lag = %format_duration(self.settings.max_lag),
                "the replica lags more than replication.max_lag; a machine loss now would take these commits"
            ),
            Some(LagEvent::Ended { lasted }) => tracing::info!(
                target: "walguard::replication",
                lasted_s = walguard::settings::duration_s(lasted),
                "the replica caught up"
            ),
            _ => {}
        }
    }

    fn publish(&self) {
        let replicated = self.tracker.replicated(std::time::Instant::now());
        crate::telemetry::record_replicated(&replicated);
        if let Some(metrics) = &self.metrics {
            metrics.do_send(ReplicationSeen(replicated));
        }
    }
}

impl Actor for ReplicationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let period = match self.settings.ack {
            AckMode::Replicated => ACK_POLL_PERIOD.min(self.settings.sync_period),
            // A fifth of a period: a sync starts at most that late.
            _ => (self.settings.sync_period / 5).clamp(ACK_POLL_PERIOD, Duration::from_millis(250)),
        };
        // `prepare` ran the first sync, and it answered: Litestream is
        // healthy from the first moment, so walguard runs no checkpoint of
        // its own from the start.
        self.set_owner(CheckpointOwner::Litestream, "its first sync answered");
        ctx.run_interval(period, Self::tick);
        ctx.notify(Tick);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Process::Managed {
            child: Some(child), ..
        } = &mut self.process
        {
            child.kill();
        }
    }
}

/// The first tick, at once.
struct Tick;

impl actix::Message for Tick {
    type Result = ();
}

impl Handler<Tick> for ReplicationActor {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Self::Context) {
        self.tick(ctx);
    }
}

impl Handler<GetReplicated> for ReplicationActor {
    type Result = MessageResult<GetReplicated>;

    fn handle(&mut self, _: GetReplicated, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.tracker.replicated(std::time::Instant::now()))
    }
}

impl Handler<crate::messages::WalBrake> for ReplicationActor {
    type Result = ();

    fn handle(&mut self, _: crate::messages::WalBrake, ctx: &mut Self::Context) {
        let db = self.db.clone();
        if self.stopped || !self.litestream_running() {
            db.do_send(crate::messages::WalBrakeDone);
            return;
        }
        let client = self.client.clone();
        let path = self.files.db.clone();
        let work = async move {
            let answer = client.sync_local(&path, crate::db::BRAKE_MAX_PAUSE).await;
            db.do_send(crate::messages::WalBrakeDone);
            answer
        };
        ctx.spawn(work.into_actor(self).map(|answer, _, _| {
            if let Err(e) = answer {
                tracing::debug!(target: "walguard::replication", error = %e, "the wal brake's sync failed");
            }
        }));
    }
}

impl Handler<KillLitestream> for ReplicationActor {
    type Result = Option<u32>;

    fn handle(&mut self, _: KillLitestream, _: &mut Self::Context) -> Self::Result {
        match &mut self.process {
            Process::Managed {
                child: Some(child), ..
            } => {
                child.kill();
                child.pid()
            }
            _ => None,
        }
    }
}

impl Handler<FinalSync> for ReplicationActor {
    type Result = ResponseActFuture<Self, Replicated>;

    fn handle(&mut self, msg: FinalSync, _: &mut Self::Context) -> Self::Result {
        self.stopped = true;
        let db = self.db.clone();
        let client = self.client.clone();
        let path = self.files.db.clone();
        let running = self.litestream_running();
        let work = async move {
            if !running {
                return None;
            }
            let durability = db.send(GetDurability).await.ok().flatten()?;
            let started = std::time::Instant::now();
            let answer =
                match tokio::time::timeout(msg.timeout, client.sync(&path, msg.timeout)).await {
                    Ok(answer) => answer,
                    Err(_) => Err(ReplicationError::Control {
                        socket: client.socket().to_path_buf(),
                        endpoint: "/sync",
                        error: format!(
                            "the final sync got no answer within {}",
                            format_duration(msg.timeout)
                        ),
                    }),
                };
            Some((durability, started, answer))
        };
        Box::pin(work.into_actor(self).then(move |result, act, _| {
            if let Some((durability, started, answer)) = result {
                act.answered(durability, started, answer);
            }
            let child = match &mut act.process {
                Process::Managed { child, .. } => child.take(),
                Process::External => None,
            };
            let socket = act.files.socket.clone();
            async move {
                let ours = child.is_some();
                if let Some(mut child) = child {
                    child.stop(msg.stop_timeout).await;
                    // Litestream leaves its socket file behind.
                    let _ = std::fs::remove_file(&socket);
                }
                ours
            }
            .into_actor(act)
            .map(|stopped_ours, act, ctx| {
                use actix::ActorContext as _;
                ctx.stop();
                if stopped_ours {
                    act.set_owner(
                        CheckpointOwner::Walguard,
                        "walguard stopped litestream at shutdown",
                    );
                }
                act.publish();
                act.tracker.replicated(std::time::Instant::now())
            })
        }))
    }
}
