//! `nixflip rejoin HOST` on the two loopback hosts of `tests/live_support` (real sshd and
//! PostgreSQL each), with the nixos-rebuild double of `tests/switchover_support`: a former
//! primary that stopped cleanly before the promotion (plain standby), one that wrote after it
//! (pg_rewind, the rewound range reported), one that cannot be rewound (refused without
//! `--reseed`, re-seeded with it, its old directory kept), and one killed and then set up as a
//! standby before its crash recovery ran (only the re-seed is left). Each test has its own pair
//! of hosts.

mod common;
mod live_support;
mod switchover_support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output, Stdio};

use switchover_support::Switch;

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn rejoin(s: &Switch, args: &[&str]) -> Output {
    s.nixflip()
        .arg("rejoin")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run nixflip")
}

/// Rows 1..=100 on alpha, replayed by beta.
fn seed_rows(s: &Switch) {
    let alpha = s.env.alpha();
    alpha.sql("CREATE TABLE kept (id int PRIMARY KEY)");
    alpha.sql("INSERT INTO kept SELECT generate_series(1, 100)");
    s.env.wait_replayed();
}

/// The flake flipped to beta and committed (`nixflip promote --no-eval`:
/// the nixos-rebuild double evaluates it with the real `nix eval`, the
/// stand-ins as inputs), and beta
/// switched to its primary configuration through the nixos-rebuild
/// double, as an operator finishing a failover by hand would.
fn flip_to_beta(s: &Switch) {
    let out = s
        .nixflip()
        .args(["promote", "beta", "--yes", "--commit", "--no-eval"])
        .stdin(Stdio::null())
        .output()
        .expect("run nixflip promote");
    assert_eq!(out.status.code(), Some(0), "promote: {}", text(&out));
    let beta = s.env.beta();
    let sshopts = format!(
        "-o BatchMode=yes -o UserKnownHostsFile={} -o IdentityFile={} -p {}",
        s.env.known_hosts.display(),
        s.env.client_key.display(),
        beta.ssh_port
    );
    let out = Command::new(s.rebuild.join("bin/nixos-rebuild"))
        .args(["switch", "--flake"])
        .arg(format!("{}#beta|x86_64-linux", s.env.flake.display()))
        .args(["--target-host", &format!("root@{}", beta.address)])
        .args(common::nix_overrides())
        .env("NIX_SSHOPTS", sshopts)
        .current_dir(s.env.base())
        .output()
        .expect("run the nixos-rebuild double");
    assert!(out.status.success(), "switch beta: {}", text(&out));
}

/// beta promoted while alpha still runs and takes writes (rows 1001..=1010
/// that beta never sees), then rows 201..=210 on beta; the flake flipped.
fn diverge(s: &Switch) {
    let (alpha, beta) = (s.env.alpha(), s.env.beta());
    assert_eq!(beta.sql("SELECT pg_promote(true, 60)"), "t");
    alpha.sql("INSERT INTO kept SELECT generate_series(1001, 1010)");
    alpha.sql("CHECKPOINT");
    beta.sql("INSERT INTO kept SELECT generate_series(201, 210)");
    flip_to_beta(s);
}

/// alpha streams from beta on beta's timeline, has beta's rows and none of
/// its own lost ones, and `status --live` is clean.
fn assert_follows_beta(s: &Switch) {
    let (alpha, beta) = (s.env.alpha(), s.env.beta());
    assert_eq!(alpha.sql("SELECT pg_is_in_recovery()"), "t");
    alpha.wait_for(
        "SELECT status || ' ' || sender_host FROM pg_stat_wal_receiver",
        &format!("streaming {}", beta.address),
    );
    beta.sql("INSERT INTO kept VALUES (300)");
    alpha.wait_for("SELECT count(*) FROM kept WHERE id = 300", "1");
    assert_eq!(
        alpha.sql("SELECT count(*) FROM kept WHERE id BETWEEN 1 AND 100"),
        "100"
    );
    assert_eq!(alpha.sql("SELECT count(*) FROM kept WHERE id > 1000"), "0");
    let out = Command::new(alpha.bin.join("systemctl"))
        .args(["is-active", "matrix-synapse"])
        .output()
        .expect("systemctl stand-in");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "inactive");
    let (code, json) = s.env.status_json();
    assert_eq!(code, Some(0), "status --live: {json:#}");
    assert!(
        json["findings"].as_array().is_some_and(Vec::is_empty),
        "{json:#}"
    );
    assert!(s.current().is_none(), "a journal is still current");
}

/// Directories beside alpha's data directory that a re-seed renamed aside.
fn kept_aside(s: &Switch) -> Vec<std::path::PathBuf> {
    fs::read_dir(&s.env.alpha().dir)
        .expect("alpha's dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("data.nixflip-rejoin-"))
        })
        .collect()
}

/// A rejoin that re-seeded alpha (exit 0, said so) and kept its old data
/// directory, the one beside it.
fn reseeded(s: &Switch, out: &Output) -> Vec<std::path::PathBuf> {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("rejoined: alpha is a standby of beta (new base backup)"),
        "{}",
        text(out)
    );
    let aside = kept_aside(s);
    assert_eq!(aside.len(), 1, "{aside:?}");
    aside
}

#[test]
fn a_primary_fenced_before_the_promotion_rejoins_as_a_plain_standby() {
    let s = Switch::start();
    seed_rows(&s);
    let (alpha, beta) = (s.env.alpha(), s.env.beta());
    // The fence of a switchover: Synapse off, CHECKPOINT, a fast shutdown.
    alpha.systemctl(&["stop", "matrix-synapse"]);
    alpha.sql("CHECKPOINT");
    alpha.systemctl(&["stop", "postgresql"]);
    let fence = alpha.control_field("Latest checkpoint location");
    beta.wait_for(
        &format!("SELECT pg_last_wal_replay_lsn() > '{fence}'::pg_lsn"),
        "t",
    );
    assert_eq!(beta.sql("SELECT pg_promote(true, 60)"), "t");
    beta.sql("INSERT INTO kept SELECT generate_series(201, 210)");
    flip_to_beta(&s);

    let out = rejoin(&s, &["alpha", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("rejoined: alpha is a standby of beta (plain standby (no copy))"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("it shut down cleanly at {fence} on timeline 1")),
        "{stdout}"
    );
    assert!(!stdout.contains("pg_rewind"), "{stdout}");
    assert_follows_beta(&s);
    assert_eq!(
        alpha.sql("SELECT count(*) FROM kept WHERE id > 200 AND id < 300"),
        "10"
    );
    // Its own data directory, not a copy.
    assert_eq!(
        fs::metadata(alpha.data.join("global/pg_control"))
            .expect("pg_control")
            .ino(),
        s.alpha_control_inode
    );
    assert!(kept_aside(&s).is_empty());
    let runs = s.runs();
    let last = runs.last().expect("a journal");
    assert_eq!(last["operation"], "rejoin");
    assert_eq!(last["state"], "finished");

    // Once it streams, a second run has nothing to do.
    let again = rejoin(&s, &["alpha", "--yes"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("alpha already streams from beta"),
        "{}",
        text(&again)
    );
}

#[test]
fn a_primary_that_wrote_after_the_promotion_is_rewound_and_the_range_reported() {
    let s = Switch::start();
    seed_rows(&s);
    diverge(&s);
    let (alpha, beta) = (s.env.alpha(), s.env.beta());
    let history = beta.sql("SELECT pg_read_file('pg_wal/00000002.history')");
    let fork = history
        .split_whitespace()
        .nth(1)
        .expect("a switchpoint")
        .to_string();

    let out = rejoin(&s, &["alpha", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("rejoined: alpha is a standby of beta (pg_rewind)"),
        "{stdout}"
    );
    // Reported before anything was done to alpha's data: the choice line
    // comes before the switch step.
    let range = format!("the WAL it wrote from {fork} to ");
    let chosen = stderr.find(&range).unwrap_or_else(|| panic!("{stderr}"));
    let switched = stderr
        .find("==> switch")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(chosen < switched, "{stderr}");
    assert!(stdout.contains(&range), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "pg_rewind: servers diverged at {fork} on timeline 1"
        )),
        "{stdout}"
    );
    assert_follows_beta(&s);
    assert_eq!(
        alpha.sql("SELECT count(*) FROM kept WHERE id > 200 AND id < 300"),
        "10"
    );
    assert!(kept_aside(&s).is_empty());
    // The standby settings are alpha's own, written after the rewind.
    let conninfo = alpha.sql("SHOW primary_conninfo");
    assert!(
        conninfo.contains(&format!("host={}", beta.address)),
        "{conninfo}"
    );
}

#[test]
fn without_wal_log_hints_it_refuses_without_reseed_and_reseeds_with_it() {
    let s = Switch::start();
    let alpha = s.env.alpha();
    alpha.sql("ALTER SYSTEM SET wal_log_hints = off");
    alpha.systemctl(&["restart", "postgresql"]);
    assert_eq!(alpha.sql("SHOW wal_log_hints"), "off");
    s.env.wait_streaming();
    seed_rows(&s);
    diverge(&s);

    let out = rejoin(&s, &["alpha", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wal_log_hints"), "{stderr}");
    assert!(stderr.contains("nixflip rejoin alpha --reseed"), "{stderr}");
    assert!(!stderr.contains("==> switch"), "{stderr}");
    // Nothing of its data changed: the same control file, no copy made.
    assert_eq!(
        fs::metadata(alpha.data.join("global/pg_control"))
            .expect("pg_control")
            .ino(),
        s.alpha_control_inode
    );
    assert!(kept_aside(&s).is_empty());
    assert!(s.rebuild_log().is_empty() || s.rebuild_log().iter().all(|c| c["host"] != "alpha"));

    let out = rejoin(&s, &["alpha", "--yes", "--reseed"]);
    let aside = reseeded(&s, &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "old data directory kept at {}",
            aside[0].display()
        )),
        "{stdout}"
    );
    // The old directory is whole: its own control file, as it was.
    assert_eq!(
        fs::metadata(aside[0].join("global/pg_control"))
            .expect("the old pg_control")
            .ino(),
        s.alpha_control_inode
    );
    assert!(aside[0].join("PG_VERSION").is_file());
    assert_follows_beta(&s);
}

/// alpha lost while it still took writes, after beta's promotion, and its
/// data directory set up as a standby before it ever started again: it
/// cannot finish crash recovery as a primary, so nothing tells how far it
/// went, and only a new base backup is left.
#[test]
fn a_killed_primary_set_up_as_a_standby_before_its_crash_recovery_is_only_reseeded() {
    let s = Switch::start();
    seed_rows(&s);
    diverge(&s);
    let alpha = s.env.alpha();
    alpha.kill_server();

    // A `postgres` that fails for another reason than standby.signal: the
    // run stops there (exit 3), its data untouched, and says how to go on.
    let postgres = alpha.bin.join("postgres");
    let real = alpha.bin.join("postgres.real");
    fs::rename(&postgres, &real).expect("set postgres aside");
    fs::write(
        &postgres,
        "#!/bin/sh\necho 'FATAL:  could not open directory \"pg_wal\": Permission denied' >&2\nexit 1\n",
    )
    .expect("a failing postgres");
    fs::set_permissions(&postgres, fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = rejoin(&s, &["alpha", "--yes"]);
    fs::rename(&real, &postgres).expect("restore postgres");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("its crash recovery (postgres --single) failed: FATAL:  could not open directory \"pg_wal\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("run `nixflip rejoin alpha` again"),
        "{stderr}"
    );
    assert!(!stderr.contains("==> switch"), "{stderr}");

    let signal = alpha.data.join("standby.signal");
    fs::write(&signal, "").expect("standby.signal");

    let out = rejoin(&s, &["alpha", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "cannot finish crash recovery as a primary (its data directory has standby.signal"
        ),
        "{stderr}"
    );
    // Not even tried: single-user mode would refuse it.
    assert!(
        !stderr.contains("finishing alpha's crash recovery"),
        "{stderr}"
    );
    assert!(stderr.contains("nixflip rejoin alpha --reseed"), "{stderr}");
    assert!(!stderr.contains("==> switch"), "{stderr}");
    assert!(kept_aside(&s).is_empty());
    assert_eq!(
        fs::metadata(alpha.data.join("global/pg_control"))
            .expect("pg_control")
            .ino(),
        s.alpha_control_inode
    );

    let out = rejoin(&s, &["alpha", "--yes", "--reseed"]);
    let aside = reseeded(&s, &out);
    assert!(aside[0].join("standby.signal").is_file());
    assert_follows_beta(&s);
}

/// The WAL segment holding alpha's last checkpoint before the fork is
/// gone from its `pg_wal`: pg_rewind finds no common checkpoint, which is
/// refused without `--reseed`; run again with it, the rewind fails again
/// and the re-seed follows.
#[test]
fn a_primary_whose_wal_back_to_the_common_checkpoint_is_gone_is_reseeded() {
    let s = Switch::start();
    seed_rows(&s);
    let alpha = s.env.alpha();
    // The last checkpoint both share, alone in its segment: WAL goes on in
    // the next one, where beta's timeline later forks.
    alpha.sql("CHECKPOINT");
    let segment = alpha.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    alpha.sql("SELECT pg_switch_wal()");
    alpha.sql("INSERT INTO kept VALUES (101)");
    s.env.wait_replayed();
    diverge(&s);
    fs::remove_file(alpha.data.join("pg_wal").join(&segment)).expect("remove the segment");

    let out = rejoin(&s, &["alpha", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pg_rewind on alpha from beta"), "{stderr}");
    assert!(
        stderr.contains("its WAL back to the last common checkpoint is gone"),
        "{stderr}"
    );
    assert!(stderr.contains("nixflip rejoin alpha --reseed"), "{stderr}");
    assert!(kept_aside(&s).is_empty());

    // Again, with --reseed: pg_rewind fails the same way and the re-seed
    // follows. Its first start as a standby fetched beta's timeline history,
    // which is set aside so that it starts again at all.
    let out = rejoin(&s, &["alpha", "--yes", "--reseed"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("setting 00000002.history aside on alpha"),
        "{stderr}"
    );
    assert!(
        stderr.contains("its WAL back to the last common checkpoint is gone")
            && stderr.contains("re-seeding it (--reseed)"),
        "{stderr}"
    );
    let aside = reseeded(&s, &out);
    assert!(aside[0]
        .join("pg_wal/00000002.history.nixflip-rejoin-aside")
        .is_file());
    assert_follows_beta(&s);
}

#[test]
fn rejoining_the_declared_primary_or_without_yes_is_refused() {
    let s = Switch::start();
    let out = rejoin(&s, &["alpha", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("alpha is not declared a standby"),
        "{}",
        text(&out)
    );
    let out = rejoin(&s, &["beta"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pass --yes"),
        "{}",
        text(&out)
    );
    // beta streams from alpha already: nothing to do.
    let out = rejoin(&s, &["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("beta already streams from alpha"),
        "{}",
        text(&out)
    );
}
