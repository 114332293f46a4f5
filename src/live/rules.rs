//! The live findings (registered in `crate::findings`): drift between the running cluster and the flake (NF103),
//! and danger in what runs (NF301-NF311). Pure functions of facts already gathered; they must never contact a host.

use std::net::IpAddr;

use serde::Serialize;

use super::facts::{HostFacts, LiveRole, PgFacts};
use super::settings::Thresholds;
use crate::cluster::rules::finding_at;
use crate::cluster::{Cluster, Finding, Member, Role, Severity, ROLE};

/// How far a standby is behind the live primary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lag {
    /// The primary's WAL position minus the standby's replay position, as
    /// the primary reports it (`None` when the primary cannot tell).
    pub bytes: Option<u64>,
    /// The larger of the primary's `replay_lag` and the standby's time
    /// since its last replayed transaction while WAL waits to be replayed.
    pub seconds: Option<f64>,
}

/// The live findings and each standby's lag (`None` for other members), in
/// member order. `facts` holds one entry per member, in member order.
pub fn check(
    cluster: &Cluster,
    facts: &[HostFacts],
    limits: &Thresholds,
) -> (Vec<Finding>, Vec<Option<Lag>>) {
    let pairs: Vec<(&Member, &HostFacts)> = cluster.members.iter().zip(facts).collect();
    let primary = live_primary(&pairs);
    let mut out = Vec::new();
    split_brain(&pairs, &mut out);
    let mut lags = Vec::new();
    for &(member, host) in &pairs {
        reachability(member, host, &mut out);
        role_drift(member, host, &mut out);
        let lag = declared_standby(member, host).then(|| lag_of(member, host, primary));
        if declared_standby(member, host) {
            streaming(cluster, member, host, primary, &mut out);
            if let Some(lag) = &lag {
                lagging(member, host, lag, primary, limits, &mut out);
            }
        }
        slots(member, host, limits, &mut out);
        disk(member, host, limits, &mut out);
        synapse(member, host, &mut out);
        lags.push(lag);
    }
    out.sort_by(|a, b| (&a.host, a.id, &a.message).cmp(&(&b.host, b.id, &b.message)));
    (out, lags)
}

/// A live finding about `member`, at its `role` line; only NF103 points at
/// the declaration itself (with its span).
fn finding(
    id: &'static str,
    severity: Severity,
    member: &Member,
    message: String,
    help: String,
) -> Finding {
    let mut f = finding_at(id, severity, member, member.def(ROLE), message, help);
    if id != "NF103" {
        f.span = None;
    }
    f
}

/// The member whose PostgreSQL is the primary: the declared primary when it
/// is one live, else the only live primary.
fn live_primary<'a>(pairs: &[(&'a Member, &'a HostFacts)]) -> Option<(&'a Member, &'a PgFacts)> {
    let live: Vec<(&Member, &PgFacts)> = pairs
        .iter()
        .filter(|(_, h)| h.live_role() == Some(LiveRole::Primary))
        .filter_map(|&(m, h)| h.pg().map(|pg| (m, pg)))
        .collect();
    live.iter()
        .find(|(m, _)| m.role() == Role::Primary)
        .or(match live.as_slice() {
            [one] => Some(one),
            _ => None,
        })
        .copied()
}

/// A member to judge as a standby: declared one, and not a primary live
/// (a declared standby that is primary live is NF103's).
fn declared_standby(member: &Member, host: &HostFacts) -> bool {
    member.role() == Role::Standby && host.live_role() != Some(LiveRole::Primary)
}

fn same_address(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// The primary's `pg_stat_replication` row of `member`, by its address.
fn replica_row<'a>(member: &Member, primary: &'a PgFacts) -> Option<&'a super::facts::Replica> {
    let address = member.address.as_deref()?;
    primary.replication.iter().find(|r| {
        r.client_addr
            .as_deref()
            .is_some_and(|c| same_address(c, address))
    })
}

fn lag_of(member: &Member, host: &HostFacts, primary: Option<(&Member, &PgFacts)>) -> Lag {
    let row = primary.and_then(|(_, pg)| replica_row(member, pg));
    let bytes = row
        .and_then(|r| r.replay_lag_bytes)
        .map(|b| u64::try_from(b).unwrap_or(0));
    let here = host.pg().and_then(|pg| pg.replay_delay_seconds);
    let there = row.and_then(|r| r.replay_lag_seconds);
    let seconds = match (here, there) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    Lag { bytes, seconds }
}

fn reachability(member: &Member, host: &HostFacts, out: &mut Vec<Finding>) {
    if host.reachable {
        if !host.postgres.running {
            let unit = host
                .postgres
                .unit
                .as_deref()
                .map_or(String::new(), |u| format!(" (unit {u})"));
            let why = host.postgres.error.as_deref().unwrap_or("no answer");
            let help = if why.contains("runuser") {
                format!(
                    "nixflip runs psql through runuser, which needs root: make [hosts.\"{}\"] target log in as root",
                    member.name
                )
            } else {
                format!(
                    "check `systemctl status postgresql` on {}; [hosts.\"{}\".live] pg_port, pg_socket_dir and pg_user say where nixflip looks",
                    member.name, member.name
                )
            };
            out.push(finding(
                "NF303",
                Severity::Error,
                member,
                format!("PostgreSQL on {} does not answer{unit}: {why}", member.name),
                help,
            ));
        }
        return;
    }
    let why = host.error.as_deref().unwrap_or("no answer");
    let help = if why.contains("Host key verification failed")
        || why.contains("HOST IDENTIFICATION HAS CHANGED")
    {
        format!(
            "nixflip checks host keys and never adds one: verify the host's key and add it to [live] known_hosts (or ~/.ssh/known_hosts), e.g. from `ssh-keyscan` run where you trust the network; target {}",
            host.target
        )
    } else {
        format!(
            "check that `ssh -o BatchMode=yes {} true` works from here (host up, key loaded, host key known); [hosts.\"{}\"] target sets where nixflip connects",
            host.target, member.name
        )
    };
    out.push(finding(
        "NF302",
        Severity::Error,
        member,
        format!("{} ({}) cannot be reached: {why}", member.name, host.target),
        help,
    ));
}

fn split_brain(pairs: &[(&Member, &HostFacts)], out: &mut Vec<Finding>) {
    let live: Vec<&Member> = pairs
        .iter()
        .filter(|(_, h)| h.live_role() == Some(LiveRole::Primary))
        .map(|&(m, _)| m)
        .collect();
    if live.len() < 2 {
        return;
    }
    let names: Vec<&str> = live.iter().map(|m| m.name.as_str()).collect();
    for m in &live {
        out.push(finding(
            "NF301",
            Severity::Error,
            m,
            format!(
                "live split brain: {} members' PostgreSQL are out of recovery and accept writes ({})",
                live.len(),
                names.join(", ")
            ),
            "keep one primary: stop Synapse and PostgreSQL on the others before anything writes to them, then make them standbys of the one you keep".into(),
        ));
    }
}

fn role_drift(member: &Member, host: &HostFacts, out: &mut Vec<Finding>) {
    let (declared, Some(live)) = (member.role(), host.live_role()) else {
        return;
    };
    let message = match (&declared, live) {
        (Role::Primary, LiveRole::Standby) => format!(
            "{} is declared primary, but its PostgreSQL is in recovery (a standby)",
            member.name
        ),
        (Role::Standby, LiveRole::Primary) => format!(
            "{} is declared standby, but its PostgreSQL is out of recovery (a primary)",
            member.name
        ),
        _ => return,
    };
    out.push(finding(
        "NF103",
        Severity::Error,
        member,
        message,
        format!(
            "make the flake say what runs (`nixflip promote HOST` for the live primary) or the cluster follow the flake, before the next rebuild of {} applies the declared role",
            member.name
        ),
    ));
}

fn streaming(
    cluster: &Cluster,
    member: &Member,
    host: &HostFacts,
    primary: Option<(&Member, &PgFacts)>,
    out: &mut Vec<Finding>,
) {
    if let Some(pg) = host.pg() {
        let receiver = pg.wal_receiver.as_ref();
        let status = receiver.and_then(|r| r.status.as_deref());
        if status != Some("streaming") {
            let what = match status {
                None => "no WAL receiver is running".to_string(),
                Some(s) => format!("its WAL receiver is `{s}`"),
            };
            out.push(finding(
                "NF304",
                Severity::Error,
                member,
                format!("standby {} is not streaming: {what}", member.name),
                format!(
                    "read PostgreSQL's log on {} (primary_conninfo, pg_hba on the primary, the replication password)",
                    member.name
                ),
            ));
            return;
        }
        let (Some(sender), Some(declared)) = (
            receiver.and_then(|r| r.sender_host.as_deref()),
            cluster.primary(),
        ) else {
            return;
        };
        let Some(address) = declared.address.as_deref() else {
            return;
        };
        if !same_address(sender, address) {
            out.push(finding(
                "NF305",
                Severity::Error,
                member,
                format!(
                    "standby {} streams from {sender}, but the declared primary {} is at {address}",
                    member.name, declared.name
                ),
                format!(
                    "rebuild {} so that it follows the declared primary, or fix the flake if {sender} is the real primary",
                    member.name
                ),
            ));
        }
        return;
    }
    // No answer from the standby itself: the primary can still say whether
    // it streams.
    let Some((primary_member, primary_pg)) = primary else {
        return;
    };
    let streams =
        replica_row(member, primary_pg).and_then(|r| r.state.as_deref()) == Some("streaming");
    if !streams {
        out.push(finding(
            "NF304",
            Severity::Error,
            member,
            format!(
                "standby {} is not streaming: the primary {} has no streaming connection from {}",
                member.name,
                primary_member.name,
                member.address.as_deref().unwrap_or("its address")
            ),
            format!(
                "start PostgreSQL on {}; a slot on the primary keeps WAL for it only until it fills the disk",
                member.name
            ),
        ));
    }
}

/// `1.5 MiB`, `16 MiB`, `1.0 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn lagging(
    member: &Member,
    host: &HostFacts,
    lag: &Lag,
    primary: Option<(&Member, &PgFacts)>,
    limits: &Thresholds,
    out: &mut Vec<Finding>,
) {
    let mut over = Vec::new();
    if let Some(bytes) = lag.bytes.filter(|&b| b > limits.max_lag_bytes) {
        over.push(format!(
            "{} of WAL (max_lag_bytes {})",
            human_bytes(bytes),
            human_bytes(limits.max_lag_bytes)
        ));
    }
    if let Some(seconds) = lag.seconds.filter(|&s| s > limits.max_lag_seconds) {
        over.push(format!(
            "{seconds:.1} s (max_lag_seconds {})",
            limits.max_lag_seconds
        ));
    }
    if over.is_empty() {
        return;
    }
    let paused = host.pg().and_then(|pg| pg.replay_paused) == Some(true);
    let from = primary.map_or(String::new(), |(m, _)| format!(" the primary {}", m.name));
    out.push(finding(
        "NF306",
        Severity::Error,
        member,
        format!(
            "standby {} is behind{from} by {}{}",
            member.name,
            over.join(" and "),
            if paused { "; its WAL replay is paused" } else { "" }
        ),
        if paused {
            format!("resume replay on {}: SELECT pg_wal_replay_resume();", member.name)
        } else {
            format!(
                "check {}'s disk and CPU and the network from the primary; a switchover to it now would wait for it",
                member.name
            )
        },
    ));
}

fn slots(member: &Member, host: &HostFacts, limits: &Thresholds, out: &mut Vec<Finding>) {
    let Some(pg) = host.pg() else { return };
    for slot in &pg.slots {
        let state = if slot.active { "active" } else { "inactive" };
        let retained = slot.retained_bytes.map(|b| u64::try_from(b).unwrap_or(0));
        if let Some(bytes) = retained.filter(|&b| b > limits.max_slot_retained_bytes) {
            out.push(finding(
                "NF307",
                Severity::Error,
                member,
                format!(
                    "replication slot `{}` on {} ({state}) retains {} of WAL (max_slot_retained_bytes {}): the WAL piles up until the disk is full",
                    slot.name,
                    member.name,
                    human_bytes(bytes),
                    human_bytes(limits.max_slot_retained_bytes)
                ),
                format!(
                    "bring the slot's standby back so that it catches up; if it is gone for good, drop the slot on {}: SELECT pg_drop_replication_slot('{}');",
                    member.name, slot.name
                ),
            ));
        }
        if !slot.active {
            out.push(finding(
                "NF308",
                Severity::Warning,
                member,
                format!(
                    "replication slot `{}` on {} is inactive{}: nothing consumes it, so the WAL it holds piles up",
                    slot.name,
                    member.name,
                    retained.map_or(String::new(), |b| format!(" and retains {}", human_bytes(b)))
                ),
                format!(
                    "start the standby that uses it, or drop it on {}: SELECT pg_drop_replication_slot('{}');",
                    member.name, slot.name
                ),
            ));
        }
    }
}

fn disk(member: &Member, host: &HostFacts, limits: &Thresholds, out: &mut Vec<Finding>) {
    let Some(disk) = host.disk else { return };
    if disk.free_percent >= limits.min_free_percent {
        return;
    }
    out.push(finding(
        "NF309",
        Severity::Error,
        member,
        format!(
            "the filesystem of {}'s data directory ({}) has {:.1}% free ({} of {}), under min_free_percent {}",
            member.name,
            host.data_directory.as_deref().unwrap_or("?"),
            disk.free_percent,
            human_bytes(disk.available_bytes),
            human_bytes(disk.total_bytes),
            limits.min_free_percent
        ),
        "PostgreSQL stops when its disk is full: free space, grow the filesystem, or look for a slot retaining WAL".into(),
    ));
}

fn synapse(member: &Member, host: &HostFacts, out: &mut Vec<Finding>) {
    if !host.reachable {
        return;
    }
    let live = host.live_role();
    let declared = member.role();
    let s = &host.synapse;
    let describe = || {
        let mut parts = Vec::new();
        if let Some(unit) = &s.unit {
            parts.push(format!("unit {unit}"));
        }
        match (s.answering, &s.error) {
            (Some(true), _) => parts.push(format!("{} answers", s.url)),
            (_, Some(e)) => parts.push(format!("{}: {e}", s.url)),
            _ => {}
        }
        parts.join(", ")
    };
    let standby = live == Some(LiveRole::Standby) || (live.is_none() && declared == Role::Standby);
    if standby && s.running() {
        out.push(finding(
            "NF310",
            Severity::Error,
            member,
            format!(
                "Synapse runs on {}, a standby ({}): its database is read-only, and two Synapses split the server",
                member.name,
                describe()
            ),
            format!("stop it: `systemctl stop matrix-synapse` on {}; the cluster module keeps it off on standbys", member.name),
        ));
    }
    let primary = declared == Role::Primary && live != Some(LiveRole::Standby);
    let down = s.unit.as_deref().is_some_and(|u| u != "active") || s.answering == Some(false);
    if primary && down {
        out.push(finding(
            "NF311",
            Severity::Error,
            member,
            format!(
                "Synapse does not serve on the primary {} ({})",
                member.name,
                describe()
            ),
            format!(
                "start it (`systemctl start matrix-synapse` on {}) and read its log; [hosts.\"{}\".live] synapse_url says where nixflip asks",
                member.name, member.name
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::facts::{Replica, Synapse, WalReceiver};

    fn cluster() -> Cluster {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clusters/live_pair");
        let loaded = crate::config::load(&root, None).expect("config");
        Cluster::load(&root, loaded).expect("the live_pair fixture loads")
    }

    fn limits() -> Thresholds {
        Thresholds {
            max_lag_bytes: 1000,
            max_lag_seconds: 10.0,
            max_slot_retained_bytes: 1000,
            min_free_percent: 10.0,
        }
    }

    /// alpha a streaming primary with Synapse serving, beta its standby.
    fn healthy() -> Vec<HostFacts> {
        let primary = PgFacts {
            replication: vec![Replica {
                client_addr: Some("127.0.0.3".into()),
                state: Some("streaming".into()),
                replay_lag_bytes: Some(0),
                ..Replica::default()
            }],
            ..PgFacts::default()
        };
        let standby = PgFacts {
            in_recovery: true,
            replay_delay_seconds: Some(0.0),
            wal_receiver: Some(WalReceiver {
                status: Some("streaming".into()),
                sender_host: Some("127.0.0.2".into()),
                ..WalReceiver::default()
            }),
            ..PgFacts::default()
        };
        let host = |name: &str, pg: PgFacts, synapse: bool| HostFacts {
            host: name.into(),
            reachable: true,
            postgres: super::super::facts::Postgres {
                unit: Some("active".into()),
                running: true,
                facts: Some(pg),
                ..Default::default()
            },
            synapse: Synapse {
                unit: Some(if synapse { "active" } else { "inactive" }.into()),
                answering: Some(synapse),
                ..Synapse::default()
            },
            ..HostFacts::default()
        };
        vec![host("alpha", primary, true), host("beta", standby, false)]
    }

    fn ids(facts: &[HostFacts]) -> Vec<(&'static str, String)> {
        let (findings, _) = check(&cluster(), facts, &limits());
        findings
            .into_iter()
            .map(|f| (f.id, f.host.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn healthy_facts_have_no_findings() {
        assert_eq!(ids(&healthy()), vec![]);
    }

    #[test]
    fn synapse_active_but_not_answering_on_the_primary() {
        let mut facts = healthy();
        facts[0].synapse.answering = Some(false);
        facts[0].synapse.error = Some("HTTP status 503".into());
        assert_eq!(ids(&facts), vec![("NF311", "alpha".to_string())]);
    }

    #[test]
    fn synapse_answer_unknown_is_not_a_finding() {
        let mut facts = healthy();
        facts[0].synapse.answering = None;
        facts[0].synapse.error = Some("curl is not installed on the host".into());
        assert_eq!(ids(&facts), vec![]);
    }

    #[test]
    fn synapse_on_a_declared_standby_whose_postgres_is_down() {
        let mut facts = healthy();
        facts[1].postgres.running = false;
        facts[1].postgres.facts = None;
        facts[1].synapse.unit = Some("active".into());
        facts[0]
            .postgres
            .facts
            .as_mut()
            .expect("pg")
            .replication
            .clear();
        assert_eq!(
            ids(&facts),
            vec![
                ("NF303", "beta".to_string()),
                ("NF304", "beta".to_string()),
                ("NF310", "beta".to_string())
            ]
        );
    }

    #[test]
    fn an_unreachable_standby_is_judged_by_the_primary() {
        let mut facts = healthy();
        facts[1] = HostFacts {
            host: "beta".into(),
            reachable: false,
            error: Some("ssh: connect to host 127.0.0.3 port 22: Connection refused".into()),
            ..HostFacts::default()
        };
        // Still streaming, as alpha sees it; its lag comes from alpha.
        facts[0].postgres.facts.as_mut().expect("pg").replication[0].replay_lag_seconds =
            Some(30.0);
        let (findings, lags) = check(&cluster(), &facts, &limits());
        let found: Vec<_> = findings.iter().map(|f| f.id).collect();
        assert_eq!(found, vec!["NF302", "NF306"]);
        assert_eq!(
            lags[1],
            Some(Lag {
                bytes: Some(0),
                seconds: Some(30.0)
            })
        );
        // Without alpha's row, beta is not streaming.
        facts[0]
            .postgres
            .facts
            .as_mut()
            .expect("pg")
            .replication
            .clear();
        assert_eq!(
            ids(&facts),
            vec![("NF302", "beta".to_string()), ("NF304", "beta".to_string())]
        );
    }

    #[test]
    fn a_waiting_wal_receiver_is_not_streaming() {
        let mut facts = healthy();
        let pg = facts[1].postgres.facts.as_mut().expect("pg");
        pg.wal_receiver = Some(WalReceiver {
            status: Some("waiting".into()),
            ..WalReceiver::default()
        });
        let (findings, _) = check(&cluster(), &facts, &limits());
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].message,
            "standby beta is not streaming: its WAL receiver is `waiting`"
        );
    }

    #[test]
    fn a_slot_within_its_limit_that_is_active_is_quiet() {
        let mut facts = healthy();
        let slot = |active, bytes| crate::live::facts::Slot {
            name: "beta".into(),
            active,
            retained_bytes: Some(bytes),
            ..Default::default()
        };
        facts[0].postgres.facts.as_mut().expect("pg").slots = vec![slot(true, 1000)];
        assert_eq!(ids(&facts), vec![]);
        facts[0].postgres.facts.as_mut().expect("pg").slots = vec![slot(true, 1001)];
        assert_eq!(ids(&facts), vec![("NF307", "alpha".to_string())]);
    }

    #[test]
    fn unreachable_wins_over_findings_in_the_exit_code() {
        let mut facts = healthy();
        facts[0].synapse.answering = Some(false);
        let status = crate::live::judge(&cluster(), facts.clone(), &limits());
        assert_eq!(status.exit_code(), crate::error::EXIT_FINDINGS);
        facts[1].reachable = false;
        let status = crate::live::judge(&cluster(), facts, &limits());
        assert_eq!(status.exit_code(), crate::error::EXIT_EXTERNAL);
    }

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024 * 1024), "1 MiB");
        assert_eq!(human_bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(human_bytes(1 << 30), "1 GiB");
    }
}
