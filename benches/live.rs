//! `status --live` benchmark: the release binary's `nixflip status --live`
//! on the two loopback hosts of `tests/live_support` (own sshd and
//! PostgreSQL each), against two baselines timed in the same rounds:
//!
//! - `ssh … true` to both hosts at once, each a fresh connection: the least
//!   any tool that reads both hosts over ssh pays;
//! - one ssh session per host, at once, running the same commands nixflip
//!   runs (the facts SQL on psql's stdin, `systemctl is-active`, `test -e`,
//!   `stat -f`, `curl`) as one shell line: the same work, hand-rolled.
//!
//! It also counts, from each sshd's log, the connections (logins) and the
//! sessions one `status --live` opens: the connections must be one per host.
//!
//! Needs what the live tests need (root, sshd, PostgreSQL; see
//! tests/live_support). Run with `cargo bench --bench live` (benches/run.sh
//! runs it last). A miss is printed, never a failure.

#[path = "common/mod.rs"]
mod bench;
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/live_support/mod.rs"]
mod live_support;

use std::process::{Command, Stdio};

use bench::{measure_rounds, runs};
use live_support::{Env, Host};
use nixflip::live::facts::{psql_argv, FACTS_SQL};
use nixflip::live::ssh::remote_command;

/// ssh to `host` with the same authentication nixflip uses, without a
/// control connection: every call is a fresh connection.
fn ssh(env: &Env, host: &Host) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args([
        "-T",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
    ])
    .arg("-o")
    .arg(format!("UserKnownHostsFile={}", env.known_hosts.display()))
    .arg("-o")
    .arg(format!("IdentityFile={}", env.client_key.display()))
    .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
    .args([
        "-p",
        &host.ssh_port.to_string(),
        "-l",
        "root",
        "--",
        host.address,
    ]);
    cmd
}

/// The commands nixflip runs on `host`, as one shell line for one session.
fn same_work(host: &Host) -> String {
    let settings = nixflip::live::HostSettings {
        host: host.name.into(),
        target: nixflip::names::Target::parse(&host.target()).expect("target"),
        pg_data: Some(host.data.display().to_string()),
        pg_port: host.pg_port,
        pg_user: "postgres".into(),
        pg_socket_dir: host.socket_dir.display().to_string(),
        postgresql_service: "postgresql".into(),
        synapse_service: "matrix-synapse".into(),
        synapse_url: host.synapse_url(),
    };
    let psql = psql_argv(&settings, &[]);
    let data = host.data.display().to_string();
    let signal = format!("{data}/standby.signal");
    let url = format!("{}/_matrix/client/versions", host.synapse_url());
    let commands: Vec<Vec<&str>> = vec![
        psql.iter().map(String::as_str).collect(),
        vec!["systemctl", "is-active", "postgresql", "matrix-synapse"],
        vec!["test", "-e", &signal],
        vec!["stat", "-f", "-c", "%S %b %a", "--", &data],
        vec![
            "curl",
            "-sS",
            "-m",
            "5",
            "-w",
            "\\n%{http_code}",
            "--",
            &url,
        ],
    ];
    commands
        .iter()
        .map(|argv| remote_command(argv).expect("quotable"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Run one command per host at once; with `check`, panic unless every one
/// succeeds (the hand-rolled line ends with curl, which fails where Synapse
/// is off).
fn both(commands: Vec<Command>, stdin: Option<&'static str>, check: bool) {
    std::thread::scope(|scope| {
        let handles: Vec<_> = commands
            .into_iter()
            .map(|mut cmd| {
                scope.spawn(move || {
                    cmd.stdin(if stdin.is_some() {
                        Stdio::piped()
                    } else {
                        Stdio::null()
                    })
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                    let mut child = cmd.spawn().expect("start ssh");
                    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
                        use std::io::Write;
                        input.write_all(text.as_bytes()).expect("write stdin");
                    }
                    let out = child.wait_with_output().expect("ssh runs");
                    assert!(
                        !check || out.status.success(),
                        "{cmd:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("thread");
        }
    });
}

fn main() {
    let env = Env::start();
    let nixflip = bench::release_binary()
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_nixflip")));
    let status = || {
        let out = Command::new(&nixflip)
            .arg("--flake")
            .arg(&env.flake)
            .args(["status", "--live"])
            .env("NO_COLOR", "1")
            .output()
            .expect("run nixflip");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // Connections and sessions of one run, from the sshd logs.
    status();
    let logins: Vec<usize> = env.hosts.iter().map(Host::ssh_logins).collect();
    let sessions = |h: &Host| {
        std::fs::read_to_string(&h.sshd_log)
            .unwrap_or_default()
            .matches("Starting session: command")
            .count()
    };
    let before: Vec<usize> = env.hosts.iter().map(sessions).collect();
    status();
    println!();
    println!("== status --live: ssh connections per run (sshd logs) ==");
    let mut one_each = true;
    for ((host, logins), before) in env.hosts.iter().zip(logins).zip(before) {
        let connections = host.ssh_logins() - logins;
        one_each &= connections == 1;
        println!(
            "{:<8} connections {connections}, sessions {}",
            host.name,
            sessions(host) - before
        );
    }
    println!(
        "one connection per host: {}",
        if one_each { "PASS" } else { "MISS" }
    );

    let lines: Vec<String> = env.hosts.iter().map(same_work).collect();
    let samples = measure_rounds(
        runs(),
        vec![
            (
                "baseline: ssh HOST true, both hosts at once",
                Box::new(|| {
                    both(
                        env.hosts
                            .iter()
                            .map(|h| {
                                let mut c = ssh(&env, h);
                                c.arg("true");
                                c
                            })
                            .collect(),
                        None,
                        true,
                    )
                }),
            ),
            (
                "the same commands, one ssh session per host, at once",
                Box::new(|| {
                    both(
                        env.hosts
                            .iter()
                            .zip(&lines)
                            .map(|(h, line)| {
                                let mut c = ssh(&env, h);
                                c.arg(line);
                                c
                            })
                            .collect(),
                        Some(FACTS_SQL),
                        false,
                    )
                }),
            ),
            ("nixflip status --live (release binary)", Box::new(status)),
        ],
    );
    bench::report(
        "status --live on two loopback hosts",
        Some(&samples[0]),
        &samples[1..],
        &[],
    );
}
