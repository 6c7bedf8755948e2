use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

use crate::common::{insert, settings, start_here};

type Event = (std::thread::ThreadId, String, BTreeSet<String>);

/// Records every event with its thread. Installed once as the global
/// subscriber: a per-test `set_default` races with other test threads over
/// tracing's global callsite-interest cache and can miss events.
#[derive(Default, Clone)]
struct Recorded(Arc<Mutex<Vec<Event>>>);

fn recorder() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let recorded = Recorded::default();
        let subscriber = tracing_subscriber::registry().with(recorded.clone());
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        recorded
    })
}

/// The events recorded on this thread so far.
fn events_here() -> Vec<(String, BTreeSet<String>)> {
    let me = std::thread::current().id();
    recorder()
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(thread, _, _)| *thread == me)
        .map(|(_, target, names)| (target.clone(), names.clone()))
        .collect()
}

struct Names(BTreeSet<String>);

impl Visit for Names {
    fn record_debug(&mut self, field: &Field, _: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorded {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut names = Names(BTreeSet::new());
        event.record(&mut names);
        self.0.lock().unwrap().push((
            std::thread::current().id(),
            event.metadata().target().to_owned(),
            names.0,
        ));
    }
}

fn has_fields(names: &BTreeSet<String>, wanted: &[&str]) -> bool {
    wanted.iter().all(|w| names.contains(*w))
}

/// One event per checkpoint and one end-of-session event, with the field
/// names operators' tools rely on.
#[actix_rt::test]
async fn checkpoint_and_session_events_carry_the_stable_fields() {
    let _ = recorder();

    tokio::time::pause();
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), Duration::from_secs(10))).await;
    guard.start_checkpoint_loop();
    for i in 0..3 {
        guard.db().execute(insert(i)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    let report = guard.shutdown().await.unwrap();

    let events = events_here();
    let checkpoints: Vec<_> = events
        .iter()
        .filter(|(target, _)| target == "walguard::checkpoint")
        .filter(|(_, names)| has_fields(names, &walguard::checkpoint::LOG_FIELDS))
        .collect();
    // Three interval checkpoints and the shutdown TRUNCATE.
    assert_eq!(checkpoints.len(), 4, "{events:?}");
    assert_eq!(report.counts.total, 4);
    let sessions: Vec<_> = events
        .iter()
        .filter(|(target, _)| target == "walguard::session")
        .collect();
    assert_eq!(sessions.len(), 1, "{events:?}");
    assert!(has_fields(
        &sessions[0].1,
        &walguard::stats::SESSION_LOG_FIELDS
    ));
}

/// The session event says which migrations ran at start and how long they
/// took; without migrations it carries none of those fields.
#[actix_rt::test]
async fn the_session_event_names_the_migrations_run_at_start() {
    let _ = recorder();
    let migration_fields = ["schema_version", "migrations", "migrations_ms"];
    let dir = tempfile::tempdir().unwrap();
    let migrations = walguard::Migrations::new(vec![
        "CREATE TABLE kv (id INTEGER PRIMARY KEY, v BLOB NOT NULL)",
        "CREATE INDEX kv_v ON kv (v)",
    ]);
    let guard = walguard_actors::WalGuard::builder(settings(dir.path(), Duration::from_secs(10)))
        .db_placement(walguard_actors::Placement::Current)
        .migrations(migrations)
        .start()
        .unwrap();
    guard.db().execute(insert(1)).await.unwrap();
    let report = guard.shutdown().await.unwrap();
    let applied = report
        .migrations
        .as_ref()
        .expect("the report has the migrations");
    assert_eq!(applied.applied(), ["migration 1", "migration 2"]);
    assert!(report.to_string().contains(
        "migrations at start: schema version 0 -> 2: applied migration 1, migration 2 in"
    ));
    let sessions: Vec<_> = events_here()
        .into_iter()
        .filter(|(target, _)| target == "walguard::session")
        .collect();
    assert_eq!(sessions.len(), 1);
    assert!(
        has_fields(&sessions[0].1, &migration_fields),
        "{sessions:?}"
    );

    // The same database, started without migrations: no such fields.
    let guard = start_here(settings(dir.path(), Duration::from_secs(10))).await;
    let report = guard.shutdown().await.unwrap();
    assert!(report.migrations.is_none());
    let sessions: Vec<_> = events_here()
        .into_iter()
        .filter(|(target, _)| target == "walguard::session")
        .collect();
    assert_eq!(sessions.len(), 2);
    assert!(
        migration_fields.iter().all(|f| !sessions[1].1.contains(*f)),
        "{sessions:?}"
    );
}
