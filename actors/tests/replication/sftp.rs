//! An SFTP replica: Debian's `openssh-server`, started by the test on
//! 127.0.0.1 with a host key and a client key it generates (`.ci/run`
//! installs it). Litestream logs in with the key named by
//! `LITESTREAM_SFTP_KEY_PATH` and checks the host key given in
//! `LITESTREAM_SFTP_HOST_KEY`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{SECRET, child_with, survivors, three_rows};

const SSHD: &str = "/usr/sbin/sshd";

/// Fails the calling test unless `sshd` and `ssh-keygen` are here.
#[track_caller]
fn require_ssh_tools() {
    super::tools::require(
        Path::new(SSHD).exists() && Command::new("ssh-keygen").arg("-?").output().is_ok(),
        &format!("{SSHD} or ssh-keygen"),
        "run the tests with `scripts/test` (it installs it where it may), or \
         `apt-get install openssh-server`",
    );
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen {}", path.display());
}

/// A running `sshd` on a free loopback port, serving SFTP to this user
/// with `client_key`; killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    host_key: String,
    client_key: PathBuf,
    other_key: PathBuf,
    user: String,
}

impl Sshd {
    fn start(dir: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        let host = dir.join("host_key");
        let client_key = dir.join("client_key");
        let other_key = dir.join("other_key");
        for key in [&host, &client_key, &other_key] {
            keygen(key);
        }
        let authorized = dir.join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized).unwrap();
        std::fs::set_permissions(&authorized, std::fs::Permissions::from_mode(0o600)).unwrap();
        let port = super::free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n",
                host.display(),
                dir.join("sshd.pid").display(),
                authorized.display()
            ),
        )
        .unwrap();
        // As root, sshd wants its privilege-separation directory.
        if Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
        {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        super::wait_listening(port, "sshd");
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        let host_key = std::fs::read_to_string(host.with_extension("pub"))
            .unwrap()
            .trim()
            .to_owned();
        Self {
            child,
            port,
            host_key,
            client_key,
            other_key,
            user,
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, db: &Path, sshd: &Sshd, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "database:\n  path: {}\nreplication:\n  mode: litestream\n  url: sftp://{}@127.0.0.1:{}{}\n  sync_period: 500ms\n",
            db.display(),
            sshd.user,
            sshd.port,
            dir.join("replica").join(name).display()
        ),
    )
    .unwrap();
    path
}

fn lines(
    config: &Path,
    mode: &str,
    out: Option<&Path>,
    key: Option<&Path>,
    host_key: &str,
) -> Vec<String> {
    let key = key.map(|k| k.to_string_lossy().into_owned());
    let mut env = vec![("LITESTREAM_SFTP_HOST_KEY", host_key)];
    if let Some(key) = &key {
        env.push(("LITESTREAM_SFTP_KEY_PATH", key));
    }
    let output = child_with(config, mode, SECRET, out, &env, None)
        .wait_with_output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A clean stop leaves the SFTP replica complete, and a restore from it
/// has every write.
#[test]
fn an_sftp_replica_holds_every_write_after_a_clean_stop() {
    super::require_replication_tools();
    require_ssh_tools();
    let work = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(work.path());
    let db = work.path().join("engine.db");
    let config = config(work.path(), &db, &sshd, "clean");
    let key = Some(sshd.client_key.as_path());
    let out = lines(&config, "clean", None, key, &sshd.host_key);
    assert!(
        out.iter().any(|l| l == "report writes 500 replicated 500"),
        "{out:?}"
    );
    let restored = work.path().join("restored.db");
    let out = lines(&config, "restore", Some(&restored), key, &sshd.host_key);
    assert!(out.iter().any(|l| l == "restored"), "{out:?}");
    assert_eq!(survivors(&restored), (1..=500).collect::<Vec<_>>());
}

/// No key, a key the server does not know, a host key that is not the
/// server's: each fails the start with an error naming what to fix, and
/// loses no local write.
#[test]
fn sftp_bad_credentials_name_what_to_fix() {
    super::require_replication_tools();
    require_ssh_tools();
    let work = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(work.path());
    let db = work.path().join("engine.db");
    three_rows(&db);
    let config = config(work.path(), &db, &sshd, "bad");
    let wrong_host = std::fs::read_to_string(sshd.other_key.with_extension("pub")).unwrap();
    let cases = [
        (
            "no key",
            None,
            sshd.host_key.as_str(),
            "LITESTREAM_SFTP_KEY_PATH",
        ),
        (
            "unknown key",
            Some(sshd.other_key.as_path()),
            sshd.host_key.as_str(),
            "LITESTREAM_SFTP_KEY_PATH",
        ),
        (
            "wrong host key",
            Some(sshd.client_key.as_path()),
            wrong_host.trim(),
            "LITESTREAM_SFTP_HOST_KEY",
        ),
    ];
    for (case, key, host_key, names) in cases {
        let out = lines(&config, "start", None, key, host_key).join("\n");
        assert!(out.contains(names), "{case}: must name {names}: {out}");
        assert!(!out.contains("PRIVATE KEY"), "{case}: {out}");
        assert_eq!(
            survivors(&db),
            vec![1, 2, 3],
            "{case}: a local write was lost"
        );
    }
    // The harness can fail: the right key and host key start.
    let out = lines(
        &config,
        "start",
        None,
        Some(&sshd.client_key),
        &sshd.host_key,
    );
    assert!(out.iter().any(|l| l == "started"), "{out:?}");
}
