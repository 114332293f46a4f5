//! `switchover` benchmark: the write-unavailability window of `nixflip switchover` on the two
//! loopback hosts of `tests/live_support` (own sshd and PostgreSQL each), with the drill's
//! writer committing throughout, against a bare script that does only the fenced steps over
//! ssh, timed in the same rounds.
//!
//! Each round switches twice: `nixflip switchover` one way (its window is read from its
//! journal: from stopping Synapse on the old primary to `pg_promote` returning on the new one;
//! its total without the build step too), then the bare script the other way (timed around
//! it: Synapse stop, CHECKPOINT, PostgreSQL stop, `pg_controldata`, polling the new primary's
//! replay position past the fence, `pg_promote`), each command an ssh call over one
//! multiplexed connection per host opened beforehand, as nixflip's are. After the script the
//! pair is put back in order, untimed (`nixflip promote --commit`, the two hosts switched
//! by the nixos-rebuild stand-in, DNS moved). The writer's own gap (its last commit on the
//! old primary to its first on the new one) is reported for both.
//!
//! Needs what the live tests need (root, sshd, PostgreSQL, nix). Run with `cargo bench --bench
//! switchover` (benches/run.sh runs it); `NIXFLIP_BENCH_RUNS` rounds (default 15). A miss is
//! printed, never a failure.

#[path = "common/mod.rs"]
mod bench;
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/live_support/mod.rs"]
mod live_support;
#[path = "../tests/switchover_support/mod.rs"]
mod switchover_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bench::{runs, Sample};
use live_support::Host;
use serde_json::Value;
use switchover_support::{Drill, Switch};

/// The fenced steps and nothing else: what any tool must do at the least.
const BARE: &str = r#"#!/bin/bash
# The fenced steps of a switchover, bare: no checks, no journal.
set -euo pipefail
old() { ssh -S "$OLD_SOCKET" -p "$OLD_SSH" "root@$OLD" "$@"; }
new() { ssh -S "$NEW_SOCKET" -p "$NEW_SSH" "root@$NEW" "$@"; }
old systemctl stop matrix-synapse
old runuser -u postgres -- psql -X -At -h "$OLD_RUN" -p "$OLD_PG" -d postgres -c CHECKPOINT >/dev/null
old systemctl stop postgresql
fence=$(old runuser -u postgres -- env LC_ALL=C pg_controldata -D "$OLD_DATA" | sed -n 's/^Latest checkpoint location: *//p')
until [ "$(new runuser -u postgres -- psql -X -At -h "$NEW_RUN" -p "$NEW_PG" -d postgres -c "\"SELECT pg_last_wal_replay_lsn() > '$fence'\"")" = t ]; do
  sleep 0.005
done
new runuser -u postgres -- psql -X -At -h "$NEW_RUN" -p "$NEW_PG" -d postgres -c "\"SELECT pg_promote(true, 60)\"" >/dev/null
"#;

/// ssh's options for `host`, as nixflip's `[live]` settings give them.
fn ssh_options(s: &Switch) -> Vec<String> {
    vec![
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        format!("UserKnownHostsFile={}", s.env.known_hosts.display()),
        "-o".into(),
        format!("IdentityFile={}", s.env.client_key.display()),
    ]
}

/// Open a control connection to `host` at `socket` (closed by `close`).
fn open_master(s: &Switch, host: &Host, socket: &Path) {
    let status = Command::new("ssh")
        .args(ssh_options(s))
        .args(["-M", "-N", "-f", "-o", "ControlPersist=120", "-S"])
        .arg(socket)
        .args(["-p", &host.ssh_port.to_string()])
        .arg(format!("root@{}", host.address))
        .status()
        .expect("ssh");
    assert!(status.success(), "ssh master to {}", host.name);
}

fn close_master(host: &Host, socket: &Path) {
    let _ = Command::new("ssh")
        .args(["-S"])
        .arg(socket)
        .args(["-O", "exit", "-p", &host.ssh_port.to_string()])
        .arg(format!("root@{}", host.address))
        .output();
}

/// Run the bare script from `old` to `new`; its duration.
fn bare(s: &Switch, script: &Path, old: &Host, new: &Host) -> Duration {
    let dir = s.env.base();
    let (old_socket, new_socket) = (dir.join("bare-old"), dir.join("bare-new"));
    open_master(s, old, &old_socket);
    open_master(s, new, &new_socket);
    let start = Instant::now();
    let out = Command::new("bash")
        .arg(script)
        .env("OLD", old.address)
        .env("NEW", new.address)
        .env("OLD_SOCKET", &old_socket)
        .env("NEW_SOCKET", &new_socket)
        .env("OLD_SSH", old.ssh_port.to_string())
        .env("NEW_SSH", new.ssh_port.to_string())
        .env("OLD_RUN", &old.socket_dir)
        .env("NEW_RUN", &new.socket_dir)
        .env("OLD_PG", old.pg_port.to_string())
        .env("NEW_PG", new.pg_port.to_string())
        .env("OLD_DATA", &old.data)
        .output()
        .expect("bash");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "the bare script failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    close_master(old, &old_socket);
    close_master(new, &new_socket);
    took
}

/// After the bare script promoted `new`: the flake flipped and committed,
/// both hosts switched (new first), DNS moved, the pair streaming.
fn repair(s: &Switch, old: &Host, new: &Host) {
    let out = s
        .nixflip()
        .args(["promote", new.name, "--yes", "--commit"])
        .output()
        .expect("promote");
    assert!(
        out.status.success(),
        "promote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for host in [new, old] {
        let sshopts = format!(
            "-o BatchMode=yes -o UserKnownHostsFile={} -o IdentityFile={} -p {}",
            s.env.known_hosts.display(),
            s.env.client_key.display(),
            host.ssh_port
        );
        let out = Command::new(s.rebuild.join("bin/nixos-rebuild"))
            .args(["switch", "--flake"])
            .arg(format!(
                "{}#{}|x86_64-linux",
                s.env.flake.display(),
                host.name
            ))
            .args(["--target-host", &format!("root@{}", host.address)])
            .args(common::nix_overrides())
            .env("NIX_SSHOPTS", sshopts)
            .current_dir(s.env.base())
            .output()
            .expect("nixos-rebuild stand-in");
        assert!(
            out.status.success(),
            "switch {}: {}",
            host.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    new.wait_for(
        &format!(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND client_addr = '{}'",
            old.address
        ),
        "1",
    );
    s.dns.state.lock().expect("dns").content = new.address.to_string();
}

fn seconds(v: &Value) -> f64 {
    let t: jiff::Timestamp = v.as_str().expect("a time").parse().expect("a time");
    t.as_nanosecond() as f64 / 1e9
}

/// The window and the total of the last nixflip run, from its journal.
fn nixflip_run(s: &Switch) -> (f64, f64, f64) {
    let runs = s.runs();
    let journal = runs.last().expect("a journal");
    assert_eq!(journal["state"], "finished", "{journal:#}");
    let entries = journal["entries"].as_array().expect("entries");
    let fact = |step: &str, key: &str| {
        entries
            .iter()
            .filter(|e| e["step"] == step)
            .find_map(|e| e["facts"].get(key).cloned())
            .expect("a fact")
    };
    let drain = seconds(&fact("fence", "drainStarted"));
    let promoted = seconds(&fact("promote", "promotedAt"));
    let span = |e: &Value| seconds(&e["finished"]) - seconds(&e["started"]);
    let build: f64 = entries
        .iter()
        .filter(|e| e["step"] == "build")
        .map(span)
        .sum();
    let first = seconds(&entries[0]["started"]);
    let last = seconds(&entries[entries.len() - 1]["finished"]);
    (promoted - drain, last - first - build, drain)
}

fn sample(name: &str, mut values: Vec<f64>) -> Sample {
    values.sort_by(f64::total_cmp);
    let d = |v: f64| Duration::from_secs_f64(v.max(0.0));
    Sample {
        name: name.to_string(),
        median: d(values[values.len() / 2]),
        min: d(values[0]),
        max: d(values[values.len() - 1]),
    }
}

fn main() {
    let mut s = Switch::start();
    if let Some(release) = bench::release_binary() {
        s.binary = release;
    }
    let script = s.env.base().join("bare.sh");
    std::fs::write(&script, BARE).expect("write the bare script");
    let drill = Drill::start(&s.env);
    let rounds = runs();
    let (mut windows, mut totals, mut bares) = (Vec::new(), Vec::new(), Vec::new());
    let mut events: Vec<(f64, &str, &str, bool)> = Vec::new();
    let hosts = [s.env.alpha(), s.env.beta()];
    for _ in 0..rounds {
        // alpha is the primary at the start of every round.
        let (old, new) = (hosts[0], hosts[1]);
        let out = s.run(&[new.name, "--yes"]);
        assert!(
            out.status.success(),
            "nixflip switchover:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let (window, total, drain) = nixflip_run(&s);
        windows.push(window);
        totals.push(total);
        events.push((drain, old.name, new.name, true));
        std::thread::sleep(Duration::from_millis(1500));
        let (old, new) = (hosts[1], hosts[0]);
        let at = jiff::Timestamp::now().as_nanosecond() as f64 / 1e9;
        bares.push(bare(&s, &script, old, new).as_secs_f64());
        events.push((at, old.name, new.name, false));
        repair(&s, old, new);
        std::thread::sleep(Duration::from_millis(1500));
    }
    let writes = drill.stop();
    writes.assert_all_on(s.env.alpha());
    let gaps = |ours: bool| -> Vec<f64> {
        events
            .iter()
            .filter(|e| e.3 == ours)
            .filter_map(|(at, old, new, _)| writes.gap_after(*at, old, new))
            .collect()
    };
    let baseline = sample("bare script: the fenced steps over ssh", bares);
    let ours = sample("nixflip switchover: write-unavailability window", windows);
    let rows = vec![
        ours,
        sample("nixflip switchover: total without the build step", totals),
        sample("writer's gap around nixflip switchover", gaps(true)),
        sample("writer's gap around the bare script", gaps(false)),
    ];
    bench::report(
        &format!("switchover on two loopback hosts ({rounds} rounds, the drill writing)"),
        Some(&baseline),
        &rows,
        &[],
    );
    let window = rows[0].median.as_secs_f64();
    println!(
        "write-unavailability window under 2 s: {} ({window:.3} s; {:.2}x the bare script)",
        if window < 2.0 { "PASS" } else { "MISS" },
        window / baseline.median.as_secs_f64()
    );
}
