//! Rendering for people and tools: unified diffs, colour decisions.

use owo_colors::{OwoColorize, Style};

pub mod live;
pub mod plan;
pub mod review;
pub mod status;
pub mod stdio;

/// A unified diff of one file, with `a/` and `b/` headers like git's; empty
/// when nothing changed. Coloured for a terminal when `color` is set.
pub fn unified_diff(path: &str, old: &str, new: &str, color: bool) -> String {
    let diff = crate::textdiff::unified(path, old, new);
    if color {
        colorize_diff(&diff)
    } else {
        diff
    }
}

/// Terminal colours for a plain unified diff: headers bold, hunk headers
/// cyan, removals red, additions green. Each line is coloured on its own so
/// that a pager or a CI log never bleeds colour into the next line.
pub fn colorize_diff(diff: &str) -> String {
    diff.split_inclusive('\n')
        .map(|line| {
            let style = if line.starts_with("---") || line.starts_with("+++") {
                Style::new().bold()
            } else if line.starts_with("@@") {
                Style::new().cyan()
            } else if line.starts_with('-') {
                Style::new().red()
            } else if line.starts_with('+') {
                Style::new().green()
            } else {
                return line.to_string();
            };
            let (body, nl) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
            format!("{}{nl}", body.style(style))
        })
        .collect()
}

/// When to colour output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
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
    fn colours_each_diff_line_and_resets_before_the_newline() {
        let plain = crate::textdiff::unified("x.nix", "a\nb\n", "a\nB\n");
        let coloured = unified_diff("x.nix", "a\nb\n", "a\nB\n", true);
        assert_ne!(plain, coloured);
        for line in coloured.lines().filter(|l| l.starts_with('\x1b')) {
            assert!(line.ends_with("\x1b[0m"), "{line:?}");
        }
        assert!(coloured.contains(" a\n"), "context lines stay plain");
        assert_eq!(unified_diff("x.nix", "a\n", "a\n", true), "");
    }
}

/// A finding as a `miette` diagnostic over its file's text.
#[derive(Debug, thiserror::Error)]
/// The id is the diagnostic's code, shown once by the handler, not again in
/// the message.
#[error("{}", finding.message)]
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

/// `::error title=…::message` for GitHub Actions: an error with no file (a
/// failed `nix eval`), escaped like [`github_annotation`].
pub fn github_error(message: &str) -> String {
    let escaped = message
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    format!("::error title=nix eval::{escaped}")
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
