//! What the live operations do to one member: stop and start its services, checkpoint and
//! read the control file, wait for replay, promote, and confirm streaming. It must never send anything but a fixed argv, with values as separate arguments or psql variables.
//!
//! Every action is a [`Command`] first (so that `--dry-run` prints exactly
//! what would run) and is run by [`run`]. Waits that must be quick (replay
//! catching up, a standby starting to stream) loop on the host itself, in one
//! psql session, so that each costs one round trip instead of one per poll.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::facts::{psql_argv, Lsn};
use super::settings::HostSettings;
use super::ssh::{RemoteOutput, Transport};
use crate::names::display_command;

/// One remote command: its argv, the SQL it reads on stdin (psql), and how
/// long it may take.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub argv: Vec<String>,
    pub stdin: Option<String>,
    pub timeout: Duration,
    /// What it does, in the operator's words ("stop Synapse").
    pub what: String,
}

impl Command {
    /// The command as shell text, with the SQL it feeds psql after `<<<`.
    pub fn display(&self) -> String {
        let line = display_command(&self.argv);
        match &self.stdin {
            Some(sql) => format!("{line} <<< {}", crate::names::shell_quote(sql.trim())),
            None => line,
        }
    }
}

/// Why an action failed on a host.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OpError {
    /// ssh could not reach the host, or the command ran out of time.
    #[error("{host}: {what}: {reason}")]
    Transport {
        host: String,
        what: String,
        reason: String,
    },
    /// The command ran and failed (its message).
    #[error("{host}: {what} failed: {message}")]
    Failed {
        host: String,
        what: String,
        message: String,
        command: String,
        /// All it wrote to stderr (`message` is its last line).
        stderr: String,
    },
    /// It answered something nixflip cannot use.
    #[error("{host}: {what}: {message}")]
    Unexpected {
        host: String,
        what: String,
        message: String,
    },
}

/// Run `command` on `host`; its output when it exits 0.
pub fn run(
    transport: &Transport,
    host: &HostSettings,
    command: &Command,
) -> Result<RemoteOutput, OpError> {
    let argv: Vec<&str> = command.argv.iter().map(String::as_str).collect();
    let out = transport
        .run_for(
            &host.target,
            &argv,
            command.stdin.as_deref().map(str::as_bytes),
            command.timeout,
        )
        .map_err(|e| OpError::Transport {
            host: host.host.clone(),
            what: command.what.clone(),
            reason: e.to_string(),
        })?;
    if out.ok() {
        Ok(out)
    } else {
        Err(OpError::Failed {
            host: host.host.clone(),
            what: command.what.clone(),
            message: out.message(),
            command: command.display(),
            stderr: out.stderr,
        })
    }
}

/// `systemctl ACTION UNIT` (on NixOS, stopping PostgreSQL is a fast
/// shutdown: its unit's `KillSignal` is `SIGINT`).
pub fn service(action: &str, unit: &str, timeout: Duration) -> Command {
    Command {
        argv: vec!["systemctl".into(), action.into(), unit.into()],
        stdin: None,
        timeout,
        what: format!("systemctl {action} {unit}"),
    }
}

/// psql as the superuser with `sql` on stdin and `vars` as psql variables.
pub fn sql(
    host: &HostSettings,
    what: &str,
    sql: &str,
    vars: &[(&str, &str)],
    timeout: Duration,
) -> Command {
    Command {
        argv: psql_argv(host, vars),
        stdin: Some(sql.to_string()),
        timeout,
        what: what.to_string(),
    }
}

/// Flush dirty buffers now, so that the shutdown checkpoint that follows
/// has little left to write.
pub const CHECKPOINT_SQL: &str = "CHECKPOINT;\n";

/// `pg_controldata` as the PostgreSQL user, in the C locale (its labels
/// are translated otherwise).
pub fn control_data(host: &HostSettings, data: &str, timeout: Duration) -> Command {
    Command {
        argv: vec![
            "runuser".into(),
            "-u".into(),
            host.pg_user.clone(),
            "--".into(),
            "env".into(),
            "LC_ALL=C".into(),
            "pg_controldata".into(),
            "-D".into(),
            data.into(),
        ],
        stdin: None,
        timeout,
        what: "pg_controldata".into(),
    }
}

/// What `pg_controldata` says about a data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlData {
    /// `Database cluster state` (`shut down`, `in production`, …).
    pub state: String,
    /// `Latest checkpoint location`: for a server shut down cleanly, its
    /// shutdown checkpoint, after which it wrote nothing.
    pub checkpoint: Lsn,
    /// `Latest checkpoint's TimeLineID`.
    pub timeline: u32,
    /// `Min recovery ending loc's timeline` (0: none). Above `timeline`
    /// when the server replayed or wrote WAL of a later timeline after its
    /// latest checkpoint: the control file lags its own WAL.
    pub min_recovery_timeline: u32,
    /// `Minimum recovery ending location`: a server stopped in recovery
    /// may have replayed (and flushed pages of) WAL up to here, past its
    /// latest checkpoint.
    pub min_recovery: Lsn,
    /// `Database system identifier`: the same on every copy of one cluster.
    pub system_identifier: Option<String>,
    /// `wal_log_hints setting` is `on` (pg_rewind needs it, or checksums).
    pub wal_log_hints: bool,
    /// `Data page checksum version` is not 0.
    pub checksums: bool,
}

impl ControlData {
    /// Shut down cleanly as a primary: nothing after the checkpoint.
    pub fn shut_down(&self) -> bool {
        self.state == "shut down"
    }

    /// Shut down cleanly, as a primary or as a standby: nothing in its WAL
    /// beyond the latest checkpoint waits for crash recovery.
    pub fn clean(&self) -> bool {
        self.state == "shut down" || self.state == "shut down in recovery"
    }

    /// It stopped without a clean shutdown while it ran as a primary (or
    /// recovered from a crash as one): crash recovery is still due, and
    /// until it has run the control file may name a timeline older than
    /// its WAL's (a promotion's first checkpoint is written later).
    pub fn crashed_as_primary(&self) -> bool {
        matches!(
            self.state.as_str(),
            "in production" | "in crash recovery" | "shutting down"
        )
    }

    /// The timeline of its WAL's end: the control file's, or a later one
    /// it reached after its latest checkpoint.
    pub fn wal_timeline(&self) -> u32 {
        self.timeline.max(self.min_recovery_timeline)
    }

    /// How far its data may reach: its latest checkpoint, or the minimum
    /// recovery point past it.
    pub fn end(&self) -> Lsn {
        self.checkpoint.max(self.min_recovery)
    }

    /// pg_rewind can rewind this data directory.
    pub fn rewindable(&self) -> bool {
        self.wal_log_hints || self.checksums
    }
}

/// Read `pg_controldata`'s output (C locale).
pub fn parse_control_data(text: &str) -> Result<ControlData, String> {
    let field = |label: &str| {
        text.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.trim() == label).then(|| value.trim().to_string())
        })
    };
    let state = field("Database cluster state")
        .ok_or("pg_controldata printed no `Database cluster state`")?;
    let checkpoint = field("Latest checkpoint location")
        .ok_or("pg_controldata printed no `Latest checkpoint location`")?
        .parse()?;
    let timeline = field("Latest checkpoint's TimeLineID")
        .ok_or("pg_controldata printed no `Latest checkpoint's TimeLineID`")?;
    let timeline = timeline
        .parse()
        .map_err(|_| format!("`{timeline}` is not a timeline"))?;
    let min_recovery_timeline = match field("Min recovery ending loc's timeline") {
        Some(t) => t.parse().map_err(|_| format!("`{t}` is not a timeline"))?,
        None => 0,
    };
    let min_recovery = match field("Minimum recovery ending location") {
        Some(l) => l.parse()?,
        None => Lsn(0),
    };
    Ok(ControlData {
        state,
        checkpoint,
        timeline,
        min_recovery_timeline,
        min_recovery,
        system_identifier: field("Database system identifier"),
        wal_log_hints: field("wal_log_hints setting").as_deref() == Some("on"),
        checksums: field("Data page checksum version").is_some_and(|v| v != "0"),
    })
}

/// On the primary a former primary rejoins: its identity, timeline, where
/// its WAL is, and its timeline's history file (none on timeline 1). The
/// timeline comes from the current WAL file's name: the control file keeps
/// the old one until the first checkpoint after a promotion.
pub const HISTORY_SQL: &str = r#"WITH t AS (
  SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli)
SELECT json_build_object(
  'inRecovery', pg_is_in_recovery(),
  'systemIdentifier', (SELECT system_identifier::text FROM pg_control_system()),
  'timeline', t.tli,
  'lsn', pg_current_wal_lsn(),
  'history', CASE WHEN t.tli > 1
    THEN pg_read_file('pg_wal/' || lpad(upper(to_hex(t.tli)), 8, '0') || '.history') END)
FROM t;
"#;

/// The answer of [`HISTORY_SQL`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub in_recovery: bool,
    pub system_identifier: String,
    pub timeline: u32,
    pub lsn: Lsn,
    pub history: Option<String>,
}

impl History {
    /// Where this server's history left `timeline`: the LSN at which the
    /// next timeline began. `None` when `timeline` is not an ancestor.
    pub fn fork_of(&self, timeline: u32) -> Option<Lsn> {
        self.history.as_deref()?.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            let parent: u32 = fields.next()?.parse().ok()?;
            let switchpoint: Lsn = fields.next()?.parse().ok()?;
            (parent == timeline).then_some(switchpoint)
        })
    }
}

/// The connection a standby's WAL receiver uses (the module writes it).
pub const CONNINFO_SQL: &str =
    "SELECT json_build_object('conninfo', current_setting('primary_conninfo'));\n";

/// The answer of [`CONNINFO_SQL`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Conninfo {
    pub conninfo: String,
}

/// A program of PostgreSQL's as its user, in the C locale (their messages
/// are read), from `/`: the session's directory (root's home) is closed to
/// that user, and these programs change back to it after finding their
/// own executable.
fn as_postgres(host: &HostSettings, what: &str, args: &[&str], timeout: Duration) -> Command {
    let mut argv: Vec<String> = vec![
        "runuser".into(),
        "-u".into(),
        host.pg_user.clone(),
        "--".into(),
        "env".into(),
        "--chdir=/".into(),
        "LC_ALL=C".into(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    Command {
        argv,
        stdin: None,
        timeout,
        what: what.into(),
    }
}

/// Crash recovery of the stopped `data`, as `pg_rewind` itself runs it:
/// PostgreSQL in single-user mode (no connections, no replication) replays
/// its WAL to the end, writes a checkpoint there and exits at the end of
/// its empty input.
pub fn finish_crash_recovery(host: &HostSettings, data: &str, timeout: Duration) -> Command {
    as_postgres(
        host,
        "crash recovery (postgres --single)",
        &["postgres", "--single", "-D", data, "template1"],
        timeout,
    )
}

/// `pg_rewind` of the stopped `data` from the server at `conninfo`.
pub fn rewind(host: &HostSettings, data: &str, conninfo: &str, timeout: Duration) -> Command {
    as_postgres(
        host,
        "pg_rewind",
        &[
            "pg_rewind",
            "--target-pgdata",
            data,
            "--source-server",
            conninfo,
        ],
        timeout,
    )
}

/// A new base backup into the empty `data` from the server at `conninfo`.
pub fn base_backup(host: &HostSettings, data: &str, conninfo: &str, timeout: Duration) -> Command {
    as_postgres(
        host,
        "pg_basebackup",
        &[
            "pg_basebackup",
            "--dbname",
            conninfo,
            "--pgdata",
            data,
            "--wal-method",
            "stream",
            "--checkpoint",
            "fast",
        ],
        timeout,
    )
}

/// Rename `from` to `to`, never over an existing `to`.
pub fn rename_aside(from: &str, to: &str, timeout: Duration) -> Command {
    Command {
        argv: vec![
            "mv".into(),
            "--no-clobber".into(),
            "--no-target-directory".into(),
            from.into(),
            to.into(),
        ],
        stdin: None,
        timeout,
        what: format!("rename {from} to {to}"),
    }
}

/// The names of the files in `dir` (not below) that match the shell
/// pattern `pattern`, one a line.
pub fn files_named(dir: &str, pattern: &str, timeout: Duration) -> Command {
    Command {
        argv: vec![
            "find".into(),
            dir.into(),
            "-maxdepth".into(),
            "1".into(),
            "-name".into(),
            pattern.into(),
            "-printf".into(),
            "%f\\n".into(),
        ],
        stdin: None,
        timeout,
        what: format!("list {pattern} in {dir}"),
    }
}

/// Of the names `files_named(WAL, "*.history")` printed, those of timelines above
/// `timeline` (`0000000A.history`: the timeline in hexadecimal).
pub fn later_history(listing: &str, timeline: u32) -> Vec<String> {
    let mut later: Vec<(u32, String)> = listing
        .lines()
        .map(str::trim)
        .filter_map(|name| {
            let hex = name.strip_suffix(".history")?;
            let tli = u32::from_str_radix(hex, 16).ok()?;
            (hex.len() == 8 && tli > timeline).then(|| (tli, name.to_string()))
        })
        .collect();
    later.sort();
    later.into_iter().map(|(_, name)| name).collect()
}

/// Whether `path` exists (`test -e`: exit 0 when it does).
pub fn exists(path: &str, timeout: Duration) -> Command {
    Command {
        argv: vec!["test".into(), "-e".into(), path.into()],
        stdin: None,
        timeout,
        what: format!("test -e {path}"),
    }
}

/// An empty data directory owned by the PostgreSQL user, mode 0700.
pub fn make_data_directory(host: &HostSettings, data: &str, timeout: Duration) -> Command {
    Command {
        argv: vec![
            "install".into(),
            "-d".into(),
            "-m".into(),
            "0700".into(),
            "-o".into(),
            host.pg_user.clone(),
            "-g".into(),
            host.pg_user.clone(),
            data.into(),
        ],
        stdin: None,
        timeout,
        what: format!("create {data}"),
    }
}

/// What `pg_rewind` said about the divergence, from its messages:
/// `servers diverged at WAL location X on timeline N`, or that no rewind
/// was required.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rewound {
    NotRequired,
    Diverged { at: Lsn, timeline: u32 },
}

pub fn parse_rewind(text: &str) -> Option<Rewound> {
    if text.contains("no rewind required") {
        return Some(Rewound::NotRequired);
    }
    text.lines().find_map(|line| {
        let rest = line.split("servers diverged at WAL location ").nth(1)?;
        let (lsn, rest) = rest.split_once(" on timeline ")?;
        Some(Rewound::Diverged {
            at: lsn.trim().parse().ok()?,
            timeline: rest.trim().trim_end_matches('.').parse().ok()?,
        })
    })
}

/// On a standby: loop until the replay position has passed `:'fence'` or
/// `:'seconds'` have gone by, then report where replay is. The loop runs in
/// the server (one round trip, 5 ms polls); the GUCs carry the values into
/// the `DO` block, which psql variables cannot reach.
pub const WAIT_REPLAY_SQL: &str = r#"SET statement_timeout = 0;
SET nixflip.fence TO :'fence';
SET nixflip.seconds TO :'seconds';
DO $$
DECLARE
  fence pg_lsn := current_setting('nixflip.fence')::pg_lsn;
  deadline timestamptz := clock_timestamp()
    + make_interval(secs => current_setting('nixflip.seconds')::float8);
BEGIN
  WHILE pg_is_in_recovery()
    AND coalesce(pg_last_wal_replay_lsn() <= fence, true)
    AND clock_timestamp() < deadline LOOP
    PERFORM pg_sleep(0.005);
  END LOOP;
END $$;
SELECT json_build_object(
  'inRecovery', pg_is_in_recovery(),
  'replayLsn', pg_last_wal_replay_lsn(),
  'receiveLsn', pg_last_wal_receive_lsn(),
  'replayPaused', CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END);
"#;

/// The answer of [`WAIT_REPLAY_SQL`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    pub in_recovery: bool,
    pub replay_lsn: Option<Lsn>,
    pub receive_lsn: Option<Lsn>,
    pub replay_paused: Option<bool>,
}

impl Replay {
    /// Replay is past `fence` (it replayed the record that starts there).
    pub fn passed(&self, fence: Lsn) -> bool {
        self.replay_lsn.is_some_and(|lsn| lsn > fence)
    }
}

/// Promote if still in recovery (a resumed run finds it done), waiting up
/// to `:wait` seconds; then where the new primary is.
pub const PROMOTE_SQL: &str = r#"SET statement_timeout = 0;
SELECT CASE WHEN pg_is_in_recovery() THEN pg_promote(true, :'wait'::int) ELSE true END;
SELECT json_build_object(
  'inRecovery', pg_is_in_recovery(),
  'timeline', CASE WHEN NOT pg_is_in_recovery()
    THEN ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
  'lsn', CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn() END);
"#;

/// On a standby before a failover: what it has of the old primary's WAL,
/// and the commit time of the last transaction it replayed.
pub const POSITION_SQL: &str = r#"SELECT json_build_object(
  'inRecovery', pg_is_in_recovery(),
  'receiveLsn', pg_last_wal_receive_lsn(),
  'replayLsn', pg_last_wal_replay_lsn(),
  'lastReplay', pg_last_xact_replay_timestamp(),
  'replayPaused', CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END);
"#;

/// The answer of [`POSITION_SQL`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub in_recovery: bool,
    pub receive_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    pub last_replay: Option<String>,
    pub replay_paused: Option<bool>,
}

/// The answer of [`PROMOTE_SQL`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promoted {
    pub in_recovery: bool,
    pub timeline: Option<u32>,
    pub lsn: Option<Lsn>,
}

/// On a standby: loop until its WAL receiver streams from `:'sender'` or
/// `:'seconds'` have gone by, then report the receiver.
pub const WAIT_STREAMING_SQL: &str = r#"SET statement_timeout = 0;
SET nixflip.sender TO :'sender';
SET nixflip.seconds TO :'seconds';
DO $$
DECLARE
  deadline timestamptz := clock_timestamp()
    + make_interval(secs => current_setting('nixflip.seconds')::float8);
BEGIN
  WHILE NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver
                    WHERE status = 'streaming'
                      AND sender_host = current_setting('nixflip.sender'))
    AND clock_timestamp() < deadline LOOP
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
SELECT json_build_object(
  'inRecovery', pg_is_in_recovery(),
  'status', (SELECT status FROM pg_stat_wal_receiver),
  'senderHost', (SELECT sender_host FROM pg_stat_wal_receiver),
  'receivedTli', (SELECT received_tli FROM pg_stat_wal_receiver),
  'replayLsn', pg_last_wal_replay_lsn());
"#;

/// The answer of [`WAIT_STREAMING_SQL`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receiver {
    pub in_recovery: bool,
    pub status: Option<String>,
    pub sender_host: Option<String>,
    pub received_tli: Option<u32>,
    pub replay_lsn: Option<Lsn>,
}

impl Receiver {
    pub fn streams_from(&self, sender: &str) -> bool {
        self.in_recovery
            && self.status.as_deref() == Some("streaming")
            && self.sender_host.as_deref() == Some(sender)
    }
}

impl fmt::Display for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.in_recovery {
            return f.write_str("not in recovery (a primary)");
        }
        match (&self.status, &self.sender_host) {
            (Some(status), Some(sender)) => write!(f, "WAL receiver {status} from {sender}"),
            (Some(status), None) => write!(f, "WAL receiver {status}"),
            _ => f.write_str("no WAL receiver"),
        }
    }
}

/// Whether a server is out of recovery (the old primary, started again by
/// a rollback).
pub const ROLE_SQL: &str = "SELECT json_build_object('inRecovery', pg_is_in_recovery());\n";

/// The answer of [`ROLE_SQL`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAnswer {
    pub in_recovery: bool,
}

/// On the primary before a switchover: settings the old primary needs to
/// follow the new one later.
pub const PREFLIGHT_SQL: &str = r#"SELECT json_build_object(
  'recoveryTargetTimeline', current_setting('recovery_target_timeline'),
  'dataDirectory', current_setting('data_directory'),
  'inRecovery', pg_is_in_recovery());
"#;

/// The answer of [`PREFLIGHT_SQL`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreflightAnswer {
    pub recovery_target_timeline: String,
    pub data_directory: String,
    pub in_recovery: bool,
}

/// psql's last non-empty line as JSON.
pub fn last_json<T: for<'de> Deserialize<'de>>(stdout: &str) -> Result<T, String> {
    let line = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .ok_or_else(|| "psql printed nothing".to_string())?;
    serde_json::from_str(line).map_err(|e| format!("unexpected answer from psql ({e}): {line}"))
}

/// Run `command` and read its last line as JSON.
pub fn run_json<T: for<'de> Deserialize<'de>>(
    transport: &Transport,
    host: &HostSettings,
    command: &Command,
) -> Result<T, OpError> {
    let out = run(transport, host, command)?;
    last_json(&out.stdout).map_err(|message| OpError::Unexpected {
        host: host.host.clone(),
        what: command.what.clone(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHUT_DOWN: &str = "pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7312345678901234567
Database cluster state:               shut down
pg_control last modified:             Mon 01 Jan 2024 00:00:00 UTC
Latest checkpoint location:           0/3029CA0
Latest checkpoint's REDO location:    0/3029CA0
Latest checkpoint's REDO WAL file:    000000010000000000000003
Latest checkpoint's TimeLineID:       1
Latest checkpoint's PrevTimeLineID:   1
";

    #[test]
    fn control_data_of_a_clean_shutdown() {
        let c = parse_control_data(SHUT_DOWN).expect("parses");
        assert!(c.shut_down());
        assert_eq!(c.checkpoint.to_string(), "0/3029CA0");
        assert_eq!(c.timeline, 1);
        let running = SHUT_DOWN.replace("shut down", "in production");
        assert!(!parse_control_data(&running).expect("parses").shut_down());
        let recovery = SHUT_DOWN.replace("shut down", "shut down in recovery");
        assert!(!parse_control_data(&recovery).expect("parses").shut_down());
        assert!(parse_control_data("nothing").is_err());
        let bad = SHUT_DOWN.replace(
            "0/3029CA0\nLatest checkpoint's REDO location",
            "x\nLatest checkpoint's REDO location",
        );
        assert!(parse_control_data(&bad).is_err());
    }

    #[test]
    fn control_data_of_a_primary_killed_before_its_first_checkpoint() {
        // Promoted to timeline 2 at 0/3029CA0, killed before the
        // checkpoint the promotion asked for.
        let killed = SHUT_DOWN.replace("shut down", "in production")
            + "Minimum recovery ending location:     0/3029D18\n\
               Min recovery ending loc's timeline:   2\n";
        let c = parse_control_data(&killed).expect("parses");
        assert!(c.crashed_as_primary());
        assert_eq!((c.timeline, c.wal_timeline()), (1, 2));
        assert_eq!(c.end().to_string(), "0/3029D18");
        let plain = parse_control_data(SHUT_DOWN).expect("parses");
        assert!(!plain.crashed_as_primary());
        assert_eq!((plain.wal_timeline(), plain.end()), (1, plain.checkpoint));
        let bad = killed.replace("loc's timeline:   2", "loc's timeline:   two");
        assert!(parse_control_data(&bad).is_err());
    }

    #[test]
    fn later_history_files_by_their_timeline() {
        let listing = "00000002.history\n0000000A.history\n00000001.history\nx.history\n00000003.history.nixflip-rejoin-aside\n0003.history\n";
        assert_eq!(
            later_history(listing, 1),
            ["00000002.history", "0000000A.history"]
        );
        assert_eq!(later_history(listing, 2), ["0000000A.history"]);
        assert!(later_history(listing, 10).is_empty());
    }

    #[test]
    fn replay_passes_the_fence_only_beyond_it() {
        let fence: Lsn = "0/3029CA0".parse().expect("lsn");
        let at = |lsn: Option<&str>| Replay {
            in_recovery: true,
            replay_lsn: lsn.map(|l| l.parse().expect("lsn")),
            receive_lsn: None,
            replay_paused: Some(false),
        };
        assert!(!at(Some("0/3029CA0")).passed(fence));
        assert!(at(Some("0/3029D18")).passed(fence));
        assert!(!at(Some("0/3000000")).passed(fence));
        assert!(!at(None).passed(fence));
    }

    #[test]
    fn commands_show_their_sql() {
        let host = HostSettings {
            host: "alpha".into(),
            target: crate::names::Target::parse("root@10.0.0.1").expect("target"),
            pg_data: None,
            pg_port: 5432,
            pg_user: "postgres".into(),
            pg_socket_dir: "/run/postgresql".into(),
            postgresql_service: "postgresql".into(),
            synapse_service: "matrix-synapse".into(),
            synapse_url: "http://127.0.0.1:8008".into(),
        };
        let c = sql(
            &host,
            "checkpoint",
            CHECKPOINT_SQL,
            &[],
            Duration::from_secs(5),
        );
        assert_eq!(
            c.display(),
            "runuser -u postgres -- psql -X -q -A -t -v 'ON_ERROR_STOP=1' -h /run/postgresql -p 5432 -d postgres <<< 'CHECKPOINT;'"
        );
        assert_eq!(
            service("stop", "matrix-synapse", Duration::from_secs(5)).display(),
            "systemctl stop matrix-synapse"
        );
        assert_eq!(
            control_data(&host, "/var/lib/postgresql/15", Duration::from_secs(5)).display(),
            "runuser -u postgres -- env 'LC_ALL=C' pg_controldata -D /var/lib/postgresql/15"
        );
    }

    #[test]
    fn receivers_stream_from_their_sender() {
        let r = Receiver {
            in_recovery: true,
            status: Some("streaming".into()),
            sender_host: Some("10.0.0.2".into()),
            received_tli: Some(2),
            replay_lsn: None,
        };
        assert!(r.streams_from("10.0.0.2"));
        assert!(!r.streams_from("10.0.0.3"));
        assert_eq!(r.to_string(), "WAL receiver streaming from 10.0.0.2");
        let primary = Receiver {
            in_recovery: false,
            ..r
        };
        assert!(!primary.streams_from("10.0.0.2"));
    }
}
