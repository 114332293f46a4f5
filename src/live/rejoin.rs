//! `rejoin HOST`: a former primary made a standby of the current primary the least destructive way that works (plain standby, `pg_rewind`, or a new base backup), said before it is done.
//! It must never delete a data directory, never rewind or re-seed before reporting why and what is rewound away, and never re-seed without `--reseed` or the operator's yes.
//!
//! 1. pre-flight: HOST is declared a standby, the declared primary is a
//!    live primary; a HOST already streaming from it needs nothing;
//! 2. stop: HOST's Synapse and PostgreSQL stop (it may have come back as
//!    the primary it was);
//! 3. inspect: a HOST that stopped without a clean shutdown as a primary
//!    finishes its crash recovery first (single-user mode, as pg_rewind
//!    would), so that its control file names the timeline its WAL ends on;
//!    then its control file against the primary's timeline history
//!    chooses the way: shut down cleanly before the fork (plain standby),
//!    wrote past it (`pg_rewind`: the range from the fork to its end is
//!    reported), or cannot be rewound (no `wal_log_hints`, no checksums, not
//!    the same cluster, its WAL gone: a new base backup);
//! 4. switch: HOST gets its standby configuration (`nixos-rebuild switch`:
//!    the module's standby set-up writes the passfile, `primary_conninfo`
//!    and `standby.signal`, and PostgreSQL starts in recovery, where it
//!    writes nothing; a HOST past the fork first sets aside the later
//!    timelines' history files an earlier attempt fetched, which would
//!    keep it from starting);
//! 5. rewind or re-seed (when chosen): PostgreSQL stops again; `CHECKPOINT`
//!    on the primary, then `pg_rewind`; or the data directory is renamed
//!    aside with a timestamp and `pg_basebackup` makes a new one. The
//!    standby set-up runs again afterwards (both copy the primary's files
//!    over HOST's settings), then PostgreSQL starts;
//! 6. verify: HOST streams from the primary, and `status --live`.
//!
//! Every step is journaled; a run that stops is not resumed but run again:
//! each run reads the hosts afresh and chooses again.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::facts::{self, Lsn};
use super::journal::{Journal, Outcome, Stamp, State, Store};
use super::ops::{self, ControlData, OpError};
use super::settings::{HostSettings, Settings};
use super::ssh::{RemoteOutput, Transport};
use super::switchover::{self, Location};
use super::LiveStatus;
use crate::cluster::{Cluster, Role};
use crate::deploy::RebuildOptions;
use crate::error::{Error, Result};

/// The journal's name for this operation.
pub const OPERATION: &str = "rejoin";

/// The unit of the cluster module that writes a standby's settings.
pub const STANDBY_SETUP_SERVICE: &str = "matrix-cluster-standby-setup";

/// How HOST rejoins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Way {
    /// It stopped before the fork: standby settings, no copy.
    Standby,
    /// It wrote past the fork: `pg_rewind`.
    Rewind,
    /// A new base backup; the old directory renamed aside.
    Reseed,
}

impl Way {
    pub fn describe(self) -> &'static str {
        match self {
            Way::Standby => "plain standby (no copy)",
            Way::Rewind => "pg_rewind",
            Way::Reseed => "new base backup",
        }
    }
}

/// How `rejoin` was asked for.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A new base backup is allowed when nothing less will do.
    pub reseed: bool,
    /// Stdin is a terminal: a re-seed without `--reseed` may be asked.
    pub can_ask: bool,
    pub rebuild: RebuildOptions,
}

/// What `rejoin` reports while it works.
pub enum Event<'a> {
    /// A step begins.
    Step(&'static str),
    /// What is happening now.
    Doing(String),
    /// A line of `nixos-rebuild`'s output.
    Output { host: &'a str, line: &'a str },
    /// Worth knowing, not stopping for.
    Warning(String),
    /// The choice, before anything is done to HOST's data.
    Chosen(&'a Assessment),
}

/// What the inspection found and chose.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    pub way: Way,
    /// Why, in the operator's words.
    pub reason: String,
    pub host_state: String,
    pub host_checkpoint: Lsn,
    pub host_timeline: u32,
    pub primary_timeline: u32,
    /// Where the primary's history left HOST's timeline.
    pub fork: Option<Lsn>,
    /// What HOST wrote that the primary does not have: from the fork to
    /// its end (`None`: unknown until crash recovery has run).
    pub rewound: Option<(Lsn, Option<Lsn>)>,
    /// nixflip ran its crash recovery: its end is the checkpoint that wrote.
    pub recovered: bool,
}

/// How a rejoin ended well.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub host: String,
    pub primary: String,
    /// `None`: it already streamed from the primary; nothing was done.
    pub assessment: Option<Assessment>,
    /// What pg_rewind reported (`servers diverged at …`).
    pub rewind: Option<String>,
    /// The old data directory, renamed aside by a re-seed.
    pub kept_aside: Option<String>,
    pub receiver: String,
    #[serde(skip)]
    pub status: Option<LiveStatus>,
    pub journal: Option<std::path::PathBuf>,
}

struct Run<'p> {
    cluster: Cluster,
    root: std::path::PathBuf,
    settings: Settings,
    transport: Transport,
    store: Store,
    journal: Journal,
    host: HostSettings,
    primary: HostSettings,
    primary_address: String,
    options: Options,
    progress: &'p mut dyn FnMut(Event<'_>),
}

/// Make the standby `host` follow the declared primary. `confirm` asks
/// the operator (or `--yes`) once the way is known, before HOST is touched.
pub fn rejoin(
    location: Location,
    host: &str,
    options: Options,
    confirm: &mut dyn FnMut(&str) -> Result<()>,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Report> {
    let (root, cluster) = switchover::load(&location)?;
    let store = Store::for_flake(&root)?;
    let _lock = store.lock()?;
    if let Some(journal) = store.current()? {
        return Err(Error::refused(
            format!(
                "a {} is in progress (run {}): rejoining a host in the middle of it could undo what it did",
                journal.operation, journal.run
            ),
            format!(
                "finish it first (`nixflip {} --resume`)",
                journal.operation
            ),
        ));
    }
    let member = cluster
        .member(host)
        .ok_or_else(|| crate::cluster::plan::unknown_host(&cluster, host))?;
    if member.role() != Role::Standby {
        return Err(Error::refused(
            format!("{host} is not declared a standby in the flake"),
            "rejoin makes a declared standby follow the primary: flip the roles first (`nixflip failover`, `nixflip promote`)",
        ));
    }
    let primaries = cluster.primaries();
    let [primary] = primaries.as_slice() else {
        return Err(Error::refused(
            format!(
                "the flake declares {} primaries; a standby rejoins exactly one",
                primaries.len()
            ),
            "fix the roles first (`nixflip check`)",
        ));
    };
    let primary_name = primary.name.clone();
    let primary_address = primary.address.clone().ok_or_else(|| {
        Error::usage(
            format!("the address of {primary_name} is unknown"),
            format!(
                "set [hosts.\"{primary_name}\"] address in nixflip.toml, or publicIp in its file"
            ),
        )
    })?;
    let (settings, transport) = switchover::live_settings(&cluster)?;
    let find = |name: &str| {
        settings
            .hosts
            .iter()
            .find(|h| h.host == name)
            .cloned()
            .ok_or_else(|| {
                Error::usage(
                    format!("no live settings for {name}"),
                    "see `nixflip status --live`",
                )
            })
    };
    let host_settings = find(host)?;
    let primary_settings = find(&primary_name)?;
    let journal = Journal::new(
        OPERATION,
        &root,
        serde_json::json!({ "host": host, "primary": primary_name, "reseed": options.reseed }),
    );
    let mut run = Run {
        cluster,
        root,
        settings,
        transport,
        store,
        journal,
        host: host_settings,
        primary: primary_settings,
        primary_address,
        options,
        progress,
    };
    run.store.save(&run.journal)?;
    let result = run.drive(confirm);
    match result {
        Ok(mut report) => {
            run.journal.state = State::Finished;
            report.journal = Some(run.store.close(&run.journal)?);
            Ok(report)
        }
        Err(e) => {
            run.journal.state = State::Failed;
            let _ = run.store.close(&run.journal);
            Err(e)
        }
    }
}

impl Run<'_> {
    fn doing(&mut self, text: impl Into<String>) {
        (self.progress)(Event::Doing(text.into()));
    }

    fn seconds(value: &toml::Spanned<u64>) -> Duration {
        Duration::from_secs(*value.get_ref())
    }

    fn service_timeout(&self) -> Duration {
        Self::seconds(&self.cluster.config.config.switchover.service_timeout)
    }

    /// Run a step: journaled, its failure recorded with its name.
    fn step<T>(
        &mut self,
        name: &'static str,
        body: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        (self.progress)(Event::Step(name));
        self.journal.start(name);
        self.store.save(&self.journal)?;
        match body(self) {
            Ok(value) => {
                self.journal.finish(Outcome::Done);
                self.store.save(&self.journal)?;
                Ok(value)
            }
            Err(e) => {
                self.journal.finish(Outcome::Failed {
                    message: e.to_string(),
                });
                let _ = self.store.save(&self.journal);
                Err(e)
            }
        }
    }

    fn run_op(&self, host: &HostSettings, command: &ops::Command) -> Result<RemoteOutput> {
        ops::run(&self.transport, host, command).map_err(switchover::op_error)
    }

    fn drive(&mut self, confirm: &mut dyn FnMut(&str) -> Result<()>) -> Result<Report> {
        let already = self.step("preflight", Self::preflight)?;
        if let Some(receiver) = already {
            return Ok(self.report(None, None, None, receiver));
        }
        let data = self.step("data-directory", Self::data_directory)?;
        let assessment = self.step("inspect", |run| run.inspect(&data))?;
        (self.progress)(Event::Chosen(&assessment));
        let question = match assessment.way {
            Way::Standby => format!(
                "rejoin {} as a standby of {}: switch it to its standby configuration?",
                self.host.host, self.primary.host
            ),
            Way::Rewind => format!(
                "rejoin {} with pg_rewind against {}: {}; what it wrote after the fork is thrown away. Go on?",
                self.host.host,
                self.primary.host,
                range_text(&assessment)
            ),
            Way::Reseed => format!(
                "re-seed {} from {} with a new base backup ({}); its data directory {data} is renamed aside, not deleted. Go on?",
                self.host.host, self.primary.host, assessment.reason
            ),
        };
        if assessment.way == Way::Reseed && !self.options.reseed && !self.options.can_ask {
            return Err(Error::refused(
                format!(
                    "{} cannot rejoin without a new base backup: {}",
                    self.host.host, assessment.reason
                ),
                format!(
                    "run `nixflip rejoin {} --reseed` to re-seed it (its data directory is renamed aside, never deleted)",
                    self.host.host
                ),
            ));
        }
        confirm(&question)?;
        self.step("switch", |run| run.switch(&data, &assessment))?;
        let mut rewind = None;
        let mut kept_aside = None;
        let mut way = assessment.way;
        // Read while PostgreSQL runs in its standby configuration: the
        // copy, and a re-seed after a failed rewind, run with it stopped.
        let conninfo = match way {
            Way::Standby => String::new(),
            Way::Rewind | Way::Reseed => self.step("conninfo", Self::conninfo)?,
        };
        if way == Way::Rewind {
            match self.step("rewind", |run| run.rewind(&data, &conninfo))? {
                Ok(said) => rewind = Some(said),
                Err(why) => {
                    if !self.options.reseed {
                        return Err(Error::refused(
                            format!(
                                "pg_rewind cannot rewind {}: {why}. Nothing of its data was changed; it stays stopped in its standby configuration",
                                self.host.host
                            ),
                            format!(
                                "run `nixflip rejoin {} --reseed` to re-seed it (its data directory is renamed aside, never deleted)",
                                self.host.host
                            ),
                        ));
                    }
                    (self.progress)(Event::Warning(format!(
                        "pg_rewind cannot rewind {}: {why}; re-seeding it (--reseed)",
                        self.host.host
                    )));
                    way = Way::Reseed;
                }
            }
        }
        if way == Way::Reseed {
            kept_aside = Some(self.step("reseed", |run| run.reseed(&data, &conninfo))?);
        }
        if way != Way::Standby {
            self.step("standby-setup", Self::standby_setup)?;
        }
        let receiver = self.step("verify", Self::verify)?;
        let mut report = self.report(Some(assessment), rewind, kept_aside, receiver);
        self.doing("status --live");
        report.status = Some(super::status(
            &self.cluster,
            &self.settings,
            &self.transport,
        ));
        self.journal.record("way", way);
        Ok(report)
    }

    fn report(
        &self,
        assessment: Option<Assessment>,
        rewind: Option<String>,
        kept_aside: Option<String>,
        receiver: ops::Receiver,
    ) -> Report {
        Report {
            host: self.host.host.clone(),
            primary: self.primary.host.clone(),
            assessment,
            rewind,
            kept_aside,
            receiver: receiver.to_string(),
            status: None,
            journal: None,
        }
    }

    /// The primary is one; HOST may already follow it.
    fn preflight(&mut self) -> Result<Option<ops::Receiver>> {
        let timeout = self.settings.ssh.command_timeout;
        self.doing(format!(
            "asking {} whether it is the primary",
            self.primary.host
        ));
        let role = ops::sql(
            &self.primary,
            "pg_is_in_recovery",
            ops::ROLE_SQL,
            &[],
            timeout,
        );
        let answer: ops::RoleAnswer = ops::run_json(&self.transport, &self.primary, &role)
            .map_err(|e| {
                Error::refused(
                    format!(
                        "the declared primary {} does not answer: {e}",
                        self.primary.host
                    ),
                    "a standby can only rejoin a running primary: bring it up (or fail over to another host) first",
                )
            })?;
        if answer.in_recovery {
            return Err(Error::refused(
                format!(
                    "the declared primary {} is in recovery (a standby)",
                    self.primary.host
                ),
                "promote it first (`nixflip failover`), then rejoin",
            ));
        }
        self.doing(format!("asking {} what it runs", self.host.host));
        let check = ops::sql(
            &self.host,
            "read the WAL receiver",
            ops::WAIT_STREAMING_SQL,
            &[("sender", &self.primary_address), ("seconds", "0")],
            timeout,
        );
        // A stopped or unreachable PostgreSQL is what rejoin is for.
        if let Ok(receiver) = ops::run_json::<ops::Receiver>(&self.transport, &self.host, &check) {
            if receiver.streams_from(&self.primary_address) {
                return Ok(Some(receiver));
            }
        }
        Ok(None)
    }

    /// HOST's data directory: `[hosts.X.live] pg_data`, else what its
    /// server or its disk says.
    fn data_directory(&mut self) -> Result<String> {
        if let Some(data) = &self.host.pg_data {
            return Ok(data.clone());
        }
        let facts = facts::gather_host(&self.transport, &self.host);
        if !facts.reachable {
            return Err(Error::external(
                format!(
                    "{} cannot be reached: {}",
                    self.host.host,
                    facts.error.unwrap_or_default()
                ),
                "check that the host is up and reachable over ssh",
            ));
        }
        facts.data_directory.ok_or_else(|| {
            Error::usage(
                format!("{}'s data directory cannot be told", self.host.host),
                format!(
                    "set [hosts.\"{}\".live] pg_data in nixflip.toml",
                    self.host.host
                ),
            )
        })
    }

    /// Read HOST's control file (PostgreSQL may still run: it is read
    /// again once stopped) and the primary's history; choose the way.
    fn inspect(&mut self, data: &str) -> Result<Assessment> {
        // A running HOST is stopped first, so that its control file is
        // final: Synapse, then PostgreSQL (fast: a clean shutdown).
        self.stop()?;
        let mut control = self.control_data(data)?;
        let history = self.primary_history()?;
        // What pg_rewind would do first, done before the choice: the
        // control file then names the timeline its WAL ends on (a
        // promotion's first checkpoint comes later, and a primary killed
        // before it leaves the old timeline there), and its last checkpoint
        // is the end of what it wrote. Without wal_log_hints or checksums
        // only a re-seed is left anyway, and its data is left as it is.
        let recover = control.crashed_as_primary() && control.rewindable();
        if recover {
            self.journal.record("crashedAs", &control.state);
            if let Err(why) = self.finish_crash_recovery(data)? {
                let assessment = unrecovered(&control, &history, &why);
                self.journal.record("assessment", &assessment);
                return Ok(assessment);
            }
            let before = control;
            control = self.control_data(data)?;
            self.check_recovered(&before, &control)?;
        }
        self.journal.record("hostState", &control.state);
        self.journal.record("hostCheckpoint", control.checkpoint);
        self.journal.record("hostTimeline", control.wal_timeline());
        let mut assessment = assess(&self.host.host, &self.primary.host, &control, &history);
        assessment.recovered = recover;
        self.journal.record("assessment", &assessment);
        Ok(assessment)
    }

    /// After crash recovery: shut down cleanly, on the timeline its WAL
    /// was on (a new timeline would mean it recovered from an archive).
    fn check_recovered(&self, before: &ControlData, after: &ControlData) -> Result<()> {
        if after.shut_down() && after.timeline == before.wal_timeline() {
            return Ok(());
        }
        Err(Error::refused(
            format!(
                "after its crash recovery {}'s control file says `{}` on timeline {}, where its WAL was on timeline {}; nixflip does not choose a way from that",
                self.host.host,
                after.state,
                after.timeline,
                before.wal_timeline()
            ),
            format!(
                "its services stay stopped; look at its data directory, or run `nixflip rejoin {} --reseed` to re-seed it (its data directory is renamed aside, never deleted)",
                self.host.host
            ),
        ))
    }

    /// The primary's timeline, position and history.
    fn primary_history(&mut self) -> Result<ops::History> {
        self.doing(format!("reading {}'s timeline history", self.primary.host));
        let query = ops::sql(
            &self.primary,
            "read the timeline history",
            ops::HISTORY_SQL,
            &[],
            self.settings.ssh.command_timeout,
        );
        let history: ops::History =
            ops::run_json(&self.transport, &self.primary, &query).map_err(switchover::op_error)?;
        self.journal.record("primaryTimeline", history.timeline);
        self.journal.record("primaryLsn", history.lsn);
        Ok(history)
    }

    /// Crash recovery of HOST's stopped data directory. `Ok(Err(why))`
    /// when only a new base backup is left: its data directory is set up
    /// for recovery (single-user mode refuses `standby.signal`, and would
    /// end an archive recovery on a new timeline), or `--reseed` was given
    /// and it failed. Any other failure stops the run, HOST's services
    /// stopped.
    fn finish_crash_recovery(&mut self, data: &str) -> Result<std::result::Result<(), String>> {
        let timeout = self.settings.ssh.command_timeout;
        let signals = self.run_op(&self.host, &ops::files_named(data, "*.signal", timeout))?;
        let set_up = signals
            .stdout
            .lines()
            .map(str::trim)
            .find(|name| matches!(*name, "standby.signal" | "recovery.signal"));
        if let Some(signal) = set_up {
            return Ok(Err(format!(
                "its data directory has {signal}: it was set up for recovery before its crash recovery ran"
            )));
        }
        self.doing(format!(
            "finishing {}'s crash recovery (postgres --single: no connections; its WAL replayed to its end, a checkpoint written there)",
            self.host.host
        ));
        let copy = Self::seconds(&self.cluster.config.config.switchover.copy_timeout);
        let command = ops::finish_crash_recovery(&self.host, data, copy);
        let stderr = match ops::run(&self.transport, &self.host, &command) {
            Ok(_) => return Ok(Ok(())),
            Err(OpError::Failed { stderr, .. }) => stderr,
            Err(e) => return Err(switchover::op_error(e)),
        };
        self.journal.record("crashRecoveryFailed", &stderr);
        let why = postgres_complaint(&stderr).to_string();
        if self.options.reseed {
            return Ok(Err(format!("its crash recovery failed: {why}")));
        }
        Err(Error::external(
            format!(
                "{}: its crash recovery (postgres --single) failed: {why}",
                self.host.host
            ),
            format!(
                "nothing else was done and its services stay stopped (the journal holds PostgreSQL's whole output): settle what it says and run `nixflip rejoin {host}` again, or run `nixflip rejoin {host} --reseed` to re-seed it (its data directory is renamed aside, never deleted)",
                host = self.host.host
            ),
        ))
    }

    /// HOST's `pg_controldata`.
    fn control_data(&mut self, data: &str) -> Result<ControlData> {
        self.doing(format!("reading pg_controldata on {}", self.host.host));
        let timeout = self.settings.ssh.command_timeout;
        switchover::control_data(&self.transport, &self.host, data, timeout)
    }

    /// Stop Synapse, then PostgreSQL (the NixOS unit stops it fast, which
    /// is a clean shutdown).
    fn stop(&mut self) -> Result<()> {
        let timeout = self.service_timeout();
        for unit in [
            self.host.synapse_service.clone(),
            self.host.postgresql_service.clone(),
        ] {
            self.doing(format!("stopping {unit} on {}", self.host.host));
            self.run_op(&self.host, &ops::service("stop", &unit, timeout))?;
        }
        Ok(())
    }

    /// `nixos-rebuild switch` of HOST's standby configuration. A HOST past
    /// the fork first sets aside the later timelines' history files its
    /// WAL receiver fetched in an earlier attempt: PostgreSQL refuses to
    /// start as a standby with one it cannot follow in `pg_wal` ("requested
    /// timeline is not a child of this server's history"), while without
    /// it it starts on its own timeline and only waits.
    fn switch(&mut self, data: &str, assessment: &Assessment) -> Result<()> {
        if assessment.way != Way::Standby {
            self.set_aside_later_history(data, assessment.host_timeline)?;
        }
        let dir = self.store.dir().join("build").join(&self.host.host);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
            path: dir.clone(),
            help: "nixos-rebuild runs here".into(),
            source,
        })?;
        let call = switchover::switch_invocation(
            &self.cluster,
            &self.root,
            &self.settings,
            &self.options.rebuild,
            &dir,
            &self.host.host,
        )?;
        let progress = &mut *self.progress;
        switchover::run_rebuild(&[call], &mut |text, output| match output {
            None => progress(Event::Doing(text.to_string())),
            Some(line) => progress(Event::Output { host: text, line }),
        })?;
        self.journal.record("switched", Stamp::now());
        Ok(())
    }

    /// Rename `pg_wal/N.history` for every timeline N above HOST's own to
    /// `N.history.nixflip-rejoin-aside` (copies of the primary's; pg_rewind
    /// and pg_basebackup bring them back).
    fn set_aside_later_history(&mut self, data: &str, timeline: u32) -> Result<()> {
        let timeout = self.settings.ssh.command_timeout;
        let wal = format!("{}/pg_wal", data.trim_end_matches('/'));
        let out = self.run_op(&self.host, &ops::files_named(&wal, "*.history", timeout))?;
        for name in ops::later_history(&out.stdout, timeline) {
            let from = format!("{wal}/{name}");
            let to = format!("{from}.nixflip-rejoin-aside");
            self.doing(format!(
                "setting {name} aside on {} (a later timeline's history, fetched from the primary)",
                self.host.host
            ));
            self.run_op(&self.host, &ops::rename_aside(&from, &to, timeout))?;
            self.journal.record("historySetAside", &name);
        }
        Ok(())
    }

    /// The connection HOST's standby set-up wrote, for pg_rewind and
    /// pg_basebackup (an ordinary connection to `postgres` for the former).
    fn conninfo(&mut self) -> Result<String> {
        let timeout = self.service_timeout();
        let query = ops::sql(
            &self.host,
            "read primary_conninfo",
            ops::CONNINFO_SQL,
            &[],
            timeout,
        );
        let answer: ops::Conninfo =
            ops::run_json(&self.transport, &self.host, &query).map_err(switchover::op_error)?;
        if answer.conninfo.trim().is_empty() {
            return Err(Error::external(
                format!(
                    "{} has no primary_conninfo after its standby set-up",
                    self.host.host
                ),
                format!("look at {STANDBY_SETUP_SERVICE} on it"),
            ));
        }
        Ok(answer.conninfo)
    }

    /// CHECKPOINT on the primary, then pg_rewind. `Ok(Err(why))` when
    /// pg_rewind cannot do it (its WAL is gone): nothing was changed.
    fn rewind(
        &mut self,
        data: &str,
        conninfo: &str,
    ) -> Result<std::result::Result<String, String>> {
        self.stop()?;
        let timeout = self.service_timeout();
        // Right after a promotion the primary's control file still names
        // the old timeline, and pg_rewind would find nothing to do.
        self.doing(format!("CHECKPOINT on {}", self.primary.host));
        self.run_op(
            &self.primary,
            &ops::sql(
                &self.primary,
                "CHECKPOINT",
                ops::CHECKPOINT_SQL,
                &[],
                timeout,
            ),
        )?;
        self.doing(format!(
            "pg_rewind on {} from {}",
            self.host.host, self.primary.host
        ));
        let copy = Self::seconds(&self.cluster.config.config.switchover.copy_timeout);
        let command = ops::rewind(
            &self.host,
            data,
            &format!("{conninfo} dbname=postgres"),
            copy,
        );
        match ops::run(&self.transport, &self.host, &command) {
            Ok(out) => {
                let text = format!("{}\n{}", out.stdout, out.stderr);
                let said = match ops::parse_rewind(&text) {
                    Some(ops::Rewound::Diverged { at, timeline }) => {
                        self.journal.record("divergedAt", at);
                        format!("servers diverged at {at} on timeline {timeline}; rewound")
                    }
                    Some(ops::Rewound::NotRequired) => "no rewind required".to_string(),
                    None => "rewound".to_string(),
                };
                self.journal.record("pgRewind", &said);
                Ok(Ok(said))
            }
            Err(OpError::Failed { message, .. }) if wal_missing(&message) => {
                self.journal.record("pgRewindFailed", &message);
                Ok(Err(format!(
                    "its WAL back to the last common checkpoint is gone ({})",
                    last_line(&message)
                )))
            }
            Err(e) => Err(switchover::op_error(e)),
        }
    }

    /// Rename the data directory aside, then a new base backup. Returns
    /// where the old one went.
    fn reseed(&mut self, data: &str, conninfo: &str) -> Result<String> {
        self.stop()?;
        let timeout = self.service_timeout();
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let aside = format!("{}.nixflip-rejoin-{stamp}", data.trim_end_matches('/'));
        self.doing(format!("renaming {data} to {aside} on {}", self.host.host));
        if ops::run(&self.transport, &self.host, &ops::exists(&aside, timeout)).is_ok() {
            return Err(Error::refused(
                format!("{aside} exists on {} already", self.host.host),
                "run rejoin again in a second",
            ));
        }
        self.run_op(&self.host, &ops::rename_aside(data, &aside, timeout))?;
        if ops::run(&self.transport, &self.host, &ops::exists(data, timeout)).is_ok() {
            return Err(Error::external(
                format!(
                    "{data} is still there on {} after renaming it",
                    self.host.host
                ),
                "look at the host",
            ));
        }
        self.journal.record("keptAside", &aside);
        self.store.save(&self.journal)?;
        self.run_op(
            &self.host,
            &ops::make_data_directory(&self.host, data, timeout),
        )?;
        self.doing(format!(
            "pg_basebackup on {} from {}",
            self.host.host, self.primary.host
        ));
        let copy = Self::seconds(&self.cluster.config.config.switchover.copy_timeout);
        self.run_op(
            &self.host,
            &ops::base_backup(&self.host, data, conninfo, copy),
        )?;
        Ok(aside)
    }

    /// The standby set-up again (pg_rewind and pg_basebackup copied the
    /// primary's files over HOST's settings), then PostgreSQL.
    fn standby_setup(&mut self) -> Result<()> {
        let timeout = self.service_timeout();
        self.doing(format!("{STANDBY_SETUP_SERVICE} on {}", self.host.host));
        self.run_op(
            &self.host,
            &ops::service("restart", STANDBY_SETUP_SERVICE, timeout),
        )?;
        let unit = self.host.postgresql_service.clone();
        self.doing(format!("starting {unit} on {}", self.host.host));
        self.run_op(&self.host, &ops::service("start", &unit, timeout))?;
        Ok(())
    }

    /// HOST streams from the primary.
    fn verify(&mut self) -> Result<ops::Receiver> {
        let wait = Self::seconds(&self.cluster.config.config.switchover.rejoin_timeout);
        self.doing(format!(
            "waiting for {} to stream from {}",
            self.host.host, self.primary.host
        ));
        let seconds = wait.as_secs().to_string();
        let started = Instant::now();
        let command = ops::sql(
            &self.host,
            "wait for streaming",
            ops::WAIT_STREAMING_SQL,
            &[("sender", &self.primary_address), ("seconds", &seconds)],
            wait + self.settings.ssh.command_timeout,
        );
        // PostgreSQL may still be starting: its socket is polled until the
        // deadline, then the wait runs on the server.
        let receiver = loop {
            match ops::run_json::<ops::Receiver>(&self.transport, &self.host, &command) {
                Ok(r) => break r,
                Err(e) if started.elapsed() >= wait => return Err(switchover::op_error(e)),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        self.journal.record("receiver", receiver.to_string());
        self.journal
            .record("receivedTimeline", receiver.received_tli);
        if !receiver.streams_from(&self.primary_address) {
            return Err(Error::external(
                format!(
                    "{} does not stream from {} ({}) after {} s: {receiver}",
                    self.host.host,
                    self.primary.host,
                    self.primary_address,
                    wait.as_secs()
                ),
                format!("look at {}'s PostgreSQL log", self.host.host),
            ));
        }
        Ok(receiver)
    }
}

/// pg_rewind's messages when the target's WAL it needs is gone.
fn wal_missing(message: &str) -> bool {
    message.contains("could not open file") && message.contains("pg_wal")
        || message.contains("could not find previous WAL record")
        || message.contains("could not read WAL record")
}

fn last_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
}

/// The line of PostgreSQL's output that says why it stopped (its FATAL or
/// PANIC), else its last line.
fn postgres_complaint(message: &str) -> &str {
    message
        .lines()
        .map(str::trim)
        .find(|l| l.contains("FATAL:") || l.contains("PANIC:"))
        .unwrap_or_else(|| last_line(message))
}

/// The rewound range, for the operator.
pub fn range_text(a: &Assessment) -> String {
    match a.rewound {
        Some((from, Some(to))) if a.recovered => format!(
            "the WAL it wrote from {from} to {to} on timeline {} is not on the primary and is rewound away ({to} is the checkpoint its crash recovery wrote at its end, not a client's write)",
            a.host_timeline
        ),
        Some((from, Some(to))) => format!(
            "the WAL it wrote from {from} to {to} on timeline {} is not on the primary and is rewound away",
            a.host_timeline
        ),
        Some((from, None)) => format!(
            "the WAL it wrote from {from} on timeline {} to its end (it did not shut down cleanly) is not on the primary and is rewound away",
            a.host_timeline
        ),
        None => "it did not shut down cleanly; pg_rewind finds what it wrote after the fork".into(),
    }
}

/// The way for a HOST whose crash recovery failed (a data directory set up
/// as a standby before it ran cannot finish it as a primary): nothing is
/// known of its WAL's end, so only a new base backup is left, which the
/// choice offers or asks for.
fn unrecovered(control: &ControlData, history: &ops::History, why: &str) -> Assessment {
    Assessment {
        way: Way::Reseed,
        reason: format!(
            "it did not shut down cleanly and cannot finish crash recovery as a primary ({why}), so neither a plain standby nor pg_rewind can be told safe"
        ),
        ..Assessment::of(control, history)
    }
}

impl Assessment {
    /// What the control file and the primary's history say, before any
    /// choice (a plain standby until shown otherwise).
    fn of(control: &ControlData, history: &ops::History) -> Assessment {
        Assessment {
            way: Way::Standby,
            reason: String::new(),
            host_state: control.state.clone(),
            host_checkpoint: control.checkpoint,
            host_timeline: control.wal_timeline(),
            primary_timeline: history.timeline,
            fork: None,
            rewound: None,
            recovered: false,
        }
    }
}

/// Choose the way from HOST's control file and the primary's history.
pub fn assess(
    host: &str,
    primary: &str,
    control: &ControlData,
    history: &ops::History,
) -> Assessment {
    // The timeline its WAL ends on, and how far its data reaches there.
    let timeline = control.wal_timeline();
    let end = control.end();
    let mut a = Assessment::of(control, history);
    let reseed = |mut a: Assessment, reason: String| {
        a.way = Way::Reseed;
        a.reason = reason;
        a
    };
    if control
        .system_identifier
        .as_ref()
        .is_some_and(|id| *id != history.system_identifier)
    {
        return reseed(
            a,
            format!(
                "{host}'s data directory is another cluster (system identifier {}, {primary}'s is {})",
                control.system_identifier.clone().unwrap_or_default(),
                history.system_identifier
            ),
        );
    }
    // Where the primary's WAL leaves HOST's timeline: its fork, or (same
    // timeline) its current position.
    let fork = if timeline == history.timeline {
        None
    } else {
        match history.fork_of(timeline) {
            Some(f) => Some(f),
            None => {
                return reseed(
                    a,
                    format!(
                        "{host}'s timeline {timeline} is not in {primary}'s history (timeline {})",
                        history.timeline
                    ),
                )
            }
        }
    };
    a.fork = fork;
    let limit = fork.unwrap_or(history.lsn);
    // A checkpoint location is where its record starts, the minimum
    // recovery point where the last replayed record ends: ending exactly at
    // the fork is still before it.
    if control.clean() && control.checkpoint < limit && control.min_recovery <= limit {
        a.reason = match fork {
            Some(f) => format!(
                "it shut down cleanly at {end} on timeline {timeline}, before {primary}'s timeline {} forked at {f}",
                history.timeline
            ),
            None => format!(
                "it shut down cleanly at {end} on {primary}'s timeline {timeline}"
            ),
        };
        return a;
    }
    let from = limit;
    a.rewound = Some((from, control.clean().then_some(end)));
    if !control.rewindable() {
        return reseed(
            a,
            format!(
                "it wrote past {from} on timeline {timeline}, and pg_rewind needs wal_log_hints = on or data checksums, which it has neither of (the cluster module nixflip generates turns wal_log_hints on)"
            ),
        );
    }
    if control.timeline < timeline {
        // Only crash recovery as a primary writes the missing checkpoint,
        // and it has run as a standby since (single-user mode refuses
        // standby.signal).
        return reseed(
            a,
            format!(
                "it went past {from} on timeline {timeline}, but its control file still names timeline {} (it was promoted and stopped before its first checkpoint, then started as a standby), and pg_rewind takes the control file's timeline",
                control.timeline
            ),
        );
    }
    a.way = Way::Rewind;
    a.reason = format!(
        "it wrote past {primary}'s fork at {from} on timeline {timeline}{}",
        if control.clean() {
            String::new()
        } else {
            format!(" (its control file says `{}`)", control.state)
        }
    );
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(state: &str, checkpoint: &str, timeline: u32, hints: bool) -> ControlData {
        ControlData {
            state: state.into(),
            checkpoint: checkpoint.parse().expect("lsn"),
            timeline,
            min_recovery_timeline: 0,
            min_recovery: Lsn(0),
            system_identifier: Some("7".into()),
            wal_log_hints: hints,
            checksums: false,
        }
    }

    fn history(timeline: u32, lsn: &str, text: Option<&str>) -> ops::History {
        ops::History {
            in_recovery: false,
            system_identifier: "7".into(),
            timeline,
            lsn: lsn.parse().expect("lsn"),
            history: text.map(str::to_string),
        }
    }

    #[test]
    fn the_way_follows_the_fork() {
        let h = history(
            2,
            "0/9000000",
            Some("1\t0/3000100\tno recovery target specified\n"),
        );
        assert_eq!(h.fork_of(1), Some("0/3000100".parse().expect("lsn")));
        assert_eq!(h.fork_of(2), None);
        let clean = assess("a", "b", &control("shut down", "0/3000028", 1, true), &h);
        assert_eq!(clean.way, Way::Standby, "{clean:?}");
        let past = assess("a", "b", &control("shut down", "0/4000028", 1, true), &h);
        assert_eq!(past.way, Way::Rewind);
        assert_eq!(
            past.rewound,
            Some((
                "0/3000100".parse().expect("lsn"),
                Some("0/4000028".parse().expect("lsn"))
            ))
        );
        let crashed = assess(
            "a",
            "b",
            &control("in production", "0/2000028", 1, true),
            &h,
        );
        assert_eq!(crashed.way, Way::Rewind);
        assert_eq!(crashed.rewound.map(|r| r.1), Some(None));
        let no_hints = assess("a", "b", &control("shut down", "0/4000028", 1, false), &h);
        assert_eq!(no_hints.way, Way::Reseed);
        assert!(
            no_hints.reason.contains("wal_log_hints"),
            "{}",
            no_hints.reason
        );
        let stranger = assess("a", "b", &control("shut down", "0/2000028", 5, true), &h);
        assert_eq!(stranger.way, Way::Reseed);
        let mut other = control("shut down", "0/2000028", 1, true);
        other.system_identifier = Some("8".into());
        assert_eq!(assess("a", "b", &other, &h).way, Way::Reseed);
        let same = assess(
            "a",
            "b",
            &control("shut down in recovery", "0/8000000", 2, false),
            &h,
        );
        assert_eq!(same.way, Way::Standby);
    }

    /// A control file that lags its WAL: stopped in recovery after a
    /// promotion to `wal_timeline` that no checkpoint recorded, its data
    /// reaching `end` there.
    fn lagging(end: &str, wal_timeline: u32) -> ControlData {
        let mut c = control("shut down in recovery", "0/2000028", 1, true);
        c.min_recovery_timeline = wal_timeline;
        c.min_recovery = end.parse().expect("lsn");
        c
    }

    #[test]
    fn a_control_file_behind_its_wal_is_judged_by_its_wal() {
        // The primary is on timeline 3, which forked from 2 at 0/5000000.
        let h = history(
            3,
            "0/9000000",
            Some("1\t0/3000100\tno recovery target specified\n2\t0/5000000\tno recovery target specified\n"),
        );
        let before = assess("a", "b", &lagging("0/4000000", 2), &h);
        assert_eq!(before.way, Way::Standby, "{before:?}");
        assert_eq!(before.host_timeline, 2);
        assert_eq!(before.fork, Some("0/5000000".parse().expect("lsn")));
        // The minimum recovery point is where a record ends: ending at
        // the fork is before it.
        let at = assess("a", "b", &lagging("0/5000000", 2), &h);
        assert_eq!(at.way, Way::Standby, "{at:?}");
        // Past the fork: pg_rewind would read timeline 1 from the control
        // file and look for the fork there.
        let past = assess("a", "b", &lagging("0/6000000", 2), &h);
        assert_eq!(past.way, Way::Reseed, "{past:?}");
        assert!(
            past.reason.contains("still names timeline 1"),
            "{}",
            past.reason
        );
        assert_eq!(
            past.rewound,
            Some((
                "0/5000000".parse().expect("lsn"),
                Some("0/6000000".parse().expect("lsn"))
            ))
        );
        // A standby stopped past the fork on the control file's own
        // timeline: its last restartpoint alone would pass for a plain
        // standby.
        let mut replayed = control("shut down in recovery", "0/4000000", 2, true);
        replayed.min_recovery_timeline = 2;
        replayed.min_recovery = "0/6000000".parse().expect("lsn");
        let rewound = assess("a", "b", &replayed, &h);
        assert_eq!(rewound.way, Way::Rewind, "{rewound:?}");
    }

    #[test]
    fn a_range_ending_at_the_crash_recoverys_checkpoint_says_so() {
        let h = history(
            2,
            "0/9000000",
            Some("1\t0/3000100\tno recovery target specified\n"),
        );
        let mut a = assess("a", "b", &control("shut down", "0/3000180", 1, true), &h);
        assert_eq!(a.way, Way::Rewind);
        assert!(
            !range_text(&a).contains("crash recovery"),
            "{}",
            range_text(&a)
        );
        a.recovered = true;
        assert!(
            range_text(&a).ends_with("(0/3000180 is the checkpoint its crash recovery wrote at its end, not a client's write)"),
            "{}",
            range_text(&a)
        );
    }

    #[test]
    fn postgres_says_why_in_its_fatal_line() {
        let out = "2026-11-29 22:00:00 UTC [1] FATAL:  standby mode is not supported by single-user servers\n2026-11-29 22:00:00 UTC [1] LOG:  database system is shut down\n";
        assert!(postgres_complaint(out).ends_with("single-user servers"));
        assert_eq!(postgres_complaint("a\nlast\n"), "last");
    }

    #[test]
    fn rewind_messages() {
        assert_eq!(
            ops::parse_rewind("pg_rewind: servers diverged at WAL location 0/3000100 on timeline 1\npg_rewind: Done!"),
            Some(ops::Rewound::Diverged { at: "0/3000100".parse().expect("lsn"), timeline: 1 })
        );
        assert_eq!(
            ops::parse_rewind("pg_rewind: source and target cluster are on the same timeline\npg_rewind: no rewind required"),
            Some(ops::Rewound::NotRequired)
        );
        assert!(wal_missing("pg_rewind: error: could not open file \"/d/pg_wal/000000010000000000000003\": No such file or directory"));
    }
}
