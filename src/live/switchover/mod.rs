//! `switchover HOST`: the planned failover, with zero committed data lost, in eight journaled
//! steps that a later run can resume. It must never promote a standby that has not replayed
//! past the old primary's fence, and never roll back once promotion has been requested.
//!
//! 1. pre-flight: the flake is consistent as it is and flipped, the new
//!    primary has its secrets, the live pair is healthy (HOST streams from
//!    the declared primary), the DNS record and its TTL;
//! 2. build ahead: the flip is validated in a scratch copy and both new
//!    configurations are built while the old primary still serves;
//! 3. drain and fence: Synapse stops, CHECKPOINT, PostgreSQL stops (fast),
//!    `pg_controldata` must say "shut down": its checkpoint is the fence LSN;
//! 4. catch up: HOST replays past the fence (bounded wait);
//! 5. promote: `pg_promote(true, N)` on HOST;
//! 6. flip and switch: the flip is written and committed, HOST switched
//!    (Synapse on), then the old primary, which follows HOST's new timeline
//!    without a new base backup; it must stream from HOST;
//! 7. DNS: the record points at HOST;
//! 8. smoke test: `/_matrix/client/versions` by the public name at HOST's
//!    address, optionally a federation tester, then `status --live`.
//!
//! A failure in steps 3-4 starts the old primary's PostgreSQL and Synapse
//! again (the rollback); from step 5 on, nothing is rolled back: the run
//! stops and `--resume` continues it. Every step is written so that running
//! it again after an interruption at any point (`kill -9` included) is safe.

mod flip;

pub use flip::{FileRecord, Flip, Invalid, Written};

use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::dns::Dns;
use super::facts::Lsn;
use super::journal::{Journal, OperationLock, Outcome, Stamp, State, Store};
use super::ops::{self, OpError};
use super::settings::{HostSettings, Settings};
use super::ssh::{SshOptions, Transport};
use super::{smoke, LiveRole, LiveStatus};
use crate::cluster::{rules, Cluster, Finding, Role, Severity};
use crate::deploy::{self, Invocation, RebuildOptions};
use crate::error::{Error, Result, EXIT_REFUSED};
use crate::names::{display_command, Target};

/// The journal's name for this operation.
pub const OPERATION: &str = "switchover";

/// Which of the two operations a run is: the planned switchover, or the
/// failover from a primary that is gone (no fence, no catch-up: HOST is
/// promoted with what it has, and the old primary is left alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    #[default]
    Switchover,
    Failover,
}

impl Kind {
    /// The journal's and the command's name.
    pub fn operation(self) -> &'static str {
        match self {
            Kind::Switchover => OPERATION,
            Kind::Failover => "failover",
        }
    }

    /// Its steps, in order.
    pub fn steps(self) -> &'static [Step] {
        match self {
            Kind::Switchover => &Step::ALL,
            Kind::Failover => &[
                Step::Preflight,
                Step::Promote,
                Step::Flip,
                Step::Dns,
                Step::Smoke,
            ],
        }
    }

    /// A step's place among them, from 1.
    pub fn position(self, step: Step) -> usize {
        self.steps().iter().position(|s| *s == step).unwrap_or(0) + 1
    }
}

/// The eight steps, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Preflight,
    Build,
    Fence,
    CatchUp,
    Promote,
    Flip,
    Dns,
    Smoke,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Preflight,
        Step::Build,
        Step::Fence,
        Step::CatchUp,
        Step::Promote,
        Step::Flip,
        Step::Dns,
        Step::Smoke,
    ];

    /// The step's name in the journal.
    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Build => "build",
            Step::Fence => "fence",
            Step::CatchUp => "catch-up",
            Step::Promote => "promote",
            Step::Flip => "flip",
            Step::Dns => "dns",
            Step::Smoke => "smoke",
        }
    }

    /// What the step does, for the operator.
    pub fn title(self) -> &'static str {
        match self {
            Step::Preflight => "pre-flight",
            Step::Build => "build ahead",
            Step::Fence => "drain and fence the old primary",
            Step::CatchUp => "catch up",
            Step::Promote => "promote",
            Step::Flip => "flip and switch",
            Step::Dns => "DNS",
            Step::Smoke => "smoke test",
        }
    }

    /// 1 to 8.
    pub fn number(self) -> usize {
        Step::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }

    /// Whatever this step does can still be undone.
    pub fn before_promotion(self) -> bool {
        self.number() < Step::Promote.number()
    }
}

/// How the switchover was asked for; kept in the journal so that
/// `--resume` goes on the same way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    /// Leave DNS alone.
    pub no_dns: bool,
    pub build_host: Option<String>,
    pub use_remote_sudo: bool,
    pub sudo: bool,
    /// Appended to every `nixos-rebuild` call.
    pub rebuild_args: Vec<String>,
    /// Passed to `nix eval` (after `[eval] nix_args`).
    pub nix_args: Vec<String>,
    /// Carry the old primary's hand-written firewall rules and pg_hba
    /// lines to the new primary (as `promote --carry-address-rules`).
    #[serde(default)]
    pub carry_address_rules: bool,
}

/// What the journal says the operation is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subject {
    new_primary: String,
    old_primary: String,
    options: Options,
    #[serde(default)]
    kind: Kind,
}

/// The flake and configuration a run works on: loaded again after the
/// flip, and named in the `--resume` command.
#[derive(Clone, Debug)]
pub struct Location {
    pub flake: PathBuf,
    pub config: Option<PathBuf>,
}

/// Asks the operator a question; an error when the answer is no.
pub type Confirm<'a> = &'a mut dyn FnMut(&str) -> Result<()>;

/// What the switchover reports while it works.
pub enum Event<'a> {
    /// A step begins (`again`: an earlier run started it).
    Step { step: Step, again: bool },
    /// A step was done by an earlier run.
    AlreadyDone { step: Step },
    /// What is happening now, within a step.
    Doing(String),
    /// A line of `nixos-rebuild`'s output.
    Output { host: &'a str, line: &'a str },
    /// Worth knowing, not stopping for.
    Warning(String),
    /// Findings to show (with the cluster they are about).
    Findings(&'a [Finding], &'a Cluster),
    /// A step ended well.
    Done { step: Step, seconds: f64 },
}

/// A failover's data-loss window: HOST had received and replayed this
/// much of the old primary's WAL when it was promoted.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Loss {
    pub received_lsn: Option<Lsn>,
    pub replayed_lsn: Option<Lsn>,
    /// The commit time of the last transaction HOST replayed.
    pub last_replay: Option<String>,
}

impl Loss {
    pub fn describe(&self, old: &str, new: &str) -> String {
        let lsn = |l: Option<Lsn>| l.map_or("nothing".to_string(), |l| l.to_string());
        format!(
            "{new} received {old}'s WAL up to {} and replayed up to {}, its last replayed commit from {}; what {old} committed after that is not on {new}",
            lsn(self.received_lsn),
            lsn(self.replayed_lsn),
            self.last_replay.as_deref().unwrap_or("before it started (none replayed)")
        )
    }
}

/// How a run ended well.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub kind: Kind,
    /// A failover's data-loss window.
    pub loss: Option<Loss>,
    pub new_primary: String,
    pub old_primary: String,
    pub fence_lsn: Option<String>,
    pub timeline: Option<u32>,
    /// From stopping Synapse on the old primary to the new primary taking
    /// writes, in seconds.
    pub write_unavailable_seconds: Option<f64>,
    /// The whole switchover without the build step, in seconds.
    pub total_seconds: Option<f64>,
    pub build_seconds: f64,
    pub commit: Option<String>,
    pub dns: Option<String>,
    pub smoke: Option<smoke::Versions>,
    pub federation: Option<String>,
    #[serde(skip)]
    pub status: Option<LiveStatus>,
    pub journal: PathBuf,
}

/// A `switchover` run: everything a step needs.
struct Run<'p> {
    invocation: Location,
    root: PathBuf,
    cluster: Cluster,
    settings: Settings,
    transport: Transport,
    store: Store,
    journal: Journal,
    subject: Subject,
    /// Save the journal (false for `--dry-run`).
    persist: bool,
    progress: &'p mut dyn FnMut(Event<'_>),
    status: Option<LiveStatus>,
    /// Steps done by an earlier process may be out of date: the fence is
    /// checked again before promotion.
    resumed: bool,
    _lock: Option<OperationLock>,
}

/// Load the flake's cluster.
pub(crate) fn load(invocation: &Location) -> Result<(PathBuf, Cluster)> {
    let root = crate::cluster::discover::find_flake_root(&invocation.flake)?;
    let loaded = crate::config::load(&root, invocation.config.as_deref())?;
    let cluster = Cluster::load(&root, loaded)?;
    Ok((root, cluster))
}

/// The live settings, with connections kept long enough to outlast a
/// build without being reopened inside the fenced steps.
pub(crate) fn live_settings(cluster: &Cluster) -> Result<(Settings, Transport)> {
    let mut settings = Settings::resolve(cluster)?;
    settings.ssh.persist = settings.ssh.persist.max(600);
    let transport = Transport::new(settings.ssh.clone())?;
    Ok((settings, transport))
}

/// The exact command that continues a stopped switchover.
pub fn resume_command(invocation: &Location) -> String {
    resume_command_of(invocation, Kind::Switchover)
}

/// The exact command that continues a stopped run of `kind`.
pub fn resume_command_of(invocation: &Location, kind: Kind) -> String {
    let mut argv = vec!["nixflip".to_string()];
    argv.push("--flake".into());
    argv.push(invocation.flake.display().to_string());
    if let Some(config) = &invocation.config {
        argv.push("--config".into());
        argv.push(config.display().to_string());
    }
    argv.extend([kind.operation().into(), "--resume".into()]);
    display_command(&argv)
}

/// The kind of the operation a journal is about.
fn current_kind(journal: &Journal) -> Kind {
    if journal.operation == Kind::Failover.operation() {
        Kind::Failover
    } else {
        Kind::Switchover
    }
}

/// The operation in progress, described for a refusal.
fn in_progress(journal: &Journal) -> String {
    let last = journal
        .entries
        .last()
        .map(|e| format!(", last step {} ({:?})", e.step, e.outcome))
        .unwrap_or_default();
    let about = serde_json::from_value::<Subject>(journal.subject.clone())
        .map(|s| format!(" from {} to {}", s.old_primary, s.new_primary))
        .unwrap_or_default();
    format!(
        "a {}{about} is in progress (run {}{last})",
        journal.operation, journal.run
    )
}

/// Start a switchover to `host`: pre-flight, then `confirm` (the command
/// layer asks the operator, or `--yes`), then the other steps.
pub fn start(
    invocation: Location,
    host: &str,
    options: Options,
    confirm: Confirm<'_>,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Option<Report>> {
    begin(
        Kind::Switchover,
        invocation,
        host,
        options,
        confirm,
        progress,
    )
}

/// Start a failover to `host` (the caller has the operator's word that
/// the old primary is down or cut off): pre-flight, `confirm`, then
/// promote, flip and switch HOST, DNS, smoke test.
pub fn failover(
    invocation: Location,
    host: &str,
    options: Options,
    confirm: Confirm<'_>,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Option<Report>> {
    begin(Kind::Failover, invocation, host, options, confirm, progress)
}

fn begin(
    kind: Kind,
    invocation: Location,
    host: &str,
    options: Options,
    confirm: Confirm<'_>,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Option<Report>> {
    let (root, cluster) = load(&invocation)?;
    let store = Store::for_flake(&root)?;
    let lock = store.lock()?;
    if let Some(journal) = store.current()? {
        return Err(Error::refused(
            in_progress(&journal),
            format!(
                "continue it with `{}`, or undo it (while that is still possible) with `{} --abort`",
                resume_command_of(&invocation, current_kind(&journal)),
                resume_command_of(&invocation, current_kind(&journal)).trim_end_matches(" --resume")
            ),
        ));
    }
    let new = cluster
        .member(host)
        .ok_or_else(|| crate::cluster::plan::unknown_host(&cluster, host))?;
    if new.is_primary() && cluster.primaries().len() == 1 {
        return Ok(None);
    }
    let old = cluster
        .primary()
        .filter(|m| m.name != new.name)
        .map(|m| m.name.clone())
        .ok_or_else(|| {
            Error::refused(
                "the flake does not declare exactly one primary, so there is no old primary to switch over from",
                "fix the roles first (`nixflip check`)",
            )
        })?;
    let subject = Subject {
        new_primary: new.name.clone(),
        old_primary: old,
        options,
        kind,
    };
    let journal = Journal::new(
        kind.operation(),
        &root,
        serde_json::to_value(&subject).unwrap_or_default(),
    );
    let (settings, transport) = live_settings(&cluster)?;
    let mut run = Run {
        invocation,
        root,
        cluster,
        settings,
        transport,
        store,
        journal,
        subject,
        persist: true,
        progress,
        status: None,
        resumed: false,
        _lock: Some(lock),
    };
    run.save()?;
    run.drive(Some(confirm))
}

/// Continue the switchover (or failover: `kind`) in progress.
pub fn resume(
    kind: Kind,
    invocation: Location,
    confirm: Confirm<'_>,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Option<Report>> {
    let (root, cluster) = load(&invocation)?;
    let store = Store::for_flake(&root)?;
    let lock = store.lock()?;
    let Some(mut journal) = store.current()? else {
        return Err(Error::usage(
            format!("there is no {} in progress to resume", kind.operation()),
            format!(
                "start one with `nixflip {} HOST`; finished runs are kept in {}",
                kind.operation(),
                store.dir().join("runs").display()
            ),
        ));
    };
    if journal.operation != kind.operation() {
        return Err(Error::refused(
            in_progress(&journal),
            format!("continue it with `nixflip {} --resume`", journal.operation),
        ));
    }
    let subject: Subject = serde_json::from_value(journal.subject.clone()).map_err(|e| {
        Error::usage(
            format!("the journal's subject cannot be read: {e}"),
            format!("look at {}", store.current_path().display()),
        )
    })?;
    let promoted = journal.started(Step::Promote.name());
    confirm(&format!(
        "resume the {} from {} to {} (run {}{})?",
        kind.operation(),
        subject.old_primary,
        subject.new_primary,
        journal.run,
        if promoted {
            format!("; {} was promoted", subject.new_primary)
        } else {
            String::new()
        }
    ))?;
    journal.state = State::Running;
    let (settings, transport) = live_settings(&cluster)?;
    let mut run = Run {
        invocation,
        root,
        cluster,
        settings,
        transport,
        store,
        journal,
        subject,
        persist: true,
        progress,
        status: None,
        resumed: true,
        _lock: Some(lock),
    };
    run.save()?;
    run.drive(None)
}

/// What `--abort` did.
#[derive(Clone, Debug, Serialize)]
pub struct Aborted {
    /// The old primary's services were started again.
    pub restarted: Option<String>,
    pub journal: PathBuf,
}

/// Roll back the switchover (or failover) in progress, if promotion was
/// not requested.
pub fn abort(
    kind: Kind,
    invocation: Location,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Aborted> {
    let (root, cluster) = load(&invocation)?;
    let store = Store::for_flake(&root)?;
    let lock = store.lock()?;
    let Some(journal) = store.current()? else {
        return Err(Error::usage(
            format!("there is no {} in progress to abort", kind.operation()),
            "nothing to do",
        ));
    };
    if journal.operation != kind.operation() {
        return Err(Error::refused(
            in_progress(&journal),
            format!("abort it with `nixflip {} --abort`", journal.operation),
        ));
    }
    let subject: Subject = serde_json::from_value(journal.subject.clone()).map_err(|e| {
        Error::usage(
            format!("the journal's subject cannot be read: {e}"),
            format!("look at {}", store.current_path().display()),
        )
    })?;
    if let Some(entry) = journal.last(Step::Promote.name()) {
        return Err(Error::refused(
            format!(
                "{} was promoted (promotion was requested at {}): that cannot be rolled back. \
                 Demoting it would throw away what it has written since; the old primary {} \
                 rejoins as its standby when the {} finishes",
                subject.new_primary,
                entry.started.0,
                subject.old_primary,
                kind.operation()
            ),
            format!(
                "finish the {} with `{}`",
                kind.operation(),
                resume_command_of(&invocation, kind)
            ),
        ));
    }
    let (settings, transport) = live_settings(&cluster)?;
    let mut run = Run {
        invocation,
        root,
        cluster,
        settings,
        transport,
        store,
        journal,
        subject,
        persist: true,
        progress,
        status: None,
        resumed: true,
        _lock: Some(lock),
    };
    let restarted = if run.journal.started(Step::Fence.name()) {
        run.rollback()?;
        Some(run.subject.old_primary.clone())
    } else {
        None
    };
    run.journal.state = State::Aborted;
    run.journal
        .notes
        .push("aborted by the operator before promotion".into());
    let path = run.store.close(&run.journal)?;
    Ok(Aborted {
        restarted,
        journal: path,
    })
}

/// One command of a step as `--dry-run` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Planned {
    /// The host it runs on (`None`: on this machine).
    pub host: Option<String>,
    pub target: Option<String>,
    pub command: String,
    /// The SQL psql reads on stdin.
    pub sql: Option<String>,
}

/// `--dry-run`: the pre-flight's outcome, then every step's commands.
#[derive(Serialize)]
pub struct DryRun {
    pub new_primary: String,
    pub old_primary: String,
    pub steps: Vec<(Step, Vec<Planned>)>,
    #[serde(skip)]
    pub plan: crate::cluster::plan::Plan,
}

/// Run the pre-flight and describe every step's commands; change nothing.
pub fn dry_run(
    invocation: Location,
    host: &str,
    options: Options,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Option<DryRun>> {
    let (root, cluster) = load(&invocation)?;
    let store = Store::for_flake(&root)?;
    if let Some(journal) = store.current()? {
        return Err(Error::refused(
            in_progress(&journal),
            format!("continue it with `{}`", resume_command(&invocation)),
        ));
    }
    let new = cluster
        .member(host)
        .ok_or_else(|| crate::cluster::plan::unknown_host(&cluster, host))?;
    if new.is_primary() && cluster.primaries().len() == 1 {
        return Ok(None);
    }
    let old = cluster
        .primary()
        .filter(|m| m.name != new.name)
        .map(|m| m.name.clone())
        .ok_or_else(|| {
            Error::refused(
                "the flake does not declare exactly one primary",
                "fix the roles first (`nixflip check`)",
            )
        })?;
    let subject = Subject {
        new_primary: new.name.clone(),
        old_primary: old,
        options,
        kind: Kind::Switchover,
    };
    let journal = Journal::new(OPERATION, &root, serde_json::Value::Null);
    let (settings, transport) = live_settings(&cluster)?;
    let mut run = Run {
        invocation,
        root,
        cluster,
        settings,
        transport,
        store,
        journal,
        subject,
        persist: false,
        progress,
        status: None,
        resumed: false,
        _lock: None,
    };
    run.journal.start(Step::Preflight.name());
    run.preflight()?;
    run.describe().map(Some)
}

/// The failure of a step, as the operator sees it.
fn with_step(kind: Kind, step: Step, e: String) -> String {
    format!(
        "step {} ({}) failed: {e}",
        kind.position(step),
        step.title()
    )
}

impl Run<'_> {
    fn emit(&mut self, event: Event<'_>) {
        (self.progress)(event);
    }

    fn doing(&mut self, what: impl Into<String>) {
        (self.progress)(Event::Doing(what.into()));
    }

    /// A flip that does not prove out, as the error that stops the run
    /// (its findings shown first).
    fn invalid(&mut self, invalid: Invalid) -> Error {
        match invalid {
            Invalid::Findings(findings, after) => {
                self.emit(Event::Findings(&findings, &after));
                Error::failed(
                    "the flipped cluster would not be consistent (above); nothing was changed",
                    "fix the flake so that the flip checks clean (`nixflip promote HOST --dry-run` shows the same)",
                )
            }
            Invalid::Mismatches(mismatches) => {
                let lines: Vec<String> = mismatches
                    .iter()
                    .map(|m| {
                        format!(
                            "  {}: {} should be {} but evaluates to {}",
                            m.host, m.field, m.intended, m.evaluated
                        )
                    })
                    .collect();
                Error::failed(
                    format!(
                        "nix eval disagrees with the plan; nothing was changed:\n{}",
                        lines.join("\n")
                    ),
                    "another definition wins over the one nixflip edits (a lib.mkForce elsewhere?)",
                )
            }
        }
    }

    fn save(&self) -> Result<()> {
        if self.persist {
            self.store.save(&self.journal)
        } else {
            Ok(())
        }
    }

    fn new_name(&self) -> &str {
        &self.subject.new_primary
    }

    fn old_name(&self) -> &str {
        &self.subject.old_primary
    }

    fn host(&self, name: &str) -> Result<&HostSettings> {
        self.settings
            .hosts
            .iter()
            .find(|h| h.host == name)
            .ok_or_else(|| {
                Error::usage(
                    format!("{name} is not a member of the cluster any more"),
                    "the flake changed under the switchover: put it back as it was",
                )
            })
    }

    fn new_host(&self) -> Result<HostSettings> {
        self.host(&self.subject.new_primary).cloned()
    }

    fn old_host(&self) -> Result<HostSettings> {
        self.host(&self.subject.old_primary).cloned()
    }

    /// A member's address (where its peers reach it).
    fn address(&self, name: &str) -> Result<String> {
        self.cluster
            .member(name)
            .and_then(|m| m.address.clone())
            .ok_or_else(|| {
                Error::usage(
                    format!("the address of {name} is unknown"),
                    format!(
                        "set [hosts.\"{name}\"] address in nixflip.toml, or publicIp in its file"
                    ),
                )
            })
    }

    /// Where clients reach a member: `[hosts.X.live] public_address`, else
    /// its address.
    fn public_address(&self, name: &str) -> Result<String> {
        let configured = self
            .cluster
            .config
            .config
            .hosts
            .get(name)
            .and_then(|h| h.live.public_address.as_ref())
            .map(|a| a.get_ref().clone());
        match configured {
            Some(a) => Ok(a),
            None => self.address(name),
        }
    }

    fn timeouts(&self) -> &crate::config::SwitchoverConfig {
        &self.cluster.config.config.switchover
    }

    fn seconds(value: &toml::Spanned<u64>) -> Duration {
        Duration::from_secs(*value.get_ref())
    }

    /// Load the flake again (after the flip is written).
    fn reload(&mut self) -> Result<()> {
        let (root, cluster) = load(&self.invocation)?;
        self.root = root;
        self.cluster = cluster;
        Ok(())
    }

    /// Run every step not done yet, in order.
    fn drive(&mut self, mut confirm: Option<Confirm<'_>>) -> Result<Option<Report>> {
        for &step in self.subject.kind.steps() {
            if self.journal.done(step.name()) {
                self.emit(Event::AlreadyDone { step });
                continue;
            }
            let again = self.journal.started(step.name());
            self.emit(Event::Step { step, again });
            self.journal.start(step.name());
            self.save()?;
            let started = Instant::now();
            let result = match step {
                Step::Preflight => self.preflight(),
                Step::Build => self.build(),
                Step::Fence => self.fence(),
                Step::CatchUp => self.catch_up(),
                Step::Promote => self.promote(),
                Step::Flip => self.flip(),
                Step::Dns => self.dns(),
                Step::Smoke => self.smoke(),
            };
            match result {
                Ok(()) => {
                    self.journal.finish(Outcome::Done);
                    self.save()?;
                    self.emit(Event::Done {
                        step,
                        seconds: started.elapsed().as_secs_f64(),
                    });
                }
                Err(e) => return Err(self.fail(step, e)),
            }
            if step == Step::Preflight {
                if let Some(confirm) = confirm.as_mut() {
                    let question = if self.subject.kind == Kind::Failover {
                        format!(
                            "fail over to {}: it is promoted with what it has ({}), the flake is flipped and committed ({} declared its standby), {} is switched{}?",
                            self.new_name(),
                            self.loss_window().unwrap_or_default(),
                            self.old_name(),
                            self.new_name(),
                            if self.subject.options.no_dns { "" } else { ", the DNS record moves" }
                        )
                    } else {
                        format!(
                        "switch over from {} to {}: Synapse and PostgreSQL stop on {} (writes pause), {} is promoted, the flake is flipped and committed, both hosts are switched{}?",
                        self.old_name(),
                        self.new_name(),
                        self.old_name(),
                        self.new_name(),
                        if self.subject.options.no_dns { "" } else { ", the DNS record moves" }
                    )
                    };
                    if let Err(e) = confirm(&question) {
                        self.journal.state = State::Aborted;
                        self.journal
                            .notes
                            .push("not confirmed: nothing was changed".into());
                        let _ = self.store.close(&self.journal);
                        return Err(e);
                    }
                }
            }
        }
        self.journal.state = State::Finished;
        let report = self.report()?;
        let path = self.store.close(&self.journal)?;
        Ok(Some(Report {
            journal: path,
            ..report
        }))
    }

    /// Record a failed step and decide: before the fence nothing was
    /// changed; in the fenced steps, roll back; after promotion, stop and
    /// say how to resume.
    fn fail(&mut self, step: Step, error: Error) -> Error {
        let message = with_step(self.subject.kind, step, error_text(&error));
        self.journal.finish(Outcome::Failed {
            message: message.clone(),
        });
        let _ = self.save();
        match step {
            Step::Preflight | Step::Build => {
                self.journal.state = State::Failed;
                self.journal
                    .notes
                    .push("nothing was changed on the hosts".into());
                let _ = self.store.close(&self.journal);
                error
            }
            Step::Fence | Step::CatchUp => {
                let code = error.exit_code();
                match self.rollback() {
                    Ok(()) => {
                        self.journal.state = State::RolledBack;
                        self.journal.notes.push(format!(
                            "rolled back: {} serves again; nothing was lost",
                            self.old_name()
                        ));
                        let _ = self.store.close(&self.journal);
                        let text = format!(
                            "{message}\nrolled back: {old}'s PostgreSQL and Synapse were started again, and {old} is the primary it was; {new} is still its standby. Nothing committed was lost",
                            old = self.old_name(),
                            new = self.new_name()
                        );
                        let help = "the cluster is as it was before the switchover; fix the cause, then run it again";
                        if code == EXIT_REFUSED {
                            Error::refused(text, help)
                        } else {
                            Error::external(text, help)
                        }
                    }
                    Err(rollback) => {
                        self.journal.state = State::Failed;
                        let _ = self.save();
                        Error::external(
                            format!(
                                "{message}\nand the rollback failed: {}",
                                error_text(&rollback)
                            ),
                            format!(
                                "{old} is fenced (stopped); fix the cause, then run `{} --abort` to start it again, or `{}` to go on",
                                resume_command_of(&self.invocation, self.subject.kind).trim_end_matches(" --resume"),
                                resume_command_of(&self.invocation, self.subject.kind),
                                old = self.old_name()
                            ),
                        )
                    }
                }
            }
            _ => {
                self.journal.state = State::Failed;
                let _ = self.save();
                Error::external(
                    format!(
                        "{message}\n{} is the primary now (promoted); the {} is not finished",
                        self.new_name(),
                        self.subject.kind.operation()
                    ),
                    format!(
                        "fix the cause, then run: {}",
                        resume_command_of(&self.invocation, self.subject.kind)
                    ),
                )
            }
        }
    }

    // ------------------------------------------------------------ steps --

    /// The pre-flight's flake part: it checks clean, HOST is declared a
    /// standby, and the flip leaves no change of the operator's under the
    /// commit, passes the rules and gives HOST its secrets.
    fn preflight_flake(&mut self, new: &str, old: &str) -> Result<Flip> {
        let (new, old) = (new.to_string(), old.to_string());
        // The flake, as written.
        let findings = rules::check(&self.cluster);
        let errors: Vec<Finding> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .cloned()
            .collect();
        if !findings.is_empty() {
            (self.progress)(Event::Findings(&findings, &self.cluster));
        }
        if !errors.is_empty() {
            return Err(Error::refused(
                format!(
                    "the flake's consistency check finds {} error(s) (above)",
                    errors.len()
                ),
                "fix them first (`nixflip check`)",
            ));
        }
        match self.cluster.member(&new).map(|m| m.role()) {
            Some(Role::Standby) => {}
            _ => {
                return Err(Error::refused(
                    format!("{new} is not declared a standby"),
                    "switch over to a standby of the primary",
                ))
            }
        }
        let flip = Flip::prepare(
            &self.cluster,
            &new,
            &old,
            self.subject.options.carry_address_rules,
        )?;
        flip::refuse_dirty(&self.root, &flip.files())?;
        // The flipped files and the new primary's secrets, before anything
        // is read from the hosts (the one `nix eval` is the build step's).
        self.doing("checking the flipped flake (rules, the new primary's secrets)");
        if let Err(invalid) = flip::precheck(&self.cluster, &flip)? {
            return Err(self.invalid(invalid));
        }
        Ok(flip)
    }

    /// Step 1: is everything in a state to switch over (or fail over)?
    fn preflight(&mut self) -> Result<()> {
        if self.subject.kind == Kind::Failover {
            return self.preflight_failover();
        }
        let new = self.new_name().to_string();
        let old = self.old_name().to_string();
        self.preflight_flake(&new, &old)?;
        // The pair, as it runs.
        self.doing("reading both hosts over ssh");
        let status = super::status(&self.cluster, &self.settings, &self.transport);
        let live_errors: Vec<Finding> = status
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .cloned()
            .collect();
        if !status.findings.is_empty() {
            (self.progress)(Event::Findings(&status.findings, &self.cluster));
        }
        if !live_errors.is_empty() {
            return Err(Error::refused(
                format!(
                    "the live cluster is not healthy: {} (`nixflip status --live` shows the same)",
                    live_errors
                        .iter()
                        .map(|f| format!("{} {}", f.id, f.host.clone().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "fix what the findings say, then run the switchover again",
            ));
        }
        let member = |name: &str| status.members.iter().find(|m| m.host == name);
        let new_live = member(&new);
        if new_live.and_then(|m| m.live_role) != Some(LiveRole::Standby) {
            return Err(Error::refused(
                format!("{new} is not a live standby"),
                "see `nixflip status --live`",
            ));
        }
        if new_live
            .and_then(|m| m.postgres.facts.as_ref())
            .and_then(|f| f.replay_paused)
            == Some(true)
        {
            return Err(Error::refused(
                format!("replay is paused on {new}: it would never reach the fence"),
                format!("resume it on {new} (`SELECT pg_wal_replay_resume()`), then run the switchover again"),
            ));
        }
        if member(&old).and_then(|m| m.live_role) != Some(LiveRole::Primary) {
            return Err(Error::refused(
                format!("{old} is not a live primary"),
                "see `nixflip status --live`",
            ));
        }
        // What the old primary needs to follow the new one later.
        let old_host = self.old_host()?;
        let command = ops::sql(
            &old_host,
            "read recovery_target_timeline and data_directory",
            ops::PREFLIGHT_SQL,
            &[],
            self.settings.ssh.command_timeout,
        );
        let answer: ops::PreflightAnswer =
            ops::run_json(&self.transport, &old_host, &command).map_err(op_error)?;
        if answer.recovery_target_timeline != "latest" {
            return Err(Error::refused(
                format!(
                    "{old} has recovery_target_timeline = '{}': as a standby it would not follow {new}'s new timeline without a new base backup",
                    answer.recovery_target_timeline
                ),
                "remove the setting (PostgreSQL's default is 'latest'), reload, then run the switchover again",
            ));
        }
        let data = old_host.pg_data.clone().unwrap_or(answer.data_directory);
        self.journal.record("oldDataDirectory", &data);
        self.journal.record("newAddress", self.address(&new)?);
        self.journal.record("oldAddress", self.address(&old)?);
        for m in &status.members {
            if let Some(pg) = m.postgres.facts.as_ref() {
                let lsn = pg.current_lsn.or(pg.replay_lsn);
                self.journal
                    .record(&format!("lsn:{}", m.host), lsn.map(|l| l.to_string()));
            }
        }
        self.preflight_public(&new, &old)
    }

    /// The pre-flight's public part: the DNS record (and its TTL), the
    /// smoke test's URL.
    fn preflight_public(&mut self, new: &str, old: &str) -> Result<()> {
        let (new, old) = (new.to_string(), old.to_string());
        // DNS.
        let new_public = self.public_address(&new)?;
        let old_public = self.public_address(&old)?;
        self.journal.record("newPublicAddress", &new_public);
        self.journal.record("oldPublicAddress", &old_public);
        if self.subject.options.no_dns {
            self.journal.record("dns", "left alone (--no-dns)");
        } else {
            let Some(config) = self.cluster.config.config.dns.clone() else {
                return Err(Error::usage(
                    "nixflip.toml has no [dns] section, so the switchover does not know which record to move",
                    "add [dns] (see the README's switchover section), or pass --no-dns to leave DNS alone",
                ));
            };
            let dns = Dns::from_config(&self.root, &config, &new_public)?;
            self.doing(format!("reading the DNS record {}", dns.record));
            match dns.read()? {
                None => {
                    self.emit(Event::Warning(format!(
                        "the DNS record {} is changed by [dns] command, which cannot read it: its TTL is not checked",
                        dns.record
                    )));
                }
                Some(records) => {
                    let [record] = records.as_slice() else {
                        return Err(Error::refused(
                            format!(
                                "the DNS record {} has {} entries; a switchover moves exactly one",
                                dns.record,
                                records.len()
                            ),
                            "make it one record pointing at the primary, or pass --no-dns",
                        ));
                    };
                    if record.content != old_public && record.content != new_public {
                        return Err(Error::refused(
                            format!(
                                "the DNS record {} points at {}, which is neither {old} ({old_public}) nor {new} ({new_public})",
                                dns.record, record.content
                            ),
                            "nixflip moves a record only from the old primary to the new one: fix the record, or pass --no-dns",
                        ));
                    }
                    if let Some(ttl) = record.ttl.filter(|t| *t > dns.max_ttl) {
                        self.emit(Event::Warning(format!(
                            "the DNS record {} has a TTL of {ttl} s, more than [dns] max_ttl ({} s): clients may keep {old}'s address that long after the switchover",
                            dns.record, dns.max_ttl
                        )));
                    }
                    self.journal.record("dnsRecord", record);
                }
            }
        }
        // The smoke test's address and URL.
        let url = self.smoke_url(&new)?;
        self.journal.record("smokeUrl", &url);
        if self.cluster.config.config.smoke.federation_tester.is_some() {
            self.server_name(&new)?;
        }
        Ok(())
    }

    /// Step 1 of a failover: the flake as for a switchover; the old
    /// primary's PostgreSQL does not answer (if it does, that is a
    /// switchover); HOST is a standby, and what it has received and
    /// replayed is recorded: the old primary's commits after that are not
    /// on HOST.
    fn preflight_failover(&mut self) -> Result<()> {
        let new = self.new_name().to_string();
        let old = self.old_name().to_string();
        let flip = self.preflight_flake(&new, &old)?;
        self.journal.record("files", flip.records());
        let timeout = self.settings.ssh.command_timeout;
        let old_host = self.old_host()?;
        self.doing(format!("asking {old}'s PostgreSQL whether it answers"));
        let role = ops::sql(&old_host, "pg_is_in_recovery", ops::ROLE_SQL, &[], timeout);
        match ops::run_json::<ops::RoleAnswer>(&self.transport, &old_host, &role) {
            Ok(answer) => {
                return Err(Error::refused(
                    format!(
                        "{old}'s PostgreSQL answers ({}): a failover is for a primary that is gone",
                        if answer.in_recovery {
                            "in recovery"
                        } else {
                            "as a primary"
                        }
                    ),
                    format!("use `nixflip switchover {new}`, which loses nothing"),
                ))
            }
            Err(e) => self.journal.record("oldPrimaryDown", e.to_string()),
        }
        let new_host = self.new_host()?;
        self.doing(format!("reading what {new} has received and replayed"));
        let query = ops::sql(
            &new_host,
            "read the standby's position",
            ops::POSITION_SQL,
            &[],
            timeout,
        );
        let position: ops::Position =
            ops::run_json(&self.transport, &new_host, &query).map_err(op_error)?;
        if !position.in_recovery {
            return Err(Error::refused(
                format!("{new} is not in recovery: it is a primary already"),
                "look at both hosts (`nixflip status --live`) before anything else",
            ));
        }
        self.journal.record("receiveLsn", position.receive_lsn);
        self.journal.record("replayLsn", position.replay_lsn);
        self.journal.record("lastReplay", &position.last_replay);
        if position.replay_paused == Some(true) {
            self.emit(Event::Warning(format!(
                "replay is paused on {new}: promotion ends recovery where replay stands"
            )));
        }
        self.journal.record("newAddress", self.address(&new)?);
        self.journal.record("oldAddress", self.address(&old)?);
        let window = self.loss_window().unwrap_or_default();
        self.emit(Event::Warning(format!("data-loss window: {window}")));
        self.preflight_public(&new, &old)
    }

    /// What a failover may lose, from what the pre-flight recorded.
    fn loss_window(&self) -> Option<String> {
        let loss = self.loss()?;
        Some(loss.describe(&self.subject.old_primary, &self.subject.new_primary))
    }

    fn loss(&self) -> Option<Loss> {
        let step = Step::Preflight.name();
        if self.subject.kind != Kind::Failover {
            return None;
        }
        Some(Loss {
            received_lsn: self.journal.fact_as(step, "receiveLsn"),
            replayed_lsn: self.journal.fact_as(step, "replayLsn"),
            last_replay: self.journal.fact_as(step, "lastReplay"),
        })
    }

    fn matrix_domain(&self, name: &str) -> Option<String> {
        match self.cluster.member(name)?.literal("matrixDomain")? {
            crate::nixedit::Value::String(s) => Some(s.clone()),
            _ => None,
        }
    }

    fn smoke_url(&self, name: &str) -> Result<String> {
        if let Some(url) = &self.cluster.config.config.smoke.url {
            return Ok(url.get_ref().clone());
        }
        self.matrix_domain(name)
            .map(|d| format!("https://{d}"))
            .ok_or_else(|| {
                Error::usage(
                    format!("{name}'s matrixDomain is not a literal nixflip can read, so the smoke test has no URL"),
                    "set [smoke] url = \"https://matrix.example.org\" in nixflip.toml",
                )
            })
    }

    fn server_name(&self, name: &str) -> Result<String> {
        self.matrix_domain(name).ok_or_else(|| {
            Error::usage(
                format!("{name}'s matrixDomain is not a literal nixflip can read, so the federation tester has no server name"),
                "write matrixDomain as a string literal, or remove [smoke] federation_tester",
            )
        })
    }

    fn rebuild_options(&self) -> RebuildOptions {
        let o = &self.subject.options;
        RebuildOptions {
            action: "switch".into(),
            build_host: o.build_host.clone(),
            use_remote_sudo: o.use_remote_sudo,
            sudo: o.sudo,
            extra_args: o.rebuild_args.clone(),
            dry_run: false,
        }
    }

    /// Run `nixos-rebuild` calls, forwarding their output.
    fn rebuild(&mut self, calls: &[Invocation]) -> Result<()> {
        let progress = &mut *self.progress;
        run_rebuild(calls, &mut |doing, output| match output {
            None => progress(Event::Doing(doing.to_string())),
            Some(line) => progress(Event::Output { host: doing, line }),
        })
    }

    /// Step 2: validate the flip in a scratch copy and build both hosts'
    /// new configurations from it.
    fn build(&mut self) -> Result<()> {
        let new = self.new_name().to_string();
        let old = self.old_name().to_string();
        let flip = Flip::prepare(
            &self.cluster,
            &new,
            &old,
            self.subject.options.carry_address_rules,
        )?;
        self.doing("validating the flip in a scratch copy (rules, secrets, nix eval)");
        let scratch = match flip::validate(&self.cluster, &flip, &self.subject.options.nix_args)? {
            Ok(scratch) => scratch,
            Err(invalid) => return Err(self.invalid(invalid)),
        };
        let unrewritten = flip.unrewritten();
        if unrewritten > 0 {
            self.emit(Event::Warning(format!(
                "{unrewritten} literal(s) outside the cluster options name a member whose role flips and are not rewritten; `nixflip promote {new} --dry-run` lists each with its edit{}",
                if self.subject.options.carry_address_rules {
                    ""
                } else {
                    " (--carry-address-rules carries the old primary's firewall rules and pg_hba lines)"
                }
            )));
        }
        self.journal.record("files", flip.records());
        self.journal.record(
            "plan",
            flip.plan
                .changes
                .iter()
                .map(|c| format!("{}: {} {} -> {}", c.host, c.field, c.old, c.new))
                .collect::<Vec<_>>(),
        );
        let hosts = vec![new.clone(), old.clone()];
        let attrs = deploy::flake_attrs(&self.cluster, &hosts)?;
        let opts = self.rebuild_options();
        let mut calls = Vec::new();
        for (host, attr) in hosts.iter().zip(&attrs) {
            let dir = self.store.dir().join("build").join(host);
            std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
                path: dir.clone(),
                help: "nixos-rebuild build leaves its result link here".into(),
                source,
            })?;
            calls.push(Invocation {
                host: host.clone(),
                argv: deploy::build_command(
                    &format!("{}#{attr}", scratch.flake().display()),
                    &opts,
                ),
                env: Vec::new(),
                dir: Some(dir),
            });
        }
        self.rebuild(&calls)?;
        drop(scratch);
        self.journal.record("built", &hosts);
        Ok(())
    }

    /// The old primary's connection and HOST's are open before the fence:
    /// opening one inside the fenced steps would add to the write gap.
    fn warm_up(&mut self) -> Result<()> {
        let hosts = [self.old_host()?, self.new_host()?];
        let timeout = self.settings.ssh.command_timeout;
        let transport = &self.transport;
        let results: Vec<std::result::Result<(), OpError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = hosts
                .iter()
                .map(|h| {
                    scope.spawn(move || {
                        let c = ops::Command {
                            argv: vec!["true".into()],
                            stdin: None,
                            timeout,
                            what: "connect".into(),
                        };
                        ops::run(transport, h, &c).map(|_| ())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(OpError::Unexpected {
                            host: String::new(),
                            what: "connect".into(),
                            message: "internal error".into(),
                        })
                    })
                })
                .collect()
        });
        for r in results {
            r.map_err(op_error)?;
        }
        Ok(())
    }

    /// Step 3: stop Synapse, checkpoint, stop PostgreSQL (fast), and read
    /// the fence LSN from the control file.
    fn fence(&mut self) -> Result<()> {
        self.warm_up()?;
        let old = self.old_host()?;
        let again = self
            .journal
            .entries
            .iter()
            .filter(|e| e.step == Step::Fence.name())
            .count()
            > 1;
        if self
            .journal
            .fact(Step::Fence.name(), "drainStarted")
            .is_none()
        {
            self.journal.record("drainStarted", Stamp::now());
            self.save()?;
        }
        let service_timeout = Self::seconds(&self.timeouts().service_timeout);
        let command_timeout = self.settings.ssh.command_timeout;
        let clock = Instant::now();
        self.doing(format!("stopping Synapse on {}", old.host));
        ops::run(
            &self.transport,
            &old,
            &ops::service("stop", &old.synapse_service, service_timeout),
        )
        .map_err(op_error)?;
        self.journal
            .record("synapseStoppedAfter", clock.elapsed().as_secs_f64());
        // Again after an interruption, PostgreSQL may be stopped or
        // stopping already: the checkpoint (which only makes the shutdown
        // quicker) is left out, and stopping a stopped unit does nothing.
        if !again {
            self.doing(format!("CHECKPOINT on {}", old.host));
            ops::run(
                &self.transport,
                &old,
                &ops::sql(
                    &old,
                    "CHECKPOINT",
                    ops::CHECKPOINT_SQL,
                    &[],
                    service_timeout,
                ),
            )
            .map_err(op_error)?;
            self.journal
                .record("checkpointedAfter", clock.elapsed().as_secs_f64());
        }
        self.doing(format!("stopping PostgreSQL on {} (fast)", old.host));
        ops::run(
            &self.transport,
            &old,
            &ops::service("stop", &old.postgresql_service, service_timeout),
        )
        .map_err(op_error)?;
        self.journal
            .record("postgresqlStoppedAfter", clock.elapsed().as_secs_f64());
        let data: String = self
            .journal
            .fact_as(Step::Preflight.name(), "oldDataDirectory")
            .ok_or_else(|| {
                Error::usage(
                    "the journal lacks the old primary's data directory",
                    "start over",
                )
            })?;
        self.doing(format!("reading pg_controldata on {}", old.host));
        let control = control_data(&self.transport, &old, &data, command_timeout)?;
        self.journal.record("fenceState", &control.state);
        if !control.shut_down() {
            return Err(Error::external(
                format!(
                    "{}'s control file says `{}`, not `shut down`: PostgreSQL did not stop cleanly as a primary, so there is no fence LSN",
                    old.host, control.state
                ),
                "look at its PostgreSQL log",
            ));
        }
        self.journal.record("fenceLsn", control.checkpoint);
        self.journal.record("fenceTimeline", control.timeline);
        Ok(())
    }

    fn fence_lsn(&self) -> Result<Lsn> {
        self.journal
            .fact_as(Step::Fence.name(), "fenceLsn")
            .ok_or_else(|| Error::usage("the journal lacks the fence LSN", "start over"))
    }

    /// A resumed run: the old primary must still be shut down at the fence
    /// an earlier process read (nobody started it meanwhile).
    fn verify_fence(&mut self, fence: Lsn) -> Result<()> {
        let old = self.old_host()?;
        let data: String = self
            .journal
            .fact_as(Step::Preflight.name(), "oldDataDirectory")
            .ok_or_else(|| {
                Error::usage(
                    "the journal lacks the old primary's data directory",
                    "start over",
                )
            })?;
        self.doing(format!("checking that {} is still fenced", old.host));
        let control = control_data(
            &self.transport,
            &old,
            &data,
            self.settings.ssh.command_timeout,
        )?;
        if !control.shut_down() || control.checkpoint != fence {
            return Err(Error::refused(
                format!(
                    "{} is not fenced at {fence} any more (its control file says `{}` at {}): it was started since",
                    old.host, control.state, control.checkpoint
                ),
                "look at both hosts (`nixflip status --live`); run the switchover again when they are healthy",
            ));
        }
        Ok(())
    }

    /// Step 4: wait (bounded) until HOST has replayed past the fence.
    fn catch_up(&mut self) -> Result<()> {
        let fence = self.fence_lsn()?;
        let fenced_earlier = self
            .journal
            .last(Step::Fence.name())
            .is_some_and(|e| e.outcome == Outcome::Done);
        if self.resumed && fenced_earlier {
            self.verify_fence(fence)?;
        }
        let new = self.new_host()?;
        let wait = Self::seconds(&self.timeouts().catchup_timeout);
        self.doing(format!("waiting for {} to replay past {fence}", new.host));
        let fence_text = fence.to_string();
        let seconds = wait.as_secs().to_string();
        let command = ops::sql(
            &new,
            "wait for replay",
            ops::WAIT_REPLAY_SQL,
            &[("fence", &fence_text), ("seconds", &seconds)],
            wait + self.settings.ssh.command_timeout,
        );
        let replay: ops::Replay =
            ops::run_json(&self.transport, &new, &command).map_err(op_error)?;
        self.journal.record("replayLsn", replay.replay_lsn);
        self.journal.record("receiveLsn", replay.receive_lsn);
        if replay.passed(fence) {
            return Ok(());
        }
        if !replay.in_recovery {
            return Err(Error::refused(
                format!(
                    "{} is out of recovery already: something else promoted it",
                    new.host
                ),
                "look at both hosts (`nixflip status --live`) before anything else",
            ));
        }
        Err(Error::refused(
            format!(
                "{} replayed up to {} (received {}), short of {}'s fence at {fence}, within {} s{}: promoting it would lose what it has not replayed",
                new.host,
                replay.replay_lsn.map_or("nothing".into(), |l| l.to_string()),
                replay.receive_lsn.map_or("nothing".into(), |l| l.to_string()),
                self.old_name(),
                wait.as_secs(),
                if replay.replay_paused == Some(true) { "; its replay is paused" } else { "" }
            ),
            "raise [switchover] catchup_timeout if it was only slow",
        ))
    }

    /// Step 5: promote HOST.
    fn promote(&mut self) -> Result<()> {
        let new = self.new_host()?;
        let wait = Self::seconds(&self.timeouts().promote_timeout);
        self.doing(format!("pg_promote on {}", new.host));
        let seconds = wait.as_secs().to_string();
        let command = ops::sql(
            &new,
            "pg_promote",
            ops::PROMOTE_SQL,
            &[("wait", &seconds)],
            wait + self.settings.ssh.command_timeout,
        );
        let promoted: ops::Promoted =
            ops::run_json(&self.transport, &new, &command).map_err(op_error)?;
        if promoted.in_recovery {
            return Err(Error::external(
                format!(
                    "{} is still in recovery after pg_promote waited {} s",
                    new.host,
                    wait.as_secs()
                ),
                "look at its PostgreSQL log",
            ));
        }
        self.journal.record("promotedAt", Stamp::now());
        self.journal.record("timeline", promoted.timeline);
        self.journal.record("lsn", promoted.lsn);
        Ok(())
    }

    fn switch_call(&self, name: &str) -> Result<Invocation> {
        switch_invocation(
            &self.cluster,
            &self.root,
            &self.settings,
            &self.rebuild_options(),
            &self.store.dir().join("build").join(name),
            name,
        )
    }

    /// Step 6: write and commit the flip, switch HOST, switch the old
    /// primary, and see it stream from HOST.
    fn flip(&mut self) -> Result<()> {
        let new = self.new_name().to_string();
        let old = self.old_name().to_string();
        let flip_step = Step::Flip.name();
        self.reload()?;
        if self.journal.fact(flip_step, "commit").is_none() {
            self.doing("writing and committing the flip");
            let records: Vec<FileRecord> = self
                .journal
                .fact_as(Step::Build.name(), "files")
                .or_else(|| self.journal.fact_as(Step::Preflight.name(), "files"))
                .ok_or_else(|| Error::usage("the journal lacks the flip's files", "start over"))?;
            let written = flip::write_and_commit(
                &self.cluster,
                &new,
                &old,
                self.subject.options.carry_address_rules,
                &records,
                self.subject.kind,
            )?;
            self.journal.record("written", &written.written);
            self.journal.record(
                "commit",
                written
                    .commit
                    .clone()
                    .unwrap_or_else(|| "(not a git work tree)".into()),
            );
            self.save()?;
            self.reload()?;
        }
        // A failover leaves the old primary alone: it is down or cut off,
        // and `rejoin` brings it back.
        let hosts = if self.subject.kind == Kind::Failover {
            vec![&new]
        } else {
            vec![&new, &old]
        };
        for name in hosts {
            let key = format!("switched:{name}");
            if self.journal.fact(flip_step, &key).is_some() {
                continue;
            }
            let dir = self.store.dir().join("build").join(name.as_str());
            std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
                path: dir.clone(),
                help: "nixos-rebuild runs here".into(),
                source,
            })?;
            let call = self.switch_call(name)?;
            self.rebuild(&[call])?;
            self.journal.record(&key, Stamp::now());
            self.save()?;
        }
        if self.subject.kind == Kind::Failover {
            return Ok(());
        }
        let old_host = self.old_host()?;
        let sender = self.address(&new)?;
        let wait = Self::seconds(&self.timeouts().rejoin_timeout);
        self.doing(format!("waiting for {old} to stream from {new}"));
        let seconds = wait.as_secs().to_string();
        let command = ops::sql(
            &old_host,
            "wait for streaming",
            ops::WAIT_STREAMING_SQL,
            &[("sender", &sender), ("seconds", &seconds)],
            wait + self.settings.ssh.command_timeout,
        );
        let receiver: ops::Receiver =
            ops::run_json(&self.transport, &old_host, &command).map_err(op_error)?;
        self.journal.record("rejoined", &receiver.status);
        self.journal
            .record("receivedTimeline", receiver.received_tli);
        if !receiver.streams_from(&sender) {
            return Err(Error::external(
                format!(
                    "{old} does not stream from {new} ({sender}) after {} s: {receiver}",
                    wait.as_secs()
                ),
                format!("look at {old}'s PostgreSQL log (primary_conninfo, pg_hba on {new}, the timeline history)"),
            ));
        }
        Ok(())
    }

    /// Step 7: point the DNS record at HOST.
    fn dns(&mut self) -> Result<()> {
        if self.subject.options.no_dns {
            self.journal.record("skipped", "--no-dns");
            return Ok(());
        }
        let new = self.new_name().to_string();
        let new_public: String = self
            .journal
            .fact_as(Step::Preflight.name(), "newPublicAddress")
            .ok_or_else(|| Error::usage("the journal lacks the new address", "start over"))?;
        let old_public: String = self
            .journal
            .fact_as(Step::Preflight.name(), "oldPublicAddress")
            .unwrap_or_default();
        let config = self.cluster.config.config.dns.clone().ok_or_else(|| {
            Error::usage(
                "nixflip.toml has no [dns] section any more",
                "put it back, then resume",
            )
        })?;
        let dns = Dns::from_config(&self.root, &config, &new_public)?;
        // The TTL the pre-flight read is kept.
        let ttl = self
            .journal
            .fact(Step::Preflight.name(), "dnsRecord")
            .and_then(|r| r.get("ttl"))
            .and_then(serde_json::Value::as_u64);
        if let Some(records) = dns.read()? {
            if !records.is_empty() && records.iter().all(|r| r.content == new_public) {
                self.journal.record(
                    "record",
                    format!("{} already points at {new_public}", dns.record),
                );
                return Ok(());
            }
        }
        self.doing(format!("pointing {} at {new_public}", dns.record));
        dns.update(&new_public, &old_public, &new, ttl)?;
        if let Some(records) = dns.read()? {
            if records.is_empty() || records.iter().any(|r| r.content != new_public) {
                return Err(Error::external(
                    format!(
                        "the DNS record {} does not point at {new_public} after the change: {:?}",
                        dns.record,
                        records
                            .iter()
                            .map(|r| r.content.as_str())
                            .collect::<Vec<_>>()
                    ),
                    "look at the record at the provider",
                ));
            }
        }
        self.journal
            .record("record", format!("{} -> {new_public}", dns.record));
        Ok(())
    }

    /// Step 8: the new primary answers, optionally a federation tester
    /// agrees, and `status --live` is clean.
    fn smoke(&mut self) -> Result<()> {
        let new = self.new_name().to_string();
        let url: String = self
            .journal
            .fact_as(Step::Preflight.name(), "smokeUrl")
            .map_or_else(|| self.smoke_url(&new), Ok)?;
        let public: String = self
            .journal
            .fact_as(Step::Preflight.name(), "newPublicAddress")
            .map_or_else(|| self.public_address(&new), Ok)?;
        let address = resolve(&public)?;
        let timeout = self
            .cluster
            .config
            .config
            .smoke
            .timeout
            .as_ref()
            .map_or(60, |t| *t.get_ref());
        self.doing(format!("GET {url}/_matrix/client/versions at {address}"));
        let versions =
            smoke::versions(&url, address, Duration::from_secs(timeout)).map_err(|why| {
                Error::external(
                    format!("the smoke test failed: {why}"),
                    "is Synapse running on the new primary?",
                )
            })?;
        self.journal.record("versions", &versions);
        if let Some(tester) = self.cluster.config.config.smoke.federation_tester.clone() {
            let server = self.server_name(&new)?;
            self.doing(format!("asking the federation tester about {server}"));
            smoke::federation(tester.get_ref(), &server).map_err(|why| {
                Error::external(
                    format!("the federation tester does not agree: {why}"),
                    "federation checks the public DNS name: wait for the record's TTL, then resume",
                )
            })?;
            self.journal.record("federation", "OK");
        }
        self.doing("status --live");
        self.reload()?;
        let (settings, transport) = live_settings(&self.cluster)?;
        let status = super::status(&self.cluster, &settings, &transport);
        self.journal.record(
            "findings",
            status
                .findings
                .iter()
                .map(|f| format!("{} {}", f.id, f.host.clone().unwrap_or_default()))
                .collect::<Vec<_>>(),
        );
        self.status = Some(status);
        Ok(())
    }

    /// Start the old primary's PostgreSQL and Synapse again (before
    /// promotion only), after checking that HOST is still a standby.
    fn rollback(&mut self) -> Result<()> {
        let old = self.old_host()?;
        let new = self.new_host()?;
        self.journal.start("rollback");
        let _ = self.save();
        self.doing(format!(
            "rolling back: starting {}'s PostgreSQL and Synapse",
            old.host
        ));
        let role = ops::sql(
            &new,
            "pg_is_in_recovery",
            ops::ROLE_SQL,
            &[],
            self.settings.ssh.command_timeout,
        );
        if let Ok(answer) = ops::run_json::<ops::RoleAnswer>(&self.transport, &new, &role) {
            if !answer.in_recovery {
                let message = format!(
                    "{} is out of recovery (a primary): starting {} again would make two primaries",
                    new.host, old.host
                );
                self.journal.finish(Outcome::Failed {
                    message: message.clone(),
                });
                let _ = self.save();
                return Err(Error::refused(
                    message,
                    "look at both hosts before anything else",
                ));
            }
        }
        let timeout = Self::seconds(&self.timeouts().service_timeout);
        let result = (|| -> std::result::Result<(), OpError> {
            ops::run(
                &self.transport,
                &old,
                &ops::service("start", &old.postgresql_service, timeout),
            )?;
            let role = ops::sql(&old, "pg_is_in_recovery", ops::ROLE_SQL, &[], timeout);
            let answer: ops::RoleAnswer = ops::run_json(&self.transport, &old, &role)?;
            if answer.in_recovery {
                return Err(OpError::Unexpected {
                    host: old.host.clone(),
                    what: "start PostgreSQL".into(),
                    message: "it came up in recovery, not as the primary".into(),
                });
            }
            ops::run(
                &self.transport,
                &old,
                &ops::service("start", &old.synapse_service, timeout),
            )?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.journal.finish(Outcome::Done);
                let _ = self.save();
                Ok(())
            }
            Err(e) => {
                self.journal.finish(Outcome::Failed {
                    message: e.to_string(),
                });
                let _ = self.save();
                Err(op_error(e))
            }
        }
    }

    fn report(&self) -> Result<Report> {
        let j = &self.journal;
        let drain: Option<Stamp> = j.fact_as(Step::Fence.name(), "drainStarted");
        let promoted: Option<Stamp> = j.fact_as(Step::Promote.name(), "promotedAt");
        let build_seconds: f64 = j
            .entries
            .iter()
            .filter(|e| e.step == Step::Build.name())
            .filter_map(|e| e.finished.map(|f| f.seconds_since(e.started)))
            .sum();
        let first = j.entries.first().map(|e| e.started);
        let last = j.entries.last().and_then(|e| e.finished);
        Ok(Report {
            kind: self.subject.kind,
            loss: self.loss(),
            new_primary: self.subject.new_primary.clone(),
            old_primary: self.subject.old_primary.clone(),
            fence_lsn: j.fact_as(Step::Fence.name(), "fenceLsn"),
            timeline: j.fact_as(Step::Promote.name(), "timeline"),
            write_unavailable_seconds: drain.zip(promoted).map(|(d, p)| p.seconds_since(d)),
            total_seconds: first
                .zip(last)
                .map(|(f, l)| l.seconds_since(f) - build_seconds),
            build_seconds,
            commit: j.fact_as(Step::Flip.name(), "commit"),
            dns: j
                .fact_as(Step::Dns.name(), "record")
                .or_else(|| j.fact_as(Step::Dns.name(), "skipped")),
            smoke: j
                .fact_as::<serde_json::Value>(Step::Smoke.name(), "versions")
                .and_then(|v| {
                    Some(smoke::Versions {
                        url: v.get("url")?.as_str()?.to_string(),
                        address: v.get("address")?.as_str()?.to_string(),
                        versions: serde_json::from_value(v.get("versions")?.clone()).ok()?,
                    })
                }),
            federation: j.fact_as(Step::Smoke.name(), "federation"),
            status: self.status.clone(),
            journal: self.store.current_path(),
        })
    }

    /// Every step's commands, for `--dry-run`.
    fn describe(&mut self) -> Result<DryRun> {
        let new = self.new_name().to_string();
        let old = self.old_name().to_string();
        let new_host = self.new_host()?;
        let old_host = self.old_host()?;
        let flip = Flip::prepare(
            &self.cluster,
            &new,
            &old,
            self.subject.options.carry_address_rules,
        )?;
        let remote = |h: &HostSettings, c: &ops::Command| Planned {
            host: Some(h.host.clone()),
            target: Some(h.target.to_string()),
            command: display_command(&c.argv),
            sql: c.stdin.clone(),
        };
        let local = |command: String| Planned {
            host: None,
            target: None,
            command,
            sql: None,
        };
        let t = self.settings.ssh.command_timeout;
        let mut steps = Vec::new();
        steps.push((
            Step::Preflight,
            vec![local("passed: the flake checks clean, the pair is healthy, DNS and smoke settings are usable".into())],
        ));
        let attrs = deploy::flake_attrs(&self.cluster, &[new.clone(), old.clone()])?;
        let opts = self.rebuild_options();
        let mut build = vec![local(format!(
            "validate the flip in a scratch copy: the rules, the secrets gate, one nix eval of every member ({} file(s) change)",
            flip.change.files.len()
        ))];
        for attr in &attrs {
            build.push(local(display_command(&deploy::build_command(
                &format!("SCRATCH#{attr}"),
                &opts,
            ))));
        }
        steps.push((Step::Build, build));
        let data: String = self
            .journal
            .fact_as(Step::Preflight.name(), "oldDataDirectory")
            .unwrap_or_else(|| "DATA".into());
        steps.push((
            Step::Fence,
            vec![
                remote(
                    &old_host,
                    &ops::service("stop", &old_host.synapse_service, t),
                ),
                remote(
                    &old_host,
                    &ops::sql(&old_host, "CHECKPOINT", ops::CHECKPOINT_SQL, &[], t),
                ),
                remote(
                    &old_host,
                    &ops::service("stop", &old_host.postgresql_service, t),
                ),
                remote(&old_host, &ops::control_data(&old_host, &data, t)),
            ],
        ));
        let catchup = self.timeouts().catchup_timeout.get_ref().to_string();
        steps.push((
            Step::CatchUp,
            vec![remote(
                &new_host,
                &ops::sql(
                    &new_host,
                    "wait",
                    ops::WAIT_REPLAY_SQL,
                    &[("fence", "FENCE_LSN"), ("seconds", &catchup)],
                    t,
                ),
            )],
        ));
        let promote = self.timeouts().promote_timeout.get_ref().to_string();
        steps.push((
            Step::Promote,
            vec![remote(
                &new_host,
                &ops::sql(
                    &new_host,
                    "promote",
                    ops::PROMOTE_SQL,
                    &[("wait", &promote)],
                    t,
                ),
            )],
        ));
        let mut flip_lines =
            vec![local(format!(
            "write {} and commit them: \"nixflip: switch over to {new}; {old} becomes standby\"",
            flip.files().iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
        ))];
        for name in [&new, &old] {
            let call = self.switch_call(name)?;
            let env: Vec<String> = call
                .env
                .iter()
                .map(|(k, v)| format!("{k}={}", crate::names::shell_quote(v)))
                .collect();
            let mut line = env.join(" ");
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&display_command(&call.argv));
            flip_lines.push(local(line));
        }
        let rejoin = self.timeouts().rejoin_timeout.get_ref().to_string();
        let sender = self.address(&new)?;
        flip_lines.push(remote(
            &old_host,
            &ops::sql(
                &old_host,
                "wait",
                ops::WAIT_STREAMING_SQL,
                &[("sender", &sender), ("seconds", &rejoin)],
                t,
            ),
        ));
        steps.push((Step::Flip, flip_lines));
        let dns_line = if self.subject.options.no_dns {
            "left alone (--no-dns)".to_string()
        } else {
            match self.cluster.config.config.dns.clone() {
                Some(config) => {
                    let new_public = self.public_address(&new)?;
                    let old_public = self.public_address(&old)?;
                    Dns::from_config(&self.root, &config, &new_public)?.describe_update(
                        &new_public,
                        &old_public,
                        &new,
                    )
                }
                None => "no [dns] section".into(),
            }
        };
        steps.push((Step::Dns, vec![local(dns_line)]));
        let url = self.smoke_url(&new)?;
        let mut smoke_lines = vec![local(format!(
            "GET {}/_matrix/client/versions at {}",
            url.trim_end_matches('/'),
            self.public_address(&new)?
        ))];
        if let Some(tester) = &self.cluster.config.config.smoke.federation_tester {
            smoke_lines.push(local(format!(
                "GET {}",
                tester
                    .get_ref()
                    .replace("{server_name}", &self.server_name(&new)?)
            )));
        }
        smoke_lines.push(local("nixflip status --live".into()));
        steps.push((Step::Smoke, smoke_lines));
        Ok(DryRun {
            new_primary: new,
            old_primary: old,
            steps,
            plan: flip.plan,
        })
    }
}

/// Run `nixos-rebuild` calls; `progress(text, None)` says what starts,
/// `progress(host, Some(line))` forwards a line of its output. A failed
/// call is an external failure (exit 3) naming the command.
pub(crate) fn run_rebuild(
    calls: &[Invocation],
    progress: &mut dyn FnMut(&str, Option<&str>),
) -> Result<()> {
    let report = deploy::run_invocations(calls, &mut |event| match event {
        deploy::Event::Started { host, command } => {
            progress(&format!("{host}: {}", display_command(&command)), None)
        }
        deploy::Event::Output { host, line } => progress(&host, Some(&line)),
        deploy::Event::Finished { .. } => {}
    })?;
    match report.failed {
        None => Ok(()),
        Some(failure) => Err(Error::external(
            format!(
                "nixos-rebuild failed for {} ({})",
                failure.host,
                failure
                    .code
                    .map_or("killed by a signal".to_string(), |c| format!(
                        "exit status {c}"
                    ))
            ),
            format!("the command was: {}", display_command(&failure.command)),
        )),
    }
}

/// `nixos-rebuild ACTION --flake ROOT#ATTR --target-host …` for the member
/// `name`, reaching it as the live layer does (`NIX_SSHOPTS`), run in `dir`
/// (which the caller creates).
pub(crate) fn switch_invocation(
    cluster: &Cluster,
    root: &std::path::Path,
    settings: &Settings,
    options: &RebuildOptions,
    dir: &std::path::Path,
    name: &str,
) -> Result<Invocation> {
    let host = settings
        .hosts
        .iter()
        .find(|h| h.host == name)
        .ok_or_else(|| {
            Error::usage(
                format!("{name} is not a member of the cluster"),
                "see `nixflip status`",
            )
        })?;
    let attr = deploy::flake_attrs(cluster, &[name.to_string()])?
        .pop()
        .unwrap_or_default();
    let step = deploy::Step {
        host: name.to_string(),
        flake_ref: format!("{}#{attr}", root.display()),
        target: host.target.user_host(),
    };
    let env = nix_sshopts(&settings.ssh, &host.target)?
        .map(|v| vec![("NIX_SSHOPTS".to_string(), v)])
        .unwrap_or_default();
    Ok(Invocation {
        host: name.to_string(),
        argv: deploy::command(&step, options),
        env,
        dir: Some(dir.to_path_buf()),
    })
}

/// An action's failure as a nixflip error: ssh and commands failing are
/// external failures (exit 3).
pub(crate) fn op_error(e: OpError) -> Error {
    let help = match &e {
        OpError::Transport { .. } => "check that the host is up and reachable over ssh",
        OpError::Failed { .. } => "see the command's message",
        OpError::Unexpected { .. } => "see the host's answer",
    };
    Error::external(e.to_string(), help)
}

/// `pg_controldata` of `data` on `host`, read.
pub(crate) fn control_data(
    transport: &Transport,
    host: &HostSettings,
    data: &str,
    timeout: Duration,
) -> Result<ops::ControlData> {
    let out =
        ops::run(transport, host, &ops::control_data(host, data, timeout)).map_err(op_error)?;
    ops::parse_control_data(&out.stdout).map_err(|why| {
        Error::external(
            format!("{}: {why}", host.host),
            "run pg_controldata there to see",
        )
    })
}

/// An error's message without its help (for the journal).
fn error_text(e: &Error) -> String {
    e.to_string()
}

/// A public address as an IP (a name is looked up once).
fn resolve(address: &str) -> Result<IpAddr> {
    if let Ok(ip) = address.parse() {
        return Ok(ip);
    }
    (address, 443)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.ip())
        .ok_or_else(|| {
            Error::external(
                format!("{address} does not resolve to an address"),
                "set the new primary's public_address in [hosts.X.live] to an IP address",
            )
        })
}

/// `NIX_SSHOPTS` for `nixos-rebuild` to reach `target` as the live layer
/// does: its port, `[live] known_hosts` and `identity_file`, and no
/// prompts. nixos-rebuild splits the variable at spaces, so a path with a
/// space cannot be passed (exit 2). Appended to the caller's own.
pub fn nix_sshopts(ssh: &SshOptions, target: &Target) -> Result<Option<String>> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(existing) = std::env::var("NIX_SSHOPTS")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        parts.push(existing.trim().to_string());
    }
    let mut option = |text: String| -> Result<()> {
        if text.chars().any(char::is_whitespace) {
            return Err(Error::usage(
                format!(
                    "`{text}` cannot be passed to nixos-rebuild: NIX_SSHOPTS is split at spaces"
                ),
                "use paths without spaces for [live] known_hosts and identity_file",
            ));
        }
        parts.push("-o".into());
        parts.push(text);
        Ok(())
    };
    option("BatchMode=yes".into())?;
    option(format!("ConnectTimeout={}", ssh.connect_timeout))?;
    if let Some(file) = &ssh.known_hosts {
        option(format!("UserKnownHostsFile={}", file.display()))?;
    }
    if let Some(file) = &ssh.identity_file {
        option(format!("IdentityFile={}", file.display()))?;
    }
    if let Some(port) = target.port {
        parts.push("-p".into());
        parts.push(port.to_string());
    }
    Ok(Some(parts.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_in_order() {
        let names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "preflight",
                "build",
                "fence",
                "catch-up",
                "promote",
                "flip",
                "dns",
                "smoke"
            ]
        );
        assert!(Step::CatchUp.before_promotion());
        assert!(!Step::Promote.before_promotion());
        assert_eq!(Step::Smoke.number(), 8);
    }

    #[test]
    fn sshopts_carry_the_port_and_files() {
        let ssh = SshOptions {
            known_hosts: Some("/k/known_hosts".into()),
            identity_file: Some("/k/id".into()),
            ..SshOptions::default()
        };
        let target = Target::parse("ssh://root@127.0.0.2:2222").expect("target");
        let opts = nix_sshopts(&ssh, &target).expect("ok").expect("some");
        assert!(opts.ends_with(
            "-o BatchMode=yes -o ConnectTimeout=10 -o UserKnownHostsFile=/k/known_hosts -o IdentityFile=/k/id -p 2222"
        ), "{opts}");
        let spaced = SshOptions {
            known_hosts: Some("/a b/known_hosts".into()),
            ..SshOptions::default()
        };
        assert!(nix_sshopts(&spaced, &target).is_err());
    }

    #[test]
    fn resume_command_names_flake_and_config() {
        let invocation = Location {
            flake: "/my flake".into(),
            config: Some("/etc/nixflip.toml".into()),
        };
        assert_eq!(
            resume_command(&invocation),
            "nixflip --flake '/my flake' --config /etc/nixflip.toml switchover --resume"
        );
    }
}
