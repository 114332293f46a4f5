//! `nixflip failover HOST --fence` on the two loopback hosts of `tests/live_support` (real sshd
//! and PostgreSQL each), with the doubles of `tests/switchover_support`: the primary's postmaster
//! killed (`kill -9`) under the drill's pgbench load, the loss window held against what the
//! client saw committed, the refusals, the round trip switchover → failover back → rejoin, and
//! `kill -9` of nixflip in every step followed by `failover --resume`. Each test has its own pair
//! of hosts.

mod common;
mod live_support;
mod switchover_support;

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

use live_support::{wait_until, Host};
use serde_json::Value;
use switchover_support::{nothing, Drill, Kill, Switch, Writes};

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn nixflip(s: &Switch, args: &[&str]) -> Output {
    s.nixflip()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run nixflip")
}

/// Until the writer has committed on `host` in the last second.
fn wait_for_writes(host: &Host) {
    wait_until(&format!("the writer commits on {}", host.name), || {
        host.sql("SELECT pg_is_in_recovery()") == "f"
            && host.sql("SELECT count(*) FROM drill WHERE at > now() - interval '1 second'") != "0"
    });
}

/// `kill -9` of the host's postmaster, then until its server is gone.
fn kill_postmaster(host: &Host) {
    let pid = host.postmaster_pid();
    live_support::run(Command::new("kill").args(["-9", &pid]), "kill -9");
    wait_until(&format!("{}'s PostgreSQL is gone", host.name), || {
        !host
            .psql()
            .args(["-c", "SELECT 1"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
}

/// beta is the primary, the flake flipped to it and committed, DNS on it.
fn assert_failed_over_to_beta(s: &Switch) {
    let beta = s.env.beta();
    assert_eq!(beta.sql("SELECT pg_is_in_recovery()"), "f");
    assert!(s.host_file("beta").contains("role = \"primary\";"));
    assert!(s.host_file("alpha").contains("role = \"standby\";"));
    assert_eq!(
        s.subjects()[0],
        "nixflip: fail over to beta; alpha becomes standby"
    );
    assert_eq!(s.dns.content(), beta.address);
}

/// An RFC 3339 time as seconds since the epoch.
fn seconds(text: &str) -> f64 {
    let t: jiff::Timestamp = text.parse().expect("a time");
    t.as_nanosecond() as f64 / 1e9
}

/// The last journal of `operation`.
fn journal_of(s: &Switch, operation: &str) -> Value {
    s.runs()
        .into_iter()
        .rev()
        .find(|j| j["operation"] == operation)
        .unwrap_or_else(|| panic!("no {operation} journal"))
}

fn fact(journal: &Value, step: &str, key: &str) -> Value {
    journal["entries"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .filter(|e| e["step"] == step)
                .find_map(|e| e["facts"].get(key).cloned())
        })
        .unwrap_or(Value::Null)
}

/// The loss window the failover reported holds: every commit the client
/// saw acknowledged before the last replayed commit is on `host`, and
/// every one missing there was acknowledged after it. Returns how many
/// are missing.
fn assert_loss_window(writes: &Writes, host: &Host, last_replay: f64) -> usize {
    let rows = Writes::rows_on(host);
    let missing: BTreeSet<_> = writes.committed.difference(&rows).collect();
    for id in &missing {
        let at = writes.at[*id];
        assert!(
            at > last_replay,
            "{id:?} was acknowledged at {at}, before the reported last replayed commit at {last_replay}, and is missing on {}",
            host.name
        );
    }
    missing.len()
}

#[test]
fn a_killed_primary_under_load_fails_over_with_the_loss_window_reported() {
    let s = Switch::start();
    let drill = Drill::start(&s.env);
    let (alpha, beta) = (s.env.alpha(), s.env.beta());
    wait_for_writes(alpha);
    kill_postmaster(alpha);

    let out = nixflip(&s, &["failover", "beta", "--fence", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for_writes(beta);
    let writes = drill.stop();

    let journal = journal_of(&s, "failover");
    assert_eq!(journal["state"], "finished");
    let received = fact(&journal, "preflight", "receiveLsn");
    let replayed = fact(&journal, "preflight", "replayLsn");
    let last_replay = fact(&journal, "preflight", "lastReplay");
    let last_replay_text = last_replay.as_str().expect("lastReplay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("failed over: beta is the primary; alpha is declared its standby"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "data-loss window: beta received alpha's WAL up to {} and replayed up to {}, its last replayed commit from {last_replay_text}",
            received.as_str().expect("received"),
            replayed.as_str().expect("replayed")
        )),
        "{stdout}"
    );
    // Reported before the promotion, too.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let window = stderr
        .find("data-loss window:")
        .unwrap_or_else(|| panic!("{stderr}"));
    let promote = stderr.find("promote").unwrap_or_else(|| panic!("{stderr}"));
    assert!(window < promote, "{stderr}");

    let lost = assert_loss_window(&writes, beta, seconds(last_replay_text));
    eprintln!("commits the client saw that beta does not have: {lost}");
    assert!(writes.count_on("alpha") > 0, "no commit on alpha before");
    assert!(writes.count_on("beta") > 0, "writes did not resume on beta");

    // Promoted, flipped and committed, switched, DNS moved, Synapse on beta;
    // alpha was left alone.
    assert_failed_over_to_beta(&s);
    let calls: Vec<(String, String)> = s
        .rebuild_log()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap_or_default().to_string(),
                c["host"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(calls, [("switch".to_string(), "beta".to_string())]);
    let out = beta.systemctl(&["is-active", "matrix-synapse"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "active");
    assert!(s.current().is_none(), "the journal is still current");
}

#[test]
fn a_switch_failure_after_the_promotion_says_how_to_resume_and_resume_finishes() {
    let s = Switch::start();
    let (alpha, beta) = (s.env.alpha(), s.env.beta());
    kill_postmaster(alpha);
    let gate = s.rebuild_gate("switch-beta.fail");
    std::fs::write(&gate, "").expect("gate");
    let out = nixflip(&s, &["failover", "beta", "--fence", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("step 3 (flip and switch) failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("beta is the primary now (promoted)"),
        "{stderr}"
    );
    let flake = std::fs::canonicalize(&s.env.flake).expect("flake");
    assert!(
        stderr.contains(&format!(
            "nixflip --flake {} failover --resume",
            flake.display()
        )),
        "{stderr}"
    );
    assert_eq!(beta.sql("SELECT pg_is_in_recovery()"), "f");
    // Not undone: the promotion happened.
    let abort = nixflip(&s, &["failover", "--abort"]);
    assert_eq!(abort.status.code(), Some(4), "{}", text(&abort));
    std::fs::remove_file(&gate).expect("release");
    let out = nixflip(&s, &["failover", "--resume", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let journal = journal_of(&s, "failover");
    assert_eq!(journal["state"], "finished");
    assert_eq!(
        s.subjects()[0],
        "nixflip: fail over to beta; alpha becomes standby"
    );
    assert_eq!(s.dns.content(), beta.address);
    assert!(s.current().is_none());
}

#[test]
fn failover_is_refused_while_the_primary_answers() {
    let s = Switch::start();
    let out = nixflip(&s, &["failover", "beta", "--fence", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("alpha's PostgreSQL answers (as a primary)"),
        "{stderr}"
    );
    assert!(stderr.contains("nixflip switchover beta"), "{stderr}");
    assert_eq!(s.env.beta().sql("SELECT pg_is_in_recovery()"), "t");
    assert_eq!(s.subjects()[0], "the live pair");
    assert!(s.rebuild_log().is_empty());
    assert!(s.current().is_none());
}

#[test]
fn failover_without_fence_on_a_non_terminal_is_refused() {
    let s = Switch::start();
    kill_postmaster(s.env.alpha());
    let out = nixflip(&s, &["failover", "beta", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs --fence"), "{stderr}");
    assert_eq!(s.env.beta().sql("SELECT pg_is_in_recovery()"), "t");
    assert_eq!(s.subjects()[0], "the live pair");
    assert!(s.runs().is_empty(), "a journal was written");
}

#[test]
fn round_trip_switchover_failover_back_rejoin_loses_nothing_before_the_window() {
    round_trip(Checkpoints::Run);
}

/// beta dies before the first checkpoint after its promotion: its control
/// file still names timeline 1 while its WAL goes on on timeline 2. pg_rewind
/// reads the timeline from the control file, so rejoin must let crash
/// recovery write that checkpoint first.
#[test]
fn round_trip_where_the_killed_primary_never_checkpointed_after_its_promotion() {
    round_trip(Checkpoints::HeldOnBeta);
}

#[derive(PartialEq)]
enum Checkpoints {
    Run,
    /// beta's checkpointer is stopped (SIGSTOP) from before the switchover
    /// until beta is killed.
    HeldOnBeta,
}

/// Stop `host`'s checkpointer (SIGSTOP): no checkpoint completes.
fn hold_checkpointer(host: &Host) {
    let pid = host.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'");
    // A restartpoint now, and then until it waits for work, so that it is
    // not stopped in the middle of one, holding a lock others then wait
    // for. A kernel that does not say where a process waits is not waited
    // for.
    host.sql("CHECKPOINT");
    let wchan = format!("/proc/{pid}/wchan");
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        match std::fs::read_to_string(&wchan) {
            Ok(w) if w.contains("epoll") || w.trim() == "0" => break,
            Err(_) => break,
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    live_support::run(Command::new("kill").args(["-STOP", &pid]), "kill -STOP");
}

fn round_trip(checkpoints: Checkpoints) {
    let s = Switch::start();
    let drill = Drill::start(&s.env);
    let (alpha, beta) = (s.env.alpha(), s.env.beta());
    wait_for_writes(alpha);
    let held = checkpoints == Checkpoints::HeldOnBeta;
    if held {
        hold_checkpointer(beta);
    }
    let out = nixflip(&s, &["switchover", "beta", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "switchover: {}", text(&out));
    wait_for_writes(beta);
    // beta is killed under load; alpha takes over again.
    if held {
        // The whole server: its stopped checkpointer would outlive the
        // postmaster and keep the shared memory in use.
        beta.kill_server();
        assert_eq!(
            beta.control_field("Latest checkpoint's TimeLineID"),
            "1",
            "the case is not set up"
        );
    } else {
        kill_postmaster(beta);
    }
    let out = nixflip(&s, &["failover", "alpha", "--fence", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "failover: {}", text(&out));
    wait_for_writes(alpha);
    let out = nixflip(&s, &["rejoin", "beta", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "rejoin: {}", text(&out));
    // Crash recovery ran first, so the fork rejoin reported is where
    // pg_rewind found the servers diverged, on beta's timeline.
    let rejoin = journal_of(&s, "rejoin");
    let said = text(&out);
    assert!(said.contains("crash recovery"), "{said}");
    assert_eq!(fact(&rejoin, "inspect", "hostTimeline"), 2, "{rejoin:#}");
    assert!(
        said.contains("on timeline 2 is not on the primary"),
        "{said}"
    );
    let fork = &fact(&rejoin, "inspect", "assessment")["fork"];
    assert!(fork.is_string(), "{rejoin:#}");
    assert_eq!(&fact(&rejoin, "rewind", "divergedAt"), fork, "{rejoin:#}");
    wait_for_writes(alpha);
    let writes = drill.stop();
    s.env.wait_replayed_from(alpha, beta);

    let journal = journal_of(&s, "failover");
    let last_replay = seconds(
        fact(&journal, "preflight", "lastReplay")
            .as_str()
            .expect("lastReplay"),
    );
    // The zero-loss check of the drill, up to the failover's window: on
    // the primary, and on the rejoined standby.
    let lost_on_alpha = assert_loss_window(&writes, alpha, last_replay);
    let lost_on_beta = assert_loss_window(&writes, beta, last_replay);
    assert_eq!(lost_on_alpha, lost_on_beta);
    assert!(writes.count_on("beta") > 0 && writes.count_on("alpha") > 0);

    assert_eq!(alpha.sql("SELECT pg_is_in_recovery()"), "f");
    beta.wait_for(
        "SELECT status || ' ' || sender_host FROM pg_stat_wal_receiver",
        &format!("streaming {}", alpha.address),
    );
    let (code, json) = s.env.status_json();
    assert_eq!(code, Some(0), "status --live: {json:#}");
    assert!(
        json["findings"].as_array().is_some_and(Vec::is_empty),
        "{json:#}"
    );
    assert!(s.host_file("alpha").contains("role = \"primary\";"));
    assert!(s.host_file("beta").contains("role = \"standby\";"));
    assert_eq!(
        s.subjects()[0],
        "nixflip: fail over to alpha; beta becomes standby"
    );
}

// ------------------------------------------------- kill -9 and resume --

/// A failover to beta (alpha's postmaster killed) held back in `step`,
/// nixflip killed there (`kill -9`), the hold released, then `failover
/// --resume`: beta is the primary, the flake flipped and committed, DNS on
/// beta, and the journal closed.
fn killed_at(step: &str, title: &str, k: Kill<'_>) {
    let s = Switch::start();
    kill_postmaster(s.env.alpha());
    s.kill_held("failover", &["beta", "--fence", "--yes"], step, &k);
    (k.release)(&s);
    let out = nixflip(&s, &["failover", "--resume", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{title} (again)")), "{stderr}");
    assert_failed_over_to_beta(&s);
    assert!(s.current().is_none(), "the journal is still current");
    assert_eq!(journal_of(&s, "failover")["state"], "finished");
}

#[test]
fn failover_killed_in_preflight_then_resumed() {
    killed_at("preflight", "pre-flight", Kill::at_dns_read());
}

#[test]
fn failover_killed_while_promoting_then_resumed_after_the_promotion_happened() {
    killed_at(
        "promote",
        "promote",
        Kill {
            hold: &|s| {
                s.psql_gate(s.env.beta());
                std::fs::write(s.env.beta().dir.join("gates/psql-promote"), "").expect("gate");
            },
            during: &nothing,
            reached: &|s| s.env.beta().dir.join("gates/psql-promote.reached").exists(),
            release: &|s| {
                // --abort refuses now: the promotion was asked for.
                let out = nixflip(s, &["failover", "--abort"]);
                assert_eq!(out.status.code(), Some(4), "{}", text(&out));
                std::fs::remove_file(s.env.beta().dir.join("gates/psql-promote")).expect("release");
                s.env.beta().wait_for("SELECT pg_is_in_recovery()", "f");
            },
        },
    );
}

#[test]
fn failover_killed_while_switching_then_resumed() {
    killed_at(
        "flip",
        "flip and switch",
        Kill {
            hold: &|s| std::fs::write(s.rebuild_gate("switch-beta"), "").expect("gate"),
            during: &nothing,
            reached: &|s| s.rebuild_gate("switch-beta.reached").exists(),
            release: &|s| {
                std::fs::remove_file(s.rebuild_gate("switch-beta")).expect("release");
                s.wait_rebuild_ended("switch", "beta");
            },
        },
    );
}

#[test]
fn failover_killed_while_changing_dns_then_resumed() {
    killed_at("dns", "DNS", Kill::at_dns_edit());
}

#[test]
fn failover_killed_in_the_smoke_test_then_resumed() {
    killed_at("smoke", "smoke test", Kill::at_smoke_test());
}
