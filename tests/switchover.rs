//! `nixflip switchover` on the two loopback hosts of `tests/live_support` (real sshd and
//! PostgreSQL each), with the doubles of `tests/switchover_support`: the zero-loss drill, every
//! step's failure path, `kill -9` at every step followed by `--resume`, `--abort`, `--dry-run`
//! and the refusals. Each test has its own pair of hosts.

mod common;
mod live_support;
mod switchover_support;

use std::fs;
use std::process::Output;

use live_support::wait_until;
use serde_json::Value;
use switchover_support::doubles::{API_KEY, SECRET_KEY};
use switchover_support::{kill_9, nothing, wait_for_file, Drill, Kill, Switch};

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The exact command a failure after promotion gives.
fn resume_line(s: &Switch) -> String {
    let flake = fs::canonicalize(&s.env.flake).expect("flake path");
    format!("nixflip --flake {} switchover --resume", flake.display())
}

/// Until the writer has committed on `host` at least once more than now.
fn wait_for_writes(s: &Switch, host: &live_support::Host) {
    wait_until(&format!("the writer commits on {}", host.name), || {
        host.sql("SELECT pg_is_in_recovery()") == "f"
            && host.sql("SELECT count(*) FROM drill WHERE at > now() - interval '1 second'") != "0"
    });
    let _ = s;
}

fn outcome_of(journal: &Value, step: &str) -> Vec<String> {
    journal["entries"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["step"] == step)
                .map(|e| e["outcome"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------ the drill --

#[test]
fn drill_loses_no_committed_row_and_the_old_primary_follows() {
    let s = Switch::start();
    let drill = Drill::start(&s.env);
    wait_for_writes(&s, s.env.alpha());
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for_writes(&s, s.env.beta());
    let writes = drill.stop();
    s.assert_switched();
    writes.assert_all_on(s.env.beta());
    writes.assert_all_on(s.env.alpha());
    assert!(writes.count_on("alpha") > 0, "no commit on alpha before");
    assert!(writes.count_on("beta") > 0, "no commit on beta after");

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("switched over: beta is the primary, alpha its standby"),
        "{stdout}"
    );
    assert!(stdout.contains("write-unavailability window: "), "{stdout}");
    assert!(stdout.contains("no findings"), "{stdout}");

    // Both configurations were built before the fence, from the flipped
    // scratch copy; the switches found them built, reached each host with
    // its port, the new primary first.
    let runs = s.runs();
    let journal = &runs[0];
    assert_eq!(journal["state"], "finished");
    let drain = journal["entries"]
        .as_array()
        .and_then(|e| e.iter().find_map(|e| e["facts"]["drainStarted"].as_str()))
        .expect("drainStarted");
    let log = s.rebuild_log();
    let calls: Vec<(String, String)> = log
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap_or_default().to_string(),
                c["host"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("build".to_string(), "beta".to_string()),
            ("build".into(), "alpha".into()),
            ("switch".into(), "beta".into()),
            ("switch".into(), "alpha".into())
        ]
    );
    let drain_at = jiff_seconds(drain);
    for call in &log {
        if call["action"] == "build" {
            assert!(
                call["ended"].as_f64().expect("ended") < drain_at,
                "built after the fence began"
            );
            assert!(
                !call["flake"]
                    .as_str()
                    .expect("flake")
                    .contains("nixflip-live-"),
                "built from the user's tree, not the scratch copy"
            );
        } else {
            assert!(call["started"].as_f64().expect("started") > drain_at);
            assert_eq!(
                call["prebuilt"], true,
                "switch of an unbuilt configuration: {call}"
            );
            let host = if call["host"] == "beta" {
                s.env.beta()
            } else {
                s.env.alpha()
            };
            assert_eq!(call["target"], format!("root@{}", host.address));
            let opts = call["sshopts"].as_str().expect("NIX_SSHOPTS");
            assert!(opts.contains(&format!("-p {}", host.ssh_port)), "{opts}");
            assert!(opts.contains("UserKnownHostsFile="), "{opts}");
        }
    }
    // The keys travel in the request bodies only, and never show.
    let requests = s.dns.requests();
    assert!(requests
        .iter()
        .any(|(path, _)| path.contains("/dns/editByNameType/example.org/A/matrix")));
    for (path, body) in &requests {
        assert!(!path.contains(API_KEY) && !path.contains(SECRET_KEY));
        assert_eq!(body["apikey"], API_KEY);
    }
    let edit = requests
        .iter()
        .find(|(p, _)| p.contains("editByNameType"))
        .map(|(_, b)| b.clone())
        .expect("an edit");
    assert_eq!(edit["content"], "127.0.0.3");
    assert_eq!(edit["ttl"], "600", "the TTL is kept");
    let all = text(&out);
    assert!(!all.contains(API_KEY) && !all.contains(SECRET_KEY));
    assert_eq!(
        s.tester.asked.lock().expect("asked").as_slice(),
        ["/api/report?server_name=example.org"]
    );
    eprintln!(
        "window reported: {}; the client's gap: {:?}",
        stdout.lines().find(|l| l.contains("window")).unwrap_or(""),
        writes.gap("alpha", "beta")
    );
}

/// An RFC 3339 time as seconds since the epoch.
fn jiff_seconds(text: &str) -> f64 {
    let t: jiff::Timestamp = text.parse().expect("a time");
    t.as_nanosecond() as f64 / 1e9
}

// ---------------------------------------------------------- refusals --

#[test]
fn dry_run_prints_every_step_and_changes_nothing() {
    let s = Switch::start();
    s.dns.state.lock().expect("dns").ttl = 3600;
    let out = s.run(&["beta", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "1. pre-flight",
        "2. build ahead",
        "nixos-rebuild build --flake 'SCRATCH#beta|x86_64-linux'",
        "3. drain and fence the old primary",
        &format!(
            "alpha ({}): systemctl stop matrix-synapse",
            s.env.alpha().target()
        ),
        "| CHECKPOINT;",
        "alpha (",
        "pg_controldata -D",
        "4. catch up",
        "-v 'fence=FENCE_LSN'",
        "5. promote",
        "pg_promote(true, :'wait'::int)",
        "6. flip and switch",
        "nixos-rebuild switch --flake",
        "--target-host root@127.0.0.3",
        "7. DNS",
        "dns/editByNameType/example.org/A/matrix (content 127.0.0.3",
        "8. smoke test",
        "role  \"standby\" → \"primary\"",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing:\n{stdout}");
    }
    assert!(
        stderr(&out).contains("TTL of 3600 s, more than [dns] max_ttl (600 s)"),
        "{}",
        text(&out)
    );
    s.assert_as_before();
    assert!(s.rebuild_log().is_empty());
    assert!(s.current().is_none() && s.runs().is_empty());
}

#[test]
fn without_yes_on_a_non_terminal_it_refuses_before_anything() {
    let s = Switch::start();
    let out = s.run(&["beta"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(stderr(&out).contains("pass --yes"), "{}", text(&out));
    s.assert_as_before();
    assert!(s.dns.requests().is_empty() && s.runs().is_empty());
}

#[test]
fn unhealthy_preflight_is_refused_with_the_findings() {
    let s = Switch::start();
    s.env.beta().systemctl(&["stop", "postgresql"]);
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("NF303") && err.contains("the live cluster is not healthy"),
        "{err}"
    );
    assert!(s.rebuild_log().is_empty());
    let runs = s.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["state"], "failed");
    assert!(s.current().is_none());
    s.env.beta().systemctl(&["start", "postgresql"]);
    s.assert_as_before();
}

#[test]
fn paused_replay_and_a_foreign_dns_record_are_refused() {
    let s = Switch::start();
    s.env.beta().sql("SELECT pg_wal_replay_pause()");
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        stderr(&out).contains("replay is paused on beta"),
        "{}",
        text(&out)
    );
    s.env.beta().sql("SELECT pg_wal_replay_resume()");
    s.dns.state.lock().expect("dns").content = "192.0.2.99".into();
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        stderr(&out).contains(
            "points at 192.0.2.99, which is neither alpha (127.0.0.2) nor beta (127.0.0.3)"
        ),
        "{}",
        text(&out)
    );
    assert!(s.rebuild_log().is_empty());
    s.dns.state.lock().expect("dns").content = "127.0.0.2".into();
    s.assert_as_before();
}

#[test]
fn without_a_dns_section_it_needs_no_dns_and_then_leaves_dns_alone() {
    let s = Switch::start();
    let toml = s.env.flake.join("nixflip.toml");
    let text_before = fs::read_to_string(&toml).expect("toml");
    let start = text_before.find("\n[dns]").expect("[dns]");
    let end = text_before.find("\n[smoke]").expect("[smoke]");
    fs::write(
        &toml,
        format!("{}{}", &text_before[..start], &text_before[end..]),
    )
    .expect("write");
    s.commit_config();
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("pass --no-dns"), "{}", text(&out));
    let out = s.run(&["beta", "--yes", "--no-dns"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(s.dns.requests().is_empty());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("DNS: --no-dns"),
        "{}",
        text(&out)
    );
    s.dns.state.lock().expect("dns").content = "127.0.0.3".into();
    s.assert_switched();
}

#[test]
fn dns_command_gets_the_record_and_both_addresses() {
    let s = Switch::start();
    let script = s.env.base().join("set-dns");
    let record = s.env.base().join("set-dns.args");
    fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n", record.display()),
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    let toml = s.env.flake.join("nixflip.toml");
    let t = fs::read_to_string(&toml).expect("toml");
    let start = t.find("api_key_file").expect("keys");
    let end = t.find("\n\n[smoke]").expect("[smoke]");
    fs::write(
        &toml,
        format!(
            "{}command = [\"../set-dns\", \"{{name}}\", \"{{type}}\", \"{{address}}\", \"{{old_address}}\", \"{{host}}\"]{}",
            &t[..start],
            &t[end..]
        ),
    )
    .expect("write");
    s.commit_config();
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("its TTL is not checked"),
        "{}",
        text(&out)
    );
    assert_eq!(
        fs::read_to_string(&record).expect("the command ran"),
        "matrix.example.org\nA\n127.0.0.3\n127.0.0.2\nbeta\n"
    );
}

// ------------------------------------------------------- failure paths --

#[test]
fn build_failure_changes_nothing() {
    let s = Switch::start();
    fs::write(s.rebuild_gate("build-alpha.fail"), "").expect("gate");
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains("nixos-rebuild failed for alpha"),
        "{}",
        text(&out)
    );
    s.assert_as_before();
    let runs = s.runs();
    assert_eq!(runs[0]["state"], "failed");
    assert_eq!(outcome_of(&runs[0], "fence"), Vec::<String>::new());
}

#[test]
fn fence_failure_rolls_back_to_the_old_primary() {
    let s = Switch::start();
    let drill = Drill::start(&s.env);
    wait_for_writes(&s, s.env.alpha());
    fs::write(s.systemctl_gate(s.env.alpha(), "stop-postgresql.fail"), "").expect("gate");
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("step 3 (drain and fence the old primary) failed"),
        "{err}"
    );
    assert!(err.contains("rolled back"), "{err}");
    fs::remove_file(s.systemctl_gate(s.env.alpha(), "stop-postgresql.fail")).expect("gate");
    wait_for_writes(&s, s.env.alpha());
    let writes = drill.stop();
    s.assert_as_before();
    writes.assert_all_on(s.env.alpha());
    let runs = s.runs();
    assert_eq!(runs[0]["state"], "rolled-back");
    assert_eq!(outcome_of(&runs[0], "rollback"), ["done"]);
}

#[test]
fn a_fence_the_standby_cannot_reach_rolls_back_with_nothing_lost() {
    let s = Switch::start();
    let drill = Drill::start(&s.env);
    wait_for_writes(&s, s.env.alpha());
    // Replay stops on beta once the build is under way: after the
    // pre-flight, before the fence.
    let gate = s.rebuild_gate("build-beta");
    fs::write(&gate, "").expect("gate");
    let mut child = s.spawn(&["beta", "--yes"]);
    wait_for_file(&gate.with_extension("reached"));
    s.env.beta().sql("SELECT pg_wal_replay_pause()");
    fs::remove_file(&gate).expect("release");
    let status = child.wait().expect("nixflip");
    let (_, err) = s.output_of();
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(err.contains("step 4 (catch up) failed"), "{err}");
    assert!(err.contains("short of alpha's fence"), "{err}");
    assert!(err.contains("its replay is paused"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    wait_for_writes(&s, s.env.alpha());
    s.env.beta().sql("SELECT pg_wal_replay_resume()");
    let writes = drill.stop();
    s.env.wait_replayed();
    s.assert_as_before();
    writes.assert_all_on(s.env.alpha());
    writes.assert_all_on(s.env.beta());
    assert_eq!(s.runs()[0]["state"], "rolled-back");
}

#[test]
fn promote_failure_stops_and_resume_finishes() {
    let s = Switch::start();
    s.psql_gate(s.env.beta());
    let fail = s.env.beta().dir.join("gates/psql-promote.fail");
    fs::write(&fail, "").expect("gate");
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("step 5 (promote) failed"), "{err}");
    assert!(err.contains(&resume_line(&s)), "{err}");
    assert_eq!(s.current().expect("journal")["state"], "failed");
    // The old primary stays fenced: nothing after step 5 is rolled back.
    assert!(!s.env.alpha().data.join("postmaster.pid").exists());
    fs::remove_file(&fail).expect("gate");
    let out = s.run(&["--resume", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    s.assert_switched();
}

#[test]
fn switch_failure_after_promotion_cannot_be_aborted_and_resumes() {
    let s = Switch::start();
    fs::write(s.rebuild_gate("switch-beta.fail"), "").expect("gate");
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("step 6 (flip and switch) failed"), "{err}");
    assert!(err.contains("beta is the primary now"), "{err}");
    assert!(err.contains(&resume_line(&s)), "{err}");
    // The flip is written and committed already.
    assert_eq!(
        s.subjects()[0],
        "nixflip: switch over to beta; alpha becomes standby"
    );
    let out = s.run(&["--abort"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        stderr(&out).contains("cannot be rolled back"),
        "{}",
        text(&out)
    );
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(stderr(&out).contains("is in progress"), "{}", text(&out));
    fs::remove_file(s.rebuild_gate("switch-beta.fail")).expect("gate");
    let out = s.run(&["--resume", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("[5/8] promote: done earlier"),
        "{}",
        text(&out)
    );
    s.assert_switched();
    // One commit of the flip, not two.
    assert_eq!(s.subjects().len(), 2);
}

#[test]
fn a_refused_commit_leaves_the_flip_written_and_resume_commits_it_once() {
    let s = Switch::start();
    let before = s.subjects().len();
    let hooks = s.env.flake.join(".git/hooks");
    fs::create_dir_all(&hooks).expect("hooks");
    let hook = hooks.join("pre-commit");
    fs::write(&hook, "#!/bin/sh\necho 'no commits today' >&2\nexit 1\n").expect("hook");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("step 6 (flip and switch) failed"), "{err}");
    assert!(
        err.contains("the flip is written but not committed"),
        "{err}"
    );
    assert!(err.contains("no commits today"), "{err}");
    assert!(err.contains(&resume_line(&s)), "{err}");
    // Written whole, not committed, and no host switched yet.
    let dirty = common::git(&s.env.flake, &["status", "--porcelain"]);
    assert!(dirty.contains("beta"), "{dirty}");
    assert_eq!(s.subjects().len(), before);
    assert!(!s.rebuild_log().iter().any(|c| c["action"] == "switch"));
    fs::remove_file(&hook).expect("hook");
    let out = s.run(&["--resume", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s.subjects().len(), before + 1);
    assert_eq!(
        s.subjects()[0],
        "nixflip: switch over to beta; alpha becomes standby"
    );
    // The plan has nothing left to change by then: the body lists the
    // files the commit takes.
    let body = common::git(&s.env.flake, &["log", "-1", "--format=%b"]);
    let files = common::git(&s.env.flake, &["show", "--format=", "--name-only", "HEAD"]);
    assert!(!files.trim().is_empty());
    for file in files.lines() {
        assert!(
            body.contains(&format!("- {file}")),
            "{file} not in:\n{body}"
        );
    }
    s.assert_switched();
}

#[test]
fn dns_failure_says_how_to_resume_and_never_shows_the_keys() {
    let s = Switch::start();
    s.dns.state.lock().expect("dns").fail_edit =
        Some(format!("Invalid API key {API_KEY} / {SECRET_KEY}. (002)"));
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("step 7 (DNS) failed"), "{all}");
    assert!(all.contains("Porkbun refused POST"), "{all}");
    assert!(all.contains(&resume_line(&s)), "{all}");
    assert!(
        !all.contains(API_KEY) && !all.contains(SECRET_KEY),
        "a key leaked:\n{all}"
    );
    s.dns.state.lock().expect("dns").fail_edit = None;
    let out = s.run(&["--resume", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    s.assert_switched();
}

#[test]
fn smoke_failure_says_how_to_resume() {
    let s = Switch::start();
    s.tester
        .ok
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("step 8 (smoke test) failed"), "{err}");
    assert!(err.contains("reports example.org not OK"), "{err}");
    assert!(err.contains(&resume_line(&s)), "{err}");
    s.tester.ok.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = s.run(&["--resume", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    s.assert_switched();
}

// ------------------------------------------------- kill -9 and resume --

/// Start a switchover with the drill writing, hold something of `step`
/// back, `kill -9` nixflip once the journal shows the step under way and
/// the double held, release it, then `--resume`: the pair is switched and
/// nothing committed is lost.
fn killed_at(step: &str, k: Kill<'_>) {
    let s = Switch::start();
    let drill = Drill::start(&s.env);
    wait_for_writes(&s, s.env.alpha());
    s.kill_held("switchover", &["beta", "--yes"], step, &k);
    (k.release)(&s);
    let out = s.run(&["--resume", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out),
        s.output_of().1
    );
    assert!(
        stderr(&out).contains(&format!("{} (again)", step_title(step))),
        "{}",
        text(&out)
    );
    wait_for_writes(&s, s.env.beta());
    let writes = drill.stop();
    s.assert_switched();
    writes.assert_all_on(s.env.beta());
}

fn step_title(step: &str) -> &'static str {
    match step {
        "preflight" => "pre-flight",
        "build" => "build ahead",
        "fence" => "drain and fence the old primary",
        "catch-up" => "catch up",
        "promote" => "promote",
        "flip" => "flip and switch",
        "dns" => "DNS",
        _ => "smoke test",
    }
}

#[test]
fn killed_in_preflight_then_resumed() {
    killed_at("preflight", Kill::at_dns_read());
}

#[test]
fn killed_in_build_then_resumed() {
    killed_at(
        "build",
        Kill {
            hold: &|s| fs::write(s.rebuild_gate("build-alpha"), "").expect("gate"),
            during: &nothing,
            reached: &|s| s.rebuild_gate("build-alpha.reached").exists(),
            release: &|s| {
                fs::remove_file(s.rebuild_gate("build-alpha")).expect("release");
                s.wait_rebuild_ended("build", "alpha");
            },
        },
    );
}

#[test]
fn killed_while_stopping_postgresql_then_resumed() {
    killed_at(
        "fence",
        Kill {
            hold: &|s| {
                fs::write(s.systemctl_gate(s.env.alpha(), "stop-postgresql"), "").expect("gate")
            },
            during: &nothing,
            reached: &|s| {
                s.systemctl_gate(s.env.alpha(), "stop-postgresql.reached")
                    .exists()
            },
            release: &|s| {
                fs::remove_file(s.systemctl_gate(s.env.alpha(), "stop-postgresql"))
                    .expect("release");
                // The stop nixflip asked for goes on without it.
                wait_until("alpha's PostgreSQL stops", || {
                    !s.env.alpha().data.join("postmaster.pid").exists()
                });
            },
        },
    );
}

#[test]
fn killed_while_catching_up_then_resumed() {
    killed_at(
        "catch-up",
        Kill {
            // Replay pauses while the build runs, so the catch-up waits.
            hold: &|s| fs::write(s.rebuild_gate("build-beta"), "").expect("gate"),
            during: &|s| {
                wait_for_file(&s.rebuild_gate("build-beta.reached"));
                s.env.beta().sql("SELECT pg_wal_replay_pause()");
                fs::remove_file(s.rebuild_gate("build-beta")).expect("release");
            },
            reached: &|s| {
                s.current()
                    .is_some_and(|j| outcome_of(&j, "catch-up") == ["running"])
            },
            release: &|s| {
                s.env.beta().sql("SELECT pg_wal_replay_resume()");
            },
        },
    );
}

#[test]
fn killed_while_promoting_then_resumed_after_the_promotion_happened() {
    killed_at(
        "promote",
        Kill {
            hold: &|s| {
                s.psql_gate(s.env.beta());
                fs::write(s.env.beta().dir.join("gates/psql-promote"), "").expect("gate");
            },
            during: &nothing,
            reached: &|s| s.env.beta().dir.join("gates/psql-promote.reached").exists(),
            release: &|s| {
                // --abort refuses now: promotion was requested.
                let out = s.run(&["--abort"]);
                assert_eq!(out.status.code(), Some(4), "{}", text(&out));
                assert!(
                    stderr(&out).contains("cannot be rolled back"),
                    "{}",
                    text(&out)
                );
                // The promoting session goes on without nixflip.
                fs::remove_file(s.env.beta().dir.join("gates/psql-promote")).expect("release");
                s.env.beta().wait_for("SELECT pg_is_in_recovery()", "f");
            },
        },
    );
}

#[test]
fn killed_while_switching_then_resumed() {
    killed_at(
        "flip",
        Kill {
            hold: &|s| fs::write(s.rebuild_gate("switch-alpha"), "").expect("gate"),
            during: &nothing,
            reached: &|s| s.rebuild_gate("switch-alpha.reached").exists(),
            release: &|s| {
                fs::remove_file(s.rebuild_gate("switch-alpha")).expect("release");
                s.wait_rebuild_ended("switch", "alpha");
            },
        },
    );
}

#[test]
fn killed_while_changing_dns_then_resumed() {
    killed_at("dns", Kill::at_dns_edit());
}

#[test]
fn killed_in_the_smoke_test_then_resumed() {
    killed_at("smoke", Kill::at_smoke_test());
}

// ---------------------------------------------------------- abort, lock --

#[test]
fn abort_after_the_fence_starts_the_old_primary_again() {
    let s = Switch::start();
    let gate = s.systemctl_gate(s.env.alpha(), "stop-postgresql");
    fs::write(&gate, "").expect("gate");
    let mut child = s.spawn(&["beta", "--yes"]);
    wait_for_file(&gate.with_extension("reached"));
    // A second run meanwhile: the lock refuses it.
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        stderr(&out).contains("another nixflip live operation is running"),
        "{}",
        text(&out)
    );
    kill_9(&mut child);
    fs::remove_file(&gate).expect("release");
    s.env.alpha().systemctl(&["stop", "postgresql"]);
    let out = s.run(&["--abort"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("alpha's PostgreSQL and Synapse were started again"),
        "{}",
        text(&out)
    );
    s.assert_as_before();
    let runs = s.runs();
    assert_eq!(runs[0]["state"], "aborted");
    assert!(s.current().is_none());
    let out = s.run(&["--resume", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("no switchover in progress"),
        "{}",
        text(&out)
    );
}
