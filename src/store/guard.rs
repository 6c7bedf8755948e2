//! The connection's settings are walguard's: no SQL from a caller changes
//! what walguard promises.
//!
//! walguard's claims rest on the write connection's settings: WAL mode, the
//! `synchronous` level the durability figures assume, normal locking so
//! readers and checkpoints can share the file, the WAL hook that owns the
//! size-triggered checkpoint... A caller's `PRAGMA synchronous = OFF` would
//! make every "durable" in [`Durability`](super::Durability) a lie.
//!
//! **Refused before it runs.** SQLite applies some PRAGMAs while it
//! *compiles* them, before any step (FACTS.md, "Preparing is not
//! harmless"), so a statement cannot be prepared to find out what it does.
//! The guard is an authorizer (`sqlite3_set_authorizer`), installed once
//! when the store opens: SQLite calls it while compiling, before a PRAGMA
//! takes effect, and it denies a change of any [`GUARDED_PRAGMAS`] entry,
//! whatever the spelling (`main.synchronous`, quoted names, `synchronous(0)`,
//! `EXPLAIN PRAGMA ...`) and whatever the entry point: `execute`,
//! `transaction`, group commit, `query`, and statements a `call` closure
//! prepares. Reading a setting (`PRAGMA synchronous`) is allowed. The
//! refusal is [`Error::GuardedSetting`](crate::Error::GuardedSetting), naming
//! the setting to use instead.
//!
//! **Checked after a closure.** A [`Store::call`](super::Store::call)
//! closure holds the connection itself and can remove the authorizer. After
//! it returns, the store checks that the guard is still installed (and
//! installs it again), reads every guarded setting back from the
//! connection, and restores those that differ from what the store opened
//! with ([`Error::SettingRestored`](crate::Error::SettingRestored)). If a
//! restore fails, the store stops counting commits as durable
//! ([`Store::weakened`](super::Store::weakened)).
//!
//! **Recording.** The same authorizer records what it sees while the
//! effect classifier compiles `EXPLAIN <sql>` (see `effect.rs`): the
//! atomic batches and `query` decide from that record.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// One connection setting walguard's promises rest on, and what to use
/// instead of changing it with a PRAGMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardedPragma {
    /// The PRAGMA's name, lowercase (`synchronous`).
    pub name: &'static str,
    /// What to do instead, for the error message (`set
    /// database.synchronous`).
    pub instead: &'static str,
}

/// The PRAGMAs a caller may read but not change on the write connection.
pub const GUARDED_PRAGMAS: [GuardedPragma; 9] = [
    GuardedPragma {
        name: "synchronous",
        instead: "set database.synchronous",
    },
    GuardedPragma {
        name: "journal_mode",
        instead: "walguard keeps the database in WAL mode; there is no other",
    },
    GuardedPragma {
        name: "locking_mode",
        instead: "walguard needs normal locking, so readers and checkpoints share the file",
    },
    GuardedPragma {
        name: "wal_autocheckpoint",
        instead: "set database.wal_autocheckpoint or checkpoint.size_threshold_frames",
    },
    GuardedPragma {
        name: "fullfsync",
        instead: "walguard runs with SQLite's default; there is no setting",
    },
    GuardedPragma {
        name: "checkpoint_fullfsync",
        instead: "walguard runs with SQLite's default; there is no setting",
    },
    GuardedPragma {
        name: "query_only",
        instead: "open a read-only connection of your own for reads",
    },
    GuardedPragma {
        name: "busy_timeout",
        instead: "set database.busy_timeout",
    },
    GuardedPragma {
        name: "journal_size_limit",
        instead: "set database.journal_size_limit",
    },
];

/// The guarded entry for a PRAGMA name, in any case.
pub(super) fn guarded(name: &str) -> Option<&'static GuardedPragma> {
    GUARDED_PRAGMAS
        .iter()
        .find(|g| g.name.eq_ignore_ascii_case(name))
}

/// PRAGMAs that only read even with an argument, so `query` runs them.
const READING_PRAGMAS_WITH_ARGUMENT: [&str; 10] = [
    "table_info",
    "table_xinfo",
    "table_list",
    "index_info",
    "index_xinfo",
    "index_list",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
];

/// PRAGMAs that act even without an argument, so `query` refuses them.
const ACTING_PRAGMAS: [&str; 5] = [
    "wal_checkpoint",
    "optimize",
    "incremental_vacuum",
    "shrink_memory",
    "vacuum",
];

/// What the authorizer saw while SQLite compiled one statement.
// Independent facts, each set by its own authorizer action: flags, not a
// state machine.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    /// `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`.
    pub(super) transaction_control: bool,
    /// `PRAGMA`, `ATTACH`, `DETACH`: cannot run inside a transaction, or
    /// may refuse to.
    pub(super) outside_transaction: bool,
    /// `ATTACH` or `DETACH`.
    pub(super) attach: bool,
    /// Inserts, updates, deletes, schema changes.
    pub(super) writes: bool,
    /// A PRAGMA that changes something (a value given, or one that acts).
    pub(super) pragma_acts: bool,
    /// A guarded PRAGMA change, denied.
    pub(super) guarded: Option<&'static GuardedPragma>,
}

#[derive(Debug, Default)]
struct Inner {
    /// walguard's own statement: everything allowed.
    own: bool,
    /// Set by every callback: the authorizer is still installed.
    alive: bool,
    /// The last guarded change denied.
    denied: Option<&'static GuardedPragma>,
    /// Recording for the effect classifier.
    recording: Option<Seen>,
}

/// The authorizer's shared state; the store keeps one end, the installed
/// callback the other.
#[derive(Debug, Clone, Default)]
pub(super) struct Guard(Arc<Mutex<Inner>>);

impl Guard {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Installs the authorizer on `conn` (expires its prepared
    /// statements: done at open, and again only if a closure removed it).
    pub(super) fn install(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        let state = self.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| state.decide(&ctx)))
    }

    fn decide(&self, ctx: &AuthContext<'_>) -> Authorization {
        self.with(|inner| {
            inner.alive = true;
            let own = inner.own;
            let mut verdict = Authorization::Allow;
            let mut seen = inner.recording.unwrap_or_default();
            match ctx.action {
                AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
                    seen.transaction_control = true;
                }
                AuthAction::Attach { .. } | AuthAction::Detach { .. } => {
                    seen.outside_transaction = true;
                    seen.attach = true;
                }
                AuthAction::Pragma {
                    pragma_name,
                    pragma_value,
                } => {
                    seen.outside_transaction = true;
                    let lower = pragma_name.to_ascii_lowercase();
                    // `wal_checkpoint(NOOP)` copies nothing: it reports the
                    // WAL (the exposure watch reads it through `query`).
                    let noop_checkpoint = lower == "wal_checkpoint"
                        && pragma_value.is_some_and(|v| v.eq_ignore_ascii_case("noop"));
                    if !noop_checkpoint
                        && ((pragma_value.is_some()
                            && !READING_PRAGMAS_WITH_ARGUMENT.contains(&lower.as_str()))
                            || ACTING_PRAGMAS.contains(&lower.as_str()))
                    {
                        seen.pragma_acts = true;
                    }
                    if pragma_value.is_some()
                        && !own
                        && let Some(g) = guarded(pragma_name)
                    {
                        seen.guarded = Some(g);
                        inner.denied = Some(g);
                        verdict = Authorization::Deny;
                    }
                }
                AuthAction::Insert { .. }
                | AuthAction::Update { .. }
                | AuthAction::Delete { .. }
                | AuthAction::CreateIndex { .. }
                | AuthAction::CreateTable { .. }
                | AuthAction::CreateTempIndex { .. }
                | AuthAction::CreateTempTable { .. }
                | AuthAction::CreateTempTrigger { .. }
                | AuthAction::CreateTempView { .. }
                | AuthAction::CreateTrigger { .. }
                | AuthAction::CreateView { .. }
                | AuthAction::DropIndex { .. }
                | AuthAction::DropTable { .. }
                | AuthAction::DropTempIndex { .. }
                | AuthAction::DropTempTable { .. }
                | AuthAction::DropTempTrigger { .. }
                | AuthAction::DropTempView { .. }
                | AuthAction::DropTrigger { .. }
                | AuthAction::DropView { .. }
                | AuthAction::AlterTable { .. }
                | AuthAction::Reindex { .. }
                | AuthAction::Analyze { .. }
                | AuthAction::CreateVtable { .. }
                | AuthAction::DropVtable { .. } => seen.writes = true,
                _ => {}
            }
            if inner.recording.is_some() {
                inner.recording = Some(seen);
            }
            verdict
        })
    }

    /// Runs `f` (walguard's own statements) with every PRAGMA allowed.
    pub(super) fn own<R>(&self, f: impl FnOnce() -> R) -> R {
        let was = self.with(|inner| std::mem::replace(&mut inner.own, true));
        let result = f();
        self.with(|inner| inner.own = was);
        result
    }

    /// Runs `f` (a compile) recording what the authorizer sees.
    pub(super) fn record<R>(&self, f: impl FnOnce() -> R) -> (R, Seen) {
        self.with(|inner| inner.recording = Some(Seen::default()));
        let result = f();
        let seen = self.with(|inner| inner.recording.take().unwrap_or_default());
        (result, seen)
    }

    /// Forgets an earlier denial, before a call that may be denied.
    pub(super) fn clear_denied(&self) {
        self.with(|inner| inner.denied = None);
    }

    /// The guarded change denied since [`Guard::clear_denied`], if any.
    pub(super) fn take_denied(&self) -> Option<&'static GuardedPragma> {
        self.with(|inner| inner.denied.take())
    }

    /// Whether the authorizer is still installed on `conn`: compiles a
    /// probe (uncached, so SQLite compiles it) and sees whether the
    /// callback ran.
    pub(super) fn is_installed(&self, conn: &Connection) -> bool {
        self.with(|inner| inner.alive = false);
        let compiled = conn.prepare("SELECT 1").is_ok();
        compiled && self.with(|inner| inner.alive)
    }
}

/// The guarded settings as a connection holds them, read back with
/// `PRAGMA name` (values as SQLite prints them: `wal`, `2`, `0`...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Snapshot(Vec<(&'static str, String)>);

impl Snapshot {
    /// Reads every [`GUARDED_PRAGMAS`] entry from `conn`.
    pub(super) fn read(conn: &Connection) -> rusqlite::Result<Self> {
        let mut values = Vec::with_capacity(GUARDED_PRAGMAS.len());
        for g in &GUARDED_PRAGMAS {
            let value = conn
                .prepare_cached(&format!("PRAGMA {}", g.name))?
                .query_row([], |row| row.get::<_, rusqlite::types::Value>(0))?;
            let text = match value {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t.to_ascii_lowercase(),
                other => format!("{other:?}"),
            };
            values.push((g.name, text));
        }
        Ok(Self(values))
    }

    /// The settings whose value in `now` differs from this one: name, the
    /// value here, the value found.
    pub(super) fn changed_in(&self, now: &Self) -> Vec<(&'static str, String, String)> {
        self.0
            .iter()
            .zip(&now.0)
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, b)| (a.0, a.1.clone(), b.1.clone()))
            .collect()
    }

    /// The value of `name` here.
    pub(super) fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The `synchronous` level in a snapshot fsyncs the WAL at every commit
/// (FULL = 2, EXTRA = 3).
pub(super) fn syncs_every_commit(snapshot: &Snapshot) -> bool {
    matches!(snapshot.value("synchronous"), Some("2" | "3"))
}

impl super::Store {
    /// Installs the guard on the current connection (at open, after a
    /// reopen, or when a closure removed it).
    pub(super) fn install_guard(&mut self) -> crate::Result<()> {
        self.guard
            .install(&mut self.conn)
            .map_err(|source| crate::Error::Pragma {
                path: self.settings.path.clone(),
                pragma: "authorizer",
                source,
            })
    }

    /// [`crate::Error::GuardedSetting`] when `sql` would change a guarded
    /// setting, before anything runs.
    pub(super) fn refuse_guarded(&self, sql: &str) -> crate::Result<()> {
        match self.seen_of(sql).guarded {
            Some(g) => Err(guarded_error(sql, g)),
            None => Ok(()),
        }
    }

    /// The error for a statement that failed to prepare: the guard's
    /// refusal when it denied a guarded change, else what SQLite said.
    pub(super) fn statement_error(&self, sql: &str, source: rusqlite::Error) -> crate::Error {
        match self.guard.take_denied() {
            Some(g) => guarded_error(sql, g),
            None => crate::Error::Statement {
                sql: crate::error::sql_for_error(sql),
                source,
            },
        }
    }

    /// After a closure: the guard is installed again if the closure removed
    /// it, and every guarded setting that differs from what the store
    /// opened with is set back. `Ok` when the settings were walguard's all
    /// along; [`crate::Error::SettingRestored`] when something was set back,
    /// [`crate::Error::SettingLost`] when setting it back failed (the store
    /// then stops counting commits as durable).
    pub(super) fn check_settings_after_call(&mut self) -> crate::Result<()> {
        if !self.guard.is_installed(&self.conn) {
            tracing::warn!(target: "walguard::db", "a closure removed walguard's authorizer; installed again");
            self.install_guard()?;
        }
        let now = self
            .guard
            .own(|| Snapshot::read(&self.conn))
            .map_err(|source| crate::Error::SettingLost {
                changed: "settings that could not be read back".to_owned(),
                reason: source.to_string(),
            });
        let now = match now {
            Ok(now) => now,
            Err(e) => {
                self.lose_claims(&e);
                return Err(e);
            }
        };
        let changed = self.baseline.changed_in(&now);
        // The WAL hook: replaced without touching `wal_autocheckpoint`, it
        // shows in no setting (issue 21).
        let hook_replaced = self.wal_hook_replaced();
        if changed.is_empty() && !hook_replaced {
            return Ok(());
        }
        let mut found = changed
            .iter()
            .map(|(name, was, found)| format!("{name} = {found} (restored to {was})"))
            .collect::<Vec<_>>();
        if hook_replaced {
            found.push("the WAL hook replaced (walguard's installed again)".to_owned());
        }
        let found = found.join(", ");
        let restored = self.guard.own(|| {
            for (name, was, _) in &changed {
                if *name == "wal_autocheckpoint" {
                    // The slot holds the store's WAL hook: install it again.
                    continue;
                }
                self.conn.execute_batch(&format!("PRAGMA {name} = {was}"))?;
            }
            Ok::<_, rusqlite::Error>(())
        });
        let hook = if hook_replaced
            || changed
                .iter()
                .any(|(name, _, _)| *name == "wal_autocheckpoint")
        {
            self.install_wal_hook()
        } else {
            Ok(())
        };
        let after = self.guard.own(|| Snapshot::read(&self.conn));
        let lost = |reason: String| {
            Err(crate::Error::SettingLost {
                changed: found.clone(),
                reason,
            })
        };
        let result = match (restored, hook, after) {
            (Ok(()), Ok(()), Ok(after)) => {
                let still = self.baseline.changed_in(&after);
                if still.is_empty() && !self.wal_hook_replaced() {
                    Err(crate::Error::SettingRestored {
                        changed: found.clone(),
                    })
                } else {
                    let still = still
                        .iter()
                        .map(|(name, _, value)| format!("{name} still {value}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    lost(still)
                }
            }
            (Err(e), _, _) | (_, _, Err(e)) => lost(e.to_string()),
            (_, Err(e), _) => lost(crate::error::error_chain(&e)),
        };
        if let Err(e @ crate::Error::SettingLost { .. }) = &result {
            self.lose_claims(e);
        }
        result
    }

    /// From now on no commit counts as durable, and why.
    fn lose_claims(&mut self, why: &crate::Error) {
        tracing::error!(target: "walguard::db", error = %why, "the write connection's settings are not walguard's: no commit counts as durable from now on");
        self.weakened = Some(why.to_string());
    }
}

fn guarded_error(sql: &str, g: &'static GuardedPragma) -> crate::Error {
    crate::Error::GuardedSetting {
        sql: crate::error::sql_for_error(sql),
        pragma: g.name,
        instead: g.instead,
    }
}
