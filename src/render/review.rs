//! The role diff ([`crate::review::Review`]) as text for a terminal, as
//! Markdown for a pull-request comment (cut below the forge's size limit),
//! and as JSON for tools.

use crate::cluster::{Finding, Severity};
use crate::review::{
    Change, FileDiff, FileStatus, FindingStatus, HostDiff, HostStatus, Review, MARKER,
};

/// GitHub's limit on a comment body, in characters.
pub const COMMENT_LIMIT: usize = 65_536;

/// What the Markdown aims to stay under: the limit, less room for the forge
/// adding a line of its own (and for counting bytes rather than characters,
/// which is stricter, so a comment never goes over).
pub const COMMENT_BUDGET: usize = COMMENT_LIMIT - 1_024;

/// Above this many members, the table shows only the ones that changed.
const FULL_TABLE_MAX: usize = 12;

// ---------------------------------------------------------------------------
// Shared pieces

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn severity(f: &Finding) -> &'static str {
    match f.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// "1 error (1 new), 2 warnings".
fn findings_count(review: &Review) -> String {
    let new_of = |sev: Severity| {
        review
            .findings
            .iter()
            .filter(|f| f.finding.severity == sev && f.status == FindingStatus::New)
            .count()
    };
    let part = |n: usize, word: &str, new: usize| {
        if new > 0 {
            format!("{} ({new} new)", plural(n, word))
        } else {
            plural(n, word)
        }
    };
    format!(
        "{}, {}",
        part(review.errors, "error", new_of(Severity::Error)),
        part(review.warnings, "warning", new_of(Severity::Warning))
    )
}

fn file_status(f: &FileDiff) -> &'static str {
    match f.status {
        FileStatus::Added => "added",
        FileStatus::Modified => "modified",
        FileStatus::Deleted => "deleted",
    }
}

/// `before → after`, or the value alone when it did not change; `—` for a
/// host that is not a member on that side.
fn arrow(c: &Change, wrap: impl Fn(&str) -> String) -> String {
    let side = |v: &Option<String>| v.as_deref().map_or_else(|| "—".to_string(), &wrap);
    if c.changed() {
        format!("{} → {}", side(&c.before), side(&c.after))
    } else {
        side(&c.after)
    }
}

fn status_word(h: &HostDiff) -> &'static str {
    match h.status {
        HostStatus::Added => " (added)",
        HostStatus::Removed => " (removed)",
        _ => "",
    }
}

fn other_changes(h: &HostDiff) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if h.address.changed() {
        out.push(format!("address {}", arrow(&h.address, str::to_string)));
    }
    for f in &h.fields {
        out.push(format!(
            "{} {} → {}",
            f.field,
            f.before.as_deref().unwrap_or("—"),
            f.after.as_deref().unwrap_or("—")
        ));
    }
    if h.status == HostStatus::Edited {
        out.push("files edited, no cluster option changed".into());
    }
    out
}

// ---------------------------------------------------------------------------
// Text

/// For a terminal: summary, table, findings, then the diffs (coloured when
/// `color`); the table fits `width` characters when given.
pub fn text(review: &Review, color: bool, width: Option<usize>) -> String {
    let mut out = format!(
        "nixflip diff {} → {}: {}\n",
        review.base, review.head, review.summary
    );
    if review.touches_cluster {
        let rows: Vec<Vec<String>> = review
            .hosts
            .iter()
            .map(|h| {
                vec![
                    format!("{}{}", h.host, status_word(h)),
                    arrow(&h.role, str::to_string),
                    arrow(&h.synapse, str::to_string),
                    arrow(&h.peer_host, str::to_string),
                    arrow(&h.allowed_source_ips, str::to_string),
                    other_changes(h).join("; "),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&super::table_within(
            &[
                "HOST",
                "ROLE",
                "SYNAPSE",
                "PEERHOST",
                "ALLOWEDSOURCEIPS",
                "OTHER CHANGES",
            ],
            &rows,
            width,
        ));
    }
    out.push_str(&format!(
        "\nfindings in {}: {}\n",
        review.head,
        findings_count(review)
    ));
    for f in &review.findings {
        let tag = match f.status {
            FindingStatus::New => "new     ",
            FindingStatus::Existing => "existing",
        };
        out.push_str(&format!(
            "  {tag} {} {} {}{}:{}: {}\n           help: {}\n",
            f.finding.id,
            severity(&f.finding),
            review.prefix,
            f.finding.file.display(),
            f.finding.line,
            f.finding.message,
            f.finding.help
        ));
    }
    if !review.resolved.is_empty() {
        out.push_str(&format!("resolved (in {} only):\n", review.base));
        for f in &review.resolved {
            out.push_str(&format!("  {} {}: {}\n", f.id, severity(f), f.message));
        }
    }
    if !review.files.is_empty() {
        out.push('\n');
    }
    for f in &review.files {
        match (&f.diff, &f.note) {
            (Some(diff), _) if color => out.push_str(&super::colorize_diff(diff)),
            (Some(diff), _) => out.push_str(diff),
            (_, Some(note)) => out.push_str(&format!(
                "{}{}: {} ({note})\n",
                review.prefix,
                f.path.display(),
                file_status(f)
            )),
            _ => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------
// JSON

/// Stable for tools: the [`Review`] as it is serialized.
pub fn json(review: &Review) -> serde_json::Value {
    serde_json::to_value(review).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Markdown

/// Text in a table cell: `|` would end the cell, a newline the row.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// An inline code span that survives backticks in `text`.
pub fn code(text: &str) -> String {
    let longest = longest_run(text, '`');
    let ticks = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// A code fence longer than any run of backticks in `body` (at least
/// three), so a diff that holds a fence cannot close the block early.
pub fn fence_for(body: &str) -> String {
    "`".repeat(longest_run(body, '`').max(2) + 1)
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Text safe inside HTML elements such as `<summary>`.
pub fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn md_table(review: &Review) -> String {
    let shown: Vec<&HostDiff> = if review.hosts.len() <= FULL_TABLE_MAX {
        review.hosts.iter().collect()
    } else {
        review
            .hosts
            .iter()
            .filter(|h| h.status != HostStatus::Unchanged)
            .collect()
    };
    let mut out = String::from(
        "| host | role | Synapse | peerHost | allowedSourceIPs | other changes |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for h in &shown {
        let bold = |c: &Change| {
            let text = arrow(c, code);
            if c.changed() && c.before.is_some() && c.after.is_some() {
                format!("**{text}**")
            } else {
                text
            }
        };
        let others: Vec<String> = other_changes(h).iter().map(|o| code(o)).collect();
        out.push_str(&format!(
            "| {}{} | {} | {} | {} | {} | {} |\n",
            code(&h.host),
            status_word(h),
            cell(&bold(&h.role)),
            cell(&bold(&h.synapse)),
            cell(&bold(&h.peer_host)),
            cell(&bold(&h.allowed_source_ips)),
            cell(&others.join("<br>"))
        ));
    }
    let hidden = review.hosts.len() - shown.len();
    if hidden > 0 {
        out.push_str(&format!(
            "\n{} not shown: nothing changed there.\n",
            plural(hidden, "more member")
        ));
    }
    out
}

fn md_finding(review: &Review, f: &Finding, status: Option<FindingStatus>) -> String {
    let tag = match status {
        Some(FindingStatus::New) => "**new** ",
        Some(FindingStatus::Existing) => "",
        None => "",
    };
    let already = match status {
        Some(FindingStatus::Existing) => " _(already in the base)_",
        _ => "",
    };
    format!(
        "- {tag}{} {} at {}: {}{already}<br>help: {}\n",
        code(f.id),
        severity(f),
        code(&format!("{}{}:{}", review.prefix, f.file.display(), f.line)),
        html(&f.message),
        html(&f.help)
    )
}

/// Findings, cut to `budget` bytes with a line saying how many were left out.
fn md_findings(review: &Review, budget: usize) -> String {
    let mut out = String::new();
    if review.findings.is_empty() && review.resolved.is_empty() {
        return out;
    }
    let reserve = 200;
    let mut lines: Vec<String> = Vec::new();
    if !review.findings.is_empty() {
        lines.push(format!(
            "\n**Findings** in {}: {}\n\n",
            code(&review.head),
            findings_count(review)
        ));
        // New ones first: they are what the reviewer must look at.
        let mut ordered: Vec<_> = review.findings.iter().collect();
        ordered.sort_by_key(|f| f.status != FindingStatus::New);
        lines.extend(
            ordered
                .iter()
                .map(|f| md_finding(review, &f.finding, Some(f.status))),
        );
    }
    if !review.resolved.is_empty() {
        lines.push(format!(
            "\n**Resolved** (in {} only):\n\n",
            code(&review.base)
        ));
        lines.extend(review.resolved.iter().map(|f| md_finding(review, f, None)));
    }
    let total = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if out.len() + line.len() + reserve > budget {
            out.push_str(&format!(
                "\n_{} left out to keep this comment under the size limit; run `nixflip diff` to see them all._\n",
                plural(total - i, "more finding line")
            ));
            break;
        }
        out.push_str(line);
    }
    out
}

/// One file's collapsed block; `None` when it does not fit in `room` bytes
/// even cut down (a cut diff keeps at least a few lines).
fn md_file(review: &Review, f: &FileDiff, room: usize) -> Option<(String, bool)> {
    let path = format!("{}{}", review.prefix, f.path.display());
    let hosts = match (f.hosts.is_empty(), f.imported_by.is_empty()) {
        (false, _) => format!(" — {}", html(&f.hosts.join(", "))),
        (true, false) => format!(" — imported by {}", html(&f.imported_by.join(", "))),
        (true, true) => String::new(),
    };
    let open = format!(
        "<details><summary><code>{}</code> ({}){hosts}</summary>\n\n",
        html(&path),
        file_status(f)
    );
    let close = "</details>\n\n";
    let body = match (&f.diff, &f.note) {
        (Some(diff), _) => diff.clone(),
        (None, Some(note)) => {
            let block = format!("{open}{}\n\n{close}", html(note));
            return (block.len() <= room).then_some((block, false));
        }
        (None, None) => String::new(),
    };
    let fence = fence_for(&body);
    let frame = open.len() + 2 * fence.len() + "diff\n".len() + 2 + close.len();
    if frame + body.len() <= room {
        return Some((
            format!("{open}{fence}diff\n{body}{fence}\n\n{close}"),
            false,
        ));
    }
    // Cut at a line boundary, leaving room for the note about the cut.
    let note_room = 120;
    let available = room.checked_sub(frame + note_room)?;
    let total_lines = body.lines().count();
    let mut kept = String::new();
    let mut kept_lines = 0;
    for line in body.split_inclusive('\n') {
        if kept.len() + line.len() > available {
            break;
        }
        kept.push_str(line);
        kept_lines += 1;
    }
    if kept_lines < 5 {
        return None;
    }
    Some((
        format!(
            "{open}{fence}diff\n{kept}{fence}\n\n_diff cut here: {kept_lines} of {total_lines} lines shown._\n\n{close}"
        ),
        true,
    ))
}

/// For a pull-request comment: marker, one-line summary, role table,
/// findings, then each file diff in a collapsed block. Stays under
/// [`COMMENT_BUDGET`] bytes (so under GitHub's 65,536 characters), saying
/// what was left out.
pub fn markdown(review: &Review) -> String {
    markdown_within(review, COMMENT_BUDGET)
}

/// [`markdown`] with an explicit size budget in bytes.
pub fn markdown_within(review: &Review, budget: usize) -> String {
    let mut out = format!("{MARKER}\n");
    if !review.touches_cluster {
        out.push_str(&untouched_line(review));
        if review.new_findings() > 0 {
            out.push_str(&md_findings(review, budget.saturating_sub(out.len())));
        }
        return hard_cut(out, budget);
    }
    out.push_str(&format!("### nixflip: {}\n\n", html(&review.summary)));
    let verdict = if review.errors > 0 {
        format!("❌ {} in the head", findings_count(review))
    } else {
        format!("✅ no errors, {}", plural(review.warnings, "warning"))
    };
    out.push_str(&format!(
        "{} → {} · {verdict}\n\n",
        code(&review.base),
        code(&review.head)
    ));
    out.push_str(&md_table(review));
    // The findings may take up to half of what is left; diffs get the rest.
    let half = budget.saturating_sub(out.len()) / 2;
    out.push_str(&md_findings(review, half));
    out.push_str(&md_files(review, budget.saturating_sub(out.len())));
    hard_cut(out, budget)
}

/// The comment for a pull request whose cluster cannot be read at all:
/// nixflip's own diagnostic (`report`, without colour) in a text block.
pub fn markdown_unreadable(place: &str, report: &str) -> String {
    let fence = "`".repeat(longest_run(report, '`').max(2) + 1);
    let text = format!(
        "{MARKER}\n### nixflip: cannot read the cluster {}\n\n❌ There is no role diff until \
         this is fixed; nixflip says:\n\n{fence}text\n{}\n{fence}\n",
        html(place),
        report.trim_end()
    );
    hard_cut(text, COMMENT_BUDGET)
}

fn untouched_line(review: &Review) -> String {
    let files = plural(review.files.len(), "file");
    let mut line = format!(
        "**nixflip**: this change touches no cluster member ({} → {}, {files} changed).",
        code(&review.base),
        code(&review.head)
    );
    if review.errors > 0 && review.new_findings() == 0 {
        line.push_str(&format!(
            " The head still has {}, all already in the base.",
            plural(review.errors, "error finding")
        ));
    }
    line.push('\n');
    line
}

/// The file blocks that fit in `room` bytes, then a note naming the rest.
fn md_files(review: &Review, room: usize) -> String {
    if review.files.is_empty() {
        return String::new();
    }
    // Room for the closing note (a bounded list of names).
    let reserve = 2_048;
    let mut out = format!("\n**Files** ({}):\n\n", review.files.len());
    let mut left_out: Vec<String> = Vec::new();
    let mut cut: Vec<String> = Vec::new();
    for f in &review.files {
        let path = format!("{}{}", review.prefix, f.path.display());
        if !left_out.is_empty() {
            left_out.push(path);
            continue;
        }
        let space = room.saturating_sub(out.len() + reserve);
        match md_file(review, f, space) {
            Some((block, was_cut)) => {
                out.push_str(&block);
                if was_cut {
                    cut.push(path);
                }
            }
            None => left_out.push(path),
        }
    }
    if !cut.is_empty() || !left_out.is_empty() {
        out.push_str(&left_out_note(review, &cut, &left_out, reserve));
    }
    out
}

fn left_out_note(review: &Review, cut: &[String], left_out: &[String], max: usize) -> String {
    let mut note = String::from("_This comment stays under GitHub's 65,536-character limit:");
    if !cut.is_empty() {
        note.push_str(&format!(
            " the diff of {} is cut short;",
            cut.iter().map(|p| code(p)).collect::<Vec<_>>().join(", ")
        ));
    }
    if !left_out.is_empty() {
        let mut names = Vec::new();
        let mut len = 0;
        for p in left_out {
            let shown = code(p);
            if len + shown.len() > max / 2 {
                break;
            }
            len += shown.len() + 2;
            names.push(shown);
        }
        let more = left_out.len() - names.len();
        let rest = if more > 0 {
            format!(" and {}", plural(more, "more file"))
        } else {
            String::new()
        };
        if left_out.len() == 1 {
            note.push_str(&format!(" the diff of {} is left out;", names.join("")));
        } else {
            note.push_str(&format!(
                " the diffs of {}{rest} are left out ({} in all);",
                names.join(", "),
                plural(left_out.len(), "file")
            ));
        }
    }
    note.push_str(&format!(
        " run `nixflip diff --base {}` to see everything._\n",
        review.base.replace('`', "")
    ));
    note
}

/// Last resort: cut at a line boundary so the body never exceeds `budget`.
fn hard_cut(text: String, budget: usize) -> String {
    if text.len() <= budget {
        return text;
    }
    let note = "\n_…cut here to stay under the comment size limit; run `nixflip diff` to see everything._\n";
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if out.len() + line.len() + note.len() > budget {
            break;
        }
        out.push_str(line);
    }
    out.push_str(note);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::{FileDiff, FileStatus, Review};
    use std::path::PathBuf;

    fn review_with_files(files: Vec<FileDiff>) -> Review {
        Review {
            base: "main".into(),
            head: "work tree".into(),
            prefix: String::new(),
            summary: "promotes b".into(),
            touches_cluster: true,
            errors: 0,
            warnings: 0,
            hosts: Vec::new(),
            modules: Vec::new(),
            findings: Vec::new(),
            resolved: Vec::new(),
            files,
        }
    }

    fn file(path: &str, diff: String) -> FileDiff {
        FileDiff {
            path: PathBuf::from(path),
            status: FileStatus::Modified,
            hosts: Vec::new(),
            imported_by: Vec::new(),
            diff: Some(diff),
            note: None,
        }
    }

    #[test]
    fn code_spans_and_cells_survive_backticks_and_pipes() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }

    #[test]
    fn a_diff_holding_a_fence_gets_a_longer_one() {
        let diff = "--- a/x.md\n+++ b/x.md\n@@ -1 +1 @@\n-```\n+````nix\n".to_string();
        let md = markdown_within(&review_with_files(vec![file("x.md", diff)]), 10_000);
        assert!(md.contains("\n`````diff\n"), "{md}");
    }

    #[test]
    fn every_budget_is_respected() {
        let big: String = (0..3000).map(|i| format!("+line {i}\n")).collect();
        let review = review_with_files(vec![
            file("a.nix", big.clone()),
            file("b.nix", big.clone()),
            file("c.txt", "+small\n".into()),
        ]);
        for budget in [600, 2_000, 5_000, 20_000, 40_000, COMMENT_BUDGET] {
            let md = markdown_within(&review, budget);
            assert!(md.len() <= budget, "{budget}: {}", md.len());
            assert!(md.starts_with(MARKER), "{budget}");
        }
        let md = markdown(&review);
        // The first file fits whole, the second is cut, the third is named.
        assert!(md.contains("the diff of `b.nix` is cut short;"), "{md}");
        assert!(md.contains("the diff of `c.txt` is left out;"), "{md}");
        assert!(md.contains("+line 2999\n"));
    }

    #[test]
    fn nothing_is_cut_when_it_fits() {
        let review = review_with_files(vec![file("a.nix", "+one\n".into())]);
        let md = markdown(&review);
        assert!(!md.contains("left out") && !md.contains("cut"), "{md}");
        assert!(md.contains("<details><summary><code>a.nix</code> (modified)</summary>"));
    }
}
