//! Checkpoints on real WAL files: every outcome shape, the deadline, mode parsing, and the logged event.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tracing::field::{Field, Visit};
use tracing::span;
use walguard::checkpoint::{self, UnknownMode};
use walguard::{CheckpointMode, CheckpointOutcome, CheckpointReason, CheckpointReport};

use crate::support::{pin_reader, put, store_with_kv, temp_db, wal_path};

fn wal_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(wal_path(path)).map_or(0, |m| m.len())
}

#[test]
fn passive_without_readers_completes() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    for i in 0..20 {
        put(&mut store, &format!("k{i}"), i);
    }
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    assert!(!report.busy());
    assert!(
        report.log_frames() > 0,
        "there were frames to copy: {report:?}"
    );
    assert_eq!(report.checkpointed_frames(), report.log_frames());
    assert_eq!(report.mode(), CheckpointMode::Passive);
    assert_eq!(report.reason(), CheckpointReason::Manual);
    assert_eq!(report.outcome().as_str(), "completed");
    // PASSIVE does not truncate: the WAL keeps its frames on disk.
    assert!(wal_len(&path) > 0);
}

#[test]
fn passive_under_a_pinned_reader_is_partial() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    let reader = pin_reader(&path);
    for i in 0..10 {
        put(&mut store, &format!("k{i}"), i);
    }
    let start = Instant::now();
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Interval);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "PASSIVE must not wait"
    );
    assert_eq!(*report.outcome(), CheckpointOutcome::Partial, "{report:?}");
    assert!(!report.busy());
    assert!(report.log_frames() > 0);
    assert!(
        report.checkpointed_frames() < report.log_frames(),
        "{report:?}"
    );
    assert!(!report.outcome().is_failure());

    // The reader still sees its snapshot, then lets go.
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 1);
    drop(reader);
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Interval);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
}

#[test]
fn truncate_under_a_pinned_reader_is_busy_within_the_deadline() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    let reader = pin_reader(&path);
    put(&mut store, "b", 2);
    let durable = store.durability().durable_commits();

    let deadline = Duration::from_millis(200);
    let start = Instant::now();
    let report = store.checkpoint_with_deadline(
        CheckpointMode::Truncate,
        CheckpointReason::Shutdown,
        deadline,
    );
    let elapsed = start.elapsed();
    // A hang guard, not a speed test.
    assert!(
        elapsed < Duration::from_secs(3),
        "took {elapsed:?} for a {deadline:?} deadline"
    );
    // Pins a bug: the hard stop used to fire only deadline/4 after the busy
    // timeout, so under CPU load the interrupt beat the busy handler and a
    // clean busy came back as "failed: interrupted".
    assert_eq!(*report.outcome(), CheckpointOutcome::Busy, "{report:?}");
    assert!(report.busy());
    assert!(
        report.checkpointed_frames() < report.log_frames(),
        "{report:?}"
    );
    assert_eq!(report.mode(), CheckpointMode::Truncate);
    assert_eq!(report.reason(), CheckpointReason::Shutdown);
    assert_eq!(
        store.durability().durable_commits(),
        durable,
        "busy moves nothing"
    );
    assert!(wal_len(&path) > 0, "a busy TRUNCATE truncates nothing");

    // The deadline was temporary: the configured busy timeout is back.
    let busy_ms: i64 = store
        .call(|c| c.pragma_query_value(None, "busy_timeout", |r| r.get(0)))
        .unwrap();
    assert_eq!(
        busy_ms,
        i64::try_from(store.settings().busy_timeout.as_millis()).unwrap()
    );

    // No late interrupt hits the next statements, and without the reader the
    // same call completes.
    put(&mut store, "c", 3);
    drop(reader);
    let report = store.checkpoint_with_deadline(
        CheckpointMode::Truncate,
        CheckpointReason::Shutdown,
        deadline,
    );
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
}

#[test]
fn truncate_leaves_an_empty_wal() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    for i in 0..50 {
        put(&mut store, &format!("k{i}"), i);
    }
    assert!(wal_len(&path) > 0);
    let report = store.checkpoint(CheckpointMode::Truncate, CheckpointReason::Manual);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    assert_eq!(
        (
            report.busy(),
            report.log_frames(),
            report.checkpointed_frames()
        ),
        (false, 0, 0)
    );
    assert!(
        wal_path(&path).exists(),
        "the -wal file stays while the store is open"
    );
    assert_eq!(wal_len(&path), 0, "TRUNCATE must leave a zero-length -wal");
    assert_eq!(store.durability().exposed_commits(), 0);

    // The data made it into the main file: a fresh reader sees it all.
    let conn = Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 50);
}

#[test]
fn checkpoint_inside_a_transaction_is_reported_as_failed() {
    let (_dir, path) = temp_db();
    drop(store_with_kv(&path));
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("BEGIN; INSERT INTO kv (k, v) VALUES ('a', 1);")
        .unwrap();
    let report = checkpoint::run(&conn, CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(report.outcome().is_failure(), "{report:?}");
    assert_eq!(report.outcome().as_str(), "failed");
    assert_eq!(
        (report.log_frames(), report.checkpointed_frames()),
        (-1, -1)
    );
    let CheckpointOutcome::Failed { error } = report.outcome() else {
        unreachable!()
    };
    assert!(error.contains("locked"), "{error}");
}

#[test]
fn checkpoint_outside_wal_mode_is_reported_as_failed() {
    let (_dir, path) = temp_db();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let report = checkpoint::run(&conn, CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(report.outcome().is_failure(), "{report:?}");
    assert!(
        report.outcome().to_string().contains("not in WAL mode"),
        "{report:?}"
    );
}

#[test]
fn mode_parsing_rejects_unknown_modes() {
    for (text, mode) in [
        ("passive", CheckpointMode::Passive),
        ("FULL", CheckpointMode::Full),
        ("Restart", CheckpointMode::Restart),
        ("truncate", CheckpointMode::Truncate),
    ] {
        assert_eq!(text.parse::<CheckpointMode>(), Ok(mode));
        assert_eq!(mode.as_str().parse::<CheckpointMode>(), Ok(mode));
        assert_eq!(mode.as_sql().parse::<CheckpointMode>(), Ok(mode));
        assert_eq!(mode.to_string(), mode.as_str());
    }
    for bad in [
        "",
        "fast",
        "passive ",
        "truncate;",
        "PASSIVE) ; DROP TABLE kv; --",
    ] {
        let err = bad.parse::<CheckpointMode>().unwrap_err();
        assert_eq!(err, UnknownMode(bad.to_owned()));
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

/// One event as seen by [`Recorder`].
#[derive(Debug, Clone)]
struct Recorded {
    target: String,
    level: tracing::Level,
    fields: BTreeMap<String, String>,
}

/// A minimal subscriber that records every event's target, level and fields.
#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<Recorded>>>,
}

struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldVisitor(&mut fields));
        self.events.lock().unwrap().push(Recorded {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
        });
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

fn logged(report: &CheckpointReport) -> Recorded {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || report.log());
    let events = recorder.events.lock().unwrap();
    assert_eq!(
        events.len(),
        1,
        "log() must emit exactly one event: {events:?}"
    );
    events[0].clone()
}

/// The event carries exactly the stable fields of `checkpoint::LOG_FIELDS`
/// (plus `message`, and `extra` where given), so the list and the event
/// cannot drift apart.
fn assert_stable_fields(event: &Recorded, extra: &[&str]) {
    let mut expected: Vec<&str> = checkpoint::LOG_FIELDS.to_vec();
    expected.extend_from_slice(extra);
    expected.push("message");
    expected.sort_unstable();
    let mut got: Vec<&str> = event.fields.keys().map(String::as_str).collect();
    got.sort_unstable();
    assert_eq!(got, expected, "{event:?}");
}

#[test]
fn report_log_emits_the_stable_fields() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Interval);
    let event = logged(&report);
    assert_eq!(event.target, "walguard::checkpoint");
    assert_eq!(event.level, tracing::Level::INFO);
    assert_stable_fields(&event, &[]);
    let f = &event.fields;
    assert_eq!(f["mode"], "passive");
    assert_eq!(f["reason"], "interval");
    assert_eq!(f["outcome"], "completed");
    assert_eq!(f["busy"], "false");
    assert_eq!(f["log_frames"], report.log_frames().to_string());
    assert_eq!(f["checkpointed"], report.checkpointed_frames().to_string());
    let elapsed_ms: f64 = f["elapsed_ms"].parse().unwrap();
    assert!((elapsed_ms - report.elapsed_ms()).abs() < 1e-9, "{event:?}");
}

#[test]
fn report_log_warns_on_failure_with_the_error() {
    let io = std::io::Error::other("disk on fire");
    let report = CheckpointReport::failed(
        CheckpointMode::Truncate,
        CheckpointReason::Shutdown,
        Duration::from_millis(3),
        &io,
    );
    let event = logged(&report);
    assert_eq!(event.level, tracing::Level::WARN);
    assert_stable_fields(&event, &["error"]);
    assert_eq!(event.fields["mode"], "truncate");
    assert_eq!(event.fields["reason"], "shutdown");
    assert_eq!(event.fields["outcome"], "failed");
    assert_eq!(event.fields["error"], "disk on fire");
}
