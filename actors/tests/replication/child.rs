//! The child process of these tests: this binary re-run with `--ignored
//! --exact child::replication_child`, a walguard with replication on that
//! writes and prints what it acknowledged and what it saw replicated.

use super::*;

/// The migrations of the child started with [`CHILD_MIGRATIONS_ENV`]: a
/// table with 2,000 rows, then an index.
fn replica_migrations() -> walguard::Migrations {
    walguard::Migrations::new(vec![
        "CREATE TABLE migrated (id INTEGER PRIMARY KEY, body BLOB);\n\
         INSERT INTO migrated (id, body)\n\
           WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)\n\
           SELECT i, zeroblob(100) FROM n;",
        "CREATE INDEX migrated_body ON migrated (body)",
    ])
}

/// Writes `seq` the way `how` ([`CHILD_WRITES_ENV`]) says. Transactions
/// and closures write `t` and `t2` together: a restore that has one
/// without the other is not transaction-consistent.
async fn write_seq(
    db: &walguard_actors::DbHandle,
    how: &str,
    seq: u64,
) -> Result<(), walguard_actors::Error> {
    let insert = |table: &str| {
        walguard::Statement::new(format!(
            "INSERT INTO {table} (seq, pad) VALUES (?1, zeroblob(100))"
        ))
        .bind(seq as i64)
    };
    let kind = match how {
        "txn" => 1,
        "mixed" => seq % 3,
        _ => 0,
    };
    match kind {
        0 => db.execute(insert("t")).await.map(drop),
        1 => db
            .transaction(vec![insert("t"), insert("t2")])
            .await
            .map(drop),
        _ => {
            db.call(move |conn| {
                let tx = conn.transaction()?;
                for table in ["t", "t2"] {
                    tx.execute(
                        &format!("INSERT INTO {table} (seq, pad) VALUES (?1, zeroblob(100))"),
                        [seq as i64],
                    )?;
                }
                tx.commit()
            })
            .await
        }
    }
}

/// The child: `mode` is `run` (write until killed), `clean` (write 500,
/// shut down cleanly), `restore` (restore into `CHILD_OUT_ENV`) or `start`
/// (start, print the error if any).
#[test]
#[ignore = "the child of the replication tests"]
// One scenario script, read top to bottom; splitting it hides the order.
#[allow(clippy::too_many_lines)]
fn replication_child() {
    let Some(config) = std::env::var_os(CHILD_CONFIG_ENV) else {
        return;
    };
    // The harness printed `test replication_child ... ` without a newline.
    println!();
    let mode = std::env::var(CHILD_MODE_ENV).unwrap();
    let settings = match Settings::load(Some(Path::new(&config))) {
        Ok(settings) => settings,
        Err(e) => {
            println!("error {}", chain(&e));
            return;
        }
    };
    if mode == "restore" {
        let out = PathBuf::from(std::env::var_os(CHILD_OUT_ENV).unwrap());
        match walguard_actors::replication::restore_to(&settings, &out) {
            Ok(()) => println!("restored"),
            Err(e) => println!("error {e}"),
        }
        return;
    }
    if mode != "start" {
        let conn = Connection::open(&settings.database.path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t (seq INTEGER PRIMARY KEY, pad BLOB);
             CREATE TABLE IF NOT EXISTS t2 (seq INTEGER PRIMARY KEY, pad BLOB)",
        )
        .unwrap();
    }
    let how = std::env::var(CHILD_WRITES_ENV).unwrap_or_else(|_| "single".to_owned());
    let replicated_ack = settings.replication.ack == walguard::settings::AckMode::Replicated;
    // The log goes to stderr, which the tests that look at it keep.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter("walguard=info,walguard_actors=info")
        .try_init();
    let looks_closer = matches!(mode.as_str(), "alone" | "external" | "exposure" | "flood");
    actix::System::new().block_on(async move {
        let started = if std::env::var_os(CHILD_MIGRATIONS_ENV).is_some() {
            walguard_actors::WalGuard::start_with_migrations(settings.clone(), replica_migrations())
        } else {
            walguard_actors::WalGuard::start(settings.clone())
        };
        let guard = match started {
            Ok(guard) => guard,
            Err(e) => {
                println!("error {}", chain(&e));
                return;
            }
        };
        if mode == "start" {
            println!("started");
            let _ = guard.shutdown().await;
            return;
        }
        let files = walguard_actors::replication::testing::Files::for_db(
            &settings.database.path,
            settings.replication.socket.as_deref(),
        )
        .unwrap();
        let client = walguard_actors::replication::testing::ControlClient::new(&files.socket);
        println!(
            "ls_pid {}",
            client.pid(Duration::from_secs(2)).await.unwrap()
        );
        if looks_closer {
            guard.start_checkpoint_loop();
            guard.watch_exposure(Duration::from_millis(20));
        }
        let guard = std::rc::Rc::new(guard);
        let watcher = {
            let guard = guard.clone();
            actix::spawn(async move {
                let (mut owner, mut wal, mut pid) = (None, None, None);
                for round in 0u64.. {
                    if let Ok(Some(r)) = guard.replicated().await {
                        println!("rep {}", r.writes);
                        if looks_closer && owner != Some(r.owner) {
                            owner = Some(r.owner);
                            println!("owner {}", r.owner);
                        }
                    }
                    if looks_closer {
                        let status = guard.status().await;
                        if let Ok(status) = &status
                            && let Some(exposure) = status.exposure
                        {
                            println!(
                                "exposure {} {}",
                                exposure.age().as_millis(),
                                u8::from(status.starving)
                            );
                        }
                        if let Ok(status) = status
                            && status.wal_frames.is_some()
                            && status.wal_frames != wal
                        {
                            wal = status.wal_frames;
                            println!("wal {}", wal.unwrap_or(0));
                        }
                        // Litestream's pid, after a restart too.
                        if round % 5 == 0
                            && let Ok(now) = client.pid(Duration::from_millis(200)).await
                            && pid != Some(now)
                        {
                            pid = Some(now);
                            println!("ls_pid {now}");
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let total: u64 = match mode.as_str() {
            "clean" | "exposure" => 500,
            "flood" => 20_000,
            "external" => 300,
            _ => u64::MAX,
        };
        if replicated_ack || mode == "flood" {
            // Many writers: groups grow while they wait for the replica;
            // `flood` sends as fast as the writer takes them.
            let next = std::rc::Rc::new(std::cell::Cell::new(1u64));
            let mut tasks = Vec::new();
            for _ in 0..16 {
                let (guard, next, how) = (guard.clone(), next.clone(), how.clone());
                tasks.push(actix::spawn(async move {
                    loop {
                        let seq = next.get();
                        if seq > total {
                            break;
                        }
                        next.set(seq + 1);
                        let t = Instant::now();
                        match write_seq(guard.db(), &how, seq).await {
                            Ok(()) => println!("ack {seq} {}", t.elapsed().as_micros()),
                            Err(e) => println!("fail {seq} {e}"),
                        }
                    }
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        } else {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_S));
            for seq in 1..=total {
                tick.tick().await;
                match write_seq(guard.db(), &how, seq).await {
                    Ok(()) => println!("ack {seq}"),
                    Err(e) => println!("fail {seq} {e}"),
                }
            }
        }
        watcher.abort();
        let _ = watcher.await;
        let guard = std::rc::Rc::try_unwrap(guard).unwrap();
        let report = guard.shutdown().await.unwrap();
        let r = report.replication.unwrap();
        println!(
            "report writes {} replicated {}",
            report.db.writes_acknowledged, r.writes
        );
        println!(
            "checkpoints {} shutdown {}",
            report.counts.total,
            report
                .shutdown_checkpoint
                .as_ref()
                .map_or("none", |c| c.outcome().as_str())
        );
    });
}
