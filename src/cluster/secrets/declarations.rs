//! Reading `sops.secrets` declarations, `sops.defaultSopsFile` and the
//! secrets the cluster options use, statically, with the editor's walker.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rnix::{SyntaxKind, SyntaxNode};

use super::{
    at, def_loc, node_loc, short, Declaration, Loc, Reference, SopsFileRef, PRIMARY_OPTIONS,
};
use crate::cluster::flake::reader::{self, Reader, V};
use crate::cluster::rules::{Finding, Severity};
use crate::cluster::{Cluster, Member};
use crate::nixedit::{syntax, Value};

/// A member's `sops.secrets` declarations (from its host file and every file
/// it imports), notes about what cannot be read, and its
/// `sops.defaultSopsFile` when it sets one.
pub fn declarations(
    cluster: &Cluster,
    m: &Member,
) -> (Vec<Declaration>, Vec<Finding>, Option<SopsFileRef>) {
    let files = cluster.sources.closure(&m.file);
    let reader = Reader::new(&cluster.sources);
    let roots = &cluster.flake.root_names;
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
                    default_file =
                        Some((path_ref(&reader, roots, &b.inner, rel), value_loc, priority));
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
                evaluated: false,
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
    let default_ref = default_file.as_ref().map(|(r, _, _)| r.clone());
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
                d.sops_file = path_ref(&reader, roots, &node, &rel);
                d.file_loc = Some(loc);
            }
            "format" => {
                d.format = Value::from_node(&node).and_then(|v| v.as_str().map(str::to_string));
            }
            _ => {}
        }
    }
    (decls.into_values().collect(), notes, default_ref)
}

/// A Nix expression for a file, as a path relative to the flake root: a
/// relative path literal, an absolute one, or anything the flake reader
/// resolves through the names of the flake root (`flake + "/x.yaml"`,
/// `"${self}/x.yaml"`, a `let`-bound value of those).
pub fn path_ref(
    reader: &Reader,
    roots: &BTreeSet<String>,
    node: &SyntaxNode,
    rel: &Path,
) -> SopsFileRef {
    let node = syntax::unparen(node);
    let expr = |unbound: Option<String>| SopsFileRef::Expr {
        expr: short(&node.text().to_string()),
        unbound,
    };
    match node.kind() {
        SyntaxKind::NODE_PATH_ABS if node.children().next().is_none() => {
            return SopsFileRef::Path {
                path: PathBuf::from(node.text().to_string()),
            }
        }
        SyntaxKind::NODE_STRING => {
            if let Some(s) = syntax::static_string(&node).filter(|s| s.starts_with('/')) {
                return SopsFileRef::Path {
                    path: PathBuf::from(s),
                };
            }
        }
        _ => {}
    }
    let env = reader::env_at(&node, rel, roots);
    match reader.eval(&node, &env, rel) {
        V::Path(path) if !path.as_os_str().is_empty() => SopsFileRef::Path { path },
        V::Str(s) if s.starts_with('/') => SopsFileRef::Path {
            path: PathBuf::from(s),
        },
        _ => expr(unbound_root(reader, &env, &node, 0)),
    }
}

/// In `NAME + "/x"` or `"${NAME}/x"`, a `NAME` that is a function parameter
/// or bound nowhere in the file (not a `let`): perhaps the flake root under a
/// name nixflip does not know.
fn unbound_base(reader: &Reader, env: &reader::Env, node: &SyntaxNode) -> Option<String> {
    let base = match node.kind() {
        SyntaxKind::NODE_BIN_OP => node.children().next(),
        SyntaxKind::NODE_STRING => node
            .children()
            .find(|c| c.kind() == SyntaxKind::NODE_INTERPOL)
            .and_then(|i| i.children().next()),
        _ => None,
    }?;
    let base = syntax::unparen(&base);
    let name = base.text().to_string();
    let unknown = matches!(reader.eval(&base, env, Path::new("")), V::Unknown);
    (base.kind() == SyntaxKind::NODE_IDENT && reader.binding_of(env, &name).is_none() && unknown)
        .then_some(name)
}

/// [`unbound_base`] of the expression itself, or of what the variable it is
/// (`sopsFile = clusterFile;`) is bound to.
fn unbound_root(
    reader: &Reader,
    env: &reader::Env,
    node: &SyntaxNode,
    depth: usize,
) -> Option<String> {
    if node.kind() == SyntaxKind::NODE_IDENT && depth < 8 {
        if let Some((value, scope)) = reader.binding_of(env, &node.text().to_string()) {
            return unbound_root(reader, &scope, &syntax::unparen(&value), depth + 1);
        }
    }
    unbound_base(reader, env, node)
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

    fn sops_file(host: &str, value: &str, roots: &[&str]) -> SopsFileRef {
        let text = format!(
            "{host}: {{ config, ... }}: let v = {value}; in {{ sops.defaultSopsFile = v; }}"
        );
        let sources = crate::cluster::Sources::from_texts(
            Path::new("/flake"),
            [(PathBuf::from("hosts/a.nix"), text)],
            "none",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let reader = Reader::new(&sources);
        let roots: BTreeSet<String> = roots.iter().map(|r| r.to_string()).collect();
        let file = sources
            .get(Path::new("hosts/a.nix"))
            .unwrap_or_else(|| panic!("parsed"));
        let binding = file
            .bindings()
            .iter()
            .find(|b| b.path == ["sops", "defaultSopsFile"])
            .map(|b| b.inner.clone())
            .unwrap_or_else(|| panic!("binding"));
        path_ref(&reader, &roots, &binding, Path::new("hosts/a.nix"))
    }

    #[test]
    fn sopsfile_expressions() {
        let path = |p: &str| SopsFileRef::Path {
            path: PathBuf::from(p),
        };
        let header = "{ inputs, flake, self }";
        let roots = ["self", "flake"];
        assert_eq!(sops_file(header, "./s.yaml", &roots), path("hosts/s.yaml"));
        assert_eq!(
            sops_file(header, "../secrets/s.yaml", &roots),
            path("secrets/s.yaml")
        );
        assert_eq!(
            sops_file(header, "self + \"/secrets/s.yaml\"", &roots),
            path("secrets/s.yaml")
        );
        assert_eq!(
            sops_file(header, "\"${self}/secrets/s.yaml\"", &roots),
            path("secrets/s.yaml")
        );
        assert_eq!(
            sops_file(header, "\"${inputs.self}/secrets/s.yaml\"", &roots),
            path("secrets/s.yaml")
        );
        assert_eq!(
            sops_file(header, "flake + \"/sus/s.yaml\"", &roots),
            path("sus/s.yaml")
        );
        assert_eq!(
            sops_file(header, "\"${flake}/sus/s.yaml\"", &roots),
            path("sus/s.yaml")
        );
        assert_eq!(
            sops_file(header, "/etc/s.yaml", &roots),
            path("/etc/s.yaml")
        );
        assert!(matches!(
            sops_file(header, "inputs.secrets + \"/s.yaml\"", &roots),
            SopsFileRef::Expr { unbound: None, .. }
        ));
        // `flake` is not known as the flake root: say which name to declare.
        assert_eq!(
            sops_file("{ inputs, self }", "root + \"/sus/s.yaml\"", &roots),
            SopsFileRef::Expr {
                expr: "v".into(),
                unbound: Some("root".into())
            }
        );
        // A parameter that is not known as the root is never taken for it;
        // the help names it.
        assert!(matches!(
            sops_file("{ inputs, src }", "src + \"/sus/s.yaml\"", &roots),
            SopsFileRef::Expr { unbound: Some(name), .. } if name == "src"
        ));
        // Leaving the flake is not resolved.
        assert!(matches!(
            sops_file(header, "../../../s.yaml", &roots),
            SopsFileRef::Expr { .. }
        ));
    }
}
