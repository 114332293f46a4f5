//! `secrets check` for people: the SOPS files and members as nixflip sees
//! them, and the summary line. Values are never shown.

use crate::cluster::rules::{self, Finding};
use crate::cluster::secrets::{DecryptOutcome, SecretsReport};

/// The files and members as nixflip sees them (no values).
pub fn overview(
    report: &SecretsReport,
    outcomes: &[DecryptOutcome],
    decrypting: bool,
    width: Option<usize>,
) -> String {
    let mut out = String::new();
    for f in &report.files {
        let rule = match (&report.sops_yaml, f.rule_line) {
            (Some(y), Some(line)) => format!(", {} rule at line {line}", y.display()),
            (Some(y), None) => format!(", no {} rule", y.display()),
            (None, _) => String::new(),
        };
        match &f.error {
            Some(_) => out.push_str(&format!("{}: unreadable\n", f.file.display())),
            None => out.push_str(&format!(
                "{}: {} keys, {} age recipients{rule}\n",
                f.file.display(),
                f.keys.len(),
                f.recipients.len()
            )),
        }
    }
    if decrypting {
        for o in outcomes {
            match (&o.error, &o.unwrapped_by) {
                (None, Some(by)) => out.push_str(&format!(
                    "{}: {}/{} values decrypted, MAC verified (data key unwrapped for {by})\n",
                    o.file.display(),
                    o.decrypted,
                    o.values
                )),
                _ => out.push_str(&format!(
                    "{}: does not decrypt (see below)\n",
                    o.file.display()
                )),
            }
        }
    }
    let rows: Vec<Vec<String>> = report
        .members
        .iter()
        .map(|m| {
            vec![
                m.host.clone(),
                m.role.clone().unwrap_or_else(|| "?".into()),
                m.recipient
                    .as_deref()
                    .map_or_else(|| "(unknown)".into(), shorten),
                join_or_dash(&m.declared),
                join_or_dash(&m.needs),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&super::table_within(
        &["HOST", "ROLE", "RECIPIENT", "DECLARES", "NEEDS"],
        &rows,
        width,
    ));
    out.push('\n');
    out
}

fn shorten(recipient: &str) -> String {
    let chars: Vec<char> = recipient.chars().collect();
    if chars.len() <= 20 {
        return recipient.to_string();
    }
    format!(
        "{}…{}",
        chars[..10].iter().collect::<String>(),
        chars[chars.len() - 6..].iter().collect::<String>()
    )
}

fn join_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

/// The last line: findings, members and SOPS files counted.
pub fn summary(report: &SecretsReport, findings: &[Finding]) -> String {
    let errors = rules::error_count(findings);
    let warnings = findings.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {} in {}, {}",
        plural(errors, "error"),
        plural(warnings, "warning"),
        plural(report.members.len(), "member"),
        plural(report.files.len(), "SOPS file")
    )
}
