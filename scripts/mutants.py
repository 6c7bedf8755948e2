#!/usr/bin/env python3
"""Plants known bugs in a scratch copy of walguard and reports which tests
catch each one: evidence that the tests docs/reliability.md cites can fail
for the reason the doc gives.

Usage (from anywhere inside the repository; on demand, not in CI: the
first run builds the scratch copy from scratch, about 10 minutes on 2
cores; later runs rebuild only the patched crates, a few minutes):

    scripts/mutants.sh                 # every mutant, the table at the end
    scripts/mutants.sh --list          # the mutants and their tests
    scripts/mutants.sh --only NAME...  # some of them
    scripts/mutants.sh --check         # only check that every patch applies

The scratch copy is `git archive HEAD` (the committed tree, never the
working tree, which is not touched), extracted into $MUTANTS_DIR (default
/tmp/walguard-mutants/src) with its own target dir beside it, reused between
runs so that only the patched crates rebuild. Each mutant is a list of
anchored edits: a distinctive piece of code that must occur exactly once in
its file, and its replacement. When the code moved on and an anchor no
longer matches, or a patched tree does not compile, the script fails loudly
and says which mutant to update.

Before any mutant, every listed test runs on the unpatched tree and must
pass: a test that fails without a bug catches nothing. A mutant counts as
caught by a test when that test fails with the bug planted. The run fails
if any mutant is caught by no test.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

# --- the tests ----------------------------------------------------------------

# (package, cargo target arguments, test name): run as
# `cargo test -p PACKAGE TARGET -- --exact NAME`.
CORE = ("walguard", ("--features", "testing"))
ACTORS = ("walguard-actors", ())
# The replication tests need the actors' `testing` feature (their plumbing
# and the hooks of their negative controls).
ACTORS_TESTING = ("walguard-actors", ("--features", "testing"))


@dataclass(frozen=True)
class Test:
    crate: tuple
    target: str  # "--lib", or the name of an integration test target
    name: str

    def label(self):
        # As docs/reliability.md names them: the core's test binary is
        # `tests/core`, the actors' one `actors/tests/actors`.
        if self.target == "--lib":
            where = "src (unit)" if self.crate == CORE else "actors/src (unit)"
        elif self.target == "tests":
            where = "tests/core" if self.crate == CORE else "actors/tests/actors"
        else:
            where = self.target
        return f"`{where}` `{self.name}`"

    def target_args(self):
        return ["--lib"] if self.target == "--lib" else ["--test", self.target]


def power_loss(name):
    return Test(CORE, "power_loss", name)


def core(name):
    return Test(CORE, "tests", name)


def crash_lab(name):
    return Test(ACTORS, "crash_lab", name)


def actors(name):
    return Test(ACTORS, "tests", name)


def hostile(name):
    return Test(ACTORS, "hostile", name)


# --- the mutants --------------------------------------------------------------


@dataclass
class Mutant:
    name: str
    bug: str
    claim: str
    # (file, anchor, replacement): the anchor must occur exactly once.
    edits: list
    tests: list = field(default_factory=list)


MUTANTS = [
    Mutant(
        "durable-on-partial",
        "a partial checkpoint moves the durable point",
        "power loss under `normal`; partial or busy is not a durability point",
        [(
            "src/store/checkpoint.rs",
            "if *report.outcome() == CheckpointOutcome::Completed && self.weakened.is_none() {",
            "if matches!(*report.outcome(), CheckpointOutcome::Completed | CheckpointOutcome::Partial) && self.weakened.is_none() {",
        )],
        [
            power_loss("store::store_pinned_reader_checkpoint_is_not_a_durability_point"),
            core("store::durability::durability_under_normal_moves_only_on_a_completed_checkpoint"),
            crash_lab("power_loss_campaign"),
        ],
    ),
    Mutant(
        "full-opened-as-normal",
        "`synchronous=full` is opened as `normal` (and the read-back check skipped)",
        "power loss under `full`",
        [
            (
                "src/store/open.rs",
                'conn.pragma_update(None, "synchronous", settings.synchronous.as_str())',
                'conn.pragma_update(None, "synchronous", if matches!(settings.synchronous, crate::settings::Synchronous::Full) { "NORMAL" } else { settings.synchronous.as_str() })',
            ),
            (
                "src/store/open.rs",
                "if synchronous != settings.synchronous.level() {",
                "if synchronous != settings.synchronous.level() && false {",
            ),
        ],
        [
            power_loss("store::store_under_full_keeps_every_acknowledged_commit"),
            crash_lab("power_loss_campaign"),
            crash_lab("faults::injected_faults_fail_one_write_and_nothing_acknowledged_is_lost"),
        ],
    ),
    Mutant(
        "open-deletes-wal",
        "open deletes a leftover WAL",
        "process kill",
        [(
            "src/store/open.rs",
            "    create_private_file(&path);\n",
            '    let _ = std::fs::remove_file(format!("{}-wal", path.display()));\n    create_private_file(&path);\n',
        )],
        [crash_lab("process_kill_campaign")],
    ),
    Mutant(
        "group-drops-reply",
        "group commit drops the reply of the second write of each group",
        "every acknowledged write survives (the acknowledgement itself)",
        # Every group is answered through `Answers::send`, on the replier's
        # thread or the writer's.
        [(
            "src/writer/replier.rs",
            "        for (reply, result) in self.replies.drain(..).zip(self.results.drain(..)) {\n            reply.send(result);\n        }",
            "        for (i, (reply, result)) in self.replies.drain(..).zip(self.results.drain(..)).enumerate() {\n            if i != 1 {\n                reply.send(result);\n            }\n        }",
        )],
        [
            actors("group_commit::waiting_writes_share_one_commit"),
            crash_lab("power_loss_campaign"),
        ],
    ),
    Mutant(
        "failed-commit-acked",
        "group commit reports a failed COMMIT as success",
        "injected faults",
        [(
            "src/store/group.rs",
            "            .map_err(Arc::new)\n        {\n            self.rollback_quietly();\n",
            "            .map_err(Arc::new)\n        {\n            self.rollback_quietly();\n            if !e.to_string().is_empty() { return Pass::Done(results); }\n",
        )],
        [crash_lab("faults::injected_faults_fail_one_write_and_nothing_acknowledged_is_lost")],
    ),
    Mutant(
        "no-reopen-after-io-error",
        "no reopen after a checkpoint I/O error (failed fsync)",
        "failed checkpoint fsync; failed checkpoint write",
        [(
            "src/store/reopen.rs",
            "if !report.io_error() {",
            "if !report.io_error() || report.io_error() {",
        )],
        [
            crash_lab("faults::failed_checkpoint_fsync_is_answered_by_a_reopen"),
            crash_lab("faults::injected_faults_fail_one_write_and_nothing_acknowledged_is_lost"),
            crash_lab("faults::a_hundred_checkpoint_io_faults_in_one_run"),
            power_loss("failed_fsync::the_store_reopens_after_a_failed_checkpoint_fsync_and_loses_nothing"),
            power_loss("failed_fsync::if_the_reopen_fails_every_statement_is_refused_until_a_reopen_succeeds"),
        ],
    ),
    Mutant(
        "stand-in-serves",
        "the stand-in connection of a failed reopen serves statements (an empty in-memory database)",
        "failed checkpoint fsync: if the reopen fails, every statement is refused",
        [(
            "src/store/reopen.rs",
            "    conn.authorizer(Some(|_: rusqlite::hooks::AuthContext<'_>| {\n        rusqlite::hooks::Authorization::Deny\n    }))?;",
            "    let _ = &mut conn;",
        )],
        [power_loss("failed_fsync::if_the_reopen_fails_every_statement_is_refused_until_a_reopen_succeeds")],
    ),
    Mutant(
        "restart-loses-timer",
        "a restarted checkpoint actor keeps its dead timer handle (the loop stops)",
        "supervision",
        [(
            "actors/src/checkpoint.rs",
            "        // The old context's timer and in-flight future are gone.\n        self.timer = None;\n",
            "        // The old context's timer and in-flight future are gone.\n",
        )],
        [
            crash_lab("faults::a_hundred_checkpoint_io_faults_in_one_run"),
            actors("supervision::counts_add_up_over_a_hundred_faults"),
        ],
    ),
    Mutant(
        "power-cut-keeps-unsynced",
        "the power cut keeps every unsynced write (the shim's restore)",
        "negative control: `synchronous=off`",
        [
            (
                "src/testing/model.rs",
                "RestoreMode::Torn { seed } => Some(SplitMix64::new(seed)),",
                "RestoreMode::Torn { .. } => None::<SplitMix64>,",
            ),
            (
                "src/testing/model.rs",
                "                report.pending_lost += total;\n",
                "                let _ = total;\n                for op in &pending { op.apply(&mut image); }\n",
            ),
        ],
        [
            crash_lab("negative_control_synchronous_off_is_caught"),
            power_loss("campaign::negative_control_synchronous_off_is_caught"),
            power_loss("store::store_under_normal_keeps_exactly_the_commits_through_its_durable_point"),
        ],
    ),
    Mutant(
        "survivor-check-blind-to-damage",
        "the survivor check ignores damaged bodies",
        "negative control: the survivor check itself",
        [(
            "src/testing/survivors.rs",
            "if body != crash_row_body(id, generation) {",
            "if body != crash_row_body(id, generation) && body.is_empty() {",
        )],
        [Test(CORE, "--lib", "testing::survivors::tests::the_survivor_check_catches_gaps_cut_requests_damage_and_rewrites")],
    ),
    Mutant(
        "files-world-readable",
        "new database files are created 0644",
        "file permissions",
        [(
            "src/store/open.rs",
            "pub const NEW_FILE_MODE: u32 = 0o600;",
            "pub const NEW_FILE_MODE: u32 = 0o644;",
        )],
        [core("store::open::open_creates_files_readable_by_the_owner_only")],
    ),
    Mutant(
        "busy-timeout-doubled",
        "the busy timeout is set to twice the setting",
        "database locked by another process",
        [(
            "src/store/open.rs",
            "conn.busy_timeout(settings.busy_timeout)",
            "conn.busy_timeout(settings.busy_timeout * 2)",
        )],
        [
            core("store::open::open_on_an_exclusively_locked_database_fails_within_the_busy_timeout"),
        ],
    ),
    Mutant(
        "neighbour-checkpoint-failed",
        "someone else's checkpoint, `(1, -1, -1)`, is reported as failed",
        "neighbours: another connection checkpoints",
        [(
            "src/checkpoint/outcome.rs",
            "(true, -1, -1) => Self::Busy,",
            '(true, -1, -1) => Self::Failed { error: "planted".to_owned() },',
        )],
        [
            core("neighbours::a_checkpoint_while_another_connection_checkpoints_is_busy"),
            actors("neighbours::a_neighbours_checkpoint_is_busy_and_never_restarts_the_loop"),
        ],
    ),
    Mutant(
        "restart-not-durable",
        "a WAL restart (someone else's completed checkpoint) moves no durable point",
        "neighbours: another connection's checkpoint completes",
        [(
            "src/store/mod.rs",
            "if self.take_wal_restart() && self.weakened.is_none() {",
            "if self.take_wal_restart() && self.weakened.is_none() && false {",
        )],
        [
            core("neighbours::a_checkpoint_by_another_connection_moves_the_durable_point"),
            core("neighbours::sqlites_auto_checkpoint_moves_the_durable_point"),
            actors("neighbours::a_neighbours_checkpoint_counts_as_durable"),
        ],
    ),
    Mutant(
        "batch-may-split",
        "an atomic batch lets a statement end its transaction",
        "neighbours: a batch that would end or split its transaction",
        [(
            "src/store/write.rs",
            "if self.effect_of(stmt.sql()) == Effect::TransactionControl {",
            "if self.effect_of(stmt.sql()) == Effect::TransactionControl && false {",
        )],
        [core("neighbours::a_batch_that_would_end_its_own_transaction_is_refused_before_it_runs")],
    ),
    Mutant(
        "closure-panic-unwinds",
        "a caller's panic unwinds out of `Store::call`",
        "neighbours: a caller's closure panics",
        [(
            "src/store/call.rs",
            "let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut self.conn)));",
            "let result: std::thread::Result<_> = Ok(f(&mut self.conn));",
        )],
        [
            core("neighbours::a_panicking_closure_is_its_callers_error_and_its_transaction_rolls_back"),
            actors("neighbours::a_panicking_closure_does_not_end_the_writer"),
        ],
    ),
    Mutant(
        "gone-file-unseen",
        "the file behind the path is never checked",
        "neighbours: the database file is deleted, renamed or replaced",
        [(
            "src/store/checkpoint.rs",
            "if let Err(e) = self.check_file() {",
            "if let Err(e) = self.refuse_if_gone() {",
        )],
        [
            core("neighbours::a_deleted_renamed_or_replaced_file_is_never_durable"),
            actors("neighbours::a_deleted_file_fails_every_tick_on_schedule_and_refuses_writes"),
        ],
    ),
    Mutant(
        "second-engine-admitted",
        "each engine locks a file of its own",
        "neighbours: a second engine on a served file",
        [(
            "actors/src/system/start.rs",
            "None => Ok(EngineLock::acquire(&settings.database.path)?),",
            'None => Ok(EngineLock::acquire(&settings.database.path.with_extension(format!("{:?}", std::time::Instant::now()).replace(|c: char| !c.is_ascii_alphanumeric(), "")))?),',
        )],
        [
            actors("neighbours::a_second_engine_on_a_served_file_is_refused"),
            hostile("a_second_engine_in_another_process_is_refused_until_it_dies"),
        ],
    ),
    Mutant(
        "shutdown-without-deadline",
        "the shutdown never interrupts the writer nor refuses what waits",
        "neighbours: a request holds the writer at shutdown",
        [(
            "actors/src/system/shutdown.rs",
            "                state.pass_deadline();\n",
            "                let _ = &state;\n",
        )],
        [
            actors("neighbours::shutdown_interrupts_an_endless_query_within_its_budget"),
            actors("neighbours::shutdown_ends_writes_waiting_on_a_lock_within_its_budget"),
        ],
    ),
    Mutant(
        "phase1-checks-before-open-only",
        "phase 1 checks the file before opening its connection, not again after",
        "neighbours: the file is moved, deleted or replaced while phase 1 would run",
        [(
            "src/store/backfill.rs",
            "    // The file is the one the store opened, after the open too: a file\n    // swapped in between is not checkpointed as ours.\n    if let Some(e) = gone(target) {\n        return Err(e);\n    }\n    Ok(conn)",
            "    Ok(conn)",
        )],
        [power_loss("two_phase::phase_one_checks_the_file_again_after_opening_its_connection")],
    ),
    Mutant(
        "lock-released-before-truncate",
        "the engine lock is released before the shutdown's TRUNCATE and close",
        "neighbours: a second engine on a served file",
        [(
            "src/writer/requests.rs",
            "        self.release(None, true);\n        // The TRUNCATE has a deadline of its own",
            "        self.release(None, true);\n        self.engine_lock = None;\n        // The TRUNCATE has a deadline of its own",
        )],
        [actors("shutdown::the_engine_lock_is_held_until_the_shutdown_has_closed_the_store")],
    ),
    Mutant(
        "drain-deadline-late",
        "the shutdown's drain deadline is three busy timeouts + 250 ms, not one",
        "neighbours: a request holds the writer at shutdown (interrupted at `busy_timeout` + 250 ms)",
        [(
            "actors/src/system/shutdown.rs",
            "    let drain = settings.database.busy_timeout + SHUTDOWN_DRAIN_GRACE;",
            "    let drain = settings.database.busy_timeout * 3 + SHUTDOWN_DRAIN_GRACE;",
        )],
        [Test(ACTORS, "--lib", "system::shutdown::tests::the_drain_deadline_is_the_busy_timeout_plus_250_ms")],
    ),
    Mutant(
        "drain-one-round",
        "the shutdown's drain serves one round of the lane only",
        "a clean shutdown answers every request the lane accepted",
        [(
            "actors/src/db.rs",
            "        while !self.lane.is_empty() {\n            self.serve_lane(ctx);",
            "        if !self.lane.is_empty() {\n            self.serve_lane(ctx);",
        )],
        [actors("lane::shutdown_serves_every_request_the_lane_accepted")],
    ),
    Mutant(
        "identity-inode-only",
        "the file identity ignores the device (an inode is unique only on its own file system)",
        "neighbours: a database file replaced under the store",
        [(
            "src/store/identity.rs",
            "            Ok(Self {\n                device: meta.dev(),",
            "            Ok(Self {\n                device: 0,",
        )],
        [Test(CORE, "--lib", "store::identity::tests::the_identity_is_the_device_and_the_inode")],
    ),
    Mutant(
        "missing-tool-skips",
        "a replication test returns early, as a pass, when litestream or rclone is missing",
        "evidence: no test reports ok without running",
        [(
            "actors/tests/support/tools.rs",
            "        .collect();\n    require(",
            "        .collect();\n    if !missing.is_empty() {\n        return;\n    }\n    require(",
        )],
        [Test(ACTORS_TESTING, "replication", "start_and_stop::without_its_tools_a_replication_test_fails_naming_them")],
    ),
    Mutant(
        "migration-not-fsynced",
        "the migrations' commit runs under database.synchronous, not FULL",
        "migrations: durable when the start returns",
        [(
            "src/store/migrate.rs",
            '.pragma_update(None, "synchronous", Synchronous::Full.as_str())',
            '.pragma_update(None, "synchronous", self.settings.synchronous.as_str())',
        )],
        [crash_lab("migrations_are_durable_when_the_start_returns")],
    ),
    Mutant(
        "migration-version-after-commit",
        "user_version is set in a transaction of its own, after the migrations' commit",
        "migrations: a power cut leaves version and schema in agreement",
        [(
            "src/store/migrate.rs",
            '            .and_then(|()| {\n                self.guard\n                    .own(|| self.conn.pragma_update(None, "user_version", to as i64))\n                    .map_err(|source| self.pragma_error("user_version", source))\n            })\n            .and_then(|()| {\n                // With replication on, counted in the replica\'s identity\n                // inside the commit, as every commit is (`position`).\n                super::position::bump(&self.conn, self.position)\n                    .and_then(|()| self.conn.execute_batch("COMMIT"))\n                    .map_err(commit_err("commit", &path))\n            });',
            '            .and_then(|()| {\n                // With replication on, counted in the replica\'s identity\n                // inside the commit, as every commit is (`position`).\n                super::position::bump(&self.conn, self.position)\n                    .and_then(|()| self.conn.execute_batch("COMMIT"))\n                    .map_err(commit_err("commit", &path))\n            })\n            .and_then(|()| {\n                self.guard\n                    .own(|| self.conn.pragma_update(None, "user_version", to as i64))\n                    .map_err(|source| self.pragma_error("user_version", source))\n            });',
        )],
        [crash_lab("power_cut_in_the_middle_of_migrations")],
    ),
    Mutant(
        "migration-commit-each",
        "each migration commits on its own (with its version)",
        "migrations: a failed or killed start applies nothing",
        [(
            "src/store/migrate.rs",
            ".try_for_each(|migration| self.apply_one(migration))",
            '.try_for_each(|migration| { self.apply_one(migration)?; self.conn.pragma_update(None, "user_version", migration.number() as i64).map_err(|s| self.pragma_error("user_version", s))?; self.conn.execute_batch("COMMIT; BEGIN IMMEDIATE").map_err(commit_err("commit", &path)) })',
        )],
        [
            core("migrations::a_migration_failing_halfway_through_its_text_applies_nothing"),
            crash_lab("process_kill_in_the_middle_of_migrations"),
        ],
    ),
    Mutant(
        "migration-split-allowed",
        "the classifier is not asked about a migration's statements",
        "migrations: a migration is never split",
        [(
            "src/store/migrate.rs",
            "if self.effect_of(&piece) == Effect::TransactionControl {",
            "if self.effect_of(&piece) == Effect::TransactionControl && piece.is_empty() {",
        )],
        [core("migrations::a_migration_that_ends_or_opens_a_transaction_is_refused")],
    ),
    Mutant(
        "migration-future-opened",
        "a database from the future is only refused after the write connection opened it",
        "migrations: a refused file is left byte for byte",
        [(
            "src/migrations.rs",
            "        self.check_version(&database.path, found)\n    }",
            "        let _ = found;\n        Ok(())\n    }",
        )],
        [core("migrations::a_future_database_in_rollback_mode_or_with_a_wal_is_refused_untouched")],
    ),
    Mutant(
        "migration-name-order",
        "migration files are applied in name order, not numeric order",
        "migrations: directory order",
        [(
            "src/migrations.rs",
            "found.sort_by_key(|(number, _, _)| *number);",
            "found.sort_by(|a, b| a.2.cmp(&b.2));",
        )],
        [core("migrations::a_directory_is_applied_in_numeric_order")],
    ),
    Mutant(
        "position-unchecked",
        "a file behind its own replica (the same token, fewer commits) is accepted",
        "a replica belongs to one database: a copy from the same session is refused",
        [(
            "src/replication/identity.rs",
            "if here.commits >= on_replica.commits => Verdict::Replicate,",
            "if here.commits >= on_replica.commits || on_replica.commits > 0 => Verdict::Replicate,",
        )],
        [
            Test(CORE, "--lib", "replication::identity::tests::every_case_of_the_position_under_the_same_token"),
            Test(ACTORS_TESTING, "replication", "same_session::a_copy_from_the_same_session_put_back_is_refused_and_the_replica_keeps_every_write"),
        ],
    ),
    Mutant(
        "group-commit-uncounted",
        "a group commit does not count itself in the replica's identity",
        "a replica belongs to one database: every commit counts",
        [(
            "src/store/group.rs",
            "            super::position::bump(&self.conn, self.position)\n        } else {",
            "            Ok(())\n        } else {",
        )],
        [Test(CORE, "--lib", "store::position::tests::every_commit_path_counts_once")],
    ),
]

# --- the run ------------------------------------------------------------------


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout.strip()


def die(msg):
    print(f"mutants: {msg}", file=sys.stderr)
    sys.exit(2)


def apply(tree, mutant):
    """Applies `mutant` to `tree`; returns the original texts to restore.
    Fails loudly when an anchor does not occur exactly once."""
    originals = {}
    for file, anchor, replacement in mutant.edits:
        path = os.path.join(tree, file)
        if not os.path.isfile(path):
            die(f"mutant {mutant.name}: {file} does not exist any more: update the mutant")
        text = open(path).read()
        originals.setdefault(path, text)
        n = text.count(anchor)
        if n != 1:
            die(
                f"mutant {mutant.name}: the anchor occurs {n} times in {file} (must be once): "
                f"update the mutant\n  anchor: {anchor!r}"
            )
        open(path, "w").write(text.replace(anchor, replacement))
    return originals


def restore(originals):
    # Written back (not copied with its old mtime), so cargo rebuilds it.
    for path, text in originals.items():
        open(path, "w").write(text)


def cargo(tree, target_dir, args, timeout=None):
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir, RUST_LOG="off")
    return subprocess.run(
        ["cargo", *args], cwd=tree, env=env, text=True, capture_output=True, timeout=timeout
    )


def build(tree, target_dir, tests):
    for crate in sorted({t.crate for t in tests}):
        package, features = crate
        targets = sorted({a for t in tests if t.crate == crate for a in [tuple(t.target_args())]})
        args = ["test", "-p", package, *features, "--no-run"]
        for target in targets:
            args += list(target)
        done = cargo(tree, target_dir, args)
        if done.returncode != 0:
            return done.stderr[-4000:]
    return None


def run_test(tree, target_dir, test, timeout):
    package, features = test.crate
    args = ["test", "-p", package, *features, *test.target_args(), "--", "--exact", test.name]
    try:
        done = cargo(tree, target_dir, args, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "timed out"
    out = done.stdout + done.stderr
    if "running 1 test" not in out:
        die(f"test {test.label()} matched no test, or more than one: update the mutant list")
    return done.returncode == 0, out[-2000:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests")
    parser.add_argument("--check", action="store_true", help="only check that every patch applies")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per test run")
    options = parser.parse_args()

    mutants = MUTANTS
    if options.only:
        unknown = set(options.only) - {m.name for m in MUTANTS}
        if unknown:
            die(f"no such mutant: {', '.join(sorted(unknown))}")
        mutants = [m for m in MUTANTS if m.name in options.only]
    if options.list:
        for m in mutants:
            print(f"{m.name}: {m.bug} [{m.claim}]")
            for t in m.tests:
                print(f"    {t.label()}")
        return 0

    repo = sh(["git", "rev-parse", "--show-toplevel"])
    commit = sh(["git", "rev-parse", "--short", "HEAD"], cwd=repo)
    base = os.environ.get("MUTANTS_DIR", "/tmp/walguard-mutants")
    tree = os.path.join(base, "src")
    target_dir = os.path.join(base, "target")
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(tree)
    # `tar -m`: every file gets the extraction time, newer than any earlier
    # build in the reused target dir, so nothing stale is taken as fresh.
    archive = subprocess.Popen(["git", "archive", "HEAD"], cwd=repo, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-m", "-C", tree], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        die("git archive failed")
    print(f"mutants: commit {commit}, scratch copy {tree}", file=sys.stderr)

    for m in mutants:  # every patch applies, before any slow work
        restore(apply(tree, m))
    if options.check:
        print(f"mutants: all {len(mutants)} patches apply to {commit}", file=sys.stderr)
        return 0

    tests = list(dict.fromkeys(t for m in mutants for t in m.tests))
    started = time.time()
    print("mutants: baseline (no bug planted): every test must pass", file=sys.stderr)
    failure = build(tree, target_dir, tests)
    if failure:
        die(f"the unpatched tree does not build:\n{failure}")
    for t in tests:
        passed, out = run_test(tree, target_dir, t, options.timeout)
        if not passed:
            die(f"{t.label()} fails without any bug planted:\n{out}")

    rows, uncaught = [], []
    for m in mutants:
        print(f"mutants: {m.name}: {m.bug}", file=sys.stderr)
        originals = apply(tree, m)
        try:
            failure = build(tree, target_dir, m.tests)
            if failure:
                die(f"mutant {m.name} does not compile: update the mutant\n{failure}")
            caught, missed = [], []
            for t in m.tests:
                passed, _ = run_test(tree, target_dir, t, options.timeout)
                (missed if passed else caught).append(t.label())
                print(f"    {'missed' if passed else 'CAUGHT'} by {t.label()}", file=sys.stderr)
        finally:
            restore(originals)
        if not caught:
            uncaught.append(m.name)
        rows.append((m, caught, missed))

    minutes = (time.time() - started) / 60
    print(f"\nMutation check at commit `{commit}` (`scripts/mutants.sh`, {minutes:.0f} min):\n")
    print("| planted bug | claim | caught by | not caught by |")
    print("|---|---|---|---|")
    for m, caught, missed in rows:
        print(f"| {m.bug} (`{m.name}`) | {m.claim} | {'; '.join(caught) or '**none**'} | {'; '.join(missed) or '-'} |")
    if uncaught:
        print(f"\nmutants: caught by no test: {', '.join(uncaught)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
