//! The cluster as `nix eval` sees it (`check --eval`).
//!
//! The static model reads what the files say; a definition nixflip cannot
//! see (a `mkForce` in a module outside the flake, a computed value) can make
//! the deployed configuration differ. Overlaying the evaluated managed fields
//! on the members lets the same rules judge what will actually be deployed,
//! and every field where the files and the evaluation disagree is reported
//! (NF105), so the operator learns that the files are not the whole story.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::rules::{finding_at, Finding, Severity};
use super::{Cluster, Def, Member, ALLOWED_IPS, OVERRIDE_SYNAPSE, PEER_HOST, ROLE, SECRETS_FILE};
use crate::nixedit::Value;

/// The managed fields of one member as Nix evaluated them.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Evaluated {
    pub role: String,
    pub override_enable_synapse: Option<bool>,
    pub secrets_file: bool,
    pub peer_host: Option<String>,
    #[serde(rename = "allowedSourceIPs")]
    pub allowed_source_ips: Vec<String>,
    /// The values of the host's extra paths (`eval::Extra`: options a
    /// promote carried rules to), in their order.
    #[serde(default)]
    pub extra: Vec<serde_json::Value>,
    /// What sops-nix's options evaluate to (`None`: the host has no `sops`
    /// options, or they do not evaluate).
    #[serde(default)]
    pub sops: Option<EvaluatedSops>,
}

/// `sops.defaultSopsFile` and every `sops.secrets.<name>` as Nix evaluates
/// them: file paths as Nix prints them (a file of the flake is in the store).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EvaluatedSops {
    /// `None`: not set (reading it fails).
    pub default_sops_file: Option<String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, EvaluatedSecret>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EvaluatedSecret {
    /// `None`: it does not evaluate (no `sopsFile` and no default file).
    pub sops_file: Option<String>,
    pub key: Option<String>,
    pub format: Option<String>,
}

impl Evaluated {
    pub fn synapse(&self) -> bool {
        self.override_enable_synapse
            .unwrap_or(self.role == "primary")
    }
}

/// Replace each evaluated member's managed fields by their evaluated values
/// and return one NF105 warning per field where a literal in the files says
/// otherwise. Members nix did not report are left as written.
pub fn overlay(
    cluster: &mut Cluster,
    evaluated: &BTreeMap<String, (String, Evaluated)>,
) -> Vec<Finding> {
    let mut drift = Vec::new();
    for member in &mut cluster.members {
        let Some((attr, fields)) = evaluated.get(&member.name) else {
            continue;
        };
        for (key, value) in managed_values(fields) {
            if let Some(finding) = drift_finding(member, attr, key, &value) {
                drift.push(finding);
            }
            put_evaluated(member, key, value);
        }
    }
    drift
}

/// The evaluated fields as the values a literal definition would hold.
fn managed_values(fields: &Evaluated) -> [(&'static str, Value); 5] {
    let strings = |v: &[String]| Value::List(v.iter().cloned().map(Value::String).collect());
    [
        (ROLE, Value::String(fields.role.clone())),
        (
            OVERRIDE_SYNAPSE,
            fields
                .override_enable_synapse
                .map_or(Value::Null, Value::Bool),
        ),
        // nix only says whether it is set; any non-null stands for "set".
        (
            SECRETS_FILE,
            if fields.secrets_file {
                Value::String("(set)".into())
            } else {
                Value::Null
            },
        ),
        (
            PEER_HOST,
            fields.peer_host.clone().map_or(Value::Null, Value::String),
        ),
        (ALLOWED_IPS, strings(&fields.allowed_source_ips)),
    ]
}

/// NF105 when the winning written literal differs from the evaluated value.
fn drift_finding(member: &Member, attr: &str, key: &str, evaluated: &Value) -> Option<Finding> {
    let def = member.def(key)?;
    let written = def.value.as_ref()?;
    if same_value(key, written, evaluated) {
        return None;
    }
    Some(finding_at(
        "NF105",
        Severity::Warning,
        member,
        Some(def),
        format!(
            "{}.{key} is written as {} here, but nixosConfigurations.\"{attr}\" evaluates it to {}",
            member.name,
            show(written),
            show(evaluated)
        ),
        "another definition wins (a lib.mkForce or mkOverride in a module nixflip did not read?); `nixflip promote` would edit this one in vain: remove or change the winning definition".into(),
    ))
}

fn same_value(key: &str, written: &Value, evaluated: &Value) -> bool {
    match (key, written, evaluated) {
        (SECRETS_FILE, w, e) => (*w == Value::Null) == (*e == Value::Null),
        // The list's order means nothing to pg_hba or the firewall.
        (ALLOWED_IPS, Value::List(w), Value::List(e)) => {
            let sorted = |l: &[Value]| {
                let mut v: Vec<String> = l.iter().map(show).collect();
                v.sort();
                v
            };
            sorted(w) == sorted(e)
        }
        _ => written == evaluated,
    }
}

fn show(value: &Value) -> String {
    value.render_inline()
}

/// Make the evaluated value the winning definition of `key`, at the place
/// the files define it (so findings still point at a line to look at).
fn put_evaluated(member: &mut Member, key: &str, value: Value) {
    let (file, span, line, column) = match member.def(key) {
        Some(d) => (d.file.clone(), d.span.clone(), d.line, d.column),
        None => (member.file.clone(), 0..0, 1, 1),
    };
    let def = Def {
        file,
        span,
        line,
        column,
        expr: value.render_inline(),
        value: Some(value),
        priority: 0,
        conditional: false,
    };
    member
        .defs
        .entry(key.to_string())
        .or_default()
        .insert(0, def);
}
