//! `status --live` for people: the members' table and the findings as plain lines. It takes
//! the library's [`LiveStatus`] and must never decide anything itself.

use crate::cluster::Severity;
use crate::live::facts::PgFacts;
use crate::live::rules::human_bytes;
use crate::live::{LiveRole, LiveStatus, MemberStatus};

pub const HEADER: [&str; 10] = [
    "HOST",
    "DECLARED",
    "LIVE",
    "TL",
    "LSN",
    "REPLICATION",
    "LAG",
    "SLOTS",
    "SYNAPSE",
    "DISK",
];

/// One row per member, then a line per fact nixflip could not learn.
pub fn table(status: &LiveStatus) -> String {
    let rows: Vec<Vec<String>> = status.members.iter().map(row).collect();
    let mut out = super::table(&HEADER, &rows);
    for m in &status.members {
        for problem in &m.problems {
            out.push_str(&format!("note: {}: {problem}\n", m.host));
        }
    }
    out
}

fn row(m: &MemberStatus) -> Vec<String> {
    let dash = || "-".to_string();
    let declared = m.declared_role.unwrap_or("?").to_string();
    if !m.reachable {
        let mut row = vec![m.host.clone(), declared, "unreachable".into()];
        row.resize(HEADER.len(), dash());
        return row;
    }
    let Some(pg) = m.postgres.facts.as_ref() else {
        let mut row = vec![m.host.clone(), declared, "down".into()];
        row.resize(HEADER.len() - 2, dash());
        row.push(synapse(m));
        row.push(disk(m));
        return row;
    };
    vec![
        m.host.clone(),
        declared,
        m.live_role.map_or("?", LiveRole::as_str).to_string(),
        pg.timeline.map_or_else(dash, |t| t.to_string()),
        lsns(pg),
        replication(pg),
        m.lag.map_or_else(dash, |lag| {
            let bytes = lag.bytes.map_or("?".into(), human_bytes);
            let seconds = lag.seconds.map_or("?".into(), |s| format!("{s:.1} s"));
            format!("{bytes}, {seconds}")
        }),
        slots(pg),
        synapse(m),
        disk(m),
    ]
}

fn lsns(pg: &PgFacts) -> String {
    if let Some(current) = pg.current_lsn {
        return format!("current {current}");
    }
    let show = |l: Option<crate::live::facts::Lsn>| l.map_or("-".to_string(), |l| l.to_string());
    if pg.receive_lsn == pg.replay_lsn {
        format!("replayed {}", show(pg.replay_lsn))
    } else {
        format!(
            "received {}, replayed {}",
            show(pg.receive_lsn),
            show(pg.replay_lsn)
        )
    }
}

fn replication(pg: &PgFacts) -> String {
    if pg.in_recovery {
        let paused = if pg.replay_paused == Some(true) {
            " (replay paused)"
        } else {
            ""
        };
        return match &pg.wal_receiver {
            None => format!("no receiver{paused}"),
            Some(r) => format!(
                "{} from {}{paused}",
                r.status.as_deref().unwrap_or("?"),
                r.sender_host.as_deref().unwrap_or("?")
            ),
        };
    }
    if pg.replication.is_empty() {
        return "no standbys".into();
    }
    pg.replication
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.client_addr.as_deref().unwrap_or("local"),
                r.state.as_deref().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn slots(pg: &PgFacts) -> String {
    if pg.slots.is_empty() {
        return "-".into();
    }
    pg.slots
        .iter()
        .map(|s| {
            let retained = s.retained_bytes.map_or(String::new(), |b| {
                format!(", {}", human_bytes(u64::try_from(b).unwrap_or(0)))
            });
            format!(
                "{} ({}{retained})",
                s.name,
                if s.active { "active" } else { "inactive" }
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn synapse(m: &MemberStatus) -> String {
    let unit = m.synapse.unit.as_deref().unwrap_or("?");
    match m.synapse.answering {
        Some(true) => format!("{unit}, answering"),
        Some(false) => format!("{unit}, not answering"),
        None => unit.to_string(),
    }
}

fn disk(m: &MemberStatus) -> String {
    m.disk
        .map_or("-".into(), |d| format!("{:.1}% free", d.free_percent))
}

/// The findings as one line each (`error NF304 beta: …`), with the help
/// indented below: for the refreshing screen of `--watch`.
pub fn findings_lines(status: &LiveStatus) -> String {
    if status.findings.is_empty() {
        return "no findings\n".into();
    }
    let mut out = String::new();
    for f in &status.findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out.push_str(&format!(
            "{level} {}: {}\n  help: {}\n",
            f.id, f.message, f.help
        ));
    }
    out
}
