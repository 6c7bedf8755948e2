//! The core crate's integration tests, in one binary (ripgrep's layout): each
//! module below covers one part of `walguard` against real SQLite files.
//!
//! Random tests are seeded; set `WALGUARD_TEST_SEED` to replay a seed that a
//! failure printed.

#[path = "core/support.rs"]
mod support;

#[path = "core/checkpoint.rs"]
mod checkpoint;
#[path = "core/migrations.rs"]
mod migrations;
#[path = "core/neighbours.rs"]
mod neighbours;
#[path = "core/read.rs"]
mod read;
#[path = "core/replica_hold.rs"]
mod replica_hold;
#[path = "core/settings.rs"]
mod settings;
#[path = "core/store.rs"]
mod store;
#[path = "core/two_phase.rs"]
mod two_phase;
#[path = "core/window.rs"]
mod window;
