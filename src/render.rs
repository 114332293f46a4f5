//! Rendering for people and tools: unified diffs, colour decisions.

use similar::{ChangeTag, TextDiff};

pub mod review;
pub mod stdio;

/// A unified diff of one file, with `a/` and `b/` headers like git's; empty
/// when nothing changed. Coloured with ANSI escapes when `color` is set.
pub fn unified_diff(path: &str, old: &str, new: &str, color: bool) -> String {
    if old == new {
        return String::new();
    }
    let diff = TextDiff::from_lines(old, new);
    let path = path.trim_start_matches('/');
    let mut out = String::new();
    out.push_str(&paint(&format!("--- a/{path}\n+++ b/{path}\n"), "1", color));
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        out.push_str(&paint(&format!("{}\n", hunk.header()), "36", color));
        for change in hunk.iter_changes() {
            let (sign, code) = match change.tag() {
                ChangeTag::Delete => ('-', "31"),
                ChangeTag::Insert => ('+', "32"),
                ChangeTag::Equal => (' ', ""),
            };
            let mut line = format!("{sign}{}", change.value());
            if change.missing_newline() {
                line.push_str("\n\\ No newline at end of file\n");
            }
            out.push_str(&paint(&line, code, color && !code.is_empty()));
        }
    }
    out
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    // Colour each line separately so a pager or CI log never bleeds colour.
    text.split_inclusive('\n')
        .map(|line| {
            let (body, nl) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
            format!("\x1b[{code}m{body}\x1b[0m{nl}")
        })
        .collect()
}

/// When to colour output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Colour on a terminal unless `NO_COLOR` is set; `always`/`never` decide alone.
    pub fn enabled_for_stdout(self) -> bool {
        self.enabled(std::io::IsTerminal::is_terminal(&std::io::stdout()))
    }

    pub fn enabled_for_stderr(self) -> bool {
        self.enabled(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    }

    fn enabled(self, terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_only_changed_lines_with_context() {
        let old = "a\nb\nc\n";
        let new = "a\nB\nc\n";
        let diff = unified_diff("x.nix", old, new, false);
        assert_eq!(
            diff,
            "--- a/x.nix\n+++ b/x.nix\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
        assert_eq!(unified_diff("x.nix", old, old, false), "");
    }
}

/// A finding as a `miette` diagnostic over its file's text.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", finding.id, finding.message)]
pub struct FindingDiagnostic {
    pub finding: crate::cluster::Finding,
    pub src: miette::NamedSource<String>,
}

impl miette::Diagnostic for FindingDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.finding.id))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.finding.severity {
            crate::cluster::Severity::Error => miette::Severity::Error,
            crate::cluster::Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(&self.finding.help))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.finding
            .span
            .map(|_| &self.src as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let (start, end) = self.finding.span?;
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_with_span(None, (start, end - start)),
        )))
    }
}

/// `::error file=…,line=…,col=…,title=…::message` for GitHub Actions.
pub fn github_annotation(finding: &crate::cluster::Finding, root_prefix: &str) -> String {
    let level = match finding.severity {
        crate::cluster::Severity::Error => "error",
        crate::cluster::Severity::Warning => "warning",
    };
    let escape = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let prop = |s: &str| escape(s).replace(':', "%3A").replace(',', "%2C");
    let file = format!("{root_prefix}{}", finding.file.display());
    format!(
        "::{level} file={},line={},col={},title={}::{} (help: {})",
        prop(&file),
        finding.line,
        finding.column,
        prop(finding.id),
        escape(&finding.message),
        escape(&finding.help)
    )
}

/// A plain table: columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}
