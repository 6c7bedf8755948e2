//! Closures on the connection ([`Store::call`]), for whatever the typed
//! calls do not cover: a panic caught, a transaction left open rolled back,
//! the connection's settings checked after.

use rusqlite::Connection;

use super::Store;
use crate::error::{Error, Result};

impl Store {
    /// Runs a closure against the connection, for whatever the typed
    /// messages do not cover.
    ///
    /// The closure must leave no transaction open: checkpoints run between
    /// transactions. One left open is rolled back and reported as an error.
    /// A closure that changed rows counts as one commit for
    /// [`Store::durability`].
    ///
    /// The connection's settings stay walguard's: a PRAGMA the closure
    /// prepares that would change a guarded setting is denied (the closure
    /// sees SQLite's `not authorized`, and the call ends with
    /// [`Error::GuardedSetting`] if the closure returns that error). A
    /// closure that removes the authorizer and changes one anyway finds it
    /// set back after it returns (see the `guard` module of the store).
    ///
    /// # Errors
    ///
    /// [`Error::SettingRestored`] when the closure changed a guarded
    /// setting: it was set back, and what the closure committed counts as
    /// exposed until the next checkpoint that catches up;
    /// [`Error::SettingLost`] when setting it back failed.
    /// [`Error::Panic`] when the closure panicked: the panic is caught, a
    /// transaction it left open is rolled back, and the store keeps
    /// serving. [`Error::Call`] with what the closure returned;
    /// [`Error::LeftTransactionOpen`] when it left a transaction open (it
    /// was rolled back).
    pub fn call<R>(&mut self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>) -> Result<R> {
        self.refuse_if_gone()?;
        let before = self.conn.total_changes();
        self.guard.clear_denied();
        // The closure is the caller's code: a panic in it must not take the
        // writer down. The connection it held is still sound (SQLite's
        // state is only changed by SQLite calls, which do not unwind), and
        // a transaction it left open is rolled back below.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut self.conn)));
        let result = match result {
            Ok(result) => result,
            Err(payload) => {
                let message = crate::error::panic_message(payload.as_ref());
                if !self.conn.is_autocommit()
                    && let Err(e) = self.conn.execute_batch("ROLLBACK")
                {
                    return Err(Error::RollbackFailed {
                        what: format!("closure that panicked ({message})"),
                        source: e,
                    });
                }
                let committed = self.conn.total_changes() != before;
                let settings = self.check_settings_after_call();
                if committed {
                    // It committed before it panicked.
                    self.durability
                        .record_commit(1, settings.is_ok() && self.every_commit_is_synced());
                    self.bump_alone();
                }
                settings?;
                return Err(Error::Panic { message });
            }
        };
        if !self.conn.is_autocommit() {
            let left_open = self.roll_back_left_open("closure".to_owned());
            self.check_settings_after_call()?;
            return Err(left_open);
        }
        let changed_rows = self.conn.total_changes() != before;
        if let Err(e) = self.check_settings_after_call() {
            // What the closure committed ran under the settings it set: not
            // durable until a checkpoint catches up.
            if changed_rows {
                self.durability.record_commit(1, false);
                self.bump_alone();
            }
            return Err(e);
        }
        if changed_rows {
            self.record_commit(1);
            self.bump_alone();
        }
        result.map_err(|source| match self.guard.take_denied() {
            Some(g) => Error::GuardedSetting {
                sql: "a statement the closure prepared".to_owned(),
                pragma: g.name,
                instead: g.instead,
            },
            None => Error::Call { source },
        })
    }
}
