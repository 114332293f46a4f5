//! What a flip does not rewrite: strings outside the cluster options that
//! name a member whose role changes (firewall rules, pg_hba lines, proxies,
//! host entries). For each, the plan says where it is and the edit that would
//! give the new topology the same effect; the old primary's firewall rules and
//! pg_hba lines (plain strings or lists under `networking.firewall.*` and
//! `services.postgresql.authentication`) can be carried to the new primary as
//! lossless edits. It never edits or removes the old primary's copy.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use rnix::SyntaxKind;
use serde::Serialize;

use super::addresses::{self, tokens, Kind, Literal, Placement};
use super::{Cluster, Member};
use crate::error::Result;
use crate::nixedit::{value::render_string, AttrPath, NewValue, TextEdit, Value};

/// One literal the flip leaves as it is.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unrewritten {
    /// The members whose configuration holds it (empty: no member imports
    /// its file by a relative path).
    pub hosts: Vec<String>,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The option path that holds it, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub option: Option<String>,
    /// Its source text.
    pub text: String,
    /// The members it names, with their addresses: `beta (198.51.100.20)`.
    pub names: Vec<String>,
    pub action: Action,
    /// Why it stays, in words.
    pub note: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edit: Option<SuggestedEdit>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// An old primary's rule: the same rule belongs on the new primary.
    Carry,
    /// It points at a member whose role flips: it needs an edit by hand.
    Edit,
    /// Nothing to do.
    Stays,
}

/// The edit that gives the new topology the same effect.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedEdit {
    /// The host whose configuration gets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub file: PathBuf,
    /// The edit in words, with the exact text.
    pub describe: String,
    /// One `nixflip set` command that makes it, when one does (run in the
    /// flake's directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `--carry-address-rules` makes this edit.
    pub carryable: bool,
    /// Why `--carry-address-rules` does not make it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

/// A carried rule as an edit of the new primary's files.
#[derive(Clone, Debug)]
pub enum CarryEdit {
    /// Set `path` (insert it, or grow its list) in `file`.
    Set {
        file: PathBuf,
        path: AttrPath,
        value: NewValue,
    },
    /// Insert text into `file` (lines appended inside an existing string).
    Insert { file: PathBuf, edit: TextEdit },
}

impl CarryEdit {
    pub fn file(&self) -> &PathBuf {
        match self {
            CarryEdit::Set { file, .. } | CarryEdit::Insert { file, .. } => file,
        }
    }
}

/// What a carried option must hold once evaluated on the new primary: each
/// line of its (string) value, or each item of its list.
#[derive(Clone, Debug)]
pub struct CarryCheck {
    pub host: String,
    pub path: AttrPath,
    pub expect: Vec<String>,
    pub list: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Carried {
    pub not_rewritten: Vec<Unrewritten>,
    pub edits: Vec<CarryEdit>,
    pub checks: Vec<CarryCheck>,
}

/// The flip of `old` (the primary) and `new` swaps their addresses: a rule
/// that made `old` admit `new` makes `new` admit `old`.
struct Swap {
    old: IpAddr,
    new: IpAddr,
    old_text: String,
    new_text: String,
}

impl Swap {
    fn replacement(&self, ip: IpAddr) -> Option<&str> {
        if ip == self.old {
            Some(&self.new_text)
        } else if ip == self.new {
            Some(&self.old_text)
        } else {
            None
        }
    }

    /// `text` with the two addresses exchanged; `tokens` are its addresses,
    /// at byte offsets from `base`.
    fn apply(&self, text: &str, found: &[addresses::Token], base: usize) -> String {
        let edits: Vec<TextEdit> = found
            .iter()
            .filter_map(|t| {
                self.replacement(t.ip).map(|r| TextEdit {
                    range: t.range.start - base..t.range.end - base,
                    replacement: r.to_string(),
                })
            })
            .collect();
        crate::nixedit::apply_edits(text, &edits)
    }

    fn apply_to_line(&self, line: &str) -> String {
        self.apply(line, &tokens(line), 0)
    }
}

/// Rules carried to one option of the new primary.
struct Group {
    path: AttrPath,
    list: bool,
    /// The carried lines (or list items), old and new address exchanged.
    lines: Vec<String>,
    /// The whole literal, exchanged, when it is one literal carried whole:
    /// written as it was (quoting and layout kept) when the new primary has
    /// no such option yet.
    whole: Option<String>,
    /// Indices into `not_rewritten` of the literals carried here.
    entries: Vec<usize>,
}

/// The literals a flip of `old` to `new` leaves behind, and the edits that
/// carry the old primary's rules.
pub fn plan(cluster: &Cluster, new: &Member, old: &Member) -> Result<Carried> {
    let (Some(new_ip), Some(old_ip)) = (new.ip(), old.ip()) else {
        return Ok(Carried::default());
    };
    let swap = Swap {
        old: old_ip,
        new: new_ip,
        old_text: old.address.clone().unwrap_or_else(|| old_ip.to_string()),
        new_text: new.address.clone().unwrap_or_else(|| new_ip.to_string()),
    };
    let literals = addresses::scan(cluster);
    let mut out = Carried::default();
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for literal in &literals {
        let named = named_members(cluster, literal);
        if named.is_empty() {
            continue;
        }
        let names: Vec<String> = named
            .iter()
            .map(|m| format!("{} ({})", m.name, m.address.as_deref().unwrap_or("?")))
            .collect();
        let flips = named
            .iter()
            .any(|m| m.name == old.name || m.name == new.name);
        let on_old = literal.hosts.contains(&old.name);
        let on_new = literal.hosts.contains(&new.name);
        let rule = literal.kind != Kind::Other;
        let mut entry = Unrewritten {
            hosts: literal.hosts.clone(),
            file: literal.file.clone(),
            line: literal.line,
            column: literal.column,
            option: literal.option.as_ref().map(ToString::to_string),
            text: literal.text.clone(),
            names,
            action: Action::Stays,
            note: String::new(),
            edit: None,
        };
        if rule && on_old && !on_new {
            entry.action = Action::Carry;
            entry.note = format!(
                "this copy stays on {}, which becomes a standby; the new primary {} needs the same rule for its standbys",
                old.name, new.name
            );
            match carry_refusal(literal) {
                Some(why) => {
                    entry.edit = Some(SuggestedEdit {
                        host: Some(new.name.clone()),
                        file: new.file.clone(),
                        describe: format!(
                            "give {}{} the same rule: {}",
                            new.name,
                            literal
                                .option
                                .as_ref()
                                .map_or(String::new(), |o| format!("'s {o}")),
                            swap.apply(&literal.text, &literal.tokens, literal.span.start)
                        ),
                        command: None,
                        carryable: false,
                        why_not: Some(why),
                    });
                    out.not_rewritten.push(entry);
                }
                None => {
                    let index = out.not_rewritten.len();
                    out.not_rewritten.push(entry);
                    add_to_group(cluster, &mut groups, literal, &swap, index);
                }
            }
            continue;
        }
        if !flips {
            continue;
        }
        if on_old && on_new {
            entry.note = format!(
                "shared by {} and {}: it holds on both whatever their roles",
                old.name, new.name
            );
        } else if rule && on_new {
            entry.note = format!(
                "{} becomes the primary: this rule now admits its standby",
                new.name
            );
        } else if rule {
            // A standby's own rule (or one no member's file holds): the flip
            // does not change what that host is.
            continue;
        } else {
            entry.action = Action::Edit;
            entry.note = "it names a member whose role flips".into();
            entry.edit = Some(in_place_edit(cluster, literal, &swap));
        }
        out.not_rewritten.push(entry);
    }
    for group in groups.into_values() {
        resolve_group(cluster, new, group, &mut out)?;
    }
    Ok(out)
}

/// The members a literal's addresses name, except the hosts whose own
/// configuration holds it (a host's own address there is about itself).
fn named_members<'c>(cluster: &'c Cluster, literal: &Literal) -> Vec<&'c Member> {
    cluster
        .members
        .iter()
        .filter(|m| !literal.hosts.contains(&m.name))
        .filter(|m| {
            m.ip()
                .is_some_and(|ip| literal.tokens.iter().any(|t| t.ip == ip))
        })
        .collect()
}

/// Why a rule cannot be carried by `--carry-address-rules`, if it cannot.
fn carry_refusal(literal: &Literal) -> Option<String> {
    let Some(option) = &literal.option else {
        return Some("it is not the value of an option (a `let` binding?)".into());
    };
    let keys = option.keys();
    let carried_here = keys.starts_with(&["networking".to_string(), "firewall".to_string()])
        || keys == ["services", "postgresql", "authentication"];
    if !carried_here {
        return Some(format!(
            "only plain strings and lists under networking.firewall.* and services.postgresql.authentication are carried, not {option}"
        ));
    }
    if literal.placement == Placement::Nested {
        return Some(format!(
            "it is neither the value of {option} nor an item of its list"
        ));
    }
    if literal.value.is_none() {
        return Some("it is interpolated: nixflip writes only literals".into());
    }
    None
}

/// Add a carryable literal's lines (or item) to its option's group.
fn add_to_group(
    cluster: &Cluster,
    groups: &mut BTreeMap<String, Group>,
    literal: &Literal,
    swap: &Swap,
    index: usize,
) {
    let (Some(path), Some(value)) = (&literal.option, &literal.value) else {
        return;
    };
    let list = literal.placement == Placement::ListItem;
    let names = |line: &str| {
        tokens(line).iter().any(|t| {
            cluster
                .members
                .iter()
                .any(|m| m.ip() == Some(t.ip) && !literal.hosts.contains(&m.name))
        })
    };
    let lines: Vec<String> = if list {
        vec![swap.apply_to_line(value)]
    } else {
        value
            .lines()
            .filter(|l| names(l))
            .map(|l| swap.apply_to_line(l.trim()))
            .collect()
    };
    let whole_literal = !list && value.lines().filter(|l| !l.trim().is_empty()).all(names);
    let group = groups.entry(path.to_string()).or_insert_with(|| Group {
        path: path.clone(),
        list,
        lines: Vec::new(),
        whole: None,
        entries: Vec::new(),
    });
    group.whole = (group.entries.is_empty() && whole_literal)
        .then(|| swap.apply(&literal.text, &literal.tokens, literal.span.start));
    group.lines.extend(lines);
    group.entries.push(index);
}

/// Where the new primary gets a group's rules: a new binding in its host
/// file, or its own definition of the option grown by the missing lines.
fn resolve_group(cluster: &Cluster, new: &Member, group: Group, out: &mut Carried) -> Result<()> {
    let option = group.path.to_string();
    let found = find_definition(cluster, new, &group.path);
    let edit: std::result::Result<Option<(CarryEdit, String, Option<String>)>, String> = match found
    {
        Err(why) => Err(why),
        Ok(None) => {
            let rendered = match (&group.whole, group.list) {
                (Some(whole), false) => whole.clone(),
                (_, true) => Value::List(group.lines.iter().cloned().map(Value::String).collect())
                    .render_inline(),
                (None, false) => render_string(&group.lines.join("\n")),
            };
            let value = match (&group.whole, group.list) {
                (Some(whole), false) => NewValue::Expr(whole.clone()),
                (_, true) => NewValue::Literal(Value::List(
                    group.lines.iter().cloned().map(Value::String).collect(),
                )),
                (None, false) => NewValue::Literal(Value::String(group.lines.join("\n"))),
            };
            let file = new.file.display().to_string();
            Ok(Some((
                CarryEdit::Set {
                    file: new.file.clone(),
                    path: group.path.clone(),
                    value,
                },
                format!("{file}: {option} = {rendered};"),
                Some(set_command(&file, &option, &rendered)),
            )))
        }
        Ok(Some(def)) => grow(&group, def),
    };
    let (describe, command, carryable, why_not) = match edit {
        Ok(Some((carry, describe, command))) => {
            out.edits.push(carry);
            (describe, command, true, None)
        }
        Ok(None) => (
            format!("{}'s {option} already holds it", new.name),
            None,
            false,
            Some("already there".into()),
        ),
        Err(why) => (
            format!(
                "give {}'s {option} the same rule: {}",
                new.name,
                group.lines.join(" / ")
            ),
            None,
            false,
            Some(why),
        ),
    };
    if carryable {
        out.checks.push(CarryCheck {
            host: new.name.clone(),
            path: group.path.clone(),
            expect: group.lines.clone(),
            list: group.list,
        });
    }
    for index in group.entries {
        if let Some(entry) = out.not_rewritten.get_mut(index) {
            entry.edit = Some(SuggestedEdit {
                host: Some(new.name.clone()),
                file: new.file.clone(),
                describe: describe.clone(),
                command: command.clone(),
                carryable,
                why_not: why_not.clone(),
            });
        }
    }
    Ok(())
}

/// The new primary's own definition of an option.
struct Definition {
    file: PathBuf,
    line: usize,
    text: String,
    node: rnix::SyntaxNode,
    conditional: bool,
}

/// The definition of `path` among the new primary's files (its host file
/// first); `Err` when one cannot be read.
fn find_definition(
    cluster: &Cluster,
    new: &Member,
    path: &AttrPath,
) -> std::result::Result<Option<Definition>, String> {
    let mut files: Vec<PathBuf> = vec![new.file.clone()];
    files.extend(
        cluster
            .sources
            .closure(&new.file)
            .into_iter()
            .filter(|f| *f != new.file),
    );
    for rel in files {
        let Some(file) = cluster.sources.get(&rel) else {
            continue;
        };
        match file.lookup(path) {
            Ok(None) => {}
            Ok(Some(binding)) => {
                let found = file.found(&binding);
                return Ok(Some(Definition {
                    file: rel,
                    line: found.line,
                    text: file.text().to_string(),
                    node: binding.inner.clone(),
                    conditional: binding.conditional,
                }));
            }
            Err(e) => {
                return Err(format!(
                    "{} defines {path} in a way nixflip cannot edit: {e}",
                    rel.display()
                ))
            }
        }
    }
    Ok(None)
}

/// Grow the new primary's own definition by the lines (items) it lacks;
/// `Ok(None)` when it has them all.
fn grow(
    group: &Group,
    def: Definition,
) -> std::result::Result<Option<(CarryEdit, String, Option<String>)>, String> {
    let option = group.path.to_string();
    let place = format!("{}:{}", def.file.display(), def.line);
    if def.conditional {
        return Err(format!(
            "{place} defines {option} under a condition (mkIf): a rule added there may not apply"
        ));
    }
    if group.list {
        let Some(items) = Value::from_node(&def.node).and_then(|v| v.as_string_list()) else {
            return Err(format!(
                "{place}: {option} is not a list of strings nixflip can grow"
            ));
        };
        let missing: Vec<String> = group
            .lines
            .iter()
            .filter(|l| !items.contains(l))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(None);
        }
        let all: Vec<Value> = items
            .into_iter()
            .chain(missing.iter().cloned())
            .map(Value::String)
            .collect();
        let shown: Vec<String> = missing.iter().map(|m| render_string(m)).collect();
        return Ok(Some((
            CarryEdit::Set {
                file: def.file.clone(),
                path: group.path.clone(),
                value: NewValue::Literal(Value::List(all)),
            },
            format!("{place}: add {} to {option}", shown.join(" ")),
            None,
        )));
    }
    if def.node.kind() != SyntaxKind::NODE_STRING {
        return Err(format!(
            "{place}: {option} is not a string nixflip can append to"
        ));
    }
    let Some(current) = addresses::decode(&def.node) else {
        return Err(format!(
            "{place}: {option} is interpolated: nixflip appends only to literals"
        ));
    };
    let have: Vec<&str> = current.lines().map(str::trim).collect();
    let missing: Vec<String> = group
        .lines
        .iter()
        .filter(|l| !have.contains(&l.trim()))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let edit = append_lines(&def.text, &def.node, &current, &missing);
    Ok(Some((
        CarryEdit::Insert {
            file: def.file.clone(),
            edit,
        },
        format!("{place}: append to {option}: {}", missing.join(" / ")),
        None,
    )))
}

/// The insertion that appends `lines` to the string `node` (of `text`),
/// keeping its quoting: before the closing `"`, or, in an indented string,
/// as lines of their own with the indentation of its first line.
fn append_lines(text: &str, node: &rnix::SyntaxNode, current: &str, lines: &[String]) -> TextEdit {
    let end = usize::from(node.text_range().end());
    let source = node.text().to_string();
    if source.starts_with("''") {
        let close = end - 2;
        let content = &text[usize::from(node.text_range().start()) + 2..close];
        let indent: String = content
            .lines()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.chars().take_while(|c| *c == ' ' || *c == '\t').collect())
            .unwrap_or_default();
        let escaped = |l: &str| l.replace("''", "'''").replace("${", "''${");
        let last_line_start = content.rfind('\n').map(|i| i + 1);
        match last_line_start {
            Some(start) if content[start..].trim().is_empty() => {
                let at = usize::from(node.text_range().start()) + 2 + start;
                let mut insert = String::new();
                for l in lines {
                    insert.push_str(&indent);
                    insert.push_str(&escaped(l));
                    insert.push('\n');
                }
                TextEdit {
                    range: at..at,
                    replacement: insert,
                }
            }
            _ => {
                let mut insert = String::new();
                for l in lines {
                    insert.push('\n');
                    insert.push_str(&indent);
                    insert.push_str(&escaped(l));
                }
                TextEdit {
                    range: close..close,
                    replacement: insert,
                }
            }
        }
    } else {
        let close = end - 1;
        let mut added = lines.join("\n");
        if current.ends_with('\n') {
            added.push('\n');
        } else if !current.is_empty() {
            added.insert(0, '\n');
        }
        let quoted = render_string(&added);
        TextEdit {
            range: close..close,
            replacement: quoted[1..quoted.len() - 1].to_string(),
        }
    }
}

/// The literal with the flipped addresses exchanged, in place.
fn in_place_edit(cluster: &Cluster, literal: &Literal, swap: &Swap) -> SuggestedEdit {
    let new_text = swap.apply(&literal.text, &literal.tokens, literal.span.start);
    let file = literal.file.display().to_string();
    // `nixflip set --expr` writes the new text where the old one is: the
    // literal itself, or the list that holds it with the item replaced.
    let expr = match literal.placement {
        Placement::Value => Some(new_text.clone()),
        Placement::ListItem => literal.value_span.as_ref().and_then(|span| {
            let text = cluster.sources.text(&literal.file)?;
            let mut list = text.get(span.clone())?.to_string();
            let at = literal.span.start.checked_sub(span.start)?;
            list.replace_range(at..at + literal.text.len(), &new_text);
            Some(list)
        }),
        Placement::Nested => None,
    };
    let command = match (&literal.option, expr, literal.plain) {
        (Some(option), Some(expr), true) => Some(set_command(&file, &option.to_string(), &expr)),
        _ => None,
    };
    SuggestedEdit {
        host: literal.hosts.first().cloned(),
        file: literal.file.clone(),
        describe: format!(
            "{file}:{}:{}: {} → {new_text}",
            literal.line, literal.column, literal.text
        ),
        command,
        carryable: false,
        why_not: Some("only the old primary's firewall rules and pg_hba lines are carried".into()),
    }
}

/// The `nixflip set` command line that writes `expr` at `option` in `file`.
fn set_command(file: &str, option: &str, expr: &str) -> String {
    let argv: Vec<String> = ["nixflip", "set", file, option, "--expr", expr, "--in-place"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    crate::names::display_command(&argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> rnix::SyntaxNode {
        let root = rnix::Root::parse(text).syntax();
        root.descendants()
            .find(|n| n.kind() == SyntaxKind::NODE_STRING)
            .expect("a string")
    }

    fn appended(text: &str, lines: &[&str]) -> String {
        let string = node(text);
        let current = addresses::decode(&string).expect("plain");
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        crate::nixedit::apply_edits(text, &[append_lines(text, &string, &current, &lines)])
    }

    #[test]
    fn lines_are_appended_inside_the_string_in_its_own_quoting() {
        assert_eq!(appended("{ a = \"x\"; }", &["y"]), "{ a = \"x\\ny\"; }");
        assert_eq!(
            appended("{ a = \"x\\n\"; }", &["y"]),
            "{ a = \"x\\ny\\n\"; }"
        );
        assert_eq!(appended("{ a = \"\"; }", &["y"]), "{ a = \"y\"; }");
        assert_eq!(
            appended("{\n  a = ''\n    x\n  '';\n}", &["y ${z}"]),
            "{\n  a = ''\n    x\n    y ''${z}\n  '';\n}"
        );
        assert_eq!(appended("{ a = ''x''; }", &["y"]), "{ a = ''x\ny''; }");
    }
}
