//! A two-host cluster on this machine, for tests that drive the live layer:
//! real OpenSSH servers, real PostgreSQL, the cluster module's own evaluated
//! replication set-up. Torn down by `Drop`, also when a test panics.
//!
//! - Hosts `alpha` (127.0.0.2, primary) and `beta` (127.0.0.3, standby), as
//!   `fixtures/clusters/live_pair` declares them; a copy of that flake, with
//!   a `nixflip.toml` pointing at this environment, is [`Env::flake`].
//! - Each host has its own sshd (Debian's `openssh-server`, its own config,
//!   host key, port and log), reached as `ssh://root@ADDRESS:PORT` with a
//!   client key and a known_hosts file made here. Its sessions get a `HOME`
//!   of their own and a `PATH` (sshd `SetEnv`) that starts with the host's
//!   `bin/`, which holds the one stand-in: `systemctl`, since systemd cannot
//!   run here. It starts, stops and reports that host's PostgreSQL
//!   (`pg_ctl`) and Synapse stand-in (a small HTTP server answering
//!   `/_matrix/client/versions` as Synapse does).
//! - Each host has its own PostgreSQL listening on its address, with the
//!   settings, pg_hba lines, TLS key pair, replication role, password script
//!   and standby set-up script that one `nix eval` of the flake gives; the
//!   standby is a `pg_basebackup` of the primary.
//! - Loopback routes with a source address (`ip route … src`) make each
//!   host's connections to the other leave from its own address, as between
//!   real hosts: the primary's `pg_stat_replication` shows 127.0.0.3. The
//!   routes are shared by every environment on the machine and removed by
//!   the last one to finish (a shared `flock` counts the users).
//!
//! Requirements (`.ci/run` installs them): root; `postgresql` (with
//! `pgbench`), `openssh-server`, `openssh-client`, `iproute2`, `openssl`,
//! `curl`, `python3`, `nix-bin`. A missing one fails the test with what to
//! install.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::free_port_on;

use serde_json::Value;

/// How long anything in the environment may take to happen; polled. It
/// only bounds a hung test: the live tests share the machine with the rest
/// of the suite, each with its own sshd and PostgreSQL servers, and a
/// switchover under that load has taken over a minute to reach a step.
pub const TIMEOUT: Duration = Duration::from_secs(180);

/// The replication password (quotes, a colon, a backslash, spaces).
pub const PASSWORD: &str = "r3pl:ic\\a'tor \"pw\" x";

/// Paths as the module evaluates them; each environment has its own.
pub const EVAL_PASSWORD_FILE: &str = "/run/secrets/postgres-replication";
pub const EVAL_PASSFILE: &str = "/run/matrix-cluster/pgpass";
pub const EVAL_TLS_DIR: &str = "/var/lib/matrix-cluster/postgresql-tls";

const INSTALL_HINT: &str = "the live tests run real sshd and PostgreSQL servers as root: on \
     Debian, `apt-get install postgresql openssh-server openssh-client iproute2 openssl curl \
     python3` (PG_BIN may name another directory with initdb, pg_ctl, postgres, pg_basebackup, \
     psql and pgbench) and run the tests as root, as .ci/run does";

/// Where the routes' users take their shared lock.
const ROUTES_LOCK: &str = "/run/nixflip-live-routes.lock";

// ---------------------------------------------------------------- helpers --

/// Run a command; panic with its output unless it succeeds.
pub fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `program` run as the OS user `postgres`.
pub fn as_postgres(program: &Path) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(program);
    cmd
}

fn chown_postgres(path: &Path) {
    run(
        Command::new("chown").arg("postgres:postgres").arg(path),
        "chown",
    );
}

fn write_file(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn mkdir(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A port nothing listens on at `address` (see [`free_port_on`]).
fn free_port(address: &str) -> u16 {
    free_port_on(&[address])
}

/// `pid` runs: it exists and is not a zombie (this machine's init may
/// reap orphans late).
fn alive(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// The pids whose parent is `pid` (from `/proc/*/stat`).
fn children_of(pid: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let stat = fs::read_to_string(e.path().join("stat")).ok()?;
            // `PID (COMM) STATE PPID ...`; COMM may hold spaces.
            let ppid = stat.rsplit_once(") ")?.1.split_whitespace().nth(1)?;
            (ppid == pid).then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// Poll `ready` until it holds or [`TIMEOUT`] passes; `what` names it.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < TIMEOUT {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("after {TIMEOUT:?}: {what}");
}

fn on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// A TOML string literal.
fn toml_str(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The PostgreSQL binaries: $PG_BIN, else the newest /usr/lib/postgresql/*/bin.
pub fn pg_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                    Some((v, e.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!("no /usr/lib/postgresql/*/bin found; {INSTALL_HINT}"),
    }
}

/// Fails (never skips) with what to install when something is missing.
/// Returns the PostgreSQL binaries' directory.
pub fn require_environment() -> PathBuf {
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "not running as root; {INSTALL_HINT}"
    );
    let bin = pg_bin();
    for tool in [
        "initdb",
        "pg_ctl",
        "postgres",
        "pg_basebackup",
        "pg_rewind",
        "psql",
        "pgbench",
    ] {
        assert!(
            bin.join(tool).is_file(),
            "{} is missing; {INSTALL_HINT}",
            bin.join(tool).display()
        );
    }
    assert!(
        Path::new("/usr/sbin/sshd").is_file(),
        "/usr/sbin/sshd is missing; {INSTALL_HINT}"
    );
    for tool in [
        "ssh",
        "ssh-keygen",
        "ip",
        "openssl",
        "curl",
        "python3",
        "runuser",
        "bash",
        "nix",
    ] {
        assert!(
            on_path(tool).is_some(),
            "`{tool}` is not on PATH; {INSTALL_HINT}"
        );
    }
    let user = Command::new("id").args(["-u", "postgres"]).output();
    assert!(
        user.is_ok_and(|o| o.status.success()),
        "there is no OS user `postgres`; {INSTALL_HINT}"
    );
    // sshd without PAM refuses an account whose password field starts with
    // '!' (locked), even for key logins.
    let shadow = fs::read_to_string("/etc/shadow").unwrap_or_default();
    let root = shadow
        .lines()
        .find_map(|l| l.strip_prefix("root:"))
        .unwrap_or("");
    assert!(
        !root.starts_with('!'),
        "root's password field in /etc/shadow starts with '!', which sshd (without PAM) takes \
         as a locked account even for key logins: `usermod -p '*' root` (no password; keys \
         still work), as .ci/run does"
    );
    bin
}

/// Where environments live: `/dev/shm` when it is there (a data directory
/// is written and removed in every test, and on a disk mounted with
/// `discard` removing one takes seconds), else the temporary directory.
fn scratch_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let usable = fs::metadata(shm).is_ok_and(|m| m.is_dir())
        && rustix::fs::statvfs(shm).is_ok_and(|s| s.f_bavail.saturating_mul(s.f_bsize) > 1 << 30);
    if usable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

// ----------------------------------------------------------------- routes --

/// The loopback routes that give each host's outgoing connections its own
/// source address. Shared by every environment; the last user removes them.
pub struct Routes {
    lock: File,
}

const ROUTES: [(&str, &str); 2] = [("127.0.0.2", "127.0.0.3"), ("127.0.0.3", "127.0.0.2")];

impl Routes {
    pub fn add() -> Routes {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(ROUTES_LOCK)
            .unwrap_or_else(|e| panic!("open {ROUTES_LOCK}: {e}"));
        lock.lock_shared()
            .unwrap_or_else(|e| panic!("lock {ROUTES_LOCK}: {e}"));
        for (to, from) in ROUTES {
            run(
                Command::new("ip").args([
                    "route",
                    "replace",
                    "local",
                    &format!("{to}/32"),
                    "dev",
                    "lo",
                    "src",
                    from,
                    "table",
                    "local",
                ]),
                "ip route replace (needs CAP_NET_ADMIN: run as root)",
            );
        }
        Routes { lock }
    }
}

impl Drop for Routes {
    fn drop(&mut self) {
        // An exclusive lock is only granted when no other environment holds
        // its shared one: then this is the last user.
        if self.lock.try_lock().is_ok() {
            for (to, _) in ROUTES {
                let _ = Command::new("ip")
                    .args([
                        "route",
                        "del",
                        "local",
                        &format!("{to}/32"),
                        "dev",
                        "lo",
                        "table",
                        "local",
                    ])
                    .output();
            }
        }
        let _ = self.lock.unlock();
    }
}

// ------------------------------------------------------------------ hosts --

/// One test host: its address, its servers and their files.
pub struct Host {
    pub name: &'static str,
    pub address: &'static str,
    pub ssh_port: u16,
    pub pg_port: u16,
    pub synapse_port: u16,
    /// Everything of this host lives below here.
    pub dir: PathBuf,
    pub data: PathBuf,
    /// PostgreSQL's socket directory.
    pub socket_dir: PathBuf,
    /// Holds `systemctl`, first on the sessions' PATH.
    pub bin: PathBuf,
    pub home: PathBuf,
    pub sshd_config: PathBuf,
    pub sshd_log: PathBuf,
    pub pg_log: PathBuf,
    pub synapse_pid: PathBuf,
    pub pg_bin: PathBuf,
    sshd: Mutex<Option<Child>>,
}

impl Host {
    fn new(name: &'static str, address: &'static str, base: &Path, pg_bin: &Path) -> Host {
        let dir = base.join(name);
        mkdir(&dir, 0o755);
        let host = Host {
            name,
            address,
            ssh_port: free_port(address),
            pg_port: free_port(address),
            synapse_port: free_port(address),
            data: dir.join("data"),
            socket_dir: dir.join("run"),
            bin: dir.join("bin"),
            home: dir.join("home"),
            sshd_config: dir.join("sshd_config"),
            sshd_log: dir.join("sshd.log"),
            pg_log: dir.join("log/postgresql.log"),
            synapse_pid: dir.join("synapse.pid"),
            pg_bin: pg_bin.to_path_buf(),
            dir,
            sshd: Mutex::new(None),
        };
        for owned in [&host.socket_dir, &host.dir.join("log")] {
            mkdir(owned, 0o755);
            chown_postgres(owned);
        }
        mkdir(&host.bin, 0o755);
        mkdir(&host.home, 0o700);
        host
    }

    /// `ssh://root@ADDRESS:PORT`.
    pub fn target(&self) -> String {
        format!("ssh://root@{}:{}", self.address, self.ssh_port)
    }

    pub fn synapse_url(&self) -> String {
        format!("http://{}:{}", self.address, self.synapse_port)
    }

    /// The running server's postmaster, from its `postmaster.pid`.
    #[allow(dead_code)]
    pub fn postmaster_pid(&self) -> String {
        fs::read_to_string(self.data.join("postmaster.pid"))
            .expect("postmaster.pid")
            .lines()
            .next()
            .expect("a pid")
            .trim()
            .to_string()
    }

    /// A field of `pg_controldata` (C locale) for this host's data
    /// directory, such as `Latest checkpoint location`.
    #[allow(dead_code)]
    pub fn control_field(&self, label: &str) -> String {
        let out = run(
            Command::new(self.pg_bin.join("pg_controldata"))
                .arg(&self.data)
                .env("LC_ALL", "C"),
            "pg_controldata",
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(label)?.strip_prefix(':'))
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| panic!("pg_controldata prints no {label}"))
    }

    /// `kill -9` of this host's whole server at once, postmaster and
    /// children, as when its machine is lost; then until every one is gone.
    /// Nothing is flushed or checkpointed on the way out.
    #[allow(dead_code)]
    pub fn kill_server(&self) {
        let postmaster = self.postmaster_pid();
        // Stopped, it starts no new backend while its children are listed.
        run(
            Command::new("kill").args(["-STOP", &postmaster]),
            "kill -STOP",
        );
        let mut pids = children_of(&postmaster);
        pids.insert(0, postmaster);
        // A backend may have exited since it was listed: not an error.
        let _ = Command::new("kill").arg("-9").args(&pids).status();
        wait_until(&format!("{}'s PostgreSQL is gone", self.name), || {
            !pids.iter().any(|pid| alive(pid))
        });
    }

    /// One SQL statement as the superuser over this host's socket; its
    /// output (unaligned, tuples only), trimmed.
    pub fn sql(&self, statement: &str) -> String {
        let out = run(
            self.psql().args(["-c", statement]),
            &format!("psql on {}: {statement}", self.name),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// psql as the superuser on this host's server (no statement yet).
    pub fn psql(&self) -> Command {
        let mut cmd = as_postgres(&self.pg_bin.join("psql"));
        cmd.args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "postgres",
            "-h",
        ])
        .arg(&self.socket_dir)
        .args(["-p", &self.pg_port.to_string()]);
        cmd
    }

    /// Poll `statement` until it returns `want`.
    pub fn wait_for(&self, statement: &str, want: &str) {
        let mut last = String::new();
        let start = Instant::now();
        while start.elapsed() < TIMEOUT {
            let out = self.psql().args(["-c", statement]).output();
            if let Ok(out) = out {
                last = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if out.status.success() && last == want {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "after {TIMEOUT:?}, `{statement}` on {} returns {last:?}, not {want:?}\nserver log:\n{}",
            self.name,
            fs::read_to_string(&self.pg_log).unwrap_or_default()
        );
    }

    /// `pgbench ARGS…` against this host's `postgres` database.
    pub fn pgbench(&self, args: &[&str]) {
        run(
            as_postgres(&self.pg_bin.join("pgbench"))
                .args(args)
                .arg("-h")
                .arg(&self.socket_dir)
                .args(["-p", &self.pg_port.to_string(), "postgres"]),
            &format!("pgbench {args:?} on {}", self.name),
        );
    }

    /// The `systemctl` stand-in of this host, run here (as a session of
    /// its sshd would run it).
    pub fn systemctl(&self, args: &[&str]) -> Output {
        run(
            Command::new(self.bin.join("systemctl")).args(args),
            &format!("systemctl {args:?} on {}", self.name),
        )
    }

    /// Start this host's sshd (`sshd -D -e`, logging to `sshd_log`) and
    /// wait until it accepts connections.
    pub fn start_sshd(&self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.sshd_log)
            .expect("open sshd log");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&self.sshd_config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        *self.sshd.lock().expect("sshd lock") = Some(child);
        wait_until(
            &format!(
                "sshd of {} accepts connections on {}:{}",
                self.name, self.address, self.ssh_port
            ),
            || TcpStream::connect((self.address, self.ssh_port)).is_ok(),
        );
    }

    /// Stop this host's sshd (established sessions are not affected).
    pub fn stop_sshd(&self) {
        if let Some(mut child) = self.sshd.lock().expect("sshd lock").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// How many ssh connections this host's sshd accepted so far.
    pub fn ssh_logins(&self) -> usize {
        fs::read_to_string(&self.sshd_log)
            .unwrap_or_default()
            .matches("Accepted publickey for root")
            .count()
    }

    /// How many of them have ended.
    pub fn ssh_disconnects(&self) -> usize {
        fs::read_to_string(&self.sshd_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("Disconnected from user root"))
            .count()
    }

    fn stop_everything(&self) {
        // A gate a test left would hold the teardown's own stop.
        let _ = fs::remove_dir_all(self.dir.join("gates"));
        self.stop_sshd();
        let _ = Command::new(self.bin.join("systemctl"))
            .args(["stop", "matrix-synapse"])
            .output();
        if self.data.join("postmaster.pid").exists() {
            let _ = as_postgres(&self.pg_bin.join("pg_ctl"))
                .args(["stop", "-m", "immediate", "-D"])
                .arg(&self.data)
                .output();
        }
    }
}

// ---------------------------------------------------------------- scripts --

/// The `systemctl` stand-in of one host: `start`, `stop`, `restart`,
/// `is-active` and `status` of `postgresql` and `matrix-synapse`, and
/// `start`/`restart` of the oneshot `matrix-cluster-standby-setup` (the
/// script the activation stand-in of the switchover tests leaves).
fn systemctl_script(host: &Host, python: &Path, synapse_script: &Path) -> String {
    format!(
        r#"#!/bin/sh
# systemctl stand-in for the test host {name} (systemd cannot run in the
# tests): starts, stops and reports this host's PostgreSQL (pg_ctl) and its
# Synapse stand-in, and nothing else.
set -u
PG_BIN={pg_bin}
DATA={data}
PG_LOG={pg_log}
SYNAPSE_PID={pid}
SYNAPSE_LOG={dir}/synapse.log

# A process that has exited but not been reaped yet (this machine's init
# reaps orphans late) is not running.
alive() {{
  s=$(sed -n 's/^[0-9]* (.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
  [ -n "$s" ] && [ "$s" != Z ]
}}

state() {{
  case "$1" in
    postgresql|postgresql.service)
      if runuser -u postgres -- "$PG_BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; then
        echo active; else echo inactive; fi ;;
    matrix-synapse|matrix-synapse.service)
      if [ -s "$SYNAPSE_PID" ] && alive "$(cat "$SYNAPSE_PID")"; then
        echo active; else echo inactive; fi ;;
    *) echo inactive ;;
  esac
}}

start() {{
  [ "$(state "$1")" = active ] && return 0
  case "$1" in
    postgresql|postgresql.service)
      # As NixOS's preStart links the generation's configuration into the
      # data directory: a copy of another server's files (pg_rewind,
      # pg_basebackup) does not keep its settings.
      for f in postgresql.conf pg_hba.conf; do
        if [ -f {dir}/conf/$f ]; then
          install -m 0600 -o postgres -g postgres {dir}/conf/$f "$DATA/$f" || return 1
        fi
      done
      err=$(runuser -u postgres -- "$PG_BIN/pg_ctl" start -w -t 180 -D "$DATA" -l "$PG_LOG" 2>&1 >/dev/null) ||
        [ "$(state "$1")" = active ] || {{ echo "$err" >&2; tail -n 20 "$PG_LOG" >&2; return 1; }} ;;
    matrix-synapse|matrix-synapse.service)
      rm -f "$SYNAPSE_PID"
      setsid {python} {synapse} {address} {synapse_port} "$SYNAPSE_PID" </dev/null >>"$SYNAPSE_LOG" 2>&1 &
      i=0
      while [ ! -s "$SYNAPSE_PID" ]; do
        i=$((i + 1)); [ $i -gt 600 ] && {{ echo "synapse stand-in did not start" >&2; return 1; }}
        sleep 0.05
      done ;;
    matrix-cluster-standby-setup|matrix-cluster-standby-setup.service)
      # The cluster module's oneshot unit: the script the activation
      # stand-in left, run again.
      [ -f {dir}/matrix-cluster-standby-setup.sh ] || {{ echo "Unit $1 not found." >&2; return 5; }}
      bash -e {dir}/matrix-cluster-standby-setup.sh ;;
    *) echo "Unit $1 not found." >&2; return 5 ;;
  esac
}}

stop() {{
  case "$1" in
    postgresql|postgresql.service)
      # Two stops at once (a gated call let go while the test stops the
      # server itself) end as systemd's would: stopped, both succeed.
      if [ "$(state "$1")" = active ]; then
        err=$(runuser -u postgres -- "$PG_BIN/pg_ctl" stop -m fast -w -t 180 -D "$DATA" 2>&1 >/dev/null) ||
          [ "$(state "$1")" = inactive ] || {{ echo "$err" >&2; return 1; }}
      fi ;;
    matrix-synapse|matrix-synapse.service)
      if [ -s "$SYNAPSE_PID" ]; then
        pid=$(cat "$SYNAPSE_PID")
        kill "$pid" 2>/dev/null
        i=0
        while alive "$pid"; do
          i=$((i + 1)); [ $i -gt 600 ] && {{ kill -9 "$pid"; break; }}
          sleep 0.05
        done
        rm -f "$SYNAPSE_PID"
      fi ;;
    matrix-cluster-standby-setup|matrix-cluster-standby-setup.service) ;;
    *) echo "Unit $1 not found." >&2; return 5 ;;
  esac
}}

# Tests hold an action back (a file gates/ACTION-UNIT: wait until it goes)
# or make it fail (gates/ACTION-UNIT.fail).
gate() {{
  g={dir}/gates/"$1-$2"
  if [ -e "$g.fail" ]; then echo "systemctl stand-in: $1 $2 failed (injected by the test)" >&2; return 1; fi
  if [ -e "$g" ]; then
    touch "$g.reached"
    while [ -e "$g" ]; do sleep 0.02; done
  fi
  return 0
}}

action="${{1:-}}"
[ $# -gt 0 ] && shift
case "$action" in
  is-active)
    rc=0
    for unit in "$@"; do s=$(state "$unit"); echo "$s"; [ "$s" = active ] || rc=3; done
    exit $rc ;;
  start) for unit in "$@"; do gate start "$unit" && start "$unit" || exit 1; done ;;
  stop) for unit in "$@"; do gate stop "$unit" && stop "$unit" || exit 1; done ;;
  restart) for unit in "$@"; do stop "$unit" && start "$unit" || exit 1; done ;;
  status) for unit in "$@"; do echo "$unit: $(state "$unit")"; done ;;
  *) echo "systemctl stand-in: unsupported action '$action'" >&2; exit 1 ;;
esac
"#,
        name = host.name,
        pg_bin = host.pg_bin.display(),
        data = host.data.display(),
        pg_log = host.pg_log.display(),
        pid = host.synapse_pid.display(),
        dir = host.dir.display(),
        python = python.display(),
        synapse = synapse_script.display(),
        address = host.address,
        synapse_port = host.synapse_port,
    )
}

/// The Synapse stand-in: an HTTP server answering `GET
/// /_matrix/client/versions` with Synapse's shape of answer, 404 (Matrix
/// error JSON) otherwise. It writes its pid file once it listens.
const SYNAPSE_STANDIN: &str = r#"#!/usr/bin/env python3
# Synapse stand-in for the live tests: answers GET /_matrix/client/versions as
# Synapse does; usage: synapse-standin.py ADDRESS PORT PIDFILE
import http.server, json, os, sys

address, port, pidfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
VERSIONS = {"versions": ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6",
                         "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"],
            "unstable_features": {}}

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] == "/_matrix/client/versions":
            status, body = 200, VERSIONS
        else:
            status, body = 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))

server = http.server.ThreadingHTTPServer((address, port), Handler)
with open(pidfile + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pidfile + ".tmp", pidfile)
server.serve_forever()
"#;

fn sshd_config(host: &Host, host_key: &Path, authorized: &Path) -> String {
    format!(
        "# sshd of the test host {name}\n\
         Port {port}\n\
         ListenAddress {address}\n\
         HostKey {host_key}\n\
         PidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {authorized}\n\
         # The test's files live under /tmp, which is world-writable.\n\
         StrictModes no\n\
         UsePAM no\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         # This host's own HOME, and its systemctl first on PATH.\n\
         SetEnv PATH={bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME={home}\n\
         # Logins and sessions are counted from this log.\n\
         LogLevel VERBOSE\n",
        name = host.name,
        port = host.ssh_port,
        address = host.address,
        host_key = host_key.display(),
        dir = host.dir.display(),
        authorized = authorized.display(),
        bin = host.bin.display(),
        home = host.home.display(),
    )
}

// ------------------------------------------------------------- evaluation --

/// What the cluster module generates for each host of `flake`: postgresql
/// settings, pg_hba lines, the replication role, initialScript, the
/// password, TLS and standby set-up scripts, the data directory.
pub fn evaluate(flake: &Path) -> Value {
    let apply = r#"cs: let
      host = c: let
        p = c.config.services.postgresql;
        s = c.config.systemd.services;
        m = c.config.hectic.generic.matrix-cluster;
      in {
        inherit (p) settings authentication ensureUsers dataDir;
        role = m.role;
        initialScript = if p.initialScript == null then null else p.initialScript.text;
        passwordFile = toString m.replication.passwordFile;
        passwordScript = s.matrix-cluster-replication-password.script or null;
        setupScript = s.matrix-cluster-standby-setup.script or null;
        tlsScript = s.matrix-cluster-postgresql-tls.script;
      };
    in { alpha = host cs."alpha|x86_64-linux"; beta = host cs."beta|x86_64-linux"; }"#;
    crate::common::nix_eval(flake, "nixosConfigurations", apply)
        .unwrap_or_else(|stderr| panic!("nix eval of the live_pair flake failed:\n{stderr}"))
}

pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("evaluated {key} is not a string: {}", v[key]))
}

/// Replaces `from` (which must occur) with `to` in an evaluated text.
pub fn substitute(script: &str, from: &str, to: &Path) -> String {
    assert!(script.contains(from), "{from} not in:\n{script}");
    script.replace(from, &to.display().to_string())
}

/// postgresql.conf: the evaluated settings, except the ones the test
/// overrides, then the overrides.
pub fn render_conf(settings: &Value, overrides: &[(&str, String)]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut conf = String::from("# evaluated services.postgresql.settings\n");
    let map = settings.as_object().expect("settings is an attribute set");
    for (key, value) in map {
        if overrides.iter().any(|(k, _)| k == key) {
            continue;
        }
        let rendered = match value {
            Value::Bool(b) => if *b { "on" } else { "off" }.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => quote(s),
            other => panic!("setting {key} has an unexpected value {other}"),
        };
        conf.push_str(&format!("{key} = {rendered}\n"));
    }
    conf.push_str("# this host's address, port and socket\n");
    for (key, value) in overrides {
        conf.push_str(&format!("{key} = {}\n", quote(value)));
    }
    conf
}

// -------------------------------------------------------------------- env --

/// The running two-host cluster. Dropping it stops every server, removes
/// the routes (when it is the last user) and the files.
pub struct Env {
    pub hosts: [Host; 2],
    /// The copy of `fixtures/clusters/live_pair`, with `nixflip.toml`.
    pub flake: PathBuf,
    pub pg_bin: PathBuf,
    pub client_key: PathBuf,
    pub known_hosts: PathBuf,
    /// The replication password's file (as the module reads it).
    pub password_file: PathBuf,
    /// [`evaluate`] of the flake as it was set up.
    pub eval: Value,
    /// The `min_free_percent` the default configuration uses: half of what
    /// the data directories' filesystem has free.
    pub min_free_percent: f64,
    routes: Option<Routes>,
    base: tempfile::TempDir,
}

impl Env {
    /// alpha streaming to beta, Synapse's stand-in running on alpha, both
    /// sshds up, `nixflip.toml` written with the default thresholds.
    pub fn start() -> Env {
        let pg_bin = require_environment();
        let base = tempfile::Builder::new()
            .prefix("nixflip-live-")
            .tempdir_in(scratch_parent())
            .expect("tempdir");
        // postgres must reach its files below the base.
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).expect("chmod base");
        let b = base.path().to_path_buf();
        let routes = Routes::add();
        let mut hosts = [
            Host::new("alpha", "127.0.0.2", &b, &pg_bin),
            Host::new("beta", "127.0.0.3", &b, &pg_bin),
        ];
        // Synapse listens on the same port on every host, as the module's
        // listener does (8008): a public URL reaches whichever is primary.
        let synapse_port = free_port_on(&[hosts[0].address, hosts[1].address]);
        for host in &mut hosts {
            host.synapse_port = synapse_port;
        }

        // The flake, with beta following alpha's port.
        let flake = b.join("flake");
        crate::common::copy_flake("fixtures/clusters/live_pair", &flake);
        let beta_file = flake.join("hosts/beta.nix");
        let beta_text = fs::read_to_string(&beta_file).expect("read beta.nix");
        assert_eq!(beta_text.matches("peerPort = 5432;").count(), 1);
        fs::write(
            &beta_file,
            beta_text.replace(
                "peerPort = 5432;",
                &format!("peerPort = {};", hosts[0].pg_port),
            ),
        )
        .expect("write beta.nix");
        // After a flip alpha is beta's standby: its peerPort is beta's.
        let alpha_file = flake.join("hosts/alpha.nix");
        let alpha_text = fs::read_to_string(&alpha_file).expect("read alpha.nix");
        let peer = "peerHost = \"127.0.0.3\";";
        assert_eq!(alpha_text.matches(peer).count(), 1);
        fs::write(
            &alpha_file,
            alpha_text.replace(
                peer,
                &format!("{peer}\n      peerPort = {};", hosts[1].pg_port),
            ),
        )
        .expect("write alpha.nix");
        let eval = evaluate(&flake);

        let secrets = b.join("secrets");
        mkdir(&secrets, 0o755);
        chown_postgres(&secrets);
        let password_file = secrets.join("replication-password");
        write_file(&password_file, &format!("{PASSWORD}\n"), 0o400);
        chown_postgres(&password_file);

        let statvfs = rustix::fs::statvfs(&b).expect("statvfs of the temp dir");
        let free = statvfs.f_bavail as f64 * 100.0 / statvfs.f_blocks.max(1) as f64;

        let env = Env {
            hosts,
            flake,
            pg_bin,
            client_key: b.join("client_key"),
            known_hosts: b.join("known_hosts"),
            password_file,
            eval,
            min_free_percent: (free / 2.0).floor(),
            routes: Some(routes),
            base,
        };
        env.make_keys();
        let python = on_path("python3").expect("python3 on PATH");
        let synapse_script = b.join("synapse-standin.py");
        write_file(&synapse_script, SYNAPSE_STANDIN, 0o755);
        for host in &env.hosts {
            write_file(
                &host.bin.join("systemctl"),
                &systemctl_script(host, &python, &synapse_script),
                0o755,
            );
            // NixOS puts PostgreSQL's programs on PATH; Debian keeps them
            // in their version's directory.
            for program in ["pg_controldata", "pg_rewind", "pg_basebackup", "postgres"] {
                std::os::unix::fs::symlink(env.pg_bin.join(program), host.bin.join(program))
                    .unwrap_or_else(|e| panic!("link {program}: {e}"));
            }
            mkdir(&host.dir.join("gates"), 0o755);
        }
        env.start_primary();
        env.start_standby();
        env.hosts[0].systemctl(&["start", "matrix-synapse"]);
        for host in &env.hosts {
            host.start_sshd();
        }
        env.write_config("");
        env.wait_streaming();
        env
    }

    pub fn alpha(&self) -> &Host {
        &self.hosts[0]
    }

    pub fn beta(&self) -> &Host {
        &self.hosts[1]
    }

    pub fn base(&self) -> &Path {
        self.base.path()
    }

    /// The client key, the host keys, authorized_keys and known_hosts.
    fn make_keys(&self) {
        let keygen = |path: &Path| {
            run(
                Command::new("ssh-keygen")
                    .args([
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-C",
                        "nixflip-live-test",
                        "-f",
                    ])
                    .arg(path),
                "ssh-keygen",
            );
        };
        keygen(&self.client_key);
        let authorized = self.base().join("authorized_keys");
        fs::copy(self.client_key.with_extension("pub"), &authorized).expect("authorized_keys");
        let mut known = String::new();
        for host in &self.hosts {
            let key = host.dir.join("ssh_host_ed25519_key");
            keygen(&key);
            let public = fs::read_to_string(key.with_extension("pub")).expect("host key");
            let mut fields = public.split_whitespace();
            let (kind, blob) = (fields.next().expect("type"), fields.next().expect("key"));
            known.push_str(&format!(
                "[{}]:{} {kind} {blob}\n",
                host.address, host.ssh_port
            ));
            write_file(
                &host.sshd_config,
                &sshd_config(host, &key, &authorized),
                0o600,
            );
        }
        write_file(&self.known_hosts, &known, 0o644);
        // sshd's privilege separation directory.
        mkdir(Path::new("/run/sshd"), 0o755);
    }

    /// Where this host's server listens; and no fsync: a test machine's
    /// disk is shared and slow, and nothing here survives an OS crash
    /// anyway (a killed server loses nothing without fsync either).
    pub fn overrides(&self, host: &Host) -> Vec<(&'static str, String)> {
        vec![
            ("port", host.pg_port.to_string()),
            ("listen_addresses", host.address.to_string()),
            (
                "unix_socket_directories",
                host.socket_dir.display().to_string(),
            ),
            ("fsync", "off".to_string()),
        ]
    }

    /// Runs a host's evaluated TLS script with its directory moved into the
    /// host's; returns its settings pointing there.
    pub fn tls(&self, host: &Host, evaluated: &Value) -> Value {
        let dir = host.dir.join("tls");
        let script = host.dir.join("tls.sh");
        write_file(
            &script,
            &substitute(text(evaluated, "tlsScript"), EVAL_TLS_DIR, &dir),
            0o755,
        );
        run(
            Command::new("bash").arg("-e").arg(&script),
            "the evaluated matrix-cluster-postgresql-tls script",
        );
        let mut settings = evaluated["settings"].clone();
        for name in ["ssl_cert_file", "ssl_key_file"] {
            let moved = text(&settings, name).replace(EVAL_TLS_DIR, &dir.display().to_string());
            settings[name] = Value::String(moved);
        }
        settings
    }

    fn start_primary(&self) {
        let (host, eval) = (self.alpha(), &self.eval["alpha"]);
        mkdir(&host.data, 0o700);
        chown_postgres(&host.data);
        run(
            as_postgres(&self.pg_bin.join("initdb"))
                .args(["-A", "reject", "-U", "postgres", "--no-sync", "-D"])
                .arg(&host.data),
            "initdb (alpha)",
        );
        let settings = self.tls(host, eval);
        fs::write(
            host.data.join("postgresql.conf"),
            render_conf(&settings, &self.overrides(host)),
        )
        .expect("write postgresql.conf");
        // The evaluated lines, then peer for local superuser sessions (NixOS
        // has the same kind of line).
        fs::write(
            host.data.join("pg_hba.conf"),
            format!("{}local all postgres peer\n", text(eval, "authentication")),
        )
        .expect("write pg_hba.conf");
        host.systemctl(&["start", "postgresql"]);
        // initialScript, the replication role as ensureUsers declares it,
        // and its password from the evaluated script.
        let init = host.dir.join("init.sql");
        fs::write(&init, text(eval, "initialScript")).expect("write init.sql");
        run(host.psql().arg("-f").arg(&init), "initialScript");
        let user = &eval["ensureUsers"][0];
        let clauses: Vec<String> = user["ensureClauses"]
            .as_object()
            .expect("ensureClauses")
            .iter()
            // As NixOS does: a clause that is null is left as PostgreSQL has it.
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                format!(
                    "{}{}",
                    if v == &Value::Bool(true) { "" } else { "NO" },
                    k.to_uppercase()
                )
            })
            .collect();
        host.sql(&format!(
            "CREATE ROLE \"{}\" WITH {}",
            user["name"].as_str().expect("role name"),
            clauses.join(" ")
        ));
        let script = host.dir.join("replication-password.sh");
        write_file(
            &script,
            &substitute(
                text(eval, "passwordScript"),
                EVAL_PASSWORD_FILE,
                &self.password_file,
            ),
            0o755,
        );
        run(
            as_postgres(Path::new("/bin/bash"))
                .arg("-e")
                .arg(&script)
                .env(
                    "PATH",
                    format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.pg_bin.display()),
                )
                .env("PGHOST", &host.socket_dir)
                .env("PGPORT", host.pg_port.to_string())
                .current_dir(&host.dir),
            "the evaluated replication-password script",
        );
    }

    fn start_standby(&self) {
        let (primary, host, eval) = (self.alpha(), self.beta(), &self.eval["beta"]);
        mkdir(&host.data, 0o700);
        chown_postgres(&host.data);
        // From beta's address, as the replication role, over TLS.
        run(
            as_postgres(&self.pg_bin.join("pg_basebackup"))
                .args(["-h", primary.address, "-p", &primary.pg_port.to_string()])
                .args([
                    "-U",
                    "replicator",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "--no-sync",
                    "-w",
                    "-D",
                ])
                .arg(&host.data)
                .env("PGPASSWORD", PASSWORD)
                .env("PGSSLMODE", "require")
                .current_dir(&host.dir),
            "pg_basebackup of alpha",
        );
        let run_dir = host.dir.join("matrix-cluster");
        mkdir(&run_dir, 0o755);
        let data_dir = text(eval, "dataDir").to_string();
        let setup = substitute(
            text(eval, "setupScript"),
            EVAL_PASSWORD_FILE,
            &self.password_file,
        );
        let setup = substitute(&setup, EVAL_PASSFILE, &run_dir.join("pgpass"));
        let setup = substitute(&setup, &data_dir, &host.data);
        let script = host.dir.join("standby-setup.sh");
        write_file(&script, &setup, 0o755);
        run(
            Command::new("bash").arg("-e").arg(&script),
            "the evaluated matrix-cluster-standby-setup script",
        );
        let mut settings = self.tls(host, eval);
        let include = text(&settings, "include_if_exists")
            .replace(&data_dir, &host.data.display().to_string());
        settings["include_if_exists"] = Value::String(include);
        fs::write(
            host.data.join("postgresql.conf"),
            render_conf(&settings, &self.overrides(host)),
        )
        .expect("write postgresql.conf");
        fs::write(
            host.data.join("pg_hba.conf"),
            format!("{}local all postgres peer\n", text(eval, "authentication")),
        )
        .expect("write pg_hba.conf");
        host.systemctl(&["start", "postgresql"]);
    }

    /// Until alpha shows beta streaming from beta's own address.
    pub fn wait_streaming(&self) {
        self.alpha().wait_for(
            &format!(
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND client_addr = '{}'",
                self.beta().address
            ),
            "1",
        );
    }

    /// Until beta has replayed everything alpha has written.
    pub fn wait_replayed(&self) {
        let lsn = self.alpha().sql("SELECT pg_current_wal_lsn()");
        self.beta().wait_for(
            &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"),
            "t",
        );
    }

    /// Until `standby` has replayed everything `primary` has written.
    pub fn wait_replayed_from(&self, primary: &Host, standby: &Host) {
        let lsn = primary.sql("SELECT pg_current_wal_lsn()");
        standby.wait_for(
            &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"),
            "t",
        );
    }

    /// Write `nixflip.toml`: targets, known_hosts, the client key, where
    /// each host's services are, and the `[live]` keys in `live` (after the
    /// defaults, which they may not repeat: `min_free_percent` is set unless
    /// `live` sets it).
    pub fn write_config(&self, live: &str) {
        let mut toml = format!(
            "[live]\nknown_hosts = {}\nidentity_file = {}\nconnect_timeout = 30\ncommand_timeout = 120\n",
            toml_str(&self.known_hosts.display().to_string()),
            toml_str(&self.client_key.display().to_string()),
        );
        if !live.contains("min_free_percent") {
            toml.push_str(&format!("min_free_percent = {}\n", self.min_free_percent));
        }
        toml.push_str(live);
        if !live.is_empty() && !live.ends_with('\n') {
            toml.push('\n');
        }
        for host in &self.hosts {
            toml.push_str(&format!(
                "\n[hosts.{name}]\ntarget = {target}\n\n[hosts.{name}.live]\npg_port = {port}\n\
                 pg_socket_dir = {sock}\npg_data = {data}\nsynapse_url = {url}\n",
                name = host.name,
                target = toml_str(&host.target()),
                port = host.pg_port,
                sock = toml_str(&host.socket_dir.display().to_string()),
                data = toml_str(&host.data.display().to_string()),
                url = toml_str(&host.synapse_url()),
            ));
        }
        fs::write(self.flake.join("nixflip.toml"), toml).expect("write nixflip.toml");
    }

    /// Rewrite a declared value in a host file of the flake copy (the text
    /// `from` must occur once).
    pub fn declare(&self, host: &str, from: &str, to: &str) {
        let file = self.flake.join(format!("hosts/{host}.nix"));
        let text = fs::read_to_string(&file).expect("read host file");
        assert_eq!(
            text.matches(from).count(),
            1,
            "{from} in {}:\n{text}",
            file.display()
        );
        fs::write(&file, text.replacen(from, to, 1)).expect("write host file");
    }

    /// The real binary, on this environment's flake, without colour.
    pub fn nixflip(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nixflip"));
        cmd.arg("--flake").arg(&self.flake).env("NO_COLOR", "1");
        cmd
    }

    /// `nixflip status --live --json`: the exit code and the JSON.
    pub fn status_json(&self) -> (Option<i32>, Value) {
        let out = self
            .nixflip()
            .args(["status", "--live", "--json"])
            .output()
            .expect("run nixflip");
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status --live --json printed no JSON ({e}):\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), json)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for host in &self.hosts {
            host.stop_everything();
        }
        drop(self.routes.take());
    }
}

/// The finding ids of a `status --live --json` answer, sorted.
pub fn finding_ids(json: &Value) -> Vec<String> {
    let mut ids: Vec<String> = json["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The findings with `id` about `host`.
pub fn findings_of<'a>(json: &'a Value, id: &str, host: &str) -> Vec<&'a Value> {
    json["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["id"] == id && f["host"] == host)
                .collect()
        })
        .unwrap_or_default()
}

/// One member of a `status --live --json` answer.
pub fn member<'a>(json: &'a Value, host: &str) -> &'a Value {
    json["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["host"] == host))
        .unwrap_or_else(|| panic!("no member {host} in {json:#}"))
}
