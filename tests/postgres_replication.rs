//! The cluster module's PostgreSQL replication set-up, run for real.
//!
//! One real `nix eval` of `fixtures/clusters/loopback_pair` (alpha primary,
//! beta standby, both on 127.0.0.1) yields what the module generates for
//! both hosts: postgresql.conf settings, the primary's pg_hba lines and
//! replication role, its password script, the standby's setup script and
//! its data directory. The test then runs real PostgreSQL (Debian's
//! `postgresql` package) with exactly that: a primary, a base backup taken
//! as the replication role over TCP + SSL, and a standby configured by the
//! evaluated setup script, and checks that it streams.
//!
//! Requirements (CI installs them in `.ci/run`): root (the setup script
//! chowns files to `postgres`, and the servers run as that user through
//! `runuser`), the `postgresql` and `openssl` packages, and an OS user
//! `postgres`. Missing requirements fail the test with what to install.

mod common;

use serde_json::Value;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long replication may take to show up; polled, not slept.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The replication password. Colons, a backslash, quotes and spaces: the
/// passfile escaping and psql's quoting must both cope. The file gets a
/// trailing newline, as secret files often have.
const PASSWORD: &str = "r3pl:ic\\a'tor \"pw\" x";

/// Paths as the module evaluates them; the test substitutes temp paths.
const EVAL_PASSWORD_FILE: &str = "/run/secrets/postgres-replication";
const EVAL_PASSFILE: &str = "/run/matrix-cluster/pgpass";
const EVAL_TLS_DIR: &str = "/var/lib/matrix-cluster/postgresql-tls";

const INSTALL_HINT: &str = "tests/postgres_replication.rs runs real PostgreSQL as root: \
     on Debian, `apt-get install postgresql openssl` (or set PG_BIN to a directory with \
     initdb, pg_ctl, postgres, pg_basebackup and psql) and run the tests as root";

// ------------------------------------------------------------ environment --

/// The PostgreSQL binaries: $PG_BIN, else the newest /usr/lib/postgresql/*/bin.
fn pg_bin() -> PathBuf {
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
fn require_environment() -> PathBuf {
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "not running as root; {INSTALL_HINT}"
    );
    let bin = pg_bin();
    for tool in ["initdb", "pg_ctl", "postgres", "pg_basebackup", "psql"] {
        assert!(
            bin.join(tool).is_file(),
            "{} is missing; {INSTALL_HINT}",
            bin.join(tool).display()
        );
    }
    for tool in ["openssl", "runuser", "bash", "install"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "`{tool}` is not on PATH; {INSTALL_HINT}");
    }
    let user = Command::new("id").args(["-u", "postgres"]).output();
    assert!(
        user.is_ok_and(|o| o.status.success()),
        "there is no OS user `postgres`; {INSTALL_HINT}"
    );
    bin
}

// --------------------------------------------------------------- commands --

fn run(cmd: &mut Command, what: &str) -> Output {
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

/// `program` run as the OS user `postgres` (the environment is kept).
fn as_postgres(program: &Path) -> Command {
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

fn free_port() -> u16 {
    common::free_port_on(&["127.0.0.1"])
}

/// A running PostgreSQL server; stopped when dropped, even on a failed assert.
struct Server {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    socket_dir: PathBuf,
    log: PathBuf,
}

impl Server {
    fn start(bin: &Path, data: &Path, port: u16, socket_dir: &Path, name: &str) -> Server {
        let server = Server {
            bin: bin.to_path_buf(),
            data: data.to_path_buf(),
            port,
            socket_dir: socket_dir.to_path_buf(),
            // A directory postgres may write to, next to the data dirs.
            log: socket_dir.join(format!("{name}.log")),
        };
        let log = &server.log;
        let out = as_postgres(&bin.join("pg_ctl"))
            .args(["start", "-w", "-t", "30", "-D"])
            .arg(data)
            .arg("-l")
            .arg(log)
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start ({name}) failed: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            fs::read_to_string(log).unwrap_or_default()
        );
        server
    }

    /// One SQL statement through psql as the superuser, over the socket.
    fn sql(&self, statement: &str) -> String {
        let out = run(
            as_postgres(&self.bin.join("psql"))
                .args([
                    "-X",
                    "-A",
                    "-t",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    "postgres",
                ])
                .arg("-h")
                .arg(&self.socket_dir)
                .args(["-p", &self.port.to_string(), "-c", statement]),
            &format!("psql on port {}: {statement}", self.port),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A SQL file run with `psql -f`, as NixOS runs `initialScript`.
    fn sql_file(&self, script: &str) {
        let file = self.socket_dir.join("script.sql");
        fs::write(&file, script).expect("write SQL file");
        run(
            as_postgres(&self.bin.join("psql"))
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f"])
                .arg(&file)
                .arg("-h")
                .arg(&self.socket_dir)
                .args(["-p", &self.port.to_string()]),
            &format!("psql -f on port {}:\n{script}", self.port),
        );
    }

    /// Polls `statement` until it returns `want` or TIMEOUT passes.
    fn wait_for(&self, statement: &str, want: &str) {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < TIMEOUT {
            last = self.sql(statement);
            if last == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "after {TIMEOUT:?}, `{statement}` on port {} returns {last:?}, not {want:?}\nserver log:\n{}",
            self.port,
            fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&self.data)
            .output();
    }
}

// ------------------------------------------------------------- evaluation --

/// A scratch copy of the fixture with beta's peerPort set to `port`.
fn fixture_copy(port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    common::copy_flake("fixtures/clusters/loopback_pair", dir.path());
    let beta = dir.path().join("hosts/beta.nix");
    let text = fs::read_to_string(&beta).expect("read beta.nix");
    assert_eq!(text.matches("peerPort = 5432;").count(), 1, "{text}");
    fs::write(
        &beta,
        text.replace("peerPort = 5432;", &format!("peerPort = {port};")),
    )
    .expect("write beta.nix");
    dir
}

/// What the module generates for alpha (primary) and beta (standby).
fn evaluate(flake: &Path) -> Value {
    let apply = r#"cs: let
      host = c: let
        p = c.config.services.postgresql;
        s = c.config.systemd.services;
        m = c.config.hectic.generic.matrix-cluster;
      in {
        inherit (p) settings authentication ensureUsers dataDir;
        initialScript = if p.initialScript == null then null else p.initialScript.text;
        passwordFile = toString m.replication.passwordFile;
        passwordScript = s.matrix-cluster-replication-password.script or null;
        passwordUser = s.matrix-cluster-replication-password.serviceConfig.User or null;
        setupScript = s.matrix-cluster-standby-setup.script or null;
        tlsScript = s.matrix-cluster-postgresql-tls.script;
      };
    in { primary = host cs."alpha|x86_64-linux"; standby = host cs."beta|x86_64-linux"; }"#;
    common::nix_eval(flake, "nixosConfigurations", apply)
        .unwrap_or_else(|stderr| panic!("nix eval of the loopback_pair fixture failed:\n{stderr}"))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("evaluated {key} is not a string: {}", v[key]))
}

/// postgresql.conf from evaluated settings (minus the keys the test
/// overrides), then the overrides.
fn render_conf(settings: &Value, overrides: &[(&str, String)]) -> String {
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
    conf.push_str("# test overrides\n");
    for (key, value) in overrides {
        conf.push_str(&format!("{key} = {}\n", quote(value)));
    }
    conf
}

/// Replaces `from` (which must occur) with `to` in an evaluated script.
fn substitute(script: &str, from: &str, to: &Path) -> String {
    assert!(script.contains(from), "{from} not in script:\n{script}");
    script.replace(from, &to.display().to_string())
}

fn write_script(path: &Path, script: &str) {
    fs::write(path, script).expect("write script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod script");
}

/// Runs a host's evaluated TLS script (as root, like its unit) with the key
/// pair's directory moved to `dir`; returns the host's settings pointing there.
fn make_tls(host: &Value, dir: &Path, path: &str) -> Value {
    let script = dir.with_extension("sh");
    write_script(
        &script,
        &substitute(text(host, "tlsScript"), EVAL_TLS_DIR, dir),
    );
    let run_it = || {
        run(
            Command::new("bash")
                .arg("-e")
                .arg(&script)
                .env("PATH", path),
            "the evaluated matrix-cluster-postgresql-tls script",
        )
    };
    run_it();
    let cert = fs::read(dir.join("server.crt")).expect("the script wrote server.crt");
    run_it(); // a second start keeps the pair
    assert_eq!(fs::read(dir.join("server.crt")).expect("server.crt"), cert);
    let key = fs::metadata(dir.join("server.key")).expect("the script wrote server.key");
    assert_eq!(key.mode() & 0o777, 0o600);
    let mut settings = host["settings"].clone();
    for name in ["ssl_cert_file", "ssl_key_file"] {
        let moved = text(&settings, name).replace(EVAL_TLS_DIR, &dir.display().to_string());
        assert!(
            Path::new(&moved).is_file(),
            "{name} = {moved} does not exist"
        );
        settings[name] = Value::String(moved);
    }
    settings
}

// ------------------------------------------------------------------- test --

#[test]
fn generated_cluster_module_streams_wal_to_the_standby() {
    let bin = require_environment();
    let started = Instant::now();
    let (primary_port, standby_port) = (free_port(), free_port());
    assert_ne!(primary_port, standby_port);

    let flake = fixture_copy(primary_port);
    let eval = evaluate(flake.path());
    let (primary, standby) = (&eval["primary"], &eval["standby"]);

    // Temp layout; the base is world-traversable so that postgres reaches
    // its files (tempdir() makes it 0700, root's).
    let base = tempfile::tempdir().expect("tempdir");
    let base = base.path();
    fs::set_permissions(base, fs::Permissions::from_mode(0o755)).expect("chmod base");
    let sock = base.join("sock");
    let secrets = base.join("secrets");
    let run_dir = base.join("run"); // stands for the RuntimeDirectory
    let bin_wrap = base.join("bin");
    for d in [&sock, &secrets, &run_dir, &bin_wrap] {
        fs::create_dir(d).expect("mkdir");
    }
    for d in [&sock, &secrets] {
        chown_postgres(d);
    }
    let primary_data = base.join("primary");
    let standby_data = base.join("standby");
    let password_file = secrets.join("replication-password");
    let passfile = run_dir.join("pgpass");
    fs::write(&password_file, format!("{PASSWORD}\n")).expect("write password file");
    chown_postgres(&password_file);
    fs::set_permissions(&password_file, fs::Permissions::from_mode(0o400)).expect("chmod");
    assert_eq!(text(primary, "passwordFile"), EVAL_PASSWORD_FILE);
    assert_eq!(text(standby, "passwordFile"), EVAL_PASSWORD_FILE);

    let path = format!(
        "{}:{}:/usr/sbin:/usr/bin:/sbin:/bin",
        bin_wrap.display(),
        bin.display()
    );
    let overrides = |port: u16| {
        vec![
            ("port", port.to_string()),
            ("listen_addresses", "127.0.0.1".to_string()),
            ("unix_socket_directories", sock.display().to_string()),
        ]
    };
    // The evaluated lines, then peer for the test's own superuser
    // connections over the socket (NixOS appends the same kind of line).
    let hba = |evaluated: &str| format!("{evaluated}local all postgres peer\n");

    // 1. The primary.
    fs::create_dir(&primary_data).expect("mkdir primary");
    chown_postgres(&primary_data);
    fs::set_permissions(&primary_data, fs::Permissions::from_mode(0o700)).expect("chmod");
    run(
        as_postgres(&bin.join("initdb"))
            .args(["-A", "reject", "-U", "postgres", "-D"])
            .arg(&primary_data),
        "initdb (primary)",
    );
    // The key pair from the evaluated unit: the pg_hba lines are hostssl,
    // and the evaluated settings turn ssl on.
    let primary_settings = &make_tls(primary, &base.join("primary-tls"), &path);
    assert_eq!(primary_settings["ssl"], Value::Bool(true));
    fs::write(
        primary_data.join("postgresql.conf"),
        render_conf(primary_settings, &overrides(primary_port)),
    )
    .expect("write primary postgresql.conf");
    fs::write(
        primary_data.join("pg_hba.conf"),
        hba(text(primary, "authentication")),
    )
    .expect("write primary pg_hba.conf");
    let primary_server = Server::start(&bin, &primary_data, primary_port, &sock, "primary");

    // Synapse's database, from the evaluated initialScript.
    primary_server.sql_file(text(primary, "initialScript"));

    // 2. The replication role, as ensureUsers declares it.
    let users = primary["ensureUsers"].as_array().expect("ensureUsers");
    assert_eq!(users.len(), 1, "{users:?}");
    let role = users[0]["name"].as_str().expect("role name");
    let clauses = users[0]["ensureClauses"]
        .as_object()
        .expect("ensureClauses");
    // As NixOS does: a clause that is null is left as PostgreSQL has it.
    let clause_sql: Vec<String> = clauses
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let on = v.as_bool().expect("clause is a bool or null");
            format!("{}{}", if on { "" } else { "NO" }, k.to_uppercase())
        })
        .collect();
    primary_server.sql(&format!(
        "CREATE ROLE \"{role}\" WITH {}",
        clause_sql.join(" ")
    ));

    // The evaluated password script, as the unit's User, with psql wrapped
    // in a recorder of its arguments (it then runs the real psql): the
    // password must be read by psql, never passed on a command line.
    assert_eq!(primary["passwordUser"], Value::String("postgres".into()));
    let argv_log = base.join("psql-argv.log");
    write_script(
        &bin_wrap.join("psql"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> {log}\nexec {psql} \"$@\"\n",
            log = argv_log.display(),
            psql = bin.join("psql").display()
        ),
    );
    fs::write(&argv_log, "").expect("create argv log");
    chown_postgres(&argv_log);
    let password_script = base.join("replication-password.sh");
    write_script(
        &password_script,
        &substitute(
            text(primary, "passwordScript"),
            EVAL_PASSWORD_FILE,
            &password_file,
        ),
    );
    let pg_env = |cmd: &mut Command| {
        cmd.env("PATH", &path)
            .env("PGHOST", &sock)
            .env("PGPORT", primary_port.to_string())
            .current_dir(base);
    };
    let mut cmd = as_postgres(Path::new("/bin/bash"));
    cmd.arg("-e").arg(&password_script);
    pg_env(&mut cmd);
    run(&mut cmd, "the evaluated replication-password script");
    let argv = fs::read_to_string(&argv_log).expect("read argv log");
    assert!(!argv.is_empty(), "the password script did not run psql");
    for word in PASSWORD.split(' ') {
        assert!(
            !argv.contains(word),
            "psql got the password on its command line:\n{argv}"
        );
    }
    // A missing password file must fail the unit, not set an empty password.
    let broken = base.join("replication-password-missing.sh");
    write_script(
        &broken,
        &substitute(
            text(primary, "passwordScript"),
            EVAL_PASSWORD_FILE,
            &secrets.join("absent"),
        ),
    );
    let mut cmd = as_postgres(Path::new("/bin/bash"));
    cmd.arg("-e").arg(&broken);
    pg_env(&mut cmd);
    let out = cmd.output().expect("run password script");
    assert!(
        !out.status.success(),
        "the password script succeeded without a password file"
    );
    assert_eq!(
        primary_server.sql(&format!(
            "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = '{role}'"
        )),
        "t",
        "the replication role has no SCRAM password"
    );

    // 4a. The evaluated setup script refuses an empty data directory.
    let data_dir = text(standby, "dataDir").to_string();
    fs::create_dir(&standby_data).expect("mkdir standby");
    chown_postgres(&standby_data);
    fs::set_permissions(&standby_data, fs::Permissions::from_mode(0o700)).expect("chmod");
    let setup = substitute(
        text(standby, "setupScript"),
        EVAL_PASSWORD_FILE,
        &password_file,
    );
    let setup = substitute(&setup, EVAL_PASSFILE, &passfile);
    let setup = substitute(&setup, &data_dir, &standby_data);
    let setup_script = base.join("standby-setup.sh");
    write_script(&setup_script, &setup);
    let refused = Command::new("bash")
        .arg("-e")
        .arg(&setup_script)
        .env("PATH", &path)
        .output()
        .expect("run the standby setup script");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing to start a standby without a base backup"),
        "{stderr}"
    );
    assert!(!passfile.exists() && !standby_data.join("standby.signal").exists());

    // 3. The base backup into the (empty) directory, as the replication
    // role with its password, over TCP; the only pg_hba line that admits it
    // is hostssl.
    run(
        as_postgres(&bin.join("pg_basebackup"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port.to_string(),
                "-U",
                role,
            ])
            .args(["-X", "stream", "-c", "fast", "-w", "-D"])
            .arg(&standby_data)
            .env("PGPASSWORD", PASSWORD)
            .env("PGSSLMODE", "require")
            .current_dir(base),
        "pg_basebackup as the replication role",
    );
    let no_ssl = as_postgres(&bin.join("psql"))
        .arg(format!(
            "host=127.0.0.1 port={primary_port} user={role} dbname=postgres \
             replication=true sslmode=disable"
        ))
        .args(["-X", "-w", "-c", "IDENTIFY_SYSTEM"])
        .env("PGPASSWORD", PASSWORD)
        .current_dir(base)
        .output()
        .expect("run psql");
    let stderr = String::from_utf8_lossy(&no_ssl.stderr);
    assert!(
        !no_ssl.status.success() && stderr.contains("no pg_hba.conf entry"),
        "a replication connection without SSL was not refused by pg_hba: {stderr}"
    );

    // 4b. The setup script on the base backup: passfile, conninfo, signal.
    run(
        Command::new("bash")
            .arg("-e")
            .arg(&setup_script)
            .env("PATH", &path),
        "the evaluated standby setup script",
    );
    for f in [
        passfile.clone(),
        standby_data.join("matrix-cluster-standby.conf"),
        standby_data.join("standby.signal"),
    ] {
        let meta = fs::metadata(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(meta.mode() & 0o777, 0o600, "{}", f.display());
        let owner = Command::new("stat").args(["-c", "%U"]).arg(&f).output();
        let owner = String::from_utf8_lossy(&owner.expect("stat").stdout).to_string();
        assert_eq!(owner.trim(), "postgres", "{}", f.display());
    }
    let standby_conf_text =
        fs::read_to_string(standby_data.join("matrix-cluster-standby.conf")).expect("read conf");
    let passfile_text = fs::read_to_string(&passfile).expect("read passfile");

    // 5. The standby: evaluated settings (include_if_exists points at the
    // file the script wrote) and the standby's own pg_hba lines.
    let mut standby_settings = make_tls(standby, &base.join("standby-tls"), &path);
    let include = standby_settings["include_if_exists"]
        .as_str()
        .expect("include_if_exists")
        .replace(&data_dir, &standby_data.display().to_string());
    assert_eq!(
        include,
        standby_data
            .join("matrix-cluster-standby.conf")
            .display()
            .to_string()
    );
    standby_settings["include_if_exists"] = Value::String(include);
    fs::write(
        standby_data.join("postgresql.conf"),
        render_conf(&standby_settings, &overrides(standby_port)),
    )
    .expect("write standby postgresql.conf");
    fs::write(
        standby_data.join("pg_hba.conf"),
        hba(text(standby, "authentication")),
    )
    .expect("write standby pg_hba.conf");
    let standby_server = Server::start(&bin, &standby_data, standby_port, &sock, "standby");

    assert_eq!(standby_server.sql("SELECT pg_is_in_recovery()"), "t");
    assert_eq!(primary_server.sql("SELECT pg_is_in_recovery()"), "f");
    primary_server.wait_for(
        "SELECT count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) \
         WHERE r.state = 'streaming' AND s.ssl AND r.usename = 'replicator'",
        "1",
    );
    assert_eq!(
        primary_server.sql("SELECT count(*) FROM pg_stat_replication"),
        "1"
    );
    let token = format!("row-{}-{}", std::process::id(), primary_port);
    primary_server.sql("CREATE TABLE flip_probe (v text)");
    primary_server.sql(&format!("INSERT INTO flip_probe VALUES ('{token}')"));
    standby_server.wait_for(
        "SELECT count(*) FROM pg_class WHERE relname = 'flip_probe'",
        "1",
    );
    standby_server.wait_for(
        &format!("SELECT count(*) FROM flip_probe WHERE v = '{token}'"),
        "1",
    );
    // Synapse's database came over too.
    assert_eq!(
        standby_server.sql("SELECT datcollate FROM pg_database WHERE datname = 'matrix-synapse'"),
        "C"
    );

    // The generated text, with this run's port and paths redacted.
    let redact = |s: &str| {
        s.replace(&base.display().to_string(), "TMP")
            .replace(&format!("port={primary_port}"), "port=PORT")
            .replace(&format!(":{primary_port}:"), ":PORT:")
    };
    insta::assert_snapshot!(
        "generated_replication_config",
        format!(
            "# pg_hba lines (primary, services.postgresql.authentication)\n{}\
             # matrix-cluster-standby.conf (written by matrix-cluster-standby-setup)\n{}\
             # passfile (written by matrix-cluster-standby-setup)\n{}",
            text(primary, "authentication"),
            redact(&standby_conf_text),
            redact(&passfile_text)
        )
    );
    drop(standby_server);
    drop(primary_server);
    eprintln!("postgres_replication: {:?}", started.elapsed());
}
