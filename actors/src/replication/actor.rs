//! [`ReplicationActor`]: its start (Litestream made ready, the first
//! sync), the checkpoint owner it hands out, its messages, and the
//! shutdown's last sync.

use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, MessageResult, Recipient,
    ResponseActFuture, WrapFuture,
};
use walguard::replication::{CheckpointHandover, CheckpointOwner, Replicated, ReplicationTracker};
use walguard::settings::{AckMode, ReplicationSettings, format_duration};

use super::child::{Child, check_binary};
use super::control::ControlClient;
use super::files::Files;
use super::{
    ACK_POLL_PERIOD, Prepared, Process, RESTART_BACKOFF_MIN, ReplicationActor, SYNC_TIMEOUT,
};
use crate::DbHandle;
use crate::error::ReplicationError;
#[cfg(feature = "testing")]
use crate::messages::KillLitestream;
use crate::messages::{FinalSync, GetReplicated, ReplicationSeen};

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
    pub(crate) fn prepare(
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
    pub(crate) fn new(
        settings: ReplicationSettings,
        prepared: Prepared,
        db: DbHandle,
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
            metrics,
            in_flight: false,
            looking: false,
            failed_in_a_row: 0,
            last_sync: None,
            last_error: None,
            stopped: false,
        }
    }

    pub(super) fn set_owner(&mut self, owner: CheckpointOwner, why: &str) {
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
        // The writer's shared state is the one home of the owner: the
        // writer and the interval loop read it there.
        self.db.set_checkpoint_owner(owner);
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
            db.brake_done();
            return;
        }
        let client = self.client.clone();
        let path = self.files.db.clone();
        let work = async move {
            let answer = client
                .sync_local(&path, walguard::writer::BRAKE_MAX_PAUSE)
                .await;
            db.brake_done();
            answer
        };
        ctx.spawn(work.into_actor(self).map(|answer, _, _| {
            if let Err(e) = answer {
                tracing::debug!(target: "walguard::replication", error = %e, "the wal brake's sync failed");
            }
        }));
    }
}

#[cfg(feature = "testing")]
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
            let durability = db.durability().await.ok().flatten()?;
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
