//! Unified diffs of one file as plain text, with `a/`/`b/` headers like git's.
//! It only compares texts: colour and layout belong to [`crate::render`].

use similar::TextDiff;

/// A unified diff of `old` → `new` with three lines of context; empty when
/// nothing changed.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let diff = TextDiff::from_lines(old, new);
    let path = path.trim_start_matches('/');
    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        out.push_str(&hunk.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_only_changed_lines_with_context() {
        let old = "a\nb\nc\n";
        let new = "a\nB\nc\n";
        assert_eq!(
            unified("x.nix", old, new),
            "--- a/x.nix\n+++ b/x.nix\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
        assert_eq!(unified("x.nix", old, old), "");
    }

    #[test]
    fn marks_a_missing_final_newline() {
        let diff = unified("x.nix", "a\nb", "a\nc");
        assert!(
            diff.ends_with("-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"),
            "{diff}"
        );
    }
}
