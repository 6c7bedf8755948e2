//! A supervisor restarting a faulted checkpoint actor.
//!
//! `CheckpointActor` runs under `actix::Supervisor`. A fault (here injected
//! with `InjectFault`; in production, `DbActor` answering with a failed
//! checkpoint or not answering at all) stops it; the supervisor restarts it,
//! the interval comes back exactly once, and the restart is counted.
//!
//! ```text
//! cargo run -p walguard-actors --features testing --example supervisor
//! ```

use std::time::Duration;

use walguard::Settings;
use walguard_actors::WalGuard;
use walguard_actors::messages::{GetLoopState, InjectFault};

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs to stderr; stdout carries the result.
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(std::io::stderr)
        .init();

    let dir = tempfile::tempdir()?;
    let mut settings = Settings::for_database(dir.path().join("supervised.db"));
    settings.checkpoint.interval = Duration::from_millis(100);
    settings.checkpoint.enabled = true;
    let guard = WalGuard::start(settings)?;
    guard
        .db()
        .execute("CREATE TABLE ticks (id INTEGER PRIMARY KEY)")
        .await?;

    for round in 1..=3 {
        actix_rt::time::sleep(Duration::from_millis(250)).await;
        guard
            .checkpoint_actor()
            .send(InjectFault(format!("drill {round}")))
            .await?;
        let state = guard.checkpoint_actor().send(GetLoopState).await?;
        println!(
            "after fault {round}: loop enabled={} armed={}",
            state.enabled, state.armed
        );
    }
    actix_rt::time::sleep(Duration::from_millis(250)).await;

    let report = guard.shutdown().await?;
    println!(
        "restarts: {}, checkpoints: {} ({} completed)",
        report.counts.restarts, report.counts.total, report.counts.completed
    );
    Ok(())
}
