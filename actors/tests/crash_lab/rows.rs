//! The rows both campaigns write, and the check of what survived: one home
//! for both crates' crash tests, `walguard::testing` (see
//! [`walguard::testing::check_survivors`]).

use walguard::Statement;
pub(crate) use walguard::testing::{
    AfterCheck, CRASH_TABLE_SQL as TABLE_SQL, SurvivorError, Survivors, Violation, ViolationKind,
    check_survivors as survivors, crash_row,
};

/// The insert of row `id` of request `req` (which holds `rows` rows), for
/// the campaigns whose ids are never written twice (generation 0).
pub(crate) fn insert(id: u64, req: u64, rows: u64) -> Statement {
    crash_row(id, req, rows, 0)
}
