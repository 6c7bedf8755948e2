//! The shim's own rules: injected faults, the restore, cuts counted per
//! lane and phase, dropping it under an open connection.

use super::*;

/// Each injected fault surfaces as an error, SQLite rolls the transaction
/// back, the connection keeps working, and after a power loss integrity holds
/// with exactly the committed transactions.
#[test]
fn injected_faults_fail_the_transaction_and_the_connection_stays_usable() -> TestResult {
    let (_dir, path) = temp_db()?;
    let vfs = PowerLossVfs::register()?;
    let conn = open(&vfs, &path, "FULL")?;
    setup(&conn)?;
    let mut committed = 0;
    let faults = [
        Fault::WriteIoErr {
            file: FileKind::Wal,
            count: 1,
        },
        Fault::DiskFull {
            file: FileKind::Wal,
            count: 1,
        },
        Fault::SyncFails {
            file: FileKind::Wal,
            count: 1,
        },
    ];
    for fault in faults {
        vfs.inject(fault);
        let failed = commit(&conn, committed + 1);
        assert!(failed.is_err(), "{fault:?} must fail the commit");
        commit(&conn, committed + 1)?;
        committed += 1;
    }
    vfs.inject(Fault::CheckpointWriteIoErr { count: 1 });
    assert!(checkpoint(&conn, "PASSIVE").is_err());
    assert!(caught_up(checkpoint(&conn, "PASSIVE")?));
    commit(&conn, committed + 1)?;
    committed += 1;
    assert_eq!(vfs.stats().faults_fired, 4);
    power_loss(&vfs, vec![conn], RestoreMode::Exact)?;
    assert_eq!(survivors(&path)?, committed);
    Ok(())
}

/// The restore refuses to run under open connections, and a crash landing in
/// a checkpoint is reported as such.
#[test]
fn restore_needs_closed_connections_and_reports_checkpoint_crashes() -> TestResult {
    let (_dir, path) = temp_db()?;
    let vfs = PowerLossVfs::register()?;
    let conn = open(&vfs, &path, "NORMAL")?;
    setup(&conn)?;
    for txn in 1..=20 {
        commit(&conn, txn)?;
    }
    let before = vfs.io_ops();
    assert!(caught_up(checkpoint(&conn, "PASSIVE")?));
    let ranges = vfs.checkpoint_op_ranges();
    let last = ranges.last().ok_or("no checkpoint seen")?;
    assert_eq!(*last.start(), before + 1);
    assert_eq!(*last.end(), vfs.io_ops());

    for txn in 21..=30 {
        commit(&conn, txn)?;
    }
    // Cut the power at the 2nd operation of the next checkpoint.
    vfs.crash_at(vfs.io_ops() + 2);
    assert!(checkpoint(&conn, "PASSIVE").is_err());
    let report = vfs.crash_report().ok_or("no crash")?;
    assert!(report.in_checkpoint);
    assert!(
        vfs.restore_durable_images().is_err(),
        "a connection is open"
    );
    drop(conn);
    vfs.restore_durable_images()?;
    assert!(!vfs.is_crashed());
    // The WAL sync at the start of the checkpoint (op 1) made all 30 durable.
    assert_eq!(survivors(&path)?, 30);
    Ok(())
}

/// Runs `work` on a thread named like phase 1's
/// ([`walguard::store::BACKFILL_THREAD_NAME`]): the shim counts its I/O on
/// [`Lane::Backfill`].
fn on_backfill_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> TestResult<T> {
    let handle = std::thread::Builder::new()
        .name(walguard::store::BACKFILL_THREAD_NAME.to_owned())
        .spawn(work)?;
    handle
        .join()
        .map_err(|_| "the backfill-named thread panicked".into())
}

/// The shim counts phase 1's thread apart. Whatever that thread did first
/// (here 0 to 40 commits and a checkpoint of its own), a cut counted on the
/// foreground lands at the foreground's own operation `n`; a cut counted
/// inside the first phase 1 lands there, on that thread; the foreground's
/// next checkpoint is a phase 2.
#[test]
fn cuts_counted_per_lane_and_phase_land_where_aimed() -> TestResult {
    for other in [0_u64, 7, 40] {
        let (dir, path) = temp_db()?;
        let vfs = Arc::new(PowerLossVfs::register()?);
        let conn = open(&vfs, &path, "NORMAL")?;
        setup(&conn)?;
        let fg_start = vfs.io_ops_on(Lane::Foreground);
        // The other thread works on a database of its own, then
        // checkpoints it: a phase 1 as the shim sees it.
        let (vfs2, other_path) = (Arc::clone(&vfs), dir.path().join("other.db"));
        let ops_before = on_backfill_thread(move || -> Result<u64, String> {
            let conn = open(&vfs2, &other_path, "NORMAL").map_err(|e| e.to_string())?;
            setup(&conn).map_err(|e| e.to_string())?;
            for txn in 1..=other {
                commit(&conn, txn).map_err(|e| e.to_string())?;
            }
            let before = vfs2.io_ops_on(Lane::Backfill);
            checkpoint(&conn, "PASSIVE").map_err(|e| e.to_string())?;
            Ok(before)
        })??;
        let phase_one = vfs.phase_spans(Phase::One);
        assert_eq!(vfs.io_ops_on(Lane::Foreground), fg_start, "{other}");
        if other > 0 {
            // Its setup checkpointed first: that was phase 1 number 0.
            let span = phase_one.last().ok_or("no phase 1 seen")?;
            assert_eq!(span.nth, 1);
            // Its operations under the checkpoint lock.
            let made = vfs.io_ops_on(Lane::Backfill) - ops_before;
            assert!((1..=made).contains(&span.ops), "{span:?}, {made}");
        }
        // A cut at the foreground's 5th operation from here.
        vfs.crash_at_on(Lane::Foreground, fg_start + 5);
        let mut acked = 0;
        for txn in 1..=20 {
            if commit(&conn, txn).is_err() {
                break;
            }
            acked = txn;
        }
        let report = vfs.crash_report().ok_or("no crash")?;
        assert_eq!(report.lane, Some(Lane::Foreground));
        assert_eq!(report.ops_before_crash_on(Lane::Foreground), fg_start + 4);
        assert!(acked < 20, "the cut came at once: {acked}");
        drop(conn);
        vfs.restore_durable_images()?;
        assert!(survivors(&path).is_ok());
    }

    // Inside a phase 1 and then a phase 2.
    for (phase, op) in [(Phase::One, 2), (Phase::Two, 1)] {
        let (_dir, path) = temp_db()?;
        let vfs = Arc::new(PowerLossVfs::register()?);
        let conn = open(&vfs, &path, "NORMAL")?;
        setup(&conn)?;
        vfs.crash_in_phase(phase, 0, op);
        for txn in 1..=10 {
            commit(&conn, txn)?;
        }
        let (vfs2, path2) = (Arc::clone(&vfs), path.clone());
        let phase_one = on_backfill_thread(move || -> Result<bool, String> {
            let conn = open(&vfs2, &path2, "NORMAL").map_err(|e| e.to_string())?;
            Ok(checkpoint(&conn, "PASSIVE").is_err())
        })??;
        assert_eq!(phase_one, phase == Phase::One, "{phase:?}");
        assert_eq!(vfs.is_crashed(), phase == Phase::One, "{phase:?}");
        for txn in 11..=20 {
            if commit(&conn, txn).is_err() {
                break;
            }
        }
        // Phase 2 meets the cut, or the power is already off.
        assert!(checkpoint(&conn, "PASSIVE").is_err(), "{phase:?}");
        let report = vfs.crash_report().ok_or("no crash")?;
        assert_eq!(report.phase, Some(phase));
        assert!(report.in_checkpoint);
        let lane = if phase == Phase::One {
            Lane::Backfill
        } else {
            Lane::Foreground
        };
        assert_eq!(
            (report.lane, report.checkpoint_lane),
            (Some(lane), Some(lane))
        );
        drop(conn);
        vfs.restore_durable_images()?;
        assert!(survivors(&path).is_ok());
    }
    Ok(())
}

/// Dropping the shim under an open connection is safe: the name goes away,
/// the connection keeps working on the real files (unmodelled, with real
/// fsyncs from then on), and nothing is lost.
#[test]
fn dropping_the_vfs_under_an_open_connection_is_safe() -> TestResult {
    let (_dir, path) = temp_db()?;
    let vfs = PowerLossVfs::register_with(VfsOptions::default().real_sync(true))?;
    let name = vfs.name().to_owned();
    let conn = open(&vfs, &path, "NORMAL")?;
    setup(&conn)?;
    commit(&conn, 1)?;
    drop(vfs);
    assert!(
        Connection::open_with_flags_and_vfs(&path, OpenFlags::default(), name.as_str()).is_err(),
        "the name must be unregistered"
    );
    for txn in 2..=10 {
        commit(&conn, txn)?;
    }
    assert!(caught_up(checkpoint(&conn, "PASSIVE")?));
    drop(conn);
    assert_eq!(survivors(&path)?, 10);
    Ok(())
}

// --- the store's own answer to a failed checkpoint fsync ----------------------
