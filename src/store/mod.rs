//! The write connection: one SQLite connection in WAL mode that owns every
//! write, and the checkpoints that run on it.
//!
//! [`Store`] is a plain struct with blocking methods; it knows nothing about
//! actors. `walguard-actors` puts it on its own thread behind `DbActor`.
//!
//! One concern per file:
//!
//! - `statement`: [`Statement`], [`IntoValue`] and [`ResultSet`], the values
//!   that travel in a message;
//! - `durability`: [`Durability`], the durable point of the commits;
//! - `effect`: what a statement does to a transaction, as SQLite says;
//! - `guard`: the connection's settings are walguard's (the authorizer
//!   that refuses a change of them, and the check after a closure);
//! - `group`: group commit ([`Store::execute_group`], [`GroupStats`]);
//! - `wal_watch`: the WAL hook and the size-triggered checkpoint
//!   ([`Store::set_size_threshold`], [`WalFrames`]);
//! - `identity`: the database file is still the one the store opened;
//! - `migrate`: the schema migrations ([`Store::migrate`]);
//! - `open`: opening the file and configuring the connection;
//! - `reopen`: the reopen after a checkpoint I/O error;
//! - `backfill`: phase 1 of the two-phase size checkpoint, on a second
//!   connection and its own thread;
//! - `write`: single statements and atomic transactions
//!   ([`Store::execute`], [`Store::transaction`]);
//! - `query`: reads ([`Store::query`]);
//! - `call`: closures on the connection ([`Store::call`]);
//! - `checkpoint`: checkpoints on the connection ([`Store::checkpoint`])
//!   and the replica hold's part in them (`replica_hold` keeps the pin);
//! - `close`: closing the connection, and the same order on a drop.
//!
//! This file holds [`Store`] itself: its fields, opening, the accessors,
//! and the count of commits.

mod backfill;
mod call;
mod checkpoint;
mod close;
mod durability;
mod effect;
mod group;
mod guard;
mod identity;
mod migrate;
mod open;
mod position;
mod query;
mod reopen;
mod replica_hold;
mod statement;
mod wal_watch;
mod write;

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::settings::DatabaseSettings;

#[cfg(feature = "testing")]
pub use backfill::BACKFILL_THREAD_NAME;
pub use durability::Durability;
pub use group::GroupStats;
pub use guard::{GUARDED_PRAGMAS, GuardedPragma};
#[cfg(unix)]
pub use open::NEW_FILE_MODE;
pub(crate) use open::open_side_connection;
pub use replica_hold::ReplicaHoldState;
pub use statement::{IntoValue, ResultSet, Statement};
pub use wal_watch::{BACKSTOP_PERCENT, WalFrames};

use effect::{Effect, EffectCache};
use guard::{Guard, Snapshot};

/// A statement taken from the connection's cache, with the SQL text it was
/// prepared from (the key to reuse it for the next write of a group).
struct Prepared<'a> {
    sql: &'a str,
    readonly: bool,
    statement: rusqlite::CachedStatement<'a>,
}
use backfill::Backfill;
use identity::{FileIdentity, Gone};
use replica_hold::ReplicaHold;
use wal_watch::WalWatch;

/// The single write connection, in WAL mode.
///
/// ```
/// use walguard::{settings::DatabaseSettings, CheckpointMode, CheckpointReason, Statement, Store};
///
/// let dir = tempfile::tempdir()?;
/// let mut store = Store::open(&DatabaseSettings::at(dir.path().join("state.db")))?;
/// store.execute(&Statement::new("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)"))?;
/// store.execute(&Statement::new("INSERT INTO kv VALUES (?1, ?2)").bind("a").bind(1))?;
/// let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
/// assert_eq!(report.outcome().as_str(), "completed");
/// store.close().map_err(|(_, e)| e)?;
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Store {
    /// Phase 1 of a two-phase size checkpoint in flight (joined before
    /// `conn` closes: [`Store::close`] and `Drop`).
    backfill: Option<Backfill>,
    conn: Connection,
    settings: DatabaseSettings,
    durability: Durability,
    group: GroupStats,
    wal: WalWatch,
    /// What SQLite said each statement does to a transaction.
    effects: EffectCache,
    /// The authorizer that keeps the connection's settings walguard's.
    guard: Guard,
    /// The guarded settings as the connection held them once opened.
    baseline: Snapshot,
    /// The connection's own `synchronous` fsyncs the WAL at each commit
    /// (read from the connection, not from the settings).
    synced: bool,
    /// Why no commit counts as durable any more (a setting a closure
    /// changed could not be set back).
    weakened: Option<String>,
    /// The database file as opened (`None`: it could not be read).
    identity: Option<FileIdentity>,
    /// The database file was found deleted or replaced: writes refused.
    gone: Option<Gone>,
    /// The file was found gone at least once.
    gone_ever: bool,
    /// The VFS the store opened through (`None`: SQLite's default), for
    /// the reopen after a checkpoint I/O error.
    vfs: Option<String>,
    /// A checkpoint failed on an I/O error and the WAL index has not been
    /// rebuilt yet: no checkpoint may run. `conn` is a stand-in that refuses
    /// every statement if the reopen itself failed.
    reopen_pending: bool,
    /// With replication on: the pin that keeps frames the replica may not
    /// have from leaving the WAL ([`Store::hold_for_replica`]).
    replica: Option<ReplicaHold>,
    /// With replication on: the identity row every commit counts itself
    /// in ([`Store::count_commits_in_identity`]).
    position: Option<i64>,
}

impl Store {
    /// Opens (creating if missing) the database and configures it.
    ///
    /// In order: `busy_timeout` (the switch to WAL takes a lock), then
    /// `journal_mode=WAL`, checked against what SQLite reports back, then
    /// `synchronous`, `journal_size_limit` and `wal_autocheckpoint`, all
    /// from typed settings. A new file is created with mode 0600 on Unix
    /// (SQLite gives the `-wal` and `-shm` files the same mode).
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the file cannot be opened or created (the
    /// directory is missing, permissions), [`Error::NotADatabase`] when the
    /// file is something else, [`Error::NotWal`] when SQLite refuses WAL,
    /// [`Error::Pragma`] when a pragma fails (e.g. the database is locked).
    pub fn open(settings: &DatabaseSettings) -> Result<Self> {
        Self::open_through(settings, None)
    }

    /// Like [`Store::open`], through the SQLite VFS registered under `vfs`
    /// (a VFS of your own, or the power-loss shim of the `testing` feature,
    /// `walguard::testing::PowerLossVfs`). The reopen after a checkpoint
    /// I/O error (see the [checkpoint policy](crate::checkpoint)) goes
    /// through the same VFS.
    ///
    /// # Errors
    ///
    /// As [`Store::open`]; [`Error::Open`] also when no VFS is registered
    /// under that name.
    pub fn open_with_vfs(settings: &DatabaseSettings, vfs: &str) -> Result<Self> {
        Self::open_through(settings, Some(vfs))
    }

    fn open_through(settings: &DatabaseSettings, vfs: Option<&str>) -> Result<Self> {
        let conn = open::open_connection(settings, vfs)?;
        let mut store = Self {
            backfill: None,
            conn,
            settings: settings.clone(),
            durability: Durability::default(),
            group: GroupStats::default(),
            wal: WalWatch::new(),
            effects: EffectCache::default(),
            guard: Guard::default(),
            synced: false,
            baseline: Snapshot::default(),
            weakened: None,
            identity: FileIdentity::of(&settings.path).ok(),
            gone: None,
            gone_ever: false,
            vfs: vfs.map(str::to_owned),
            reopen_pending: false,
            replica: None,
            position: None,
        };
        store.install_wal_hook()?;
        store.install_guard()?;
        // What the connection holds now is walguard's: the baseline a
        // closure is checked against, and the level commits are counted by.
        store.baseline = Snapshot::read(&store.conn).map_err(|source| Error::Pragma {
            path: settings.path.clone(),
            pragma: "synchronous",
            source,
        })?;
        store.synced = guard::syncs_every_commit(&store.baseline);
        Ok(store)
    }

    /// The database path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.settings.path
    }

    /// The settings the store was opened with.
    #[must_use]
    pub fn settings(&self) -> &DatabaseSettings {
        &self.settings
    }

    /// Commits so far and how many of them are durable.
    #[must_use]
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Batch sizes and reruns of [`Store::execute_group`] so far.
    #[must_use]
    pub fn group_stats(&self) -> GroupStats {
        self.group
    }

    /// Why no commit counts as durable any more, if so: a
    /// [`Store::call`] closure changed a setting walguard's promises rest on
    /// and setting it back failed ([`Error::SettingLost`]). `None` while
    /// the connection's settings are walguard's.
    #[must_use]
    pub fn weakened(&self) -> Option<&str> {
        self.weakened.as_deref()
    }

    /// Whether every commit fsyncs the WAL, so it is durable as soon as it
    /// returns: the connection's own `synchronous` reads FULL or EXTRA (read
    /// back from the connection at open and after every closure, never
    /// taken from the settings alone), and no setting was lost.
    fn every_commit_is_synced(&self) -> bool {
        self.synced && self.weakened.is_none()
    }

    /// One commit, holding `writes` acknowledged writes. A WAL restart the
    /// hook saw in it first makes every earlier commit durable (see the
    /// [WAL watch](wal_watch)).
    fn record_commit(&mut self, writes: u64) {
        if self.take_wal_restart() && self.weakened.is_none() {
            let before = self.durability;
            self.durability.durable_through(before);
        }
        let synced = self.every_commit_is_synced();
        self.durability.record_commit(writes, synced);
    }
}

/// Helpers shared by the unit tests of the store's files.
#[cfg(test)]
mod test_support {
    use rusqlite::types::Value;

    use super::{Statement, Store};
    use crate::settings::DatabaseSettings;

    pub(super) fn store_in(dir: &tempfile::TempDir) -> Store {
        let mut store = Store::open(&DatabaseSettings::at(dir.path().join("state.db"))).unwrap();
        store
            .execute(&Statement::new(
                "CREATE TABLE kv (id INTEGER PRIMARY KEY, v BLOB NOT NULL)",
            ))
            .unwrap();
        store
    }

    pub(super) fn insert(id: i64) -> Statement {
        Statement::new("INSERT INTO kv (id, v) VALUES (?1, ?2)")
            .bind(id)
            .bind(vec![7u8; 100])
    }

    pub(super) fn ids(store: &Store) -> Vec<i64> {
        store
            .query(&Statement::new("SELECT id FROM kv ORDER BY id"))
            .unwrap()
            .into_rows()
            .into_iter()
            .map(|row| match row[0] {
                Value::Integer(i) => i,
                ref other => panic!("{other:?}"),
            })
            .collect()
    }
}
