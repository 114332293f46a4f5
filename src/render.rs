//! Rendering for people and tools: unified diffs, colour decisions.

use owo_colors::{OwoColorize, Style};

pub mod live;
pub mod plan;
pub mod review;
pub mod secrets;
pub mod status;

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
    table_within(header, rows, None)
}

/// The width tables on stdout must fit: the terminal's when stdout is one,
/// else `COLUMNS` when it is set; `None` (no limit) otherwise, so a pipe or
/// a file gets every row on one line.
pub fn stdout_width() -> Option<usize> {
    let terminal = terminal_size::terminal_size_of(std::io::stdout())
        .map(|(terminal_size::Width(w), _)| usize::from(w));
    terminal.or_else(|| {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .filter(|w: &usize| *w > 0)
    })
}

/// A table that fits `width` characters (when given): the widest columns
/// are narrowed until the table fits, and a cell wider than its column is
/// wrapped onto more lines after a comma, a space or a `/`. No column is
/// made narrower than its header or its longest unbreakable piece (an
/// address stays whole), so a very narrow terminal can still get longer
/// lines. A table that fits is the same as [`table`]'s.
pub fn table_within(header: &[&str], rows: &[Vec<String>], width: Option<usize>) -> String {
    let len = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| len(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(len(cell));
            }
        }
    }
    if let Some(limit) = width {
        let floors: Vec<usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                rows.iter()
                    .filter_map(|r| r.get(i))
                    .flat_map(|c| pieces(c))
                    .map(|p| len(p.trim()))
                    .max()
                    .unwrap_or(0)
                    .max(len(h))
            })
            .collect();
        let gaps = 2 * widths.len().saturating_sub(1);
        while widths.iter().sum::<usize>() + gaps > limit {
            let widest = widths
                .iter()
                .enumerate()
                .filter(|(i, w)| **w > floors[*i])
                .max_by_key(|(_, w)| **w)
                .map(|(i, _)| i);
            match widest {
                Some(i) => widths[i] -= 1,
                None => break, // as narrow as it gets
            }
        }
    }
    let render_row = |cells: Vec<String>| -> String {
        let wrapped: Vec<Vec<String>> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| wrap_cell(c, *w))
            .collect();
        let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
        let mut out = String::new();
        for line in 0..height {
            let padded: Vec<String> = wrapped
                .iter()
                .zip(&widths)
                .map(|(lines, w)| {
                    let part = lines.get(line).map_or("", String::as_str);
                    format!("{part:<w$}")
                })
                .collect();
            out.push_str(padded.join("  ").trim_end());
            out.push('\n');
        }
        out
    };
    let mut out = render_row(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&render_row(row.clone()));
    }
    out
}

/// `cell` cut just after each comma, space and `/`: where a line may break.
fn pieces(cell: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in cell.chars() {
        current.push(c);
        if matches!(c, ',' | ' ' | '/') {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `cell` in lines of at most `width` characters: broken after a comma, a
/// space or a `/` where it can be, else where it must.
fn wrap_cell(cell: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    if cell.chars().count() <= width {
        return vec![cell.to_string()];
    }
    let pieces = pieces(cell);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for piece in pieces {
        if line.chars().count() + piece.trim_end().chars().count() > width && !line.is_empty() {
            lines.push(line.trim_end().to_string());
            line.clear();
        }
        let piece = if line.is_empty() {
            piece.trim_start()
        } else {
            &piece
        };
        let mut rest: Vec<char> = piece.chars().collect();
        while line.chars().count() + rest.len() > width && rest.len() > width {
            let room = width - line.chars().count();
            line.extend(rest.drain(..room));
            lines.push(std::mem::take(&mut line));
        }
        line.extend(rest);
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn a_table_that_fits_is_unchanged() {
        let rows = vec![vec!["a".to_string(), "b, c".to_string()]];
        assert_eq!(
            table_within(&["X", "Y"], &rows, Some(80)),
            table(&["X", "Y"], &rows)
        );
        assert_eq!(table(&["X", "Y"], &rows), "X  Y\na  b, c\n");
    }

    #[test]
    fn wide_cells_wrap_after_commas_and_every_line_fits() {
        let ips: Vec<String> = (1..=12).map(|i| format!("198.51.100.{i}/32")).collect();
        let rows = vec![vec![
            "alpha".to_string(),
            ips.join(","),
            "nixos/system/alpha/alpha.nix:17".to_string(),
        ]];
        let out = table_within(&["HOST", "ALLOWEDSOURCEIPS", "FILE"], &rows, Some(60));
        for line in out.lines() {
            assert!(
                line.chars().count() <= 60,
                "{line:?} is longer than 60\n{out}"
            );
        }
        assert!(out.contains("198.51.100.1/32,"), "{out}");
        // Every address is there, whole.
        let joined: String = out.split_whitespace().collect();
        for ip in &ips {
            assert!(joined.contains(ip.as_str()), "{ip} in {out}");
        }
    }

    #[test]
    fn a_word_longer_than_its_column_is_cut() {
        assert_eq!(wrap_cell("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap_cell("ab, cd, ef", 5), ["ab,", "cd,", "ef"]);
        assert_eq!(wrap_cell("ab, cd, ef", 6), ["ab,", "cd, ef"]);
    }
}
