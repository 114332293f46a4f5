//! `status` without `--live`: the members as the flake declares them, as a
//! table for people and as JSON for tools (camelCase, stable).

use std::path::Path;

use crate::cluster::addresses::Mention;
use crate::cluster::{Cluster, Finding, Member, Role};

/// The JSON of `nixflip status --json`.
pub fn json(
    root: &Path,
    cluster: &Cluster,
    mentions: &[Mention],
    findings: &[Finding],
) -> serde_json::Value {
    let json = serde_json::json!({
        "flake": root,
        "option": cluster.option.to_string(),
        "members": cluster.members.iter().map(member_json).collect::<Vec<_>>(),
        "addressesOutsideClusterOptions": mentions,
        "findings": findings,
    });
    with_shared_modules(json, cluster)
}

/// The tables of `nixflip status`: members, shared modules, and members'
/// addresses written outside the cluster options. Wide cells wrap to fit
/// `width` columns (`None`: no limit).
pub fn text(root: &Path, cluster: &Cluster, mentions: &[Mention], width: Option<usize>) -> String {
    let mut out = String::new();
    if cluster.members.is_empty() {
        out.push_str(&format!(
            "no cluster members found under `{}` in {}\n",
            cluster.option,
            root.display()
        ));
        if let Some(line) = shared_modules_line(cluster) {
            out.push_str(&format!("{line}\n"));
        }
        return out;
    }
    let rows: Vec<Vec<String>> = cluster.members.iter().map(member_row).collect();
    out.push_str(&super::table_within(
        &[
            "HOST",
            "ROLE",
            "SYNAPSE",
            "ADDRESS",
            "PEERHOST",
            "ALLOWEDSOURCEIPS",
            "FILE",
        ],
        &rows,
        width,
    ));
    if let Some(line) = shared_modules_line(cluster) {
        out.push_str(&format!("\n{line}\n"));
    }
    if !mentions.is_empty() {
        let rows: Vec<Vec<String>> = mentions
            .iter()
            .map(|m| {
                vec![
                    format!("{} ({})", m.member, m.address),
                    if m.hosts.is_empty() {
                        "-".into()
                    } else {
                        m.hosts.join(",")
                    },
                    format!("{}:{}", m.file.display(), m.line),
                    m.option.clone().unwrap_or_else(|| "-".into()),
                    m.text
                        .lines()
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join(" ⏎ "),
                ]
            })
            .collect();
        out.push_str(
            "\nmembers' addresses outside the cluster options (a flip does not rewrite these):\n",
        );
        out.push_str(&super::table_within(
            &["MEMBER", "IN", "FILE", "OPTION", "TEXT"],
            &rows,
            width,
        ));
    }
    out
}

fn member_row(m: &Member) -> Vec<String> {
    let role = match m.role() {
        Role::Primary => "primary".to_string(),
        Role::Standby => "standby".to_string(),
        Role::Invalid(expr) => format!("?{expr}"),
        Role::Missing => "(unset)".to_string(),
    };
    let synapse = match m.effective_synapse() {
        Some(true) => "on",
        Some(false) => "off",
        None => "?",
    };
    let def_line = m.def(crate::cluster::ROLE).map_or(1, |d| d.line);
    vec![
        m.name.clone(),
        role,
        synapse.to_string(),
        m.address.clone().unwrap_or_else(|| "?".into()),
        m.peer_host().map_or_else(
            || {
                m.def(crate::cluster::PEER_HOST)
                    .map_or("-".into(), |d| d.expr.clone())
            },
            str::to_string,
        ),
        m.allowed_ips()
            .map_or_else(|| "-".into(), |ips| ips.join(",")),
        format!(
            "{}:{}",
            m.def(crate::cluster::ROLE)
                .map_or(&m.file, |d| &d.file)
                .display(),
            def_line
        ),
    ]
}

pub fn member_json(m: &Member) -> serde_json::Value {
    serde_json::json!({
        "host": m.name,
        "role": match m.role() { Role::Primary => Some("primary"), Role::Standby => Some("standby"), _ => None },
        "synapse": m.effective_synapse(),
        "address": m.address,
        "addressSource": m.address_source,
        "peerHost": m.peer_host(),
        "allowedSourceIPs": m.allowed_ips(),
        "secretsFile": m.has_secrets_file(),
        "file": m.file,
        "line": m.def(crate::cluster::ROLE).map(|d| d.line),
        "attr": m.attr,
    })
}

/// "shared modules (not members): …", when discovery found any: they set
/// cluster options for the hosts that use them, outside the per-member model.
pub fn shared_modules_line(cluster: &Cluster) -> Option<String> {
    if cluster.shared_modules.is_empty() {
        return None;
    }
    let files: Vec<String> = cluster
        .shared_modules
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    Some(format!(
        "shared modules (not members): {}",
        files.join(", ")
    ))
}

/// Adds `sharedModules` to a JSON object when there are any (absent otherwise,
/// so the output of a cluster without them is unchanged).
pub fn with_shared_modules(mut json: serde_json::Value, cluster: &Cluster) -> serde_json::Value {
    if !cluster.shared_modules.is_empty() {
        json["sharedModules"] = serde_json::json!(cluster.shared_modules);
    }
    json
}
