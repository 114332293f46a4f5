//! The switchover's test environment: the two hosts of `tests/live_support` (own sshd and
//! PostgreSQL each) with the flake in git, the doubles of `doubles` (nixos-rebuild and its
//! activation, Porkbun, a federation tester), and the drill: pgbench writing through the whole
//! switchover, every commit it saw logged, checked against the new primary afterwards.
#![allow(dead_code)]

pub mod doubles;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::live_support::{
    as_postgres, wait_until, Env, Host, EVAL_PASSFILE, EVAL_PASSWORD_FILE, EVAL_TLS_DIR,
};
use doubles::{Porkbun, Tester, ACTIVATE, API_KEY, NIXOS_REBUILD, SECRET_KEY};

/// The smoke test's public name (the Synapse stand-ins answer any Host).
pub const PUBLIC_NAME: &str = "matrix.example.org";

fn write(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A flake to switch over: the live pair, its flake a git repository,
/// `nixflip.toml` with `[dns]` (the Porkbun double), `[smoke]` (the Synapse
/// stand-ins by the public name, the tester double) and short waits.
pub struct Switch {
    pub env: Env,
    pub dns: Porkbun,
    pub tester: Tester,
    /// The nixos-rebuild stand-in's directory (`bin/`, `log.jsonl`,
    /// `store/`, `gates/`).
    pub rebuild: PathBuf,
    /// The inode of alpha's `global/pg_control` at the start: a new base
    /// backup would replace the file.
    pub alpha_control_inode: u64,
    /// The nixflip binary run (the benchmark runs the release build).
    pub binary: PathBuf,
}

impl Switch {
    pub fn start() -> Switch {
        Self::start_with("")
    }

    /// With extra `nixflip.toml` text (after the sections written here).
    pub fn start_with(extra_toml: &str) -> Switch {
        let env = Env::start();
        let base = env.base().to_path_buf();
        let rebuild = base.join("rebuild");
        for dir in ["bin", "gates", "store"] {
            fs::create_dir_all(rebuild.join(dir)).expect("mkdir rebuild");
        }
        write(&rebuild.join("bin/nixos-rebuild"), NIXOS_REBUILD, 0o755);
        for host in &env.hosts {
            write(&host.bin.join("nixflip-test-activate"), ACTIVATE, 0o755);
            let run_dir = host.dir.join("matrix-cluster");
            fs::create_dir_all(&run_dir).expect("mkdir matrix-cluster");
            let paths = [
                (EVAL_TLS_DIR.to_string(), host.dir.join("tls")),
                (EVAL_PASSWORD_FILE.to_string(), env.password_file.clone()),
                (EVAL_PASSFILE.to_string(), run_dir.join("pgpass")),
            ];
            let config = json!({
                "data": host.data,
                "paths": paths.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
                "overrides": env.overrides(host).iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                "systemctl": host.bin.join("systemctl"),
                "pgBin": env.pg_bin,
                "socketDir": host.socket_dir,
                "port": host.pg_port,
            });
            write(&host.dir.join("activate.json"), &config.to_string(), 0o644);
        }
        let keys = base.join("keys");
        fs::create_dir_all(&keys).expect("mkdir keys");
        write(&keys.join("porkbun.key"), &format!("{API_KEY}\n"), 0o600);
        write(
            &keys.join("porkbun.secret"),
            &format!("{SECRET_KEY}\n"),
            0o600,
        );
        let dns = Porkbun::start(env.alpha().address, 600);
        let tester = Tester::start();
        let switch = Switch {
            alpha_control_inode: fs::metadata(env.alpha().data.join("global/pg_control"))
                .expect("pg_control")
                .ino(),
            env,
            dns,
            tester,
            rebuild,
            binary: PathBuf::from(env!("CARGO_BIN_EXE_nixflip")),
        };
        switch.write_config(extra_toml);
        let flake = &switch.env.flake;
        crate::common::git(flake, &["init", "-q"]);
        crate::common::git(flake, &["config", "user.name", "nixflip test"]);
        crate::common::git(flake, &["config", "user.email", "test@nixflip.invalid"]);
        crate::common::git(flake, &["add", "-A"]);
        crate::common::git(flake, &["commit", "-qm", "the live pair"]);
        switch
    }

    /// `nixflip.toml`: the live settings, then `[dns]`, `[smoke]`,
    /// `[switchover]`, then `extra`.
    pub fn write_config(&self, extra: &str) {
        self.env.write_config("");
        // nixpkgs is the test stand-in, for nixflip's `nix eval` and for
        // every nixos-rebuild call (the stand-in evaluates with them).
        let overrides =
            serde_json::to_string(&crate::common::nix_overrides()).expect("a JSON array");
        let path = self.env.flake.join("nixflip.toml");
        let mut text = fs::read_to_string(&path).expect("nixflip.toml");
        text.push_str(&format!(
            "\n[dns]\ndomain = \"example.org\"\nname = \"matrix\"\napi_key_file = \"../keys/porkbun.key\"\n\
             secret_api_key_file = \"../keys/porkbun.secret\"\napi_url = \"{}\"\n\n\
             [smoke]\nurl = \"http://{PUBLIC_NAME}:{}\"\nfederation_tester = \"{}\"\ntimeout = 20\n\n\
             [switchover]\ncatchup_timeout = 5\nrejoin_timeout = 30\n\n\
             [eval]\nnix_args = {overrides}\n\n[rebuild]\nextra_args = {overrides}\n",
            self.dns.api_url(),
            self.env.alpha().synapse_port,
            self.tester.url(),
        ));
        text.push_str(extra);
        fs::write(&path, text).expect("write nixflip.toml");
    }

    /// Commit `nixflip.toml` after [`Switch::write_config`] changed it.
    pub fn commit_config(&self) {
        crate::common::git(&self.env.flake, &["commit", "-qam", "nixflip.toml"]);
    }

    /// The real binary on this flake, the nixos-rebuild stand-in first on
    /// its PATH.
    pub fn nixflip(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--flake").arg(&self.env.flake).env("NO_COLOR", "1");
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env(
            "PATH",
            format!("{}:{path}", self.rebuild.join("bin").display()),
        );
        cmd
    }

    /// `nixflip switchover ARGS…` to the end; its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.nixflip()
            .arg("switchover")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run nixflip")
    }

    /// `nixflip switchover ARGS…` in the background, output to files in
    /// the environment (see [`Switch::output_of`]).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.spawn_command("switchover", args)
    }

    /// `nixflip COMMAND ARGS…` in the background, as [`Switch::spawn`].
    pub fn spawn_command(&self, command: &str, args: &[&str]) -> Child {
        let out = fs::File::create(self.env.base().join("nixflip.out")).expect("out file");
        let err = fs::File::create(self.env.base().join("nixflip.err")).expect("err file");
        self.nixflip()
            .arg(command)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn nixflip")
    }

    /// What a spawned run printed (stdout, stderr).
    pub fn output_of(&self) -> (String, String) {
        (
            fs::read_to_string(self.env.base().join("nixflip.out")).unwrap_or_default(),
            fs::read_to_string(self.env.base().join("nixflip.err")).unwrap_or_default(),
        )
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.env.flake.join(".git/nixflip-live")
    }

    /// The journal of the switchover in progress.
    pub fn current(&self) -> Option<Value> {
        let text = fs::read_to_string(self.journal_dir().join("current.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The journals of finished, rolled-back and aborted runs, oldest first.
    pub fn runs(&self) -> Vec<Value> {
        let mut paths: Vec<PathBuf> = fs::read_dir(self.journal_dir().join("runs"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_str(&fs::read_to_string(p).expect("journal")).expect("json"))
            .collect()
    }

    /// Until the journal of the spawned run `child` shows `step` started
    /// (an entry for it); a run that ends before is a failure with its
    /// output, not a wait until the deadline.
    pub fn wait_for_step(&self, child: &mut Child, step: &str) {
        wait_until(&format!("the journal shows step {step}"), || {
            if let Ok(Some(status)) = child.try_wait() {
                let (out, err) = self.output_of();
                panic!("nixflip ended ({status}) before step {step}:\n{out}\n{err}");
            }
            self.current().is_some_and(|j| {
                j["entries"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["step"] == step))
            })
        });
    }

    /// The nixos-rebuild stand-in's calls, in order.
    pub fn rebuild_log(&self) -> Vec<Value> {
        fs::read_to_string(self.rebuild.join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line"))
            .collect()
    }

    /// Until the nixos-rebuild stand-in has recorded the end of an
    /// `action` call for `host` (one held back at a gate, say).
    pub fn wait_rebuild_ended(&self, action: &str, host: &str) {
        wait_until(&format!("nixos-rebuild {action} of {host} ends"), || {
            self.rebuild_log()
                .iter()
                .any(|c| c["action"] == action && c["host"] == host)
        });
    }

    /// A gate file of the nixos-rebuild stand-in.
    pub fn rebuild_gate(&self, name: &str) -> PathBuf {
        self.rebuild.join("gates").join(name)
    }

    /// A gate file of a host's systemctl stand-in (`ACTION-UNIT`).
    pub fn systemctl_gate(&self, host: &Host, name: &str) -> PathBuf {
        host.dir.join("gates").join(name)
    }

    /// Put a `psql` wrapper first on `host`'s PATH that holds back (gate
    /// `gates/psql-promote`) or fails (`gates/psql-promote.fail`) the
    /// session that promotes; every other session goes to the real psql.
    pub fn psql_gate(&self, host: &Host) {
        let gates = host.dir.join("gates");
        fs::set_permissions(&gates, fs::Permissions::from_mode(0o777)).expect("chmod gates");
        let script = PSQL_WRAPPER
            .replace("GATES", &gates.display().to_string())
            .replace("PSQL", &self.env.pg_bin.join("psql").display().to_string());
        write(&host.bin.join("psql"), &script, 0o755);
    }

    /// A host file of the flake, as it is now.
    pub fn host_file(&self, host: &str) -> String {
        fs::read_to_string(self.env.flake.join(format!("hosts/{host}.nix"))).expect("host file")
    }

    /// `git log` subjects, newest first.
    pub fn subjects(&self) -> Vec<String> {
        crate::common::git(&self.env.flake, &["log", "--format=%s"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// beta is the primary and takes writes, alpha streams from it on the
    /// new timeline (from its own data directory: no base backup), the
    /// flake says so and is committed, DNS points at beta, Synapse runs
    /// on beta only, and `status --live` has nothing to say.
    pub fn assert_switched(&self) {
        let (alpha, beta) = (self.env.alpha(), self.env.beta());
        assert_eq!(beta.sql("SELECT pg_is_in_recovery()"), "f");
        assert_eq!(alpha.sql("SELECT pg_is_in_recovery()"), "t");
        alpha.wait_for(
            "SELECT status || ' ' || sender_host || ' ' || received_tli FROM pg_stat_wal_receiver",
            &format!("streaming {} 2", beta.address),
        );
        beta.sql("CREATE TABLE IF NOT EXISTS after_switch (x int)");
        beta.sql("INSERT INTO after_switch VALUES (42)");
        alpha.wait_for("SELECT count(*) FROM after_switch WHERE x = 42", "1");
        assert_eq!(
            fs::metadata(alpha.data.join("global/pg_control"))
                .expect("pg_control")
                .ino(),
            self.alpha_control_inode,
            "alpha's data directory was replaced (a base backup?)"
        );
        assert!(self.host_file("beta").contains("role = \"primary\";"));
        assert!(self.host_file("alpha").contains("role = \"standby\";"));
        assert_eq!(
            self.subjects()[0],
            "nixflip: switch over to beta; alpha becomes standby"
        );
        assert_eq!(
            crate::common::git(&self.env.flake, &["status", "--porcelain", "--", "hosts"]),
            ""
        );
        assert_eq!(self.dns.content(), beta.address);
        let (code, json) = self.env.status_json();
        assert_eq!(
            code,
            Some(0),
            "status --live after the switchover: {json:#}"
        );
        assert!(
            json["findings"].as_array().is_some_and(Vec::is_empty),
            "{json:#}"
        );
        assert!(self.current().is_none(), "the journal is still current");
    }

    /// alpha is still the primary (Synapse on), beta its streaming standby,
    /// the flake unchanged, DNS unchanged.
    pub fn assert_as_before(&self) {
        let (alpha, beta) = (self.env.alpha(), self.env.beta());
        assert_eq!(alpha.sql("SELECT pg_is_in_recovery()"), "f");
        assert_eq!(beta.sql("SELECT pg_is_in_recovery()"), "t");
        self.env.wait_streaming();
        assert!(self.host_file("alpha").contains("role = \"primary\";"));
        assert!(self.host_file("beta").contains("role = \"standby\";"));
        assert_eq!(self.subjects()[0], "the live pair");
        assert_eq!(self.dns.content(), alpha.address);
        let out = alpha.systemctl(&["is-active", "matrix-synapse"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "active");
    }
}

/// See [`Switch::psql_gate`].
const PSQL_WRAPPER: &str = r#"#!/bin/sh
# psql wrapper of a test host: holds back (gates/psql-promote) or fails
# (gates/psql-promote.fail) the session that promotes; every other session
# goes to the real psql. A switchover test's fault injection.
sql=$(cat)
case "$sql" in
  *pg_promote*)
    g=GATES/psql-promote
    if [ -e "$g.fail" ]; then echo 'psql: error: the promoting session failed (injected by the test)' >&2; exit 2; fi
    if [ -e "$g" ]; then touch "$g.reached"; while [ -e "$g" ]; do sleep 0.02; done; fi ;;
esac
printf '%s\n' "$sql" | exec PSQL "$@"
"#;

// ----------------------------------------------------------------- drill --

/// One insert per transaction with a client-side sequence number: each
/// client counts its own transactions in `:n` (pgbench keeps a client's
/// variables from one transaction to the next).
const DRILL_SQL: &str =
    "\\set n :n + 1\nINSERT INTO drill (run, client, n) VALUES (:run, :client_id, :n);\n";

/// One pgbench run of the writer.
#[derive(Clone, Debug)]
pub struct WriterRun {
    pub run: u32,
    pub host: String,
    pub status: Option<i32>,
}

/// A writer: pgbench (2 clients, 100 transactions/s in all) against
/// whichever host is out of recovery, in one-second runs, until stopped.
/// pgbench logs every transaction it saw committed (`-l`): client,
/// transaction number (= the client's `n`), time.
pub struct Drill {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<WriterRun>>>,
    pub dir: PathBuf,
}

/// What the writer saw.
pub struct Writes {
    /// (run, client, n) of every commit pgbench logged.
    pub committed: BTreeSet<(u32, u32, u64)>,
    /// Each commit's time (seconds since the epoch) and run.
    pub times: Vec<(f64, u32)>,
    /// When the client saw each commit acknowledged (seconds since the
    /// epoch).
    pub at: BTreeMap<(u32, u32, u64), f64>,
    pub runs: Vec<WriterRun>,
}

impl Drill {
    /// Create the drill's table on alpha, wait until beta has it, start
    /// writing.
    pub fn start(env: &Env) -> Drill {
        env.alpha().sql(
            "CREATE TABLE drill (run int, client int, n bigint, \
             at timestamptz DEFAULT clock_timestamp(), PRIMARY KEY (run, client, n))",
        );
        env.wait_replayed();
        let dir = env.base().join("drill");
        fs::create_dir_all(&dir).expect("mkdir drill");
        let owner = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(owner.success());
        let script = dir.join("drill.sql");
        write(&script, DRILL_SQL, 0o644);
        let hosts: Vec<(String, PathBuf, u16)> = env
            .hosts
            .iter()
            .map(|h| (h.name.to_string(), h.socket_dir.clone(), h.pg_port))
            .collect();
        let pg_bin = env.pg_bin.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let log_dir = dir.clone();
        let thread = std::thread::spawn(move || {
            let mut runs = Vec::new();
            let mut run = 0;
            while !flag.load(Ordering::SeqCst) {
                let primary = hosts.iter().find(|(_, socket, port)| {
                    as_postgres(&pg_bin.join("psql"))
                        .args(["-X", "-A", "-t", "-d", "postgres", "-h"])
                        .arg(socket)
                        .args(["-p", &port.to_string(), "-c", "SELECT pg_is_in_recovery()"])
                        .env("PGCONNECT_TIMEOUT", "2")
                        .output()
                        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "f")
                });
                let Some((name, socket, port)) = primary else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                run += 1;
                let status = as_postgres(&pg_bin.join("pgbench"))
                    .args(["-n", "-f"])
                    .arg(&script)
                    .args(["-D", &format!("run={run}"), "-D", "n=0"])
                    .args(["-c", "2", "-j", "1", "-T", "1", "-R", "100", "-l"])
                    .arg(format!("--log-prefix={}/run-{run}", log_dir.display()))
                    .arg("-h")
                    .arg(socket)
                    .args(["-p", &port.to_string(), "postgres"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .ok()
                    .and_then(|s| s.code());
                runs.push(WriterRun {
                    run,
                    host: name.clone(),
                    status,
                });
            }
            runs
        });
        Drill {
            stop,
            thread: Some(thread),
            dir,
        }
    }

    /// Stop writing (the run under way ends within a second) and read the
    /// logs.
    pub fn stop(mut self) -> Writes {
        self.stop.store(true, Ordering::SeqCst);
        let runs = self
            .thread
            .take()
            .map(|t| t.join().expect("writer thread"))
            .unwrap_or_default();
        let mut committed = BTreeSet::new();
        let mut times = Vec::new();
        let mut acknowledged = BTreeMap::new();
        for entry in fs::read_dir(&self.dir).expect("drill dir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("run-") else {
                continue;
            };
            let run: u32 = rest
                .split('.')
                .next()
                .and_then(|r| r.parse().ok())
                .expect("run number");
            for line in fs::read_to_string(entry.path()).expect("log").lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 6 {
                    continue;
                }
                let (client, n) = (f[0].parse().expect("client"), f[1].parse().expect("n"));
                let at =
                    f[4].parse::<f64>().expect("epoch") + f[5].parse::<f64>().expect("us") / 1e6;
                committed.insert((run, client, n));
                acknowledged.insert((run, client, n), at);
                times.push((at, run));
            }
        }
        times.sort_by(|a, b| a.0.total_cmp(&b.0));
        Writes {
            committed,
            times,
            at: acknowledged,
            runs,
        }
    }
}

impl Drop for Drill {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Writes {
    /// The runs that wrote to `host`.
    pub fn runs_on(&self, host: &str) -> BTreeSet<u32> {
        self.runs
            .iter()
            .filter(|r| r.host == host)
            .map(|r| r.run)
            .collect()
    }

    /// Commits logged by runs on `host`.
    pub fn count_on(&self, host: &str) -> usize {
        let runs = self.runs_on(host);
        self.committed
            .iter()
            .filter(|c| runs.contains(&c.0))
            .count()
    }

    /// After `since` (seconds since the epoch): the first commit on `new`,
    /// less the last commit on `old` before it, as the client saw them.
    pub fn gap_after(&self, since: f64, old: &str, new: &str) -> Option<f64> {
        let (old_runs, new_runs) = (self.runs_on(old), self.runs_on(new));
        let first_new = self
            .times
            .iter()
            .find(|(t, r)| *t >= since && new_runs.contains(r))
            .map(|(t, _)| *t)?;
        let last_old = self
            .times
            .iter()
            .filter(|(t, r)| *t <= first_new && old_runs.contains(r))
            .map(|(t, _)| *t)
            .next_back()?;
        Some(first_new - last_old)
    }

    /// Seconds between the last commit on `old` and the first on `new`, as
    /// the client saw them.
    pub fn gap(&self, old: &str, new: &str) -> Option<f64> {
        let (old_runs, new_runs) = (self.runs_on(old), self.runs_on(new));
        let last_old = self
            .times
            .iter()
            .filter(|(_, r)| old_runs.contains(r))
            .map(|(t, _)| *t)
            .next_back()?;
        let first_new = self
            .times
            .iter()
            .find(|(_, r)| new_runs.contains(r))
            .map(|(t, _)| *t)?;
        Some(first_new - last_old)
    }

    /// The rows of the drill table on `host`.
    pub fn rows_on(host: &Host) -> BTreeSet<(u32, u32, u64)> {
        host.sql("SELECT run || ' ' || client || ' ' || n FROM drill")
            .lines()
            .map(|l| {
                let f: Vec<u64> = l.split(' ').map(|x| x.parse().expect("number")).collect();
                (f[0] as u32, f[1] as u32, f[2])
            })
            .collect()
    }

    /// Every commit the client saw is on `host`; and no (run, client) has
    /// more than one row the client did not see acknowledged (the commit
    /// whose answer was lost when its server stopped).
    pub fn assert_all_on(&self, host: &Host) {
        assert!(
            !self.committed.is_empty(),
            "the writer logged no commit at all"
        );
        let rows: BTreeSet<(u32, u32, u64)> = host
            .sql("SELECT run || ' ' || client || ' ' || n FROM drill")
            .lines()
            .map(|l| {
                let f: Vec<u64> = l.split(' ').map(|x| x.parse().expect("number")).collect();
                (f[0] as u32, f[1] as u32, f[2])
            })
            .collect();
        let missing: Vec<_> = self.committed.difference(&rows).collect();
        assert!(
            missing.is_empty(),
            "{} committed rows are missing on {}: {:?}",
            missing.len(),
            host.name,
            missing.iter().take(20).collect::<Vec<_>>()
        );
        let mut extra: BTreeMap<(u32, u32), usize> = BTreeMap::new();
        for row in rows.difference(&self.committed) {
            *extra.entry((row.0, row.1)).or_default() += 1;
        }
        assert!(
            extra.values().all(|n| *n <= 1),
            "rows the client never saw committed: {extra:?}"
        );
    }
}

/// Kill `child` with SIGKILL and reap it.
/// What a kill test does around the run: hold something of the step back
/// before it starts, act while it runs, see it held, release it after the
/// kill.
pub struct Kill<'a> {
    pub hold: &'a dyn Fn(&Switch),
    pub during: &'a dyn Fn(&Switch),
    pub reached: &'a dyn Fn(&Switch) -> bool,
    pub release: &'a dyn Fn(&Switch),
}

pub fn nothing(_: &Switch) {}

impl Switch {
    /// `nixflip COMMAND ARGS…` started with `k` holding back `step`,
    /// `kill -9`ed once the journal shows the step under way and the
    /// double held; the journal stays, still running in `step`. `k`'s
    /// release is the caller's.
    pub fn kill_held(&self, command: &str, args: &[&str], step: &str, k: &Kill<'_>) {
        (k.hold)(self);
        let mut child = self.spawn_command(command, args);
        (k.during)(self);
        self.wait_for_step(&mut child, step);
        wait_until(&format!("nixflip is held in step {step}"), || {
            (k.reached)(self)
        });
        kill_9(&mut child);
        let journal = self.current().expect("the journal stays");
        assert_eq!(journal["state"], "running");
        let last = journal["entries"]
            .as_array()
            .and_then(|e| e.last())
            .expect("an entry");
        assert_eq!(last["step"], step);
        assert_eq!(last["outcome"], "running");
    }
}

impl Kill<'static> {
    /// Held where the pre-flight reads the DNS record.
    pub fn at_dns_read() -> Self {
        Kill {
            hold: &|s| s.dns.hold_read.set(),
            during: &nothing,
            reached: &|s| s.dns.hold_read.reached(),
            release: &|s| s.dns.hold_read.release(),
        }
    }

    /// Held where the DNS step changes the record.
    pub fn at_dns_edit() -> Self {
        Kill {
            hold: &|s| s.dns.hold_edit.set(),
            during: &nothing,
            reached: &|s| s.dns.hold_edit.reached(),
            release: &|s| s.dns.hold_edit.release(),
        }
    }

    /// Held where the smoke test asks the federation tester.
    pub fn at_smoke_test() -> Self {
        Kill {
            hold: &|s| s.tester.hold.set(),
            during: &nothing,
            reached: &|s| s.tester.hold.reached(),
            release: &|s| s.tester.hold.release(),
        }
    }
}

pub fn kill_9(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Until `path` exists (a double reached its gate).
pub fn wait_for_file(path: &Path) {
    wait_until(&format!("{} exists", path.display()), || path.exists());
}

/// Seconds since `start`.
pub fn since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}
