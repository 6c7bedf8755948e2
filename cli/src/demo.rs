//! The synthetic engine's own tables: their prefix and their schema. The
//! one home of these facts, read by the engine ([`crate::engine`], which
//! creates them and tells its own database from anyone else's) and by the
//! error that refuses someone else's ([`crate::error::CliError::NotDemo`]).
//! It imports nothing of the command.

/// Prefix of every table the synthetic engine creates, so that nobody
/// mistakes its demo data for theirs, and so that `run` can tell a database
/// of its own from anyone else's.
pub(crate) const DEMO_PREFIX: &str = "walguard_demo_";

/// The engine's schema, created before the subsystem starts (the way an
/// engine migrates before it serves).
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS walguard_demo_records (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS walguard_demo_events (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    )",
];
