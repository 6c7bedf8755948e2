//! `Store` on real files: opening and its failures, writes and their failures, reads, closures, durability accounting, close.

use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode};
use walguard::settings::{DatabaseSettings, Synchronous};
use walguard::{
    CheckpointMode, CheckpointOutcome, CheckpointReason, Error, Settings, Statement, Store,
};

use crate::support::{
    chain, count, integrity, pin_reader, put, sqlite_cause, store_with_kv, store_with_kv_using,
    temp_db, wal_path,
};

#[path = "store/durability.rs"]
mod durability;
#[path = "store/open.rs"]
mod open;
#[path = "store/query_and_call.rs"]
mod query_and_call;
#[path = "store/writes.rs"]
mod writes;
