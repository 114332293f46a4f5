//! `nixflip.toml`'s live settings: unknown keys and bad values are refused
//! before anything connects (exit 2, with the key and the valid keys), and
//! `--watch` needs a terminal.

mod common;

use assert_cmd::Command;

/// A copy of the live_pair fixture with `toml` as its nixflip.toml.
fn flake_with(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    common::copy_flake("fixtures/clusters/live_pair", dir.path());
    std::fs::write(dir.path().join("nixflip.toml"), toml).expect("write nixflip.toml");
    dir
}

fn status_live(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::cargo_bin("nixflip")
        .expect("binary builds")
        .env("NO_COLOR", "1")
        .arg("--flake")
        .arg(dir)
        .args(["status", "--live"])
        .args(extra)
        .output()
        .expect("runs")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unknown_host_live_key_lists_the_valid_ones() {
    let dir = flake_with("[hosts.alpha.live]\npg_prot = 5433\n");
    let out = status_live(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown field `pg_prot`"), "{err}");
    for key in [
        "pg_data",
        "pg_port",
        "pg_user",
        "pg_socket_dir",
        "postgresql_service",
        "synapse_service",
        "synapse_url",
    ] {
        assert!(err.contains(&format!("`{key}`")), "{key} not listed: {err}");
    }
}

#[test]
fn unknown_live_key_lists_the_valid_ones() {
    let dir = flake_with("[live]\nmax_lag = 10\n");
    let out = status_live(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown field `max_lag`"), "{err}");
    for key in [
        "max_lag_bytes",
        "max_lag_seconds",
        "max_slot_retained_bytes",
        "min_free_percent",
        "known_hosts",
        "identity_file",
        "connect_timeout",
        "command_timeout",
    ] {
        assert!(err.contains(&format!("`{key}`")), "{key} not listed: {err}");
    }
}

#[test]
fn bad_live_values_name_their_key_and_line() {
    for (toml, key) in [
        ("[live]\nmin_free_percent = 120\n", "live.min_free_percent"),
        ("[live]\nconnect_timeout = 0\n", "live.connect_timeout"),
        (
            "[hosts.alpha.live]\npg_data = \"var/lib\"\n",
            "hosts.\"alpha\".live.pg_data",
        ),
        (
            "[hosts.alpha.live]\npg_user = \"-U\"\n",
            "hosts.\"alpha\".live.pg_user",
        ),
        (
            "[hosts.alpha.live]\nsynapse_url = \"ftp://x\"\n",
            "hosts.\"alpha\".live.synapse_url",
        ),
        (
            "[hosts.alpha.live]\npg_port = 0\n",
            "hosts.\"alpha\".live.pg_port",
        ),
        (
            "[hosts.alpha]\ntarget = \"ssh://root@127.0.0.2:0\"\n",
            "hosts.\"alpha\".target",
        ),
        ("[live]\nknown_hosts = \"missing\"\n", "live.known_hosts"),
    ] {
        let dir = flake_with(toml);
        let out = status_live(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(2), "{toml}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(key), "{toml}: {err}");
        assert!(err.contains("nixflip.toml:"), "{toml}: no line in {err}");
    }
}

#[test]
fn watch_refuses_a_stdout_that_is_not_a_terminal() {
    let dir = flake_with("");
    let out = status_live(dir.path(), &["--watch", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("stdout is not a terminal"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn watch_needs_live_and_excludes_json() {
    let dir = flake_with("");
    let out = Command::cargo_bin("nixflip")
        .expect("binary builds")
        .arg("--flake")
        .arg(dir.path())
        .args(["status", "--watch", "2"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = status_live(dir.path(), &["--watch", "2", "--json"]);
    assert_eq!(out.status.code(), Some(2));
}
