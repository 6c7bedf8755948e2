//! The machine-loss campaign: walguard and its Litestream killed together
//! at a random moment, every local file gone, the replica restored
//! elsewhere; what was lost stays within the bound.

use super::*;

/// One machine loss; `(acknowledged, replicated reported, survived, ack latencies in µs)`.
// One trial, read top to bottom: run, lose the machine, restore.
#[allow(clippy::too_many_lines)]
pub(super) fn machine_loss(s3: &S3, ack: &str, seed: u64) -> (Vec<u64>, u64, Vec<u64>, Vec<u64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let work = tempfile::tempdir().unwrap();
    let machine = work.path().join("machine");
    std::fs::create_dir(&machine).unwrap();
    let db = machine.join("engine.db");
    let name = format!("loss-{ack}-{seed}");
    let config = config(work.path(), &db, &s3.endpoint(), &name, ack);
    // Under ack: replicated every kind of write is held: the writers send
    // `execute`, `transaction` and `call` in turn, and odd seeds run with
    // group commit off (each write its own commit).
    let writes = if ack == "replicated" {
        "mixed"
    } else {
        "single"
    };
    if ack == "replicated" && seed % 2 == 1 {
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replacen("database:\n", "database:\n  group_commit: false\n", 1),
        )
        .unwrap();
    }
    let mut proc = child_with(
        &config,
        "run",
        SECRET,
        None,
        &[(CHILD_WRITES_ENV, writes)],
        None,
    );
    let stdout = proc.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = Vec::new();
    let mut latencies = Vec::new();
    let mut replicated = 0;
    let mut ls_pid = None;
    let run_for = Duration::from_millis(rng.random_range(1500..4000));
    let mut started = None::<Instant>;
    let handle = |line: &str,
                  acked: &mut Vec<u64>,
                  latencies: &mut Vec<u64>,
                  replicated: &mut u64,
                  ls_pid: &mut Option<u32>| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("ack"), Some(n)) => {
                acked.push(n.parse().unwrap());
                if let Some(us) = words.next() {
                    latencies.push(us.parse().unwrap());
                }
            }
            (Some("rep"), Some(n)) => *replicated = (*replicated).max(n.parse().unwrap()),
            (Some("ls_pid"), Some(n)) => *ls_pid = n.parse().ok(),
            (Some("error"), _) => panic!("child: {line}"),
            _ => {}
        }
    };
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("child went quiet");
        handle(
            &line,
            &mut acked,
            &mut latencies,
            &mut replicated,
            &mut ls_pid,
        );
        if ls_pid.is_some() && started.is_none() {
            started = Some(Instant::now());
        }
        if started.is_some_and(|s| s.elapsed() >= run_for) {
            break;
        }
    }
    // The machine is lost: both processes at once.
    let _ = proc.kill();
    if let Some(pid) = ls_pid {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    let _ = proc.wait();
    // What the child printed before it died is what it saw acknowledged.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        handle(
            &line,
            &mut acked,
            &mut latencies,
            &mut replicated,
            &mut ls_pid,
        );
    }
    let _ = reader.join();
    // Every local file goes away.
    std::fs::rename(&machine, work.path().join("lost")).unwrap();
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = elsewhere.join("restored.db");
    restore(&config, &out);
    (acked, replicated, survivors(&out), latencies)
}

#[test]
fn machine_loss_keeps_its_bound() {
    require_replication_tools();
    let s3 = S3::start();
    let trials: usize = std::env::var("WALGUARD_MACHINE_LOSS_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(DEFAULT_TRIALS);
    let bound = (RATE_PER_S as f64 * (SYNC_PERIOD + SLACK).as_secs_f64()) as u64;
    let mut losses = Vec::new();
    for trial in 0..trials {
        let (acked, replicated, survived, _) = machine_loss(&s3, "local", trial as u64);
        let last_acked = acked.last().copied().unwrap_or(0);
        let k = survived.len() as u64;
        // A prefix of the acknowledged commits (one writer, in order).
        assert_eq!(
            survived,
            (1..=k).collect::<Vec<_>>(),
            "trial {trial}: not a prefix"
        );
        // One write in flight at a time: beyond the last acknowledged, at
        // most the one sent after it can survive; more are rows never sent.
        assert!(
            k <= last_acked + 1,
            "trial {trial}: {k} rows survived, only {last_acked} acknowledged and one in flight"
        );
        assert!(
            k >= replicated,
            "trial {trial}: {k} survived, but {replicated} were reported replicated"
        );
        let lost = last_acked.saturating_sub(k);
        assert!(
            lost <= bound,
            "trial {trial}: lost {lost} acknowledged writes, bound {bound}"
        );
        losses.push(lost);
        if trials > DEFAULT_TRIALS {
            eprintln!(
                "trial {trial}: acknowledged {last_acked}, replicated reported {replicated}, survived {k}, lost {lost}"
            );
        }
    }
    losses.sort_unstable();
    eprintln!(
        "machine loss: {trials} trials at {RATE_PER_S} writes/s, sync_period {}ms: lost p50 {} p95 {} max {} writes (bound {bound}); every restore passed integrity_check",
        SYNC_PERIOD.as_millis(),
        losses[losses.len() / 2],
        losses[(losses.len() * 95).div_ceil(100).saturating_sub(1)],
        losses[losses.len() - 1]
    );
}
