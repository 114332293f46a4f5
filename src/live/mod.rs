//! The live layer: what every member's PostgreSQL and Synapse are doing, read
//! over ssh in parallel and held against what the flake declares. It only observes: nothing here changes a host.
//!
//! - [`ssh`]: the transport (argv in, one multiplexed connection per host);
//! - [`settings`]: `[hosts.X.live]` and `[live]`, with NixOS's defaults;
//! - [`facts`]: what one host runs, gathered with fixed commands;
//! - [`rules`]: the findings (NF103, NF301-NF311) and each standby's lag.

pub mod dns;
pub mod facts;
pub mod journal;
pub mod ops;
pub mod rejoin;
pub mod rules;
pub mod settings;
pub mod smoke;
pub mod ssh;
pub mod switchover;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cluster::{Cluster, Finding, Role};
use crate::error::{EXIT_EXTERNAL, EXIT_FINDINGS, EXIT_OK};
pub use facts::{HostFacts, LiveRole};
pub use rules::Lag;
pub use settings::{HostSettings, Settings, Thresholds};
pub use ssh::{SshOptions, Transport};

/// One member: what the flake declares and what runs.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub host: String,
    pub target: String,
    pub declared_role: Option<&'static str>,
    pub live_role: Option<LiveRole>,
    /// How far behind the primary (standbys only).
    pub lag: Option<Lag>,
    pub reachable: bool,
    /// Why the host could not be reached.
    pub error: Option<String>,
    pub postgres: facts::Postgres,
    pub data_directory: Option<String>,
    pub standby_signal: Option<bool>,
    pub disk: Option<facts::Disk>,
    pub synapse: facts::Synapse,
    pub problems: Vec<String>,
}

/// The whole cluster as it runs, with the findings.
#[derive(Clone, Debug, Serialize)]
pub struct LiveStatus {
    pub members: Vec<MemberStatus>,
    pub findings: Vec<Finding>,
}

impl LiveStatus {
    /// Members that could not be reached.
    pub fn unreachable(&self) -> impl Iterator<Item = &MemberStatus> {
        self.members.iter().filter(|m| !m.reachable)
    }

    /// 3 when a host could not be reached (the others are still reported),
    /// else 1 on an error finding, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.unreachable().next().is_some() {
            EXIT_EXTERNAL
        } else if crate::cluster::rules::error_count(&self.findings) > 0 {
            EXIT_FINDINGS
        } else {
            EXIT_OK
        }
    }
}

/// Read every member at once over `transport` and judge what runs.
/// `settings` comes from [`Settings::resolve`] on the same cluster.
pub fn status(cluster: &Cluster, settings: &Settings, transport: &Transport) -> LiveStatus {
    let facts = facts::gather(transport, &settings.hosts);
    judge(cluster, facts, &settings.thresholds)
}

/// [`status`] every `every` until `stop` is set (by a signal handler) or
/// `show` returns false; the last status shown. The connections stay open
/// between refreshes (see [`SshOptions::persist`]).
pub fn watch(
    cluster: &Cluster,
    settings: &Settings,
    transport: &Transport,
    every: Duration,
    stop: &AtomicBool,
    mut show: impl FnMut(&LiveStatus) -> bool,
) -> Option<LiveStatus> {
    let mut last = None;
    while !stop.load(Ordering::SeqCst) {
        let current = status(cluster, settings, transport);
        // Interrupted while gathering: the facts may be cut short.
        if stop.load(Ordering::SeqCst) || !show(&current) {
            break;
        }
        last = Some(current);
        let until = Instant::now() + every;
        while !stop.load(Ordering::SeqCst) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
    last
}

/// The findings on facts already gathered (one per member, in member order).
pub fn judge(cluster: &Cluster, facts: Vec<HostFacts>, limits: &Thresholds) -> LiveStatus {
    let (findings, lags) = rules::check(cluster, &facts, limits);
    let members = cluster
        .members
        .iter()
        .zip(facts)
        .zip(lags)
        .map(|((member, f), lag)| MemberStatus {
            declared_role: match member.role() {
                Role::Primary => Some("primary"),
                Role::Standby => Some("standby"),
                _ => None,
            },
            live_role: f.live_role(),
            lag,
            host: f.host,
            target: f.target,
            reachable: f.reachable,
            error: f.error,
            postgres: f.postgres,
            data_directory: f.data_directory,
            standby_signal: f.standby_signal,
            disk: f.disk,
            synapse: f.synapse,
            problems: f.problems,
        })
        .collect();
    LiveStatus { members, findings }
}
