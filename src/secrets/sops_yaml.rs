//! `.sops.yaml` creation rules: the first rule whose `path_regex` (or legacy `filename_regex`)
//! matches a file path relative to the `.sops.yaml` directory wins, as in sops. A rule without
//! either regex matches every file. The regex is searched (not anchored), as Go's
//! `MatchString` does.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use regex::Regex;

use super::error::SopsError;
use super::sops::SopsFile;
use super::ssh_to_age::normalize_recipient;
use super::tree::{self, Node, Value};

/// One `creation_rules` entry.
#[derive(Debug, Clone)]
pub struct CreationRule {
    /// Position in `creation_rules` (0-based).
    pub index: usize,
    /// 1-based line in `.sops.yaml`.
    pub line: usize,
    /// `path_regex`, as written.
    pub path_regex: Option<String>,
    /// `filename_regex` (legacy), as written.
    pub filename_regex: Option<String>,
    /// Age recipients: the `age` field and every `key_groups[].age`, in order, de-duplicated.
    pub age: Vec<String>,
    /// Number of key groups (0 for the flat form).
    pub key_groups: usize,
    /// `shamir_threshold`, if set.
    pub shamir_threshold: Option<u64>,
    /// Non-age key types mentioned by the rule (`pgp`, `kms`, …).
    pub other_keys: Vec<String>,
    regex: Option<Regex>,
}

impl CreationRule {
    /// Whether the rule applies to `rel_path` (`/`-separated, relative to `.sops.yaml`).
    pub fn matches(&self, rel_path: &str) -> bool {
        match &self.regex {
            None => true,
            Some(re) => re.is_match(rel_path),
        }
    }
}

/// A parsed `.sops.yaml`.
#[derive(Debug, Clone, Default)]
pub struct SopsConfig {
    /// `creation_rules`, in order.
    pub rules: Vec<CreationRule>,
}

fn cfg_err(reason: impl Into<String>) -> SopsError {
    SopsError::SopsYaml {
        reason: reason.into(),
    }
}

/// Split an `age` string the lenient way: commas and whitespace separate recipients, but an
/// `ssh-…` key keeps its base64 part (and drops its comment).
fn split_age_string(s: &str, out: &mut Vec<String>) {
    for piece in s.split(',') {
        let mut words = piece.split_whitespace().peekable();
        while let Some(w) = words.next() {
            if w.starts_with("ssh-") {
                match words.next() {
                    Some(k) => out.push(format!("{w} {k}")),
                    None => out.push(w.to_string()),
                }
                // Skip an ssh comment up to the next comma.
                words.by_ref().for_each(drop);
            } else {
                out.push(w.to_string());
            }
        }
    }
}

fn age_field(node: &Node, what: &str, out: &mut Vec<String>) -> Result<(), SopsError> {
    match &node.value {
        Value::Scalar(s) => {
            split_age_string(&s.text, out);
            Ok(())
        }
        Value::List(items) => {
            for item in items {
                match item.scalar() {
                    Some(s) => split_age_string(&s.text, out),
                    None => {
                        return Err(cfg_err(format!(
                            "{what} (line {}): age entries must be strings",
                            item.line
                        )))
                    }
                }
            }
            Ok(())
        }
        Value::Map(_) => Err(cfg_err(format!(
            "{what} (line {}): `age` must be a string or a list",
            node.line
        ))),
    }
}

const OTHER_KEYS: [&str; 6] = [
    "pgp",
    "kms",
    "gcp_kms",
    "azure_keyvault",
    "hc_vault_transit_uri",
    "hc_vault",
];

impl SopsConfig {
    /// Parse `.sops.yaml` text (anchors and aliases are resolved).
    pub fn parse(text: &str) -> Result<SopsConfig, SopsError> {
        let root = tree::parse_yaml(text)?;
        if root.as_map().is_none() {
            return Err(cfg_err("the document is not a mapping"));
        }
        let Some(rules_entry) = root.get("creation_rules") else {
            return Ok(SopsConfig::default());
        };
        let items = match &rules_entry.node.value {
            Value::List(items) => items,
            Value::Scalar(s) if s.kind == tree::ScalarKind::Null => {
                return Ok(SopsConfig::default())
            }
            _ => return Err(cfg_err("`creation_rules` must be a list")),
        };
        let mut rules = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let what = format!("creation_rules[{index}]");
            if item.as_map().is_none() {
                return Err(cfg_err(format!(
                    "{what} (line {}) is not a mapping",
                    item.line
                )));
            }
            let string = |key: &str| -> Option<String> {
                item.get(key)
                    .and_then(|e| e.node.scalar())
                    .filter(|s| s.kind != tree::ScalarKind::Null)
                    .map(|s| s.text.clone())
            };
            let path_regex = string("path_regex");
            let filename_regex = string("filename_regex");
            let regex = match path_regex.as_deref().or(filename_regex.as_deref()) {
                None | Some("") => None,
                Some(p) => Some(Regex::new(p).map_err(|e| {
                    cfg_err(format!(
                        "{what} (line {}): invalid path_regex: {e}",
                        item.line
                    ))
                })?),
            };
            let mut age = Vec::new();
            if let Some(e) = item.get("age") {
                age_field(&e.node, &what, &mut age)?;
            }
            let mut other_keys: Vec<String> = OTHER_KEYS
                .iter()
                .filter(|k| item.get(k).is_some())
                .map(|k| k.to_string())
                .collect();
            let mut key_groups = 0;
            if let Some(e) = item.get("key_groups") {
                let groups = match &e.node.value {
                    Value::List(groups) => groups,
                    _ => return Err(cfg_err(format!("{what}: `key_groups` must be a list"))),
                };
                key_groups = groups.len();
                for (gi, g) in groups.iter().enumerate() {
                    if let Some(ge) = g.get("age") {
                        age_field(&ge.node, &format!("{what}.key_groups[{gi}]"), &mut age)?;
                    }
                    for k in OTHER_KEYS {
                        if g.get(k).is_some() && !other_keys.iter().any(|o| o == k) {
                            other_keys.push(k.to_string());
                        }
                    }
                }
            }
            let mut seen = BTreeSet::new();
            age.retain(|r| seen.insert(normalize_recipient(r)));
            let shamir_threshold = string("shamir_threshold").and_then(|s| s.parse().ok());
            rules.push(CreationRule {
                index,
                line: item.line,
                path_regex,
                filename_regex,
                age,
                key_groups,
                shamir_threshold,
                other_keys,
                regex,
            });
        }
        Ok(SopsConfig { rules })
    }

    /// Read and parse a `.sops.yaml` file.
    pub fn load(path: &Path) -> Result<SopsConfig, SopsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SopsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        SopsConfig::parse(&text)
    }

    /// The first rule that matches `rel_path` (relative to the `.sops.yaml` directory).
    pub fn rule_for(&self, rel_path: &str) -> Option<&CreationRule> {
        self.rules.iter().find(|r| r.matches(rel_path))
    }

    /// [`SopsConfig::rule_for`] with a path; see [`relative_path`].
    pub fn rule_for_path(&self, config_dir: &Path, file: &Path) -> Option<&CreationRule> {
        self.rule_for(&relative_path(config_dir, file))
    }
}

/// `file` relative to `config_dir` with `/` separators (sops strips the config directory
/// prefix; a path outside it is used as given).
pub fn relative_path(config_dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(config_dir).unwrap_or(file);
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::RootDir => Some(String::new()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir | Component::Prefix(_) => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Differences between a file's age recipients and a rule's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientDiff {
    /// In the rule but not in the file (e.g. a new host: run `sops updatekeys`).
    pub missing: Vec<String>,
    /// In the file but not in the rule (e.g. a removed host still able to decrypt).
    pub extra: Vec<String>,
}

impl RecipientDiff {
    /// No difference.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }
}

/// Compare recipient lists (order-insensitive; ssh comments ignored).
pub fn diff_recipients<A: AsRef<str>, B: AsRef<str>>(file: &[A], rule: &[B]) -> RecipientDiff {
    let file_set: BTreeSet<String> = file
        .iter()
        .map(|r| normalize_recipient(r.as_ref()))
        .collect();
    let rule_set: BTreeSet<String> = rule
        .iter()
        .map(|r| normalize_recipient(r.as_ref()))
        .collect();
    let mut diff = RecipientDiff::default();
    for r in rule {
        let n = normalize_recipient(r.as_ref());
        if !file_set.contains(&n) && !diff.missing.contains(&n) {
            diff.missing.push(n);
        }
    }
    for r in file {
        let n = normalize_recipient(r.as_ref());
        if !rule_set.contains(&n) && !diff.extra.contains(&n) {
            diff.extra.push(n);
        }
    }
    diff
}

/// Compare a SOPS file's age recipients with a creation rule's.
pub fn compare_recipients(file: &SopsFile, rule: &CreationRule) -> RecipientDiff {
    diff_recipients(&file.age_recipients(), &rule.age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_age_strings() {
        let mut out = Vec::new();
        split_age_string(
            "age1aaa, age1bbb,\n ssh-ed25519 AAAAkey user@host , age1ccc age1ddd",
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                "age1aaa",
                "age1bbb",
                "ssh-ed25519 AAAAkey",
                "age1ccc",
                "age1ddd"
            ]
        );
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/repo"), Path::new("/repo/secrets/a.yaml")),
            "secrets/a.yaml"
        );
        assert_eq!(
            relative_path(Path::new("/repo"), Path::new("x.yaml")),
            "x.yaml"
        );
    }
}
