//! Validation with `nix eval`: the rewrite goes into a scratch
//! copy of the flake, then ONE `nix eval --json` process reads the managed
//! fields of every member at once through `--apply`.

mod pending;
mod scratch;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::cluster::plan::{covers, Intended};
use crate::error::{Error, Result};
use crate::nixedit::AttrPath;

pub use pending::Pending;
pub use scratch::{enable_janitor, janitor, sweep, Scratch};

pub use crate::cluster::evaluated::Evaluated;

/// Options to read on some hosts besides the managed fields, by host: a
/// promote that carries rules proves the new primary evaluates to them.
pub type Extra = BTreeMap<String, Vec<AttrPath>>;

/// A Nix string literal.
fn nix_string(s: &str) -> String {
    crate::nixedit::value::render_string(s)
}

/// The `--apply` function: for each host, find its configuration (`NAME`,
/// `NAME|SYSTEM`, or the pinned attribute) and read the managed fields, and
/// the SOPS files and keys of its secrets (each behind `tryEval`: a secret
/// without a file is an answer, not a failed evaluation).
pub fn apply_expression(option: &AttrPath, hosts: &[(String, Option<String>)]) -> String {
    apply_expression_with(option, hosts, &Extra::new())
}

/// [`apply_expression`], also reading each host's `extra` paths from its
/// `config` (into [`Evaluated::extra`]).
pub fn apply_expression_with(
    option: &AttrPath,
    hosts: &[(String, Option<String>)],
    extra: &Extra,
) -> String {
    let keys: Vec<String> = option.keys().iter().map(|k| nix_string(k)).collect();
    let path_list = |p: &AttrPath| {
        let keys: Vec<String> = p.keys().iter().map(|k| nix_string(k)).collect();
        format!("[ {} ]", keys.join(" "))
    };
    let hosts_list: Vec<String> = hosts
        .iter()
        .map(|(name, attr)| {
            let paths = extra.get(name).map_or(String::new(), |paths| {
                let lists: Vec<String> = paths.iter().map(path_list).collect();
                format!(" extra = [ {} ];", lists.join(" "))
            });
            format!(
                "{{ name = {}; attr = {};{paths} }}",
                nix_string(name),
                attr.as_deref().map_or("null".into(), nix_string)
            )
        })
        .collect();
    // Without extra paths the expression stays exactly the plain one.
    let ok = if extra.values().any(|p| !p.is_empty()) {
        "(let c = cs.${builtins.head found}; in fields c // { extra = map (p: builtins.foldl' (a: k: a.${k}) c.config p) (h.extra or [ ]); })"
    } else {
        "fields cs.${builtins.head found}"
    };
    format!(
        r#"cs: let
  names = builtins.attrNames cs;
  matches = host: builtins.filter (n: n == host || builtins.substring 0 (builtins.stringLength host + 1) n == host + "|") names;
  resolve = h: if h.attr != null then [ h.attr ] else matches h.name;
  opt = c: builtins.foldl' (a: k: a.${{k}}) c.config [ {keys} ];
  try = v: let r = builtins.tryEval (builtins.deepSeq v v); in if r.success then r.value else null;
  secret = s: {{
    sopsFile = try (toString s.sopsFile);
    key = try s.key;
    format = try (s.format or null);
  }};
  sops = c: if c.config ? sops then try {{
    defaultSopsFile = try (toString c.config.sops.defaultSopsFile);
    secrets = builtins.mapAttrs (_: secret) (c.config.sops.secrets or {{ }});
  }} else null;
  fields = c: let o = opt c; in {{
    role = o.role;
    overrideEnableSynapse = o.overrideEnableSynapse;
    secretsFile = o.secretsFile != null;
    peerHost = o.replication.peerHost or null;
    allowedSourceIPs = o.replication.allowedSourceIPs;
    sops = sops c;
  }};
  one = h: let found = resolve h; in
    if builtins.length found == 1 && cs ? ${{builtins.head found}}
    then {{ ok = {ok}; attr = builtins.head found; }}
    else {{ candidates = found; }};
in builtins.listToAttrs (map (h: {{ name = h.name; value = one h; }}) [ {} ])"#,
        hosts_list.join(" "),
        keys = keys.join(" ")
    )
}

#[derive(Deserialize)]
struct Answer {
    ok: Option<Evaluated>,
    attr: Option<String>,
    #[serde(default)]
    candidates: Vec<String>,
}

/// Every member of `cluster` as [`start`] takes them: its name and its
/// pinned `nixosConfigurations` attribute, if any.
pub fn member_hosts(cluster: &crate::cluster::Cluster) -> Vec<(String, Option<String>)> {
    cluster
        .members
        .iter()
        .map(|m| (m.name.clone(), m.attr.clone()))
        .collect()
}

/// The `nix eval` arguments to pass: `[eval] nix_args` from nixflip.toml,
/// then those given on the command line.
pub fn configured_nix_args(cluster: &crate::cluster::Cluster, extra: &[String]) -> Vec<String> {
    let mut args = cluster.config.config.eval.nix_args.clone();
    args.extend(extra.iter().cloned());
    args
}

/// The base `nix` command with the experimental features nixflip needs.
pub fn nix_base_args() -> Vec<String> {
    vec![
        "--extra-experimental-features".into(),
        "nix-command flakes".into(),
    ]
}

/// The `nix eval` arguments (after `nix`) that read the managed fields of
/// `hosts` in `flake`.
pub fn eval_args(
    flake: Flake,
    option: &AttrPath,
    hosts: &[(String, Option<String>)],
    nix_args: &[String],
) -> Vec<String> {
    eval_args_with(flake, option, hosts, &Extra::new(), nix_args)
}

/// [`eval_args`], also reading each host's `extra` paths.
pub fn eval_args_with(
    flake: Flake,
    option: &AttrPath,
    hosts: &[(String, Option<String>)],
    extra: &Extra,
    nix_args: &[String],
) -> Vec<String> {
    let mut args = nix_base_args();
    args.extend(["eval".into(), "--json".into()]);
    args.extend(flake.nix_flags().iter().map(|f| f.to_string()));
    args.extend(nix_args.iter().cloned());
    args.push(format!(
        "path:{}#nixosConfigurations",
        flake.root().display()
    ));
    args.push("--apply".into());
    args.push(apply_expression_with(option, hosts, extra));
    args
}

/// The flake to evaluate.
#[derive(Clone, Copy)]
pub enum Flake<'a> {
    /// The user's own flake.
    Own(&'a Path),
    /// A scratch copy, complete (Nix starts reading it at once).
    Scratch(&'a Scratch),
}

impl Flake<'_> {
    pub fn root(&self) -> &Path {
        match self {
            Flake::Own(root) => root,
            Flake::Scratch(scratch) => scratch.flake(),
        }
    }

    /// Nix flags this flake needs: a scratch copy is evaluated once, so
    /// Nix's evaluation cache for it would only be a file left behind in
    /// `~/.cache/nix` per rewrite.
    fn nix_flags(&self) -> &'static [&'static str] {
        match self {
            Flake::Own(_) => &[],
            Flake::Scratch(_) => &["--no-eval-cache"],
        }
    }
}

/// Start evaluating the managed fields of `hosts` in `flake`.
pub fn start(
    flake: Flake,
    option: &AttrPath,
    hosts: &[(String, Option<String>)],
    nix_args: &[String],
) -> Result<Pending> {
    start_with(flake, option, hosts, &Extra::new(), nix_args)
}

/// [`start`], also reading each host's `extra` paths.
pub fn start_with(
    flake: Flake,
    option: &AttrPath,
    hosts: &[(String, Option<String>)],
    extra: &Extra,
    nix_args: &[String],
) -> Result<Pending> {
    Pending::spawn(eval_args_with(flake, option, hosts, extra, nix_args))
}

pub(crate) fn parse_answers(
    output: &std::process::Output,
) -> Result<BTreeMap<String, (String, Evaluated)>> {
    if !output.status.success() {
        return Err(Error::external(
            format!(
                "nix eval failed:\n{}",
                String::from_utf8_lossy(&output.stderr).trim_end()
            ),
            "this is Nix's own message: the flake does not evaluate (nixflip writes nothing when it does not)",
        ));
    }
    let answers: BTreeMap<String, Answer> =
        serde_json::from_slice(&output.stdout).map_err(|e| {
            Error::external(
                format!("unexpected output from nix eval: {e}"),
                "please report this",
            )
        })?;
    let mut out = BTreeMap::new();
    for (host, answer) in answers {
        match (answer.ok, answer.attr) {
            (Some(fields), Some(attr)) => {
                out.insert(host, (attr, fields));
            }
            _ => {
                return Err(Error::usage(
                    match answer.candidates.as_slice() {
                        [] => format!("no nixosConfigurations attribute for host {host} (looked for `{host}` and `{host}|SYSTEM`)"),
                        many => format!("several nixosConfigurations attributes match host {host}: {}", many.join(", ")),
                    },
                    format!("pin it in nixflip.toml: [hosts.\"{host}\"] attr = \"…\""),
                ))
            }
        }
    }
    Ok(out)
}

/// Start the one `nix eval` of every member's managed fields in `flake` (the
/// cluster's own, or a scratch copy holding a change; `new_members` are hosts
/// the change adds), and of the `paths` to read besides. `nix_args` come
/// from the command line; `[eval] nix_args` of nixflip.toml are added.
/// `on_command` sees the argv first.
pub fn start_members(
    cluster: &crate::cluster::Cluster,
    new_members: &[String],
    flake: Flake,
    paths: &Extra,
    nix_args: &[String],
    on_command: &mut dyn FnMut(&[String]),
) -> Result<Pending> {
    let mut hosts = member_hosts(cluster);
    hosts.extend(new_members.iter().map(|name| (name.clone(), None)));
    let nix_args = configured_nix_args(cluster, nix_args);
    on_command(&eval_args_with(
        flake,
        &cluster.option,
        &hosts,
        paths,
        &nix_args,
    ));
    start_with(flake, &cluster.option, &hosts, paths, &nix_args)
}

/// `check --eval`: evaluate every member of the flake itself, put the
/// evaluated managed fields in place of the written ones, and return
/// `findings` merged with the rules' verdict on what Nix computes (and
/// NF105 where a written literal is not what wins).
pub fn recheck(
    cluster: &mut crate::cluster::Cluster,
    mut findings: Vec<crate::cluster::Finding>,
    nix_args: &[String],
    on_command: &mut dyn FnMut(&[String]),
) -> Result<Vec<crate::cluster::Finding>> {
    let root = cluster.root.clone();
    let evaluated = start_members(
        cluster,
        &[],
        Flake::Own(&root),
        &Extra::new(),
        nix_args,
        on_command,
    )?
    .finish()?;
    findings.extend(crate::cluster::evaluated::overlay(cluster, &evaluated));
    findings.extend(crate::cluster::rules::check(cluster));
    findings.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.id, &a.message)
            .cmp(&(&b.file, b.line, b.column, b.id, &b.message))
    });
    findings.dedup();
    Ok(findings)
}

/// One field where evaluation disagrees with the plan.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Mismatch {
    pub host: String,
    pub field: &'static str,
    pub intended: String,
    pub evaluated: String,
}

/// Every carried rule the new primary does not evaluate to: each check's
/// paths are the host's [`Extra`] paths, in order.
pub fn carry_mismatches(
    checks: &[crate::cluster::carry::CarryCheck],
    evaluated: &BTreeMap<String, (String, Evaluated)>,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for check in checks {
        let i = index.entry(check.host.as_str()).or_default();
        let value = evaluated
            .get(&check.host)
            .and_then(|(_, e)| e.extra.get(*i))
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        *i += 1;
        let holds = |want: &str| match &value {
            serde_json::Value::String(s) => s.lines().any(|l| l.trim() == want.trim()),
            serde_json::Value::Array(items) => items.iter().any(|v| v.as_str() == Some(want)),
            _ => false,
        };
        for want in check.expect.iter().filter(|w| !holds(w)) {
            out.push(Mismatch {
                host: check.host.clone(),
                field: "carried rule",
                intended: format!("{} holding `{want}`", check.path),
                evaluated: value.to_string(),
            });
        }
    }
    out
}

/// The [`Extra`] paths of carry checks, by host, in the order
/// [`carry_mismatches`] reads them.
pub fn carry_paths(checks: &[crate::cluster::carry::CarryCheck]) -> Extra {
    let mut out = Extra::new();
    for check in checks {
        out.entry(check.host.clone())
            .or_default()
            .push(check.path.clone());
    }
    out
}

/// Compare evaluated values with the intended ones.
pub fn mismatches(
    intended: &BTreeMap<String, Intended>,
    evaluated: &BTreeMap<String, (String, Evaluated)>,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for (host, want) in intended {
        let Some((_, got)) = evaluated.get(host) else {
            continue;
        };
        let mut push = |field: &'static str, intended: String, evaluated: String| {
            out.push(Mismatch {
                host: host.clone(),
                field,
                intended,
                evaluated,
            });
        };
        if got.role != want.role {
            push("role", want.role.clone(), got.role.clone());
        }
        if got.synapse() != want.synapse {
            push(
                "effective Synapse",
                want.synapse.to_string(),
                got.synapse().to_string(),
            );
        }
        if want.synapse && !got.secrets_file {
            push(
                "secretsFile",
                "set (Synapse runs here)".into(),
                "null".into(),
            );
        }
        if let Some(peer) = &want.peer_host {
            if got.peer_host.as_deref() != Some(peer.as_str()) {
                push(
                    "replication.peerHost",
                    peer.clone(),
                    got.peer_host.clone().unwrap_or_else(|| "null".into()),
                );
            }
        }
        if !covers(&got.allowed_source_ips, &want.allowed_source_ips) {
            push(
                "replication.allowedSourceIPs",
                format!("{:?}", want.allowed_source_ips),
                format!("{:?}", got.allowed_source_ips),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::carry::CarryCheck;

    fn evaluated(extra: Vec<serde_json::Value>) -> BTreeMap<String, (String, Evaluated)> {
        let fields = Evaluated {
            role: "primary".into(),
            override_enable_synapse: None,
            secrets_file: true,
            peer_host: None,
            allowed_source_ips: Vec::new(),
            extra,
            sops: None,
        };
        BTreeMap::from([(
            "beta".to_string(),
            ("beta|x86_64-linux".to_string(), fields),
        )])
    }

    fn check(path: &str, expect: &[&str], list: bool) -> CarryCheck {
        CarryCheck {
            host: "beta".into(),
            path: path.parse().expect("path"),
            expect: expect.iter().map(|e| e.to_string()).collect(),
            list,
        }
    }

    #[test]
    fn a_carried_rule_must_be_a_line_of_what_the_new_primary_evaluates_to() {
        let checks = [
            check(
                "networking.firewall.extraInputRules",
                &["ip saddr 10.0.0.1/32 accept"],
                false,
            ),
            check("a.list", &["10.0.0.1/32"], true),
        ];
        let good = evaluated(vec![
            serde_json::json!("tcp dport 22 accept\n  ip saddr 10.0.0.1/32 accept\n"),
            serde_json::json!(["10.0.0.1/32"]),
        ]);
        assert!(carry_mismatches(&checks, &good).is_empty());
        // Another definition won (a mkForce elsewhere): the rule is gone.
        let overridden = evaluated(vec![
            serde_json::json!("tcp dport 22 accept\n"),
            serde_json::json!([]),
        ]);
        let found = carry_mismatches(&checks, &overridden);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].host, "beta");
        assert!(found[0].intended.contains("ip saddr 10.0.0.1/32 accept"));
    }

    #[test]
    fn extra_paths_leave_the_plain_expression_alone() {
        let option: AttrPath = "hectic.generic.matrix-cluster".parse().expect("path");
        let hosts = [("alpha".to_string(), None)];
        assert_eq!(
            apply_expression(&option, &hosts),
            apply_expression_with(&option, &hosts, &Extra::new())
        );
        let extra = Extra::from([(
            "alpha".to_string(),
            vec!["networking.firewall.extraInputRules".parse().expect("path")],
        )]);
        let with = apply_expression_with(&option, &hosts, &extra);
        assert!(
            with.contains(r#"extra = [ [ "networking" "firewall" "extraInputRules" ] ];"#),
            "{with}"
        );
    }
}
