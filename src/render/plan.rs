//! Plans as text, Markdown and JSON: what a promote or an add-host will
//! change, host by host, before anything is written. Rendering only: the
//! plans are made by [`crate::cluster::plan`] and [`crate::generate`].

use std::collections::BTreeMap;

use crate::cluster::carry::Action;
use crate::cluster::plan::Plan;
use crate::generate::add_host::AddHostPlan;
use crate::transaction::FileChange;

/// The unified diff of every changed file, coloured for a terminal when
/// `color` is set.
pub fn diffs(files: &[FileChange], color: bool) -> String {
    files
        .iter()
        .map(|f| {
            super::unified_diff(
                &f.path.display().to_string(),
                f.old.as_deref().unwrap_or(""),
                &f.new,
                color,
            )
        })
        .collect()
}

/// Promote's `--format json`: the plan and each file's diff.
pub fn promote_json(plan: &Plan, files: &[FileChange], dry_run: bool) -> String {
    let diffs: BTreeMap<String, String> = files
        .iter()
        .map(|f| {
            (
                f.path.display().to_string(),
                diffs(std::slice::from_ref(f), false),
            )
        })
        .collect();
    serde_json::to_string_pretty(
        &serde_json::json!({ "plan": plan, "diffs": diffs, "dryRun": dry_run }),
    )
    .unwrap_or_default()
}

/// An add-host plan: the new host, its primary, and every file it touches.
pub fn add_host_text(plan: &AddHostPlan) -> String {
    let mut out = format!(
        "Add {} as a standby of {} ({}): flake attribute {}, file {}\n",
        plan.name,
        plan.primary,
        plan.primary_address,
        plan.attr,
        plan.file.display()
    );
    for c in &plan.changes {
        let what = if c.old.is_none() { "new file" } else { "edit" };
        out.push_str(&format!("  {what:<8}  {}\n", c.path.display()));
    }
    for n in &plan.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    out
}

pub fn promote_text(plan: &Plan) -> String {
    let mut out = if plan.already_primary {
        format!("{} is already primary; repairs:\n", plan.new_primary)
    } else {
        match &plan.old_primary {
            Some(old) => format!(
                "Promote {} to primary ({old} becomes standby)\n",
                plan.new_primary
            ),
            None => format!("Promote {} to primary\n", plan.new_primary),
        }
    };
    // Hosts with changes first, in plan order, then hosts with only notes.
    let mut hosts: Vec<&str> = Vec::new();
    let listed = plan
        .changes
        .iter()
        .map(|c| c.host.as_str())
        .chain(plan.kept.iter().map(|k| k.host.as_str()))
        .chain(
            plan.not_rewritten
                .iter()
                .map(|n| n.hosts.first().map_or("", String::as_str)),
        );
    for host in listed {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let width = plan
        .changes
        .iter()
        .map(|c| c.field.len())
        .max()
        .unwrap_or(0);
    for host in hosts {
        if host.is_empty() {
            out.push_str("  (files no member imports by a relative path)\n");
        } else {
            out.push_str(&format!("  {host}\n"));
        }
        for c in plan.changes.iter().filter(|c| c.host == host) {
            out.push_str(&format!(
                "    {:<width$}  {} → {}   ({})\n",
                c.field,
                c.old,
                c.new,
                c.file.display()
            ));
            if let Some(note) = &c.note {
                out.push_str(&format!("    {:<width$}  note: {note}\n", ""));
            }
        }
        let allowed_changes = plan
            .changes
            .iter()
            .any(|c| c.host == host && c.field == crate::cluster::ALLOWED_IPS);
        for k in plan
            .kept
            .iter()
            .filter(|k| k.host == host && !allowed_changes)
        {
            out.push_str(&format!(
                "    {}  keeps {} (covers no member; {}:{})\n",
                crate::cluster::ALLOWED_IPS,
                k.entries.join(", "),
                k.file.display(),
                k.line
            ));
        }
        for n in plan
            .not_rewritten
            .iter()
            .filter(|n| n.hosts.first().map_or("", String::as_str) == host)
        {
            out.push_str(&render_unrewritten(plan, n));
        }
    }
    out
}

/// One "not rewritten" literal: where, what it names, and the edit.
fn render_unrewritten(plan: &Plan, n: &crate::cluster::carry::Unrewritten) -> String {
    let text = one_line(&n.text);
    let option = n.option.as_deref().unwrap_or("(no option)");
    let mut out = format!(
        "    not rewritten: {option} ({}:{}): {text}\n      names {}; {}\n",
        n.file.display(),
        n.line,
        n.names.join(", "),
        n.note
    );
    let Some(edit) = &n.edit else {
        return out;
    };
    let to = edit.host.as_deref().unwrap_or("?");
    let line = match (n.action, edit.carryable, plan.carry_address_rules) {
        (Action::Carry, true, true) => format!("carried to {to}: {}", edit.describe),
        (Action::Carry, true, false) => format!(
            "carry to {to} (--carry-address-rules writes it): {}",
            edit.describe
        ),
        (Action::Carry, false, _) => format!(
            "not carried ({}): {}",
            edit.why_not.as_deref().unwrap_or("by hand"),
            edit.describe
        ),
        _ => format!("edit by hand: {}", edit.describe),
    };
    out.push_str(&format!("      {}\n", one_line(&line)));
    if let (Some(command), false) = (&edit.command, plan.carry_address_rules && edit.carryable) {
        out.push_str(&format!("        {command}\n"));
    }
    out
}

/// Multi-line text on one line: each newline with the indentation after it
/// shown as ` ⏎ `.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.join(" ⏎ ")
}

/// Markdown for a pull request or chat: values and paths are escaped with
/// the helpers of the review renderer (code spans and fences that survive
/// backticks, HTML-escaped `<summary>`).
pub fn promote_markdown(plan: &Plan, files: &[FileChange]) -> String {
    use super::review::{cell, code, fence_for, html};
    let mut out = format!(
        "### nixflip: promote {}\n\n| host | field | before | after |\n| --- | --- | --- | --- |\n",
        code(&plan.new_primary)
    );
    for c in &plan.changes {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&c.host),
            cell(&code(&c.field)),
            cell(&code(&c.old)),
            cell(&code(&c.new))
        ));
    }
    for k in &plan.kept {
        out.push_str(&format!(
            "\n{}: `allowedSourceIPs` keeps {} (covers no member).\n",
            cell(&k.host),
            k.entries
                .iter()
                .map(|e| code(e))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !plan.not_rewritten.is_empty() {
        out.push_str("\n**Not rewritten** (outside the cluster options):\n\n");
        for n in &plan.not_rewritten {
            let edit = n.edit.as_ref().map_or(String::new(), |e| {
                let done = if plan.carry_address_rules && e.carryable {
                    "carried"
                } else {
                    "edit"
                };
                format!(" — {done}: {}", code(&e.describe))
            });
            out.push_str(&format!(
                "- {}:{} {}: {} ({}){edit}\n",
                code(&n.file.display().to_string()),
                n.line,
                code(n.option.as_deref().unwrap_or("(no option)")),
                code(&one_line(&n.text)),
                html(&n.note)
            ));
        }
    }
    for f in files {
        let path = f.path.display().to_string();
        let diff = crate::textdiff::unified(&path, f.old.as_deref().unwrap_or(""), &f.new);
        let fence = fence_for(&diff);
        out.push_str(&format!(
            "\n<details><summary><code>{}</code></summary>\n\n{fence}diff\n{diff}{fence}\n</details>\n",
            html(&path)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::plan::Change;
    use crate::nixedit::{NewValue, Value};
    use std::path::PathBuf;

    #[test]
    fn markdown_escapes_paths_and_values() {
        let path = PathBuf::from("hosts/<b>&x.nix");
        let plan = Plan {
            new_primary: "b".into(),
            old_primary: None,
            already_primary: false,
            standbys: Vec::new(),
            kept: Vec::new(),
            not_rewritten: Vec::new(),
            carry_address_rules: false,
            carries: Vec::new(),
            carry_checks: Vec::new(),
            changes: vec![Change {
                host: "b".into(),
                field: "role".into(),
                file: path.clone(),
                old: "\"a|`b\"".into(),
                new: "\"primary\"".into(),
                value: NewValue::Literal(Value::String("primary".into())),
                note: None,
            }],
            intended: BTreeMap::new(),
        };
        let file = FileChange {
            path,
            old: Some("x\n".into()),
            new: "y\n".into(),
        };
        let md = promote_markdown(&plan, &[file]);
        assert!(md.contains("<summary><code>hosts/&lt;b&gt;&amp;x.nix</code></summary>"));
        assert!(md.contains("| ``\"a\\|`b\"`` |"), "{md}");
    }
}
