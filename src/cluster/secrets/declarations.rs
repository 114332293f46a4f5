//! Reading `sops.secrets` declarations, `sops.defaultSopsFile` and the
//! secrets the cluster options use, statically, with the editor's walker.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use rnix::{SyntaxKind, SyntaxNode};

use super::{
    at, def_loc, node_loc, short, Declaration, Loc, Reference, SopsFileRef, PRIMARY_OPTIONS,
};
use crate::cluster::rules::{Finding, Severity};
use crate::cluster::{Cluster, Member};
use crate::nixedit::{syntax, Value};

/// A member's `sops.secrets` declarations (from its host file and every file
/// it imports by relative path), notes about what cannot be read, and
/// whether it sets `sops.defaultSopsFile`.
pub fn declarations(cluster: &Cluster, m: &Member) -> (Vec<Declaration>, Vec<Finding>, bool) {
    let files = cluster.sources.closure(&m.file);
    let mut default_file: Option<(SopsFileRef, Loc, u32)> = None;
    let mut decls: BTreeMap<String, Declaration> = BTreeMap::new();
    let mut notes = Vec::new();
    let mut fields: Vec<(String, String, SyntaxNode, Loc, PathBuf)> = Vec::new();
    for rel in &files {
        let Some(file) = cluster.sources.get(rel) else {
            continue;
        };
        for b in file.bindings().iter().filter(|b| !b.declaration) {
            let path = &b.path;
            if path.len() < 2 || path[0] != "sops" {
                continue;
            }
            let loc = node_loc(rel, file.text(), &b.node);
            if path.len() == 2 && path[1] == "defaultSopsFile" {
                let priority = b.priority;
                if default_file.as_ref().is_none_or(|(_, _, p)| priority < *p) {
                    let value_loc = node_loc(rel, file.text(), &b.inner);
                    default_file = Some((path_ref(&b.inner, rel), value_loc, priority));
                }
                continue;
            }
            if path[1] != "secrets" {
                continue;
            }
            if path.len() == 2 {
                if !b.descended {
                    notes.push(at(
                        "NF206",
                        Severity::Warning,
                        &m.name,
                        &loc,
                        format!("{}: sops.secrets is `{}`, which nixflip cannot read; its secrets are not checked", m.name, short(&b.inner.text().to_string())),
                        "declare each secret as sops.secrets.\"name\" = { … };".into(),
                    ));
                }
                continue;
            }
            let name = path[2].clone();
            let entry = decls.entry(name.clone()).or_insert_with(|| Declaration {
                host: m.name.clone(),
                name: name.clone(),
                key: Some(name.clone()),
                sops_file: SopsFileRef::Missing,
                format: None,
                file: rel.clone(),
                line: loc.line,
                loc: loc.clone(),
                file_loc: None,
                value_text: None,
            });
            if path.len() == 3 {
                // Prefer the binding of the secret itself over a field's.
                if entry.loc.file != *rel || entry.loc.span.start > loc.span.start {
                    entry.loc = loc.clone();
                    entry.file = rel.clone();
                    entry.line = loc.line;
                }
                let text = b.inner.text().to_string();
                entry.value_text = (!text.contains('\n')).then_some(text);
            } else if path.len() == 4 {
                let inner_loc = node_loc(rel, file.text(), &b.inner);
                fields.push((
                    name,
                    path[3].clone(),
                    b.inner.clone(),
                    inner_loc,
                    rel.clone(),
                ));
            }
        }
    }
    let has_default = default_file.is_some();
    for d in decls.values_mut() {
        if let Some((r, loc, _)) = &default_file {
            d.sops_file = r.clone();
            d.file_loc = Some(loc.clone());
        }
    }
    for (name, field, node, loc, rel) in fields {
        let Some(d) = decls.get_mut(&name) else {
            continue;
        };
        match field.as_str() {
            "key" => {
                d.key = Value::from_node(&node).and_then(|v| v.as_str().map(str::to_string));
            }
            "sopsFile" => {
                d.sops_file = path_ref(&node, &rel);
                d.file_loc = Some(loc);
            }
            "format" => {
                d.format = Value::from_node(&node).and_then(|v| v.as_str().map(str::to_string));
            }
            _ => {}
        }
    }
    (decls.into_values().collect(), notes, has_default)
}

/// A Nix expression for a file, as a path relative to the flake root.
fn path_ref(node: &SyntaxNode, rel: &Path) -> SopsFileRef {
    let node = syntax::unparen(node);
    let dir = rel.parent().unwrap_or(Path::new(""));
    let expr = || SopsFileRef::Expr {
        expr: short(&node.text().to_string()),
    };
    match node.kind() {
        SyntaxKind::NODE_PATH_REL if node.children().next().is_none() => {
            join_inside(dir, &node.text().to_string())
                .map_or_else(expr, |path| SopsFileRef::Path { path })
        }
        SyntaxKind::NODE_PATH_ABS if node.children().next().is_none() => SopsFileRef::Path {
            path: PathBuf::from(node.text().to_string()),
        },
        SyntaxKind::NODE_STRING => match syntax::static_string(&node) {
            Some(s) if s.starts_with('/') => SopsFileRef::Path {
                path: PathBuf::from(s),
            },
            _ => flake_relative(&node).map_or_else(expr, |path| SopsFileRef::Path { path }),
        },
        SyntaxKind::NODE_BIN_OP => {
            flake_relative(&node).map_or_else(expr, |path| SopsFileRef::Path { path })
        }
        _ => expr(),
    }
}

/// `self + "/secrets/x.yaml"` and `"${self}/secrets/x.yaml"` (also with
/// `inputs.self`): a path relative to the flake root.
fn flake_relative(node: &SyntaxNode) -> Option<PathBuf> {
    let is_self = |n: &SyntaxNode| {
        let t = syntax::unparen(n).text().to_string();
        t == "self" || t == "inputs.self"
    };
    let rest = match node.kind() {
        SyntaxKind::NODE_BIN_OP => {
            let mut children = node.children();
            let (lhs, rhs) = (children.next()?, children.next()?);
            let op = node
                .children_with_tokens()
                .find(|t| t.kind() == SyntaxKind::TOKEN_ADD);
            if op.is_none() || !is_self(&lhs) {
                return None;
            }
            syntax::static_string(&syntax::unparen(&rhs))?
        }
        SyntaxKind::NODE_STRING => {
            let mut parts = node.children_with_tokens().filter(|e| {
                !matches!(
                    e.kind(),
                    SyntaxKind::TOKEN_STRING_START | SyntaxKind::TOKEN_STRING_END
                )
            });
            let interp = parts.next()?.into_node()?;
            if interp.kind() != SyntaxKind::NODE_INTERPOL || !is_self(&interp.children().next()?) {
                return None;
            }
            let mut rest = String::new();
            for p in parts {
                if p.kind() != SyntaxKind::TOKEN_STRING_CONTENT {
                    return None;
                }
                rest.push_str(p.into_token()?.text());
            }
            rest
        }
        _ => return None,
    };
    join_inside(Path::new(""), rest.trim_start_matches('/'))
}

/// `dir/rel` normalised, or `None` when it leaves the flake.
fn join_inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in dir.join(rel).components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(p) => out.push(p),
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The secrets a member's cluster options use.
pub fn references(m: &Member) -> Vec<Reference> {
    let mut out = Vec::new();
    for option in PRIMARY_OPTIONS {
        let Some(def) = m.def(option) else { continue };
        let loc = def_loc(def);
        for secret in secrets_in_expr(&def.expr) {
            out.push(Reference {
                host: m.name.clone(),
                option: option.to_string(),
                secret,
                loc: loc.clone(),
            });
        }
    }
    out
}

/// `config.sops.secrets."x".path` (anywhere in the expression, also inside
/// strings) and `"/run/secrets/x"` name the secret `x`.
pub fn secrets_in_expr(expr: &str) -> Vec<String> {
    let parsed = rnix::Root::parse(expr);
    let mut out = Vec::new();
    for node in parsed.syntax().descendants() {
        match node.kind() {
            SyntaxKind::NODE_SELECT => {
                let mut children = node.children();
                let (Some(base), Some(attrpath)) = (children.next(), children.next()) else {
                    continue;
                };
                if base.kind() != SyntaxKind::NODE_IDENT || base.text() != "config" {
                    continue;
                }
                let keys: Vec<Option<String>> =
                    attrpath.children().map(|a| syntax::attr_key(&a)).collect();
                if let [Some(a), Some(b), Some(name), ..] = keys.as_slice() {
                    if a == "sops" && b == "secrets" && !out.contains(name) {
                        out.push(name.clone());
                    }
                }
            }
            SyntaxKind::NODE_STRING => {
                if let Some(name) = syntax::static_string(&node)
                    .and_then(|s| s.strip_prefix("/run/secrets/").map(str::to_string))
                    .filter(|n| !n.is_empty())
                {
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_in_expressions() {
        assert_eq!(
            secrets_in_expr("config.sops.secrets.\"matrix/secrets\".path"),
            ["matrix/secrets"]
        );
        assert_eq!(
            secrets_in_expr("\"${config.sops.secrets.pg.path}\""),
            ["pg"]
        );
        assert_eq!(
            secrets_in_expr("\"/run/secrets/matrix-secrets\""),
            ["matrix-secrets"]
        );
        assert!(secrets_in_expr("./secrets/x.yaml").is_empty());
        assert!(secrets_in_expr("other.sops.secrets.x.path").is_empty());
    }

    #[test]
    fn paths_stay_inside_the_flake() {
        assert_eq!(
            join_inside(Path::new("nixos/system/a"), "../../../secrets/c.yaml"),
            Some(PathBuf::from("secrets/c.yaml"))
        );
        assert_eq!(join_inside(Path::new("a"), "../../x"), None);
    }

    #[test]
    fn sopsfile_expressions() {
        let parse = |text: &str| {
            let root = rnix::Root::parse(text).syntax();
            let expr = root.children().next().unwrap();
            path_ref(&expr, Path::new("hosts/a.nix"))
        };
        let path = |p: &str| SopsFileRef::Path {
            path: PathBuf::from(p),
        };
        assert_eq!(parse("./s.yaml"), path("hosts/s.yaml"));
        assert_eq!(parse("../secrets/s.yaml"), path("secrets/s.yaml"));
        assert_eq!(parse("self + \"/secrets/s.yaml\""), path("secrets/s.yaml"));
        assert_eq!(parse("\"${self}/secrets/s.yaml\""), path("secrets/s.yaml"));
        assert_eq!(parse("/etc/s.yaml"), path("/etc/s.yaml"));
        assert!(matches!(
            parse("inputs.secrets + \"/s.yaml\""),
            SopsFileRef::Expr { .. }
        ));
    }
}
