//! Settings: embedded defaults, files, environment overrides, and errors that name the key and the value.

use std::path::{Path, PathBuf};
use std::time::Duration;

use walguard::settings::{LogFormat, Synchronous};
use walguard::{Error, Settings};

use crate::support::chain;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Writes `yaml` to a file in a fresh temp dir.
fn yaml_file(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("walguard.yaml");
    std::fs::write(&path, yaml).unwrap();
    (dir, path)
}

fn load_yaml(yaml: &str) -> Result<Settings, Error> {
    let (_dir, path) = yaml_file(yaml);
    Settings::load_from(Some(&path), no_env())
}

#[test]
fn embedded_defaults_equal_settings_default() {
    let loaded = Settings::load_from(None, no_env()).unwrap();
    assert_eq!(loaded, Settings::default());
    assert_eq!(loaded.checkpoint.interval, Duration::from_secs(60));
    assert_eq!(loaded.metrics.window, 512);
    assert_eq!(loaded.database.synchronous, Synchronous::Normal);
    // The file on disk is what the library embeds.
    let on_disk = std::fs::read_to_string(repo_file("config/default.yaml")).unwrap();
    assert_eq!(on_disk, walguard::settings::DEFAULT_SETTINGS_YAML);
}

/// Defaults have one source in code, the named constants (the `Default`
/// impls read them), and `config/default.yaml` is what a user reads and
/// what loading starts from: every constant is the YAML's value, so the
/// two cannot disagree.
#[test]
fn every_default_constant_is_the_embedded_yamls_value() {
    use walguard::settings as s;
    let yaml = Settings::from_yaml("").unwrap();
    let (db, ck, rep) = (&yaml.database, &yaml.checkpoint, &yaml.replication);
    assert_eq!(db.path, Path::new(s::DEFAULT_DATABASE_PATH));
    assert_eq!(db.busy_timeout, s::DEFAULT_BUSY_TIMEOUT);
    assert_eq!(
        db.checkpoint_busy_timeout,
        s::DEFAULT_CHECKPOINT_BUSY_TIMEOUT
    );
    assert_eq!(
        db.journal_size_limit,
        Some(s::DEFAULT_JOURNAL_SIZE_LIMIT_BYTES)
    );
    assert_eq!(db.wal_autocheckpoint, s::DEFAULT_WAL_AUTOCHECKPOINT_PAGES);
    assert_eq!(db.group_commit, s::DEFAULT_GROUP_COMMIT);
    assert_eq!(db.max_batch, s::DEFAULT_MAX_BATCH_WRITES);
    assert_eq!(db.mailbox_capacity, s::DEFAULT_MAILBOX_CAPACITY_MESSAGES);
    assert_eq!(ck.interval, s::DEFAULT_CHECKPOINT_INTERVAL);
    assert_eq!(ck.shutdown_timeout, s::DEFAULT_SHUTDOWN_TIMEOUT);
    assert_eq!(ck.size_threshold_frames, s::DEFAULT_SIZE_THRESHOLD_FRAMES);
    assert_eq!(ck.size_checkpoint, s::DEFAULT_SIZE_CHECKPOINT);
    assert_eq!(yaml.metrics.window, s::DEFAULT_WINDOW_SAMPLES);
    assert_eq!(rep.sync_period, s::DEFAULT_SYNC_PERIOD);
    assert_eq!(rep.max_lag, s::DEFAULT_MAX_LAG);
    assert_eq!(rep.wal_cap_frames, s::DEFAULT_WAL_CAP_FRAMES);
    assert_eq!(yaml.read.connections, s::DEFAULT_READ_CONNECTIONS);
    assert_eq!(yaml.read.max_snapshot_age, s::DEFAULT_MAX_SNAPSHOT_AGE);
    assert_eq!(yaml, Settings::default());
}

#[test]
fn variables_without_the_prefix_are_ignored() {
    let loaded = Settings::load_from(
        None,
        env(&[
            ("PATH", "/bin"),
            ("WALGUARD_METRICS_WINDOW", "3"),
            ("METRICS__WINDOW", "3"),
        ]),
    )
    .unwrap();
    assert_eq!(loaded, Settings::default());
}

#[test]
fn dev_yaml_loads_on_top_of_the_defaults() {
    let dev = Settings::load_from(Some(&repo_file("config/dev.yaml")), no_env()).unwrap();
    assert_eq!(dev.database.path, PathBuf::from("walguard-dev.db"));
    assert!(dev.checkpoint.enabled);
    assert_eq!(dev.checkpoint.interval, Duration::from_secs(1));
    assert_eq!(dev.checkpoint.shutdown_timeout, Duration::from_secs(1));
    assert_eq!(dev.metrics.window, 128);
    assert_eq!(dev.log.level, "debug");
    // Keys the file leaves out keep their defaults.
    let defaults = Settings::default();
    assert_eq!(dev.database.busy_timeout, defaults.database.busy_timeout);
    assert_eq!(dev.database.synchronous, defaults.database.synchronous);
    assert_eq!(dev.log.format, LogFormat::Text);
}

#[test]
fn environment_overrides_the_defaults_and_the_file() {
    let vars = env(&[
        ("WALGUARD__CHECKPOINT__INTERVAL", "5s"),
        ("WALGUARD__METRICS__WINDOW", "64"),
        ("WALGUARD__DATABASE__SYNCHRONOUS", "full"),
        ("WALGUARD__DATABASE__BUSY_TIMEOUT", "250ms"),
    ]);
    let loaded = Settings::load_from(None, vars.clone()).unwrap();
    assert_eq!(loaded.checkpoint.interval, Duration::from_secs(5));
    assert_eq!(loaded.metrics.window, 64);
    assert_eq!(loaded.database.synchronous, Synchronous::Full);
    assert_eq!(loaded.database.busy_timeout, Duration::from_millis(250));
    assert_eq!(
        loaded.log,
        Settings::default().log,
        "untouched keys keep their defaults"
    );

    // The environment wins over a file too.
    let on_dev = Settings::load_from(Some(&repo_file("config/dev.yaml")), vars).unwrap();
    assert_eq!(on_dev.checkpoint.interval, Duration::from_secs(5));
    assert_eq!(on_dev.metrics.window, 64);
    assert_eq!(on_dev.log.level, "debug", "the file still applies");
}

#[test]
fn a_file_sets_every_kind_of_value() {
    let s = load_yaml(
        "database:\n  path: /tmp/x.db\n  synchronous: extra\n  busy_timeout: 1.5s\n  \
         journal_size_limit: ~\n  wal_autocheckpoint: 0\n\
         checkpoint:\n  interval: 2m\n  shutdown_timeout: 250ms\n\
         log:\n  format: json\n",
    )
    .unwrap();
    assert_eq!(s.database.synchronous, Synchronous::Extra);
    assert_eq!(s.database.busy_timeout, Duration::from_millis(1500));
    assert_eq!(s.database.journal_size_limit, None);
    assert_eq!(s.database.wal_autocheckpoint, 0);
    assert_eq!(s.checkpoint.interval, Duration::from_secs(120));
    assert_eq!(s.checkpoint.shutdown_timeout, Duration::from_millis(250));
    assert_eq!(s.log.format, LogFormat::Json);
}

/// Asserts `err` is `Error::InvalidSetting` for `key` with `value`, and that
/// the chain text names both.
fn assert_invalid(err: &Error, key: &str, value: &str) {
    let text = chain(err);
    match err {
        Error::InvalidSetting {
            key: k, value: v, ..
        } => {
            assert_eq!((k.as_str(), v.as_str()), (key, value), "{text}");
        }
        other => panic!("expected Error::InvalidSetting for {key}, got {other:?}"),
    }
    assert!(text.contains(key) && text.contains(value), "{text}");
}

/// Asserts `err` is `Error::Settings` whose source carries `key`, and that the
/// chain text names the key and every one of `mentions`.
fn assert_settings_error(err: &Error, key: &str, mentions: &[&str]) {
    let text = chain(err);
    match err {
        Error::Settings { source, .. } => assert_eq!(source.key(), Some(key), "{text}"),
        other => panic!("expected Error::Settings for {key}, got {other:?}"),
    }
    assert!(text.contains(key), "the error must name {key}: {text}");
    for m in mentions {
        assert!(text.contains(m), "the error must mention {m}: {text}");
    }
}

#[test]
fn zero_interval_is_rejected() {
    let err = load_yaml("checkpoint:\n  interval: 0s\n").unwrap_err();
    assert_invalid(&err, "checkpoint.interval", "0s");
    let err =
        Settings::load_from(None, env(&[("WALGUARD__CHECKPOINT__INTERVAL", "0ms")])).unwrap_err();
    assert_invalid(&err, "checkpoint.interval", "0s");
}

#[test]
fn zero_window_is_rejected() {
    let err = load_yaml("metrics:\n  window: 0\n").unwrap_err();
    assert_invalid(&err, "metrics.window", "0");
    let mut settings = Settings::default();
    settings.metrics.window = 0;
    assert_invalid(&settings.validate().unwrap_err(), "metrics.window", "0");
}

#[test]
fn unknown_key_is_rejected_with_its_section() {
    let (_dir, path) = yaml_file("checkpoint:\n  intervall: 5s\n");
    let err = Settings::load_from(Some(&path), no_env()).unwrap_err();
    assert_settings_error(&err, "checkpoint.intervall", &[]);
    assert!(
        chain(&err).contains(&path.display().to_string()),
        "{}",
        chain(&err)
    );

    let err = load_yaml("metrics:\n  windows: 5\n").unwrap_err();
    assert_settings_error(&err, "metrics.windows", &[]);

    let err = load_yaml("checkpoints:\n  interval: 5s\n").unwrap_err();
    assert_settings_error(&err, "checkpoints", &[]);

    let err =
        Settings::load_from(None, env(&[("WALGUARD__CHECKPOINT__INTERVALL", "5s")])).unwrap_err();
    assert_settings_error(&err, "checkpoint.intervall", &[]);
}

/// A bad value that came from the environment names the variable that set
/// it, so that an operator does not search the config file for it; a bad
/// value from a file does not blame the environment.
#[test]
fn a_bad_value_from_the_environment_names_its_variable() {
    let err =
        Settings::load_from(None, env(&[("WALGUARD__CHECKPOINT__INTERVAL", "0ms")])).unwrap_err();
    assert_invalid(&err, "checkpoint.interval", "0s");
    assert!(
        chain(&err).contains("WALGUARD__CHECKPOINT__INTERVAL"),
        "{}",
        chain(&err)
    );

    let err = Settings::load_from(None, env(&[("WALGUARD__METRICS__WINDOW", "lots")])).unwrap_err();
    assert_settings_error(
        &err,
        "metrics.window",
        &["WALGUARD__METRICS__WINDOW", "lots"],
    );

    let err =
        Settings::load_from(None, env(&[("WALGUARD__DATABASE__BUSY_TIMEOUT", "-1s")])).unwrap_err();
    assert_settings_error(
        &err,
        "database.busy_timeout",
        &["WALGUARD__DATABASE__BUSY_TIMEOUT", "must not be negative"],
    );

    // A file's bad value, with an unrelated variable set: the variable is
    // not blamed.
    let (_dir, path) = yaml_file("checkpoint:\n  interval: 0s\n");
    let err =
        Settings::load_from(Some(&path), env(&[("WALGUARD__METRICS__WINDOW", "64")])).unwrap_err();
    assert_invalid(&err, "checkpoint.interval", "0s");
    assert!(!chain(&err).contains("WALGUARD__"), "{}", chain(&err));
}

#[test]
fn wrong_type_is_rejected() {
    let err = load_yaml("metrics:\n  window: lots\n").unwrap_err();
    assert_settings_error(&err, "metrics.window", &["lots"]);

    let err = load_yaml("database:\n  synchronous: sometimes\n").unwrap_err();
    assert_settings_error(&err, "database.synchronous", &["sometimes"]);

    let err = Settings::load_from(None, env(&[("WALGUARD__METRICS__WINDOW", "lots")])).unwrap_err();
    assert_settings_error(&err, "metrics.window", &["lots"]);
}

#[test]
fn duration_without_unit_is_rejected() {
    let err = load_yaml("checkpoint:\n  interval: 60\n").unwrap_err();
    assert_settings_error(&err, "checkpoint.interval", &["60", "unit"]);

    let err =
        Settings::load_from(None, env(&[("WALGUARD__CHECKPOINT__INTERVAL", "60")])).unwrap_err();
    assert_settings_error(&err, "checkpoint.interval", &["60", "unit"]);

    let err = load_yaml("database:\n  busy_timeout: 5 fortnights\n").unwrap_err();
    assert_settings_error(&err, "database.busy_timeout", &["5 fortnights", "unit"]);
}

/// Pins a bug: a duration of the wrong type used to say only "data did not
/// match any variant of untagged enum Raw", naming a private type and no
/// expected form.
#[test]
fn duration_of_the_wrong_type_says_what_is_expected() {
    let err = load_yaml("checkpoint:\n  shutdown_timeout: true\n").unwrap_err();
    assert_settings_error(
        &err,
        "checkpoint.shutdown_timeout",
        &["true", "a duration with a unit"],
    );
    assert!(!chain(&err).contains("Raw"), "{}", chain(&err));
}

#[test]
fn missing_file_and_bad_yaml_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = Settings::load_from(Some(&missing), no_env()).unwrap_err();
    assert!(matches!(err, Error::Settings { .. }), "{err:?}");
    assert!(
        chain(&err).contains(&missing.display().to_string()),
        "{}",
        chain(&err)
    );

    let (_dir, path) = yaml_file("checkpoint: [unclosed\n");
    let err = Settings::load_from(Some(&path), no_env()).unwrap_err();
    assert!(matches!(err, Error::Settings { .. }), "{err:?}");
    assert!(
        chain(&err).contains(&path.display().to_string()),
        "{}",
        chain(&err)
    );
}

#[test]
fn memory_path_is_rejected() {
    let err = load_yaml("database:\n  path: \":memory:\"\n").unwrap_err();
    assert_invalid(&err, "database.path", ":memory:");
    // SQLite would read these as URIs: `file::memory:` is in memory too.
    for uri in ["file::memory:", "file:state.db?mode=memory"] {
        let err = load_yaml(&format!("database:\n  path: \"{uri}\"\n")).unwrap_err();
        assert_invalid(&err, "database.path", uri);
    }
}

#[test]
fn from_yaml_layers_on_the_defaults_without_the_environment() {
    let s = Settings::from_yaml("metrics:\n  window: 64\n").unwrap();
    assert_eq!(s.metrics.window, 64);
    assert_eq!(s.checkpoint, Settings::default().checkpoint);
    let err = Settings::from_yaml("metrics:\n  window: 0\n").unwrap_err();
    assert_invalid(&err, "metrics.window", "0");
    let err = Settings::from_yaml("metrics:\n  windw: 3\n").unwrap_err();
    assert_settings_error(&err, "metrics.windw", &[]);
}

/// The default shutdown (the busy timeout of the request in flight, then
/// the TRUNCATE under its deadline and the interrupt's grace) fits in the
/// one shutdown budget.
#[test]
fn the_default_shutdown_fits_the_shutdown_budget() {
    use walguard::checkpoint::MIN_DEADLINE_GRACE;
    use walguard::settings::{DEFAULT_BUSY_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, SHUTDOWN_BUDGET};
    let truncate =
        DEFAULT_SHUTDOWN_TIMEOUT + (DEFAULT_SHUTDOWN_TIMEOUT / 4).max(MIN_DEADLINE_GRACE);
    assert!(DEFAULT_BUSY_TIMEOUT + truncate < SHUTDOWN_BUDGET);
    assert_eq!(SHUTDOWN_BUDGET, Duration::from_secs(5));
}

#[test]
fn synchronous_names_levels_and_parsing_agree() {
    use walguard::settings::Synchronous;
    for (sync, name, level) in [
        (Synchronous::Off, "off", 0),
        (Synchronous::Normal, "normal", 1),
        (Synchronous::Full, "full", 2),
        (Synchronous::Extra, "extra", 3),
    ] {
        assert_eq!(sync.level(), level);
        assert_eq!(Synchronous::from_level(level), Some(sync));
        assert_eq!(sync.to_string(), name);
        assert_eq!(name.parse::<Synchronous>(), Ok(sync));
        assert_eq!(sync.as_str().parse::<Synchronous>(), Ok(sync));
    }
    assert_eq!(Synchronous::from_level(4), None);
    assert!("fast".parse::<Synchronous>().is_err());
}

// Replication needs Litestream's Unix control socket.
#[cfg(unix)]
#[test]
fn replication_loads_from_a_file_and_the_environment() {
    use walguard::settings::{AckMode, ReplicationMode};
    let (_dir, path) = yaml_file(
        "replication:\n  mode: litestream\n  url: s3://bucket/engine\n  endpoint: http://127.0.0.1:9000\n  ack: replicated\n",
    );
    let s = Settings::load_from(
        Some(&path),
        env(&[
            ("WALGUARD__REPLICATION__SYNC_PERIOD", "500ms"),
            ("WALGUARD__REPLICATION__MAX_LAG", "3s"),
        ]),
    )
    .unwrap();
    let r = &s.replication;
    assert_eq!(r.mode, ReplicationMode::Litestream);
    assert_eq!(r.url.as_deref(), Some("s3://bucket/engine"));
    assert_eq!(r.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(r.ack, AckMode::Replicated);
    assert_eq!(r.sync_period, Duration::from_millis(500));
    assert_eq!(r.max_lag, Duration::from_secs(3));
    assert_eq!(
        Settings::default().replication.sync_period,
        Duration::from_secs(1)
    );
}

#[test]
fn replication_values_are_checked_and_secrets_never_echoed() {
    let err = load_yaml("replication:\n  mode: litestream\n").unwrap_err();
    assert_invalid(&err, "replication.url", "~");
    let err = load_yaml("replication:\n  url: gs://bucket/db\n").unwrap_err();
    assert_invalid(&err, "replication.url", "gs://bucket/db");
    let err = load_yaml("replication:\n  endpoint: 127.0.0.1:9000\n").unwrap_err();
    assert_invalid(&err, "replication.endpoint", "127.0.0.1:9000");
    let err = load_yaml("replication:\n  sync_period: 0s\n").unwrap_err();
    assert_invalid(&err, "replication.sync_period", "0s");
    let err = load_yaml("replication:\n  url: sftp://me:hunter2@host/db\n").unwrap_err();
    assert!(!chain(&err).contains("hunter2"), "{}", chain(&err));
    assert_invalid(&err, "replication.url", "sftp://me:***@host/db");
    let err =
        load_yaml("replication:\n  endpoint: http://key:secret@127.0.0.1:9000\n").unwrap_err();
    assert!(!chain(&err).contains("secret"), "{}", chain(&err));
    let err = load_yaml("replication:\n  mode: rsync\n").unwrap_err();
    assert_settings_error(&err, "replication.mode", &["rsync"]);
}

/// Off Unix, replication is refused by name: Litestream's control socket is
/// a Unix domain socket.
#[cfg(not(unix))]
#[test]
fn replication_is_refused_off_unix() {
    let err =
        load_yaml("replication:\n  mode: litestream\n  url: s3://bucket/engine\n").unwrap_err();
    assert_invalid(&err, "replication.mode", "litestream");
}
