//! `nixflip status --live` against two real hosts on this machine (see
//! `tests/live_support`): each behind its own sshd, each with its own
//! PostgreSQL, set up the way the cluster module sets them up. Every live
//! finding has a test that makes it fire; the healthy pair keeps them all
//! quiet, and some have a quiet case of their own next to their threshold.

mod common;
mod live_support;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Instant;

use live_support::{finding_ids, findings_of, member, wait_until, Env, TIMEOUT};
use nixflip::live::facts::psql_argv;
use nixflip::live::ssh::{SshOptions, Transport};
use nixflip::names::Target;
use serde_json::Value;

/// Poll `status --live --json` until a finding `id` about `host` shows up.
fn wait_for_finding(env: &Env, id: &str, host: &str) -> (Option<i32>, Value) {
    let start = Instant::now();
    loop {
        let (code, json) = env.status_json();
        if !findings_of(&json, id, host).is_empty() {
            return (code, json);
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "after {TIMEOUT:?}, no {id} about {host}:\n{json:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// `(id, host)` of every finding, sorted.
fn about(json: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or("").to_string(),
                f["host"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The table row of `host` (its first column).
fn row<'a>(table: &'a str, host: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(host))
        .unwrap_or_else(|| panic!("no row for {host} in:\n{table}"))
}

// ---------------------------------------------------------------- healthy --

#[test]
fn healthy_pair_shows_both_members_and_no_findings() {
    let env = Env::start();
    let out = env
        .nixflip()
        .args(["status", "--live"])
        .output()
        .expect("run nixflip");
    let table = stdout_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alpha: Vec<&str> = row(&table, "alpha").split_whitespace().collect();
    assert_eq!(&alpha[..4], ["alpha", "primary", "primary", "1"], "{table}");
    assert!(
        row(&table, "alpha").contains("127.0.0.3 streaming"),
        "{table}"
    );
    assert!(
        row(&table, "alpha").contains("active, answering"),
        "{table}"
    );
    let beta: Vec<&str> = row(&table, "beta").split_whitespace().collect();
    assert_eq!(&beta[..4], ["beta", "standby", "standby", "1"], "{table}");
    assert!(
        row(&table, "beta").contains("streaming from 127.0.0.2"),
        "{table}"
    );
    assert!(
        row(&table, "beta").contains("inactive, not answering"),
        "{table}"
    );
    assert!(table.contains("\nno findings\n"), "{table}");

    let (code, json) = env.status_json();
    assert_eq!(code, Some(0));
    assert_eq!(finding_ids(&json), Vec::<String>::new(), "{json:#}");
    let (a, b) = (member(&json, "alpha"), member(&json, "beta"));
    assert_eq!(a["liveRole"], "primary");
    assert_eq!(b["liveRole"], "standby");
    assert_eq!(a["standbySignal"], false);
    assert_eq!(b["standbySignal"], true);
    assert_eq!(a["postgres"]["replication"][0]["clientAddr"], "127.0.0.3");
    assert_eq!(b["postgres"]["walReceiver"]["senderHost"], "127.0.0.2");
    assert_eq!(a["synapse"]["answering"], true);
    assert_eq!(b["synapse"]["unit"], "inactive");
    assert!(b["lag"]["bytes"].is_u64(), "{b:#}");
}

/// Values that change from run to run (positions, times, ports, paths,
/// sizes) become "[redacted]"; the shape and the rest stay. PostgreSQL
/// reports the lag times and the last replayed transaction's time as null
/// or not depending on recent activity: those are redacted even when null.
fn redact(value: &mut Value) {
    const NULL_OR_NOT: &[&str] = &[
        "writeLagSeconds",
        "flushLagSeconds",
        "replayLagSeconds",
        "replayTimestamp",
    ];
    const VOLATILE: &[&str] = &[
        "flake",
        "target",
        "dataDirectory",
        "version",
        "url",
        "error",
        "currentLsn",
        "receiveLsn",
        "replayLsn",
        "sentLsn",
        "writeLsn",
        "flushLsn",
        "flushedLsn",
        "restartLsn",
        "replayTimestamp",
        "writeLagSeconds",
        "flushLagSeconds",
        "replayLagSeconds",
        "replayLagBytes",
        "replayDelaySeconds",
        "senderPort",
        "bytes",
        "seconds",
        "totalBytes",
        "availableBytes",
        "freePercent",
    ];
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if NULL_OR_NOT.contains(&key.as_str())
                    || VOLATILE.contains(&key.as_str()) && !v.is_null()
                {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[test]
fn json_of_a_healthy_pair() {
    let env = Env::start();
    let (code, mut json) = env.status_json();
    assert_eq!(code, Some(0), "{json:#}");
    redact(&mut json);
    insta::assert_json_snapshot!("live_status_healthy_json", json);
}

#[test]
fn one_ssh_connection_per_host_closed_at_the_end() {
    let env = Env::start();
    let before: Vec<usize> = env.hosts.iter().map(|h| h.ssh_logins()).collect();
    let tmp = env.base().join("nixflip-tmp");
    fs::create_dir(&tmp).expect("mkdir");
    let out = env
        .nixflip()
        .args(["status", "--live"])
        .env("TMPDIR", &tmp)
        .output()
        .expect("run nixflip");
    assert_eq!(out.status.code(), Some(0), "{}", stdout_of(&out));
    for (host, before) in env.hosts.iter().zip(before) {
        // Five or more commands ran on each host, over one login.
        assert_eq!(host.ssh_logins(), before + 1, "{}", host.name);
        wait_until(&format!("{}'s ssh connection is closed", host.name), || {
            host.ssh_disconnects() == host.ssh_logins()
        });
        let log = fs::read_to_string(&host.sshd_log).expect("sshd log");
        assert!(
            log.matches("Starting session: command").count() >= 5,
            "{log}"
        );
    }
    // The control sockets' directory is gone.
    let left: Vec<_> = fs::read_dir(&tmp).expect("read tmp").flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

// ------------------------------------------------------- NF303 NF304 NF307 NF308 --

#[test]
fn stopped_standby_is_down_not_streaming_and_its_slot_piles_up_wal() {
    let env = Env::start();
    env.alpha()
        .sql("SELECT pg_create_physical_replication_slot('beta', true)");
    env.beta().systemctl(&["stop", "postgresql"]);
    env.alpha()
        .wait_for("SELECT count(*) FROM pg_stat_replication", "0");
    // WAL the slot must keep: a pgbench data set, well over 4 MiB.
    env.alpha().pgbench(&["-i", "-s", "1", "-q"]);
    env.write_config("max_slot_retained_bytes = 4194304\n");

    let (code, json) = env.status_json();
    assert_eq!(
        about(&json),
        pairs(&[
            ("NF303", "beta"),
            ("NF304", "beta"),
            ("NF307", "alpha"),
            ("NF308", "alpha")
        ]),
        "{json:#}"
    );
    assert_eq!(code, Some(1));
    let nf304 = findings_of(&json, "NF304", "beta");
    assert!(
        nf304[0]["message"].as_str().is_some_and(
            |m| m.contains("the primary alpha has no streaming connection from 127.0.0.3")
        ),
        "{json:#}"
    );
    let slot = &member(&json, "alpha")["postgres"]["slots"][0];
    assert_eq!(slot["active"], false);
    assert!(
        slot["retainedBytes"]
            .as_i64()
            .is_some_and(|b| b > 4_194_304),
        "{slot}"
    );
    let b = member(&json, "beta");
    assert_eq!(b["postgres"]["running"], false);
    assert_eq!(b["postgres"]["unit"], "inactive");
    // Still known with PostgreSQL down: the data directory's files and disk.
    assert_eq!(b["standbySignal"], true);
    assert!(b["disk"]["freePercent"].is_f64());

    let out = env
        .nixflip()
        .args(["status", "--live"])
        .output()
        .expect("run");
    let table = stdout_of(&out);
    assert!(
        row(&table, "beta").split_whitespace().nth(2) == Some("down"),
        "{table}"
    );
    assert!(row(&table, "alpha").contains("beta (inactive"), "{table}");
}

#[test]
fn active_slot_and_a_caught_up_standby_under_load_are_quiet() {
    let env = Env::start();
    env.alpha()
        .sql("SELECT pg_create_physical_replication_slot('beta', true)");
    env.beta()
        .sql("ALTER SYSTEM SET primary_slot_name = 'beta'");
    env.beta().sql("SELECT pg_reload_conf()");
    env.alpha().wait_for(
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'beta'",
        "t",
    );
    env.alpha().pgbench(&["-i", "-s", "1", "-q"]);
    env.alpha().pgbench(&["-c", "2", "-t", "200"]);
    env.wait_replayed();
    // Whatever WAL the slot still holds is under 1 GiB (the default).
    let (code, json) = env.status_json();
    assert_eq!(finding_ids(&json), Vec::<String>::new(), "{json:#}");
    assert_eq!(code, Some(0));
    let slot = &member(&json, "alpha")["postgres"]["slots"][0];
    assert_eq!(slot["name"], "beta");
    assert_eq!(slot["active"], true);
    assert_eq!(
        member(&json, "beta")["postgres"]["walReceiver"]["slotName"],
        "beta"
    );
}

// ------------------------------------------------------------------ NF306 --

#[test]
fn standby_with_paused_replay_lags_in_bytes() {
    let env = Env::start();
    env.beta().sql("SELECT pg_wal_replay_pause()");
    env.alpha().pgbench(&["-i", "-s", "1", "-q"]);
    env.write_config("max_lag_bytes = 1048576\nmax_lag_seconds = 86400\n");
    let (code, json) = wait_for_finding(&env, "NF306", "beta");
    assert_eq!(about(&json), pairs(&[("NF306", "beta")]), "{json:#}");
    assert_eq!(code, Some(1));
    let message = findings_of(&json, "NF306", "beta")[0]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        message.contains("of WAL (max_lag_bytes 1 MiB)"),
        "{message}"
    );
    assert!(message.contains("its WAL replay is paused"), "{message}");
    assert!(member(&json, "beta")["lag"]["bytes"]
        .as_u64()
        .is_some_and(|b| b > 1_048_576));
}

#[test]
fn standby_behind_in_time_lags_in_seconds() {
    let env = Env::start();
    env.alpha().sql("CREATE TABLE probe (v int)");
    env.alpha().sql("INSERT INTO probe VALUES (1)");
    env.wait_replayed();
    env.beta().sql("SELECT pg_wal_replay_pause()");
    env.alpha().sql("INSERT INTO probe VALUES (2)");
    env.write_config("max_lag_seconds = 1\n");
    let (code, json) = wait_for_finding(&env, "NF306", "beta");
    assert_eq!(about(&json), pairs(&[("NF306", "beta")]), "{json:#}");
    assert_eq!(code, Some(1));
    let message = findings_of(&json, "NF306", "beta")[0]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(message.contains("s (max_lag_seconds 1)"), "{message}");
    assert!(!message.contains("max_lag_bytes"), "{message}");
}

// ------------------------------------------------------------ NF103 NF301 --

#[test]
fn flake_declaring_the_standby_primary_is_role_drift() {
    let env = Env::start();
    env.declare("alpha", "role = \"primary\";", "role = \"standby\";");
    env.declare("beta", "role = \"standby\";", "role = \"primary\";");
    let (code, json) = env.status_json();
    assert_eq!(
        about(&json),
        pairs(&[("NF103", "alpha"), ("NF103", "beta")]),
        "{json:#}"
    );
    assert_eq!(code, Some(1));
    let beta = findings_of(&json, "NF103", "beta")[0];
    assert_eq!(beta["file"], "hosts/beta.nix");
    assert_eq!(beta["line"], 8);
    assert!(beta["span"].is_array(), "NF103 points at the declared role");
    assert_eq!(
        beta["message"],
        "beta is declared primary, but its PostgreSQL is in recovery (a standby)"
    );
    // The text form shows the declaration.
    let out = env
        .nixflip()
        .args(["status", "--live"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hosts/beta.nix:8"), "{stderr}");
    assert!(stderr.contains("role = \"primary\";"), "{stderr}");
}

#[test]
fn standby_promoted_behind_the_flakes_back_is_a_live_split_brain() {
    let env = Env::start();
    env.beta().sql("SELECT pg_promote(true, 60)");
    env.beta().wait_for("SELECT pg_is_in_recovery()", "f");
    let (code, json) = env.status_json();
    assert_eq!(
        about(&json),
        pairs(&[("NF103", "beta"), ("NF301", "alpha"), ("NF301", "beta")]),
        "{json:#}"
    );
    assert_eq!(code, Some(1));
    assert_eq!(member(&json, "beta")["liveRole"], "primary");
    assert!(member(&json, "beta")["postgres"]["timeline"]
        .as_u64()
        .is_some_and(|t| t >= 2));
}

// ------------------------------------------------------------------ NF302 --

#[test]
fn unreachable_host_is_exit_3_and_the_other_is_still_reported() {
    let env = Env::start();
    env.beta().stop_sshd();
    let (code, json) = env.status_json();
    assert_eq!(code, Some(3), "{json:#}");
    // beta's PostgreSQL still streams: alpha says so, so no NF304.
    assert_eq!(about(&json), pairs(&[("NF302", "beta")]), "{json:#}");
    let (a, b) = (member(&json, "alpha"), member(&json, "beta"));
    assert_eq!(a["reachable"], true);
    assert_eq!(a["liveRole"], "primary");
    assert_eq!(b["reachable"], false);
    assert!(
        b["error"]
            .as_str()
            .is_some_and(|e| e.contains("Connection refused")),
        "{b:#}"
    );
    let out = env
        .nixflip()
        .args(["status", "--live"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let table = stdout_of(&out);
    assert!(row(&table, "beta").contains("unreachable"), "{table}");
    let alpha: Vec<&str> = row(&table, "alpha").split_whitespace().collect();
    assert_eq!(&alpha[..3], ["alpha", "primary", "primary"], "{table}");
}

#[test]
fn unknown_host_key_is_refused_not_learned() {
    let env = Env::start();
    // beta's line in known_hosts now holds another key.
    let other = env.base().join("other_key");
    live_support::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other),
        "ssh-keygen",
    );
    let other_key = fs::read_to_string(other.with_extension("pub")).expect("key");
    let known = fs::read_to_string(&env.known_hosts).expect("known_hosts");
    let beta_line = known
        .lines()
        .find(|l| l.starts_with("[127.0.0.3]"))
        .expect("beta's line");
    let mut fields = beta_line.split_whitespace();
    let host = fields.next().expect("host");
    let replaced = known.replace(
        beta_line,
        &format!(
            "{host} {}",
            other_key
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    fs::write(&env.known_hosts, &replaced).expect("write known_hosts");

    let (code, json) = env.status_json();
    assert_eq!(code, Some(3), "{json:#}");
    assert_eq!(about(&json), pairs(&[("NF302", "beta")]), "{json:#}");
    let f = findings_of(&json, "NF302", "beta")[0];
    assert!(
        f["message"]
            .as_str()
            .is_some_and(|m| m.contains("Host key verification failed")),
        "{f:#}"
    );
    assert!(
        f["help"]
            .as_str()
            .is_some_and(|h| h.contains("known_hosts")),
        "{f:#}"
    );
    // Nothing was added to the file.
    assert_eq!(
        fs::read_to_string(&env.known_hosts).expect("read"),
        replaced
    );
}

// ------------------------------------------------------------------ NF305 --

#[test]
fn standby_streaming_from_an_address_that_is_not_the_declared_primarys() {
    let env = Env::start();
    // The flake now says the primary is at 127.0.0.4; beta still streams
    // from 127.0.0.2, where it was set up.
    env.declare(
        "alpha",
        "publicIp = \"127.0.0.2\";",
        "publicIp = \"127.0.0.4\";",
    );
    env.declare(
        "beta",
        "peerHost = \"127.0.0.2\";",
        "peerHost = \"127.0.0.4\";",
    );
    env.declare(
        "beta",
        "allowedSourceIPs = [ \"127.0.0.2/32\" ];",
        "allowedSourceIPs = [ \"127.0.0.4/32\" ];",
    );
    let (code, json) = env.status_json();
    assert_eq!(about(&json), pairs(&[("NF305", "beta")]), "{json:#}");
    assert_eq!(code, Some(1));
    assert_eq!(
        findings_of(&json, "NF305", "beta")[0]["message"],
        "standby beta streams from 127.0.0.2, but the declared primary alpha is at 127.0.0.4"
    );
}

// ------------------------------------------------------------------ NF309 --

#[test]
fn data_directory_filesystem_under_min_free_percent() {
    let env = Env::start();
    env.write_config("min_free_percent = 100\n");
    let (code, json) = env.status_json();
    assert_eq!(
        about(&json),
        pairs(&[("NF309", "alpha"), ("NF309", "beta")]),
        "{json:#}"
    );
    assert_eq!(code, Some(1));
    let message = findings_of(&json, "NF309", "alpha")[0]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(message.contains("under min_free_percent 100"), "{message}");
    assert!(
        message.contains(&env.alpha().data.display().to_string()),
        "{message}"
    );
}

// ------------------------------------------------------------ NF310 NF311 --

#[test]
fn synapse_running_on_the_standby() {
    let env = Env::start();
    env.beta().systemctl(&["start", "matrix-synapse"]);
    let (code, json) = env.status_json();
    assert_eq!(about(&json), pairs(&[("NF310", "beta")]), "{json:#}");
    assert_eq!(code, Some(1));
    assert_eq!(member(&json, "beta")["synapse"]["answering"], true);
}

#[test]
fn synapse_stopped_on_the_primary() {
    let env = Env::start();
    env.alpha().systemctl(&["stop", "matrix-synapse"]);
    let (code, json) = env.status_json();
    assert_eq!(about(&json), pairs(&[("NF311", "alpha")]), "{json:#}");
    assert_eq!(code, Some(1));
    let message = findings_of(&json, "NF311", "alpha")[0]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(message.contains("unit inactive"), "{message}");
    assert!(message.contains("Couldn't connect"), "{message}");
}

// -------------------------------------------------------------- transport --

#[test]
fn remote_arguments_and_psql_variables_arrive_unchanged() {
    let env = Env::start();
    let alpha = env.alpha();
    let transport = Transport::new(SshOptions {
        known_hosts: Some(env.known_hosts.clone()),
        identity_file: Some(env.client_key.clone()),
        ..SshOptions::default()
    })
    .expect("transport");
    let target = Target::parse(&alpha.target()).expect("target");
    let canary = env.base().join("canary");
    let tricky = format!(
        "it's \"quoted\"; $(touch {c}) `touch {c}` \\ & | * ~ {{a,b}} %s %%",
        c = canary.display()
    );
    // Each argument reaches the remote program as it was.
    let out = transport
        .run(&target, &["printf", "%s|", "a b", &tricky, ""], None)
        .expect("printf");
    assert_eq!(out.stdout, format!("a b|{tricky}||"));
    // A value for SQL travels as a psql variable, quoted by psql itself.
    let settings = nixflip::live::HostSettings {
        host: "alpha".into(),
        target: target.clone(),
        pg_data: None,
        pg_port: alpha.pg_port,
        pg_user: "postgres".into(),
        pg_socket_dir: alpha.socket_dir.display().to_string(),
        postgresql_service: "postgresql".into(),
        synapse_service: "matrix-synapse".into(),
        synapse_url: alpha.synapse_url(),
    };
    let argv = psql_argv(&settings, &[("value", &tricky)]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = transport
        .run(&target, &argv, Some(b"SELECT :'value' AS v;\n"))
        .expect("psql");
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.stdout.trim_end_matches('\n'), tricky);
    assert!(!canary.exists(), "a shell expanded an argument");
    let control = transport.control_dir().to_path_buf();
    assert!(control.is_dir());
    drop(transport);
    assert!(!control.exists(), "the control directory is removed");
    wait_until("the connection is closed", || {
        alpha.ssh_disconnects() == alpha.ssh_logins()
    });
}

// ------------------------------------------------------------------ watch --

/// The one child process of `parent` (from /proc).
fn child_of(parent: u32) -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
        // "PID (COMM) STATE PPID …": COMM may hold spaces, so read after ')'.
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        (ppid == parent).then_some(pid)
    })
}

#[test]
fn watch_redraws_on_a_terminal_until_interrupted() {
    let env = Env::start();
    let tmp = env.base().join("nixflip-tmp");
    fs::create_dir(&tmp).expect("mkdir");
    let log = env.base().join("watch.out");
    // util-linux `script` gives nixflip a terminal; `exec` makes nixflip
    // the shell's own process, the child of `script`.
    let command = format!(
        "exec {} --flake {} status --live --watch 1",
        env!("CARGO_BIN_EXE_nixflip"),
        env.flake.display()
    );
    let mut script = Command::new("script")
        .args(["-q", "-f", "-e", "-c", &command])
        .arg(&log)
        .env("TMPDIR", &tmp)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run script (util-linux)");
    let header = "nixflip status --live: every 1 s";
    wait_until("two screens drawn", || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .matches(header)
            .count()
            >= 2
    });
    let pid = child_of(script.id()).expect("nixflip runs under script");
    live_support::run(
        Command::new("kill").args(["-INT", &pid.to_string()]),
        "kill -INT nixflip",
    );
    let status = script.wait().expect("script ends");
    assert_eq!(status.code(), Some(0), "the last screen had no findings");
    let screen = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        screen.contains("\u{1b}[H\u{1b}[2J"),
        "the screen is redrawn in place"
    );
    assert!(screen.contains("no findings"), "{screen}");
    let left: Vec<_> = fs::read_dir(&tmp).expect("read tmp").flatten().collect();
    assert!(left.is_empty(), "left behind after Ctrl-C: {left:?}");
    for host in &env.hosts {
        assert_eq!(host.ssh_logins(), 1, "one connection for every refresh");
        wait_until(&format!("{}'s connection is closed", host.name), || {
            host.ssh_disconnects() == 1
        });
    }
}
