//! `ack: replicated`: no acknowledged write missing after a machine loss,
//! whatever the request kind; and the answer at `replication.max_lag`
//! while the replica is unreachable.

use super::machine_loss::machine_loss;
use super::*;

/// Trials of [`ack_replicated_loses_no_acknowledged_write`] in CI: 2 (one
/// with group commit, one without). On demand, more:
/// `WALGUARD_ACK_TRIALS=20 cargo test -p walguard-actors --all-features
/// --test replication -- ack::ack_replicated_loses --nocapture`.
const DEFAULT_ACK_TRIALS: u64 = 2;

#[test]
fn ack_replicated_loses_no_acknowledged_write() {
    require_replication_tools();
    let s3 = S3::start();
    let trials: u64 = std::env::var("WALGUARD_ACK_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(DEFAULT_ACK_TRIALS);
    for trial in 0..trials {
        // Seed 1000: group commit on; 1001: off (see `machine_loss`).
        let (acked, _, survived, mut latencies) = machine_loss(&s3, "replicated", 1000 + trial);
        assert!(!acked.is_empty(), "trial {trial}: nothing acknowledged");
        let survived: std::collections::HashSet<u64> = survived.into_iter().collect();
        let lost = acked.iter().filter(|s| !survived.contains(s)).count();
        assert_eq!(lost, 0, "trial {trial}: {lost} acknowledged writes lost");
        latencies.sort_unstable();
        eprintln!(
            "ack: replicated, 16 writers (execute, transaction, call), group commit {}: {} acknowledged, 0 lost; write latency p50 {:.1}ms p95 {:.1}ms",
            if trial % 2 == 0 { "on" } else { "off" },
            acked.len(),
            latencies[latencies.len() / 2] as f64 / 1000.0,
            latencies[latencies.len() * 95 / 100] as f64 / 1000.0
        );
    }
}

/// `ack: replicated` while the S3 server is gone: a write held for the
/// replica is answered `NotReplicated` about `max_lag` after its commit,
/// not when the hung sync gives up (10 s): the replies past `max_lag` are
/// let go on every tick, also while a sync is in flight.
#[test]
fn ack_replicated_answers_at_max_lag_while_the_replica_is_unreachable() {
    require_replication_tools();
    let s3 = S3::start();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    let config = config(
        work.path(),
        &db,
        &s3.endpoint(),
        "unreachable",
        "replicated",
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("max_lag: 30s", "max_lag: 1s");
    std::fs::write(&config, text).unwrap();
    let mut run = Running::new(child(&config, "run", SECRET, None));
    run.until(Duration::from_secs(20), "writes replicated", |r| {
        r.replicated >= 50
    });
    drop(s3);
    let gone = Instant::now();
    run.until(
        Duration::from_secs(15),
        "a write answered not replicated",
        |r| !r.failed.is_empty(),
    );
    let first = gone.elapsed();
    run.lose_machine();
    let waited: Vec<u64> = run
        .failed
        .iter()
        .filter_map(|l| {
            let (_, rest) = l.split_once("within ")?;
            rest.split("ms").next()?.parse().ok()
        })
        .collect();
    assert!(
        !waited.is_empty(),
        "no NotReplicated answer: {:?}",
        run.failed
    );
    let longest = *waited.iter().max().unwrap();
    assert!(
        longest < 3000,
        "a held write waited {longest} ms for the replica, max_lag 1 s (the hung sync's timeout is 10 s): {:?}",
        run.failed
    );
    eprintln!(
        "S3 gone: the first write answered not replicated {first:?} later; held writes waited at most {longest} ms (max_lag 1 s)"
    );
}
