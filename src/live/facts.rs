//! The facts of one member as it runs: PostgreSQL's role, timeline, LSNs, replication and slots,
//! the services, `standby.signal`, disk space. It must never run a remote command that changes anything.
//!
//! Per host, over one ssh connection: first one psql session (SQL on stdin,
//! answered as one JSON object), which opens the connection; then, at once,
//! `systemctl is-active`, `test -e DATA/standby.signal`, `stat -f DATA`, and
//! `curl` of Synapse's `/_matrix/client/versions`. psql runs as the PostgreSQL superuser through
//! `runuser -u PG_USER --` (util-linux, on every NixOS system): the remote
//! user is root, and NixOS's pg_hba admits local connections by peer name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::settings::{HostSettings, DEFAULT_PG_DATA_PARENT};
use super::ssh::{RemoteOutput, SshError, Transport};

/// A WAL position, as PostgreSQL writes it (`16/B374D848`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Bytes from `earlier` to `self` (0 when `earlier` is ahead).
    pub fn bytes_after(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = String;
    fn from_str(text: &str) -> Result<Lsn, String> {
        let (high, low) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not an LSN"))?;
        let part =
            |p: &str| u32::from_str_radix(p, 16).map_err(|_| format!("`{text}` is not an LSN"));
        Ok(Lsn((u64::from(part(high)?) << 32) | u64::from(part(low)?)))
    }
}

impl Serialize for Lsn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Lsn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Lsn, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A byte count PostgreSQL computed as `numeric` (`pg_wal_lsn_diff`).
fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.map(|b| b.round() as i64))
}

/// A standby connected to this server (`pg_stat_replication`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replica {
    pub application_name: Option<String>,
    /// The standby's address as this server sees it (`None`: a Unix socket).
    pub client_addr: Option<String>,
    pub state: Option<String>,
    pub sync_state: Option<String>,
    pub sent_lsn: Option<Lsn>,
    pub write_lsn: Option<Lsn>,
    pub flush_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    pub write_lag_seconds: Option<f64>,
    pub flush_lag_seconds: Option<f64>,
    pub replay_lag_seconds: Option<f64>,
    /// WAL between this server's position and the standby's replay position.
    #[serde(deserialize_with = "bytes", default)]
    pub replay_lag_bytes: Option<i64>,
}

/// A replication slot (`pg_replication_slots`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub active: bool,
    pub restart_lsn: Option<Lsn>,
    pub wal_status: Option<String>,
    /// WAL the slot keeps from being removed: from its `restart_lsn` to this
    /// server's position (`None`: the slot reserves nothing).
    #[serde(deserialize_with = "bytes", default)]
    pub retained_bytes: Option<i64>,
}

/// This standby's WAL receiver (`pg_stat_wal_receiver`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalReceiver {
    pub status: Option<String>,
    pub sender_host: Option<String>,
    pub sender_port: Option<u32>,
    pub received_tli: Option<u32>,
    pub flushed_lsn: Option<Lsn>,
    pub slot_name: Option<String>,
}

/// What PostgreSQL itself answers.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PgFacts {
    pub version: String,
    pub data_directory: String,
    /// `pg_is_in_recovery()`: true on a standby.
    pub in_recovery: bool,
    pub timeline: Option<u32>,
    /// `pg_current_wal_lsn()` (a primary only).
    pub current_lsn: Option<Lsn>,
    pub receive_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    pub replay_timestamp: Option<String>,
    pub replay_paused: Option<bool>,
    /// On a standby with received WAL not yet replayed: seconds since the
    /// last replayed transaction (0 when everything received is replayed).
    pub replay_delay_seconds: Option<f64>,
    pub wal_receiver: Option<WalReceiver>,
    pub replication: Vec<Replica>,
    pub slots: Vec<Slot>,
}

/// The live role: what `pg_is_in_recovery()` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LiveRole {
    Primary,
    Standby,
}

impl LiveRole {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveRole::Primary => "primary",
            LiveRole::Standby => "standby",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Postgres {
    /// `systemctl is-active` of the PostgreSQL unit.
    pub unit: Option<String>,
    /// psql got an answer.
    pub running: bool,
    /// Why psql got none.
    pub error: Option<String>,
    #[serde(flatten)]
    pub facts: Option<PgFacts>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Synapse {
    /// `systemctl is-active` of the Synapse unit.
    pub unit: Option<String>,
    /// `/_matrix/client/versions` answered 200 with a `versions` list.
    pub answering: Option<bool>,
    pub url: String,
    /// What answered instead (an HTTP status, curl's message).
    pub error: Option<String>,
}

impl Synapse {
    /// The unit is active or the endpoint answers.
    pub fn running(&self) -> bool {
        self.unit.as_deref() == Some("active") || self.answering == Some(true)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    pub total_bytes: u64,
    /// Free to unprivileged users (PostgreSQL runs as one).
    pub available_bytes: u64,
    pub free_percent: f64,
}

/// Everything nixflip learned about one member.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostFacts {
    pub host: String,
    pub target: String,
    pub reachable: bool,
    /// Why the host could not be reached (ssh's message).
    pub error: Option<String>,
    pub postgres: Postgres,
    pub data_directory: Option<String>,
    pub standby_signal: Option<bool>,
    pub disk: Option<Disk>,
    pub synapse: Synapse,
    /// Commands that failed in a way that leaves a fact unknown.
    pub problems: Vec<String>,
}

impl HostFacts {
    pub fn live_role(&self) -> Option<LiveRole> {
        self.postgres.facts.as_ref().map(|f| {
            if f.in_recovery {
                LiveRole::Standby
            } else {
                LiveRole::Primary
            }
        })
    }

    pub fn pg(&self) -> Option<&PgFacts> {
        self.postgres.facts.as_ref()
    }
}

/// The one SQL session per host. It reads statistics views and calls only
/// functions that report; `statement_timeout` bounds it.
pub const FACTS_SQL: &str = r#"SET statement_timeout = '10s';
WITH here AS (
  SELECT pg_is_in_recovery() AS recovery
), pos AS (
  SELECT CASE WHEN recovery THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS lsn
  FROM here
)
SELECT json_build_object(
  'version', current_setting('server_version'),
  'dataDirectory', current_setting('data_directory'),
  'inRecovery', here.recovery,
  'timeline', CASE WHEN here.recovery
      THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver),
                    (SELECT timeline_id FROM pg_control_checkpoint()))
      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
  'currentLsn', CASE WHEN NOT here.recovery THEN pg_current_wal_lsn() END,
  'receiveLsn', pg_last_wal_receive_lsn(),
  'replayLsn', pg_last_wal_replay_lsn(),
  'replayTimestamp', pg_last_xact_replay_timestamp(),
  'replayPaused', CASE WHEN here.recovery THEN pg_is_wal_replay_paused() END,
  'replayDelaySeconds', CASE
      WHEN NOT here.recovery OR pg_last_wal_receive_lsn() IS NULL THEN NULL
      WHEN pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()
        THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())
      ELSE 0 END,
  'walReceiver', (SELECT json_build_object(
      'status', status, 'senderHost', sender_host, 'senderPort', sender_port,
      'receivedTli', received_tli, 'flushedLsn', flushed_lsn, 'slotName', slot_name)
    FROM pg_stat_wal_receiver),
  'replication', (SELECT coalesce(json_agg(json_build_object(
      'applicationName', application_name, 'clientAddr', host(client_addr),
      'state', state, 'syncState', sync_state,
      'sentLsn', sent_lsn, 'writeLsn', write_lsn, 'flushLsn', flush_lsn, 'replayLsn', replay_lsn,
      'writeLagSeconds', extract(epoch FROM write_lag),
      'flushLagSeconds', extract(epoch FROM flush_lag),
      'replayLagSeconds', extract(epoch FROM replay_lag),
      'replayLagBytes', pg_wal_lsn_diff(pos.lsn, replay_lsn))
      ORDER BY client_addr, application_name), '[]'::json)
    FROM pg_stat_replication),
  'slots', (SELECT coalesce(json_agg(json_build_object(
      'name', slot_name, 'type', slot_type, 'active', active,
      'restartLsn', restart_lsn, 'walStatus', wal_status,
      'retainedBytes', pg_wal_lsn_diff(pos.lsn, restart_lsn))
      ORDER BY slot_name), '[]'::json)
    FROM pg_replication_slots)
)
FROM here, pos;
"#;

/// `psql` as the PostgreSQL superuser over the Unix socket, SQL on stdin,
/// `-v NAME=VALUE` variables for `:'NAME'` in it (each a separate argument,
/// never spliced into the SQL text).
pub fn psql_argv(host: &HostSettings, vars: &[(&str, &str)]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "runuser",
        "-u",
        host.pg_user.as_str(),
        "--",
        "psql",
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        host.pg_socket_dir.as_str(),
        "-p",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.push(host.pg_port.to_string());
    argv.extend(["-d".to_string(), "postgres".to_string()]);
    for (name, value) in vars {
        argv.push("-v".into());
        argv.push(format!("{name}={value}"));
    }
    argv
}

/// The JSON object psql printed (its last non-empty line).
pub fn parse_pg_facts(stdout: &str) -> Result<PgFacts, String> {
    let line = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .ok_or_else(|| "psql printed nothing".to_string())?;
    serde_json::from_str(line).map_err(|e| format!("unexpected answer from psql ({e}): {line}"))
}

/// `systemctl is-active A B` prints one state per unit, in order.
fn parse_units(out: &RemoteOutput) -> (Option<String>, Option<String>) {
    let mut lines = out.stdout.lines().map(|l| l.trim().to_string());
    (
        lines.next().filter(|l| !l.is_empty()),
        lines.next().filter(|l| !l.is_empty()),
    )
}

/// `stat -f -c '%S %b %a'`: block size, total and available blocks.
fn parse_disk(stdout: &str) -> Option<Disk> {
    let numbers: Vec<u64> = stdout
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [block, total, available] = numbers.as_slice() else {
        return None;
    };
    let total_bytes = block.checked_mul(*total)?;
    let available_bytes = block.checked_mul(*available)?;
    let free_percent = if total_bytes == 0 {
        0.0
    } else {
        available_bytes as f64 * 100.0 / total_bytes as f64
    };
    Some(Disk {
        total_bytes,
        available_bytes,
        free_percent,
    })
}

/// curl's answer, printed as the body then a line with the HTTP status.
fn parse_synapse(out: &RemoteOutput) -> (Option<bool>, Option<String>) {
    if out.code == 127 {
        return (None, Some("curl is not installed on the host".into()));
    }
    let text = out.stdout.trim_end();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", text));
    if !out.ok() {
        return (Some(false), Some(out.message()));
    }
    if status.trim() != "200" {
        return (Some(false), Some(format!("HTTP status {}", status.trim())));
    }
    let versions = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("versions").map(serde_json::Value::is_array));
    if versions == Some(true) {
        (Some(true), None)
    } else {
        (
            Some(false),
            Some("the answer has no `versions` list".into()),
        )
    }
}

/// Gather every host's facts, all hosts at once (one thread each). The
/// result is in the order of `hosts`.
pub fn gather(transport: &Transport, hosts: &[HostSettings]) -> Vec<HostFacts> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|host| scope.spawn(move || gather_host(transport, host)))
            .collect();
        handles
            .into_iter()
            .zip(hosts)
            .map(|(handle, host)| {
                handle.join().unwrap_or_else(|_| HostFacts {
                    host: host.host.clone(),
                    target: host.target.to_string(),
                    error: Some("internal error: gathering this host's facts failed".into()),
                    ..HostFacts::default()
                })
            })
            .collect()
    })
}

/// One host's facts. Its first command opens the connection; when that
/// fails, the host is unreachable and nothing else is tried.
pub fn gather_host(transport: &Transport, host: &HostSettings) -> HostFacts {
    let mut facts = HostFacts {
        host: host.host.clone(),
        target: host.target.to_string(),
        reachable: true,
        synapse: Synapse {
            url: host.synapse_url.clone(),
            ..Synapse::default()
        },
        ..HostFacts::default()
    };
    let remote = Remote { transport, host };
    let run = |argv: &[&str], stdin: Option<&[u8]>| remote.run(argv, stdin);

    let psql = psql_argv(host, &[]);
    let psql: Vec<&str> = psql.iter().map(String::as_str).collect();
    match run(&psql, Some(FACTS_SQL.as_bytes())) {
        Err(SshError::Unreachable(why)) => {
            facts.reachable = false;
            facts.error = Some(why);
            return facts;
        }
        Err(e) => facts.postgres.error = Some(e.to_string()),
        Ok(out) if out.ok() => match parse_pg_facts(&out.stdout) {
            Ok(pg) => {
                facts.postgres.running = true;
                facts.postgres.facts = Some(pg);
            }
            Err(why) => facts.postgres.error = Some(why),
        },
        Ok(out) => facts.postgres.error = Some(out.message()),
    }

    let mut problems = Vec::new();
    let data = host
        .pg_data
        .clone()
        .or_else(|| facts.pg().map(|pg| pg.data_directory.clone()))
        .or_else(|| only_data_directory(&remote, &mut problems));
    let signal = data
        .as_ref()
        .map(|d| format!("{}/standby.signal", d.trim_end_matches('/')));
    let url = format!(
        "{}/_matrix/client/versions",
        host.synapse_url.trim_end_matches('/')
    );
    // The connection is open now: the other commands share it at once, as
    // concurrent sessions (sshd allows 10 per connection by default).
    let units_argv = [
        "systemctl",
        "is-active",
        host.postgresql_service.as_str(),
        host.synapse_service.as_str(),
    ];
    let curl_argv = [
        "curl",
        "-sS",
        "-m",
        "5",
        "-w",
        "\\n%{http_code}",
        "--",
        &url,
    ];
    let (units, signal_out, stat_out, curl) = std::thread::scope(|scope| {
        let units = scope.spawn(|| run(&units_argv, None));
        let signal_out = signal
            .as_deref()
            .map(|signal| scope.spawn(move || run(&["test", "-e", signal], None)));
        let stat_out = data.as_deref().map(|data| {
            scope.spawn(move || run(&["stat", "-f", "-c", "%S %b %a", "--", data], None))
        });
        let curl = scope.spawn(|| run(&curl_argv, None));
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<RemoteOutput, SshError>>| {
            h.join().unwrap_or_else(|_| {
                Err(SshError::Local(
                    "internal error: a command's thread failed".into(),
                ))
            })
        };
        (
            join(units),
            signal_out.map(join),
            stat_out.map(join),
            join(curl),
        )
    });

    match units {
        // is-active exits non-zero when a unit is not active; the states are
        // on stdout either way.
        Ok(out) if !out.stdout.trim().is_empty() => {
            (facts.postgres.unit, facts.synapse.unit) = parse_units(&out);
        }
        Ok(out) => problems.push(format!("systemctl is-active: {}", out.message())),
        Err(e) => problems.push(facts_problem("systemctl is-active", e)),
    }
    if let (Some(signal), Some(out)) = (&signal, signal_out) {
        match out {
            Ok(out) if out.code == 0 => facts.standby_signal = Some(true),
            Ok(out) if out.code == 1 => facts.standby_signal = Some(false),
            Ok(out) => problems.push(format!("test -e {signal}: {}", out.message())),
            Err(e) => problems.push(facts_problem(&format!("test -e {signal}"), e)),
        }
    }
    if let (Some(data), Some(out)) = (&data, stat_out) {
        match out {
            Ok(out) if out.ok() => match parse_disk(&out.stdout) {
                Some(disk) => facts.disk = Some(disk),
                None => problems.push(format!(
                    "stat -f {data}: unexpected output {:?}",
                    out.stdout.trim()
                )),
            },
            Ok(out) => problems.push(format!("stat -f {data}: {}", out.message())),
            Err(e) => problems.push(facts_problem(&format!("stat -f {data}"), e)),
        }
    }
    facts.data_directory = data;
    match curl {
        Ok(out) => (facts.synapse.answering, facts.synapse.error) = parse_synapse(&out),
        Err(e) => problems.push(facts_problem(&format!("curl {url}"), e)),
    }
    facts.problems = problems;
    facts
}

/// One host's commands.
struct Remote<'a> {
    transport: &'a Transport,
    host: &'a HostSettings,
}

impl Remote<'_> {
    fn run(&self, argv: &[&str], stdin: Option<&[u8]>) -> Result<RemoteOutput, SshError> {
        self.transport.run(&self.host.target, argv, stdin)
    }
}

fn facts_problem(what: &str, e: SshError) -> String {
    format!("{what}: {e}")
}

/// Without `pg_data` and with PostgreSQL not answering: the one directory
/// named after a major version under `/var/lib/postgresql`, as NixOS makes it.
fn only_data_directory(remote: &Remote<'_>, problems: &mut Vec<String>) -> Option<String> {
    let argv = [
        "find",
        DEFAULT_PG_DATA_PARENT,
        "-mindepth",
        "1",
        "-maxdepth",
        "1",
        "-type",
        "d",
        "-name",
        "[0-9]*",
    ];
    match remote.run(&argv, None) {
        Ok(out) if out.ok() => {
            let dirs: Vec<&str> = out.stdout.lines().filter(|l| !l.is_empty()).collect();
            match dirs.as_slice() {
                [one] => Some(one.to_string()),
                _ => {
                    problems.push(format!(
                        "the data directory is unknown: PostgreSQL does not answer and {DEFAULT_PG_DATA_PARENT} holds {} version directories; set pg_data in [hosts.X.live]",
                        dirs.len()
                    ));
                    None
                }
            }
        }
        Ok(out) => {
            problems.push(format!("find {DEFAULT_PG_DATA_PARENT}: {}", out.message()));
            None
        }
        Err(e) => {
            problems.push(facts_problem(&format!("find {DEFAULT_PG_DATA_PARENT}"), e));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_parse_print_and_subtract() {
        let a: Lsn = "16/B374D848".parse().expect("an LSN");
        assert_eq!(a.0, 0x16_B374_D848);
        assert_eq!(a.to_string(), "16/B374D848");
        let b: Lsn = "0/3000148".parse().expect("an LSN");
        assert_eq!(b.to_string(), "0/3000148");
        assert_eq!(a.bytes_after(b), 0x16_B374_D848 - 0x300_0148);
        assert_eq!(b.bytes_after(a), 0);
        assert!("x".parse::<Lsn>().is_err());
        assert!("1/".parse::<Lsn>().is_err());
    }

    #[test]
    fn a_primary_answer_parses() {
        let json = r#"{"version" : "15.14 (Debian 15.14-0+deb12u1)", "dataDirectory" : "/var/lib/postgresql/15", "inRecovery" : false, "timeline" : 1, "currentLsn" : "0/3000148", "receiveLsn" : null, "replayLsn" : null, "replayTimestamp" : null, "replayPaused" : null, "replayDelaySeconds" : null, "walReceiver" : null, "replication" : [{"applicationName" : "walreceiver", "clientAddr" : "127.0.0.3", "state" : "streaming", "syncState" : "async", "sentLsn" : "0/3000148", "writeLsn" : "0/3000148", "flushLsn" : "0/3000148", "replayLsn" : "0/3000148", "writeLagSeconds" : 0.000512, "flushLagSeconds" : null, "replayLagSeconds" : null, "replayLagBytes" : 0}], "slots" : [{"name" : "beta", "type" : "physical", "active" : false, "restartLsn" : "0/2000000", "walStatus" : "reserved", "retainedBytes" : 16777544}]}"#;
        let pg = parse_pg_facts(&format!("\n{json}\n")).expect("parses");
        assert!(!pg.in_recovery);
        assert_eq!(pg.timeline, Some(1));
        assert_eq!(pg.replication[0].client_addr.as_deref(), Some("127.0.0.3"));
        assert_eq!(pg.replication[0].replay_lag_bytes, Some(0));
        assert_eq!(pg.slots[0].retained_bytes, Some(16_777_544));
        assert!(parse_pg_facts("").is_err());
        assert!(parse_pg_facts("SET\n").is_err());
    }

    #[test]
    fn disk_and_units_and_synapse_answers() {
        let disk = parse_disk("4096 1000 250\n").expect("three numbers");
        assert_eq!(disk.total_bytes, 4_096_000);
        assert!((disk.free_percent - 25.0).abs() < 1e-9);
        assert_eq!(parse_disk("4096 x 1"), None);
        let out = |code, stdout: &str| RemoteOutput {
            code,
            stdout: stdout.into(),
            stderr: "curl: (7) Failed to connect".into(),
        };
        assert_eq!(
            parse_units(&out(3, "active\ninactive\n")),
            (Some("active".into()), Some("inactive".into()))
        );
        assert_eq!(
            parse_synapse(&out(0, "{\"versions\":[\"v1.1\"]}\n200")),
            (Some(true), None)
        );
        assert_eq!(
            parse_synapse(&out(0, "oops\n503")),
            (Some(false), Some("HTTP status 503".into()))
        );
        assert_eq!(
            parse_synapse(&out(0, "{}\n200")),
            (
                Some(false),
                Some("the answer has no `versions` list".into())
            )
        );
        assert_eq!(
            parse_synapse(&out(7, "\n000")),
            (Some(false), Some("curl: (7) Failed to connect".into()))
        );
    }
}
