//! What every command shares: settings and flags checked, `--help`, one
//! line per error, colour and log filters.

use super::*;

/// Bad settings files: exit 2, one line naming the key, nothing created.
#[test]
fn bad_settings_exit_2_naming_the_key() {
    let cases = [
        ("checkpoint:\n  interval: 0s\n", "checkpoint.interval"),
        ("checkpoint:\n  intervall: 1s\n", "intervall"),
        ("database:\n  busy_timeout: [5]\n", "database.busy_timeout"),
        ("metrics:\n  window: lots\n", "metrics.window"),
    ];
    for (yaml, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.yaml");
        std::fs::write(&file, yaml).unwrap();
        let out = walguard(dir.path())
            .args(["run", "--duration", "1s", "--db", "never.db", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{yaml}\n{stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!dir.path().join("never.db").exists());
    }
}

/// A bad flag value is a usage error too.
#[test]
fn bad_flags_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["run", "--interval", "5"][..],
        &["run", "--interval", "0s"],
        &["run", "--log-format", "xml"],
        &["checkpoint", "x.db", "--mode", "fast"],
        &["frobnicate"],
    ] {
        let out = walguard(dir.path()).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Every subcommand's help has examples, and exits 0.
#[test]
fn help_shows_examples() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["run", "inspect", "checkpoint"] {
        let out = walguard(dir.path()).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("Examples:"), "{sub}");
    }
}

/// Whether `text` holds an ANSI SGR sequence (a colour or a style), as
/// opposed to the cursor controls of the status line.
fn has_sgr(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let code: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ';')
            .collect();
        rest[code.len()..].starts_with('m')
    })
}

/// Bug: every SQLite error printed its cause twice: `file is not a
/// database: Error code 26: file is not a database`. One renderer walks the
/// chain and says each thing once.
#[test]
fn errors_say_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("garbled.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend((0..4080u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    bytes[18] = 2;
    bytes[19] = 2;
    std::fs::write(&db, bytes).unwrap();
    let out = walguard(dir.path())
        .arg("inspect")
        .arg(&db)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("file is not a database").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("Error code"), "{stderr}");
}

/// Bug: ANSI escapes were forced on whenever stderr was a terminal, and
/// `NO_COLOR` was ignored. `--color auto|always|never` decides, and under
/// `auto` a set `NO_COLOR` means none.
#[test]
fn color_follows_the_flag_and_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = walguard(dir.path())
            .args(["run", "--duration", "200ms", "--rate", "0", "--db", "c.db"])
            .args(extra)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{extra:?}: {stderr}");
        stderr
    };
    assert!(has_sgr(&run(&["--color", "always"])));
    assert!(!has_sgr(&run(&["--color", "never"])));
    assert!(!has_sgr(&run(&[])), "piped stderr is not a terminal");
    let out = walguard(dir.path())
        .args(["inspect", "c.db", "--color", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// On a terminal (a pseudo-terminal from `script`; without it the test fails): the
/// status line says `exposed N commits (oldest X s)`, a count and an age
/// (it read like a rate: `230 commits/1.1s`), and `NO_COLOR` turns the
/// colours off while the status line still draws.
#[cfg(unix)]
#[test]
fn on_a_terminal_no_color_is_honoured_and_the_exposure_is_a_count_and_an_age() {
    let script = Path::new("/usr/bin/script");
    tools::require(
        script.exists(),
        "/usr/bin/script (a terminal for the command)",
        "apt-get install bsdutils (util-linux's `script`)",
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = std::env::var("WALGUARD_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_walguard").to_owned());
    let session = |no_color: bool| {
        // `script -e` runs the command on a new pseudo-terminal, copies
        // what it prints to stdout, and exits with its code.
        let mut cmd_line = std::process::Command::new(script);
        cmd_line
            .current_dir(dir.path())
            .args(["-qec"])
            .arg(format!(
                "'{bin}' run --duration 2500ms --interval 10s --db t.db"
            ))
            .arg("/dev/null")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR");
        if no_color {
            cmd_line.env("NO_COLOR", "1");
        }
        let out = cmd_line.output().unwrap();
        let screen = text(&out.stdout);
        assert!(out.status.success(), "{screen}{}", text(&out.stderr));
        screen
    };
    let plain = session(true);
    assert!(!has_sgr(&plain), "{plain:?}");
    assert!(plain.contains("writes/s"), "no status line: {plain:?}");
    assert!(plain.contains(" commits (oldest "), "{plain:?}");
    assert!(!plain.contains("commits/"), "{plain:?}");
    let coloured = session(false);
    assert!(has_sgr(&coloured), "{coloured:?}");
}

/// `--log-level` filters the log lines of every subcommand, wins over
/// `RUST_LOG`, and is checked like `log.level`.
#[test]
fn log_level_filters_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out = walguard(dir.path())
        .args(["run", "--duration", "200ms", "--rate", "0", "--db", "l.db"])
        .args(["--log-level", "warn"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("INFO"), "{stderr}");
    assert!(text(&out.stdout).contains("writes acknowledged"));

    let out = walguard(dir.path())
        .args(["run", "--duration", "200ms", "--rate", "0", "--db", "l.db"])
        .args(["--log-level", "info"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("INFO"), "{}", text(&out.stderr));

    let out = walguard(dir.path())
        .args(["inspect", "l.db", "--log-level", "inof"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--log-level") && stderr.contains("inof"),
        "{stderr}"
    );
}

/// `restore --json` that fails before it has a database (the settings file
/// is missing) still answers with one JSON object, `database` null, and the
/// exit code of the table: 2, a settings error.
#[test]
fn restore_json_answers_in_json_when_it_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = walguard(dir.path())
        .args(["restore", "--json", "--config", "missing.yaml"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    let answer: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {stdout:?} {}", text(&out.stderr)));
    assert_eq!(out.status.code(), Some(2), "{answer}");
    assert_eq!(answer["exit_code"], 2, "{answer}");
    assert!(answer["database"].is_null(), "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("missing.yaml"),
        "{answer}"
    );
}

/// `walguard --help` gives each subcommand one short line, and the exit
/// codes from the one table.
#[test]
fn help_lists_each_subcommand_on_one_line_with_the_exit_codes() {
    let out = walguard(Path::new(".")).arg("--help").output().unwrap();
    let help = text(&out.stdout);
    assert!(out.status.success(), "{help}");
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(commands.len(), 6, "{help}"); // 5 subcommands and `help`
    for line in commands {
        assert!(line.len() <= 80, "{line:?}");
    }
    assert!(
        help.contains("2 usage or settings error or a refused path"),
        "{help}"
    );
}
