//! SOPS checks on the cluster without any private key: the
//! `sops.secrets` declarations of every member point at keys that exist, the
//! secrets a role needs are declared on the host that has the role, each
//! member is a recipient of the SOPS files it reads, and each file's
//! recipients match the first matching `.sops.yaml` creation rule.
//!
//! Everything is read statically: declarations with the lossless editor's
//! walker (dotted, nested and mixed forms, `mkIf`/`mkMerge`, the host's
//! relative imports), SOPS files with [`crate::secrets::SopsFile`] (key names
//! are plaintext). A cluster with no SOPS configuration at all (no
//! `sops.secrets`, no `sops.defaultSopsFile`, no `.sops.yaml`) is not checked:
//! its secrets are managed some other way.
//!
//! Findings (stable ids, documented in the README):
//! - `NF201` error: a declaration's key is not in its SOPS file.
//! - `NF202` error: a secret the host needs is not declared on it.
//! - `NF203` error: a member is not a recipient of a SOPS file it reads.
//! - `NF204` error: a file's recipients differ from its `.sops.yaml` rule
//!   (warning when no rule matches the file).
//! - `NF205` error: an unsupported SOPS feature (Shamir key groups, no age
//!   recipient: PGP/KMS only); warning for a post-quantum or plugin recipient
//!   next to usable ones.
//! - `NF206` warning: something nixflip cannot check statically (a member's
//!   age key is unknown, a `sopsFile` or `key` it cannot resolve, a
//!   declaration whose `sops.defaultSopsFile` it cannot see).
//! - `NF207` error: a SOPS file (or `.sops.yaml`) is missing or unreadable, or
//!   (as Nix evaluates it) a declaration has no file at all.
//! - `NF208` error (with `--decrypt` only): a file does not decrypt with the
//!   given identity, a value does not decrypt, or the MAC does not verify.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use rnix::SyntaxNode;
use serde::Serialize;

use super::evaluated::{Evaluated, EvaluatedSops};
use super::rules::{Finding, Severity};
use super::{Cluster, Member, Role, SECRETS_FILE};
use crate::secrets::sops_yaml::relative_path;
use crate::secrets::ssh_to_age::normalize_recipient;
use crate::secrets::{
    compare_recipients, ssh_public_key_to_age, SopsConfig, SopsError, SopsFile, SopsFormat,
    Unsupported,
};

mod declarations;
mod decrypting;

pub use declarations::{declarations, references, secrets_in_expr};
pub use decrypting::{decrypt_files, DecryptOutcome};

pub const SIGNING_KEY_FILE: &str = "signingKeyFile";
pub const PASSWORD_FILE: &str = "replication.passwordFile";
/// The cluster options whose secrets the primary needs by default.
pub const PRIMARY_OPTIONS: [&str; 3] = [SECRETS_FILE, SIGNING_KEY_FILE, PASSWORD_FILE];
/// The cluster options whose secrets a standby needs by default.
pub const STANDBY_OPTIONS: [&str; 1] = [PASSWORD_FILE];
/// Findings that make `promote` refuse when they concern the new primary.
pub const GATING_IDS: [&str; 5] = ["NF201", "NF202", "NF203", "NF205", "NF207"];

/// Where a declaration's SOPS file is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SopsFileRef {
    /// Relative to the flake root (absolute when outside it).
    Path { path: PathBuf },
    /// An expression nixflip cannot resolve statically.
    Expr {
        expr: String,
        /// A free variable the expression starts from (`root` in
        /// `root + "/x.yaml"`): perhaps the flake root under another name.
        #[serde(skip_serializing_if = "Option::is_none")]
        unbound: Option<String>,
    },
    /// Neither `sopsFile` nor `sops.defaultSopsFile` is set.
    Missing,
}

/// A place in a `.nix` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    pub file: PathBuf,
    pub span: Range<usize>,
    pub line: usize,
    pub column: usize,
}

/// One `sops.secrets.<name>` declaration of a member.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Declaration {
    pub host: String,
    pub name: String,
    /// The key in the SOPS file (`/` separates nested keys); `None` when it
    /// is not a literal.
    pub key: Option<String>,
    pub sops_file: SopsFileRef,
    pub format: Option<String>,
    pub file: PathBuf,
    pub line: usize,
    #[serde(skip)]
    pub loc: Loc,
    /// Where the SOPS file's path is written (`sopsFile` or `defaultSopsFile`).
    #[serde(skip)]
    pub file_loc: Option<Loc>,
    /// The declaration's value as written, when it fits on one line.
    #[serde(skip)]
    pub value_text: Option<String>,
    /// Its file and key are what `nix eval` computed (not the static reading).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub evaluated: bool,
}

/// A cluster option that uses a secret (`config.sops.secrets."x".path`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    pub host: String,
    pub option: String,
    pub secret: String,
    #[serde(skip)]
    pub loc: Loc,
}

/// A finding with what it is about, for the promote gate.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretFinding {
    #[serde(flatten)]
    pub finding: Finding,
    /// Members concerned (empty: the file, whoever reads it).
    pub hosts: Vec<String>,
    /// Secrets (`sops.secrets` names) concerned.
    pub secrets: Vec<String>,
    /// The SOPS file concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sops_file: Option<PathBuf>,
}

/// One member's side of the secrets.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberSecrets {
    pub host: String,
    pub role: Option<String>,
    /// The age recipient nixflip compares (age1…), when known.
    pub recipient: Option<String>,
    pub recipient_source: Option<String>,
    pub declared: Vec<String>,
    /// What the host needs in its role, plus what its own options use.
    pub needs: Vec<String>,
}

/// One SOPS file read by the members.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSecrets {
    pub file: PathBuf,
    pub keys: Vec<String>,
    pub recipients: Vec<String>,
    /// Line of the matching `.sops.yaml` creation rule.
    pub rule_line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of the no-key checks.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretsReport {
    /// Whether the cluster uses SOPS at all; `false` means nothing was checked.
    pub configured: bool,
    pub sops_yaml: Option<PathBuf>,
    pub members: Vec<MemberSecrets>,
    pub files: Vec<FileSecrets>,
    pub declarations: Vec<Declaration>,
    pub findings: Vec<SecretFinding>,
}

impl SecretsReport {
    /// The plain findings, sorted by file, line and id.
    pub fn plain_findings(&self) -> Vec<Finding> {
        self.findings.iter().map(|f| f.finding.clone()).collect()
    }

    /// Errors that mean `host` lacks a secret it needs in its role: a needed
    /// secret undeclared, missing from its file, or in a file the host
    /// cannot decrypt or nixflip cannot read.
    pub fn blocking_for(&self, host: &str) -> Vec<&SecretFinding> {
        let Some(member) = self.members.iter().find(|m| m.host == host) else {
            return Vec::new();
        };
        let needs: BTreeSet<&str> = member.needs.iter().map(String::as_str).collect();
        self.findings
            .iter()
            .filter(|f| f.finding.severity == Severity::Error)
            .filter(|f| GATING_IDS.contains(&f.finding.id))
            .filter(|f| f.hosts.is_empty() || f.hosts.iter().any(|h| h == host))
            .filter(|f| f.secrets.iter().any(|s| needs.contains(s.as_str())))
            .filter(|f| !f.hosts.is_empty() || self.reads_needed(host, f, &needs))
            .collect()
    }

    /// A finding about a whole file concerns `host` when the host reads a
    /// secret it needs from that file.
    fn reads_needed(&self, host: &str, f: &SecretFinding, needs: &BTreeSet<&str>) -> bool {
        let Some(file) = &f.sops_file else {
            return true;
        };
        self.declarations.iter().any(|d| {
            d.host == host
                && needs.contains(d.name.as_str())
                && matches!(&d.sops_file, SopsFileRef::Path { path } if path == file)
        })
    }
}

/// Where the flake's SOPS files live: the cluster's root, or the real flake
/// when the cluster was loaded from a scratch copy.
pub fn check(cluster: &Cluster) -> SecretsReport {
    check_at(cluster, &cluster.root)
}

/// The no-key checks, reading SOPS files and `.sops.yaml` under `files_root`.
pub fn check_at(cluster: &Cluster, files_root: &Path) -> SecretsReport {
    let mut checker = Checker::new(cluster, files_root, None);
    checker.run();
    checker.report
}

/// The same checks with what `nix eval` computed (the one evaluation of
/// `check --eval`, `secrets check --eval` or `promote`): each evaluated
/// member's `sops.defaultSopsFile` and `sops.secrets.<name>.{sopsFile,key}`
/// replace the static reading, so a default file set by a module nixflip
/// does not read is checked too.
pub fn check_evaluated(
    cluster: &Cluster,
    files_root: &Path,
    evaluated: &BTreeMap<String, (String, Evaluated)>,
) -> SecretsReport {
    let mut checker = Checker::new(cluster, files_root, Some(evaluated));
    checker.run();
    checker.report
}

/// A static report made final with what `nix eval` computed: when the
/// evaluated files and keys are those the static reading found, the report
/// stands as it is (its checks would come out the same); otherwise the
/// checks run again with the evaluated values. This lets a caller run the
/// static checks while Nix evaluates and pay for a second run only when the
/// evaluation tells something new.
pub fn refine(
    report: SecretsReport,
    cluster: &Cluster,
    files_root: &Path,
    evaluated: &BTreeMap<String, (String, Evaluated)>,
) -> SecretsReport {
    let same = cluster.members.iter().all(|m| {
        let statics: Vec<Declaration> = report
            .declarations
            .iter()
            .filter(|d| d.host == m.name)
            .cloned()
            .collect();
        let Some((_, fields)) = evaluated.get(&m.name) else {
            return true;
        };
        let Some(sops) = &fields.sops else {
            return true;
        };
        let evaluated = evaluated_declarations(files_root, m, statics.clone(), sops);
        evaluated.len() == statics.len()
            && evaluated.iter().zip(&statics).all(|(e, s)| {
                e.name == s.name
                    && e.sops_file == s.sops_file
                    && e.key == s.key
                    && !(e.evaluated && matches!(e.sops_file, SopsFileRef::Missing))
            })
    });
    if same {
        report
    } else {
        check_evaluated(cluster, files_root, evaluated)
    }
}

struct Checker<'a> {
    cluster: &'a Cluster,
    root: &'a Path,
    /// Each member's `sops.defaultSopsFile`, where known.
    defaults: BTreeMap<String, SopsFileRef>,
    evaluated: Option<&'a BTreeMap<String, (String, Evaluated)>>,
    sops_yaml: Option<(PathBuf, Result<SopsConfig, SopsError>)>,
    files: BTreeMap<PathBuf, Result<(String, SopsFile), SopsError>>,
    report: SecretsReport,
}

impl<'a> Checker<'a> {
    fn new(
        cluster: &'a Cluster,
        root: &'a Path,
        evaluated: Option<&'a BTreeMap<String, (String, Evaluated)>>,
    ) -> Self {
        let sops_yaml = find_sops_yaml(root).map(|p| {
            let parsed = SopsConfig::load(&p);
            (p, parsed)
        });
        Checker {
            cluster,
            root,
            defaults: BTreeMap::new(),
            evaluated,
            sops_yaml,
            files: BTreeMap::new(),
            report: SecretsReport {
                configured: false,
                sops_yaml: None,
                members: Vec::new(),
                files: Vec::new(),
                declarations: Vec::new(),
                findings: Vec::new(),
            },
        }
    }

    fn push(
        &mut self,
        finding: Finding,
        hosts: Vec<String>,
        secrets: Vec<String>,
        file: Option<PathBuf>,
    ) {
        self.report.findings.push(SecretFinding {
            finding,
            hosts,
            secrets,
            sops_file: file,
        });
    }

    fn run(&mut self) {
        let mut declared_anything = false;
        for m in &self.cluster.members {
            let (mut decls, mut notes, default_file) = declarations(self.cluster, m);
            declared_anything |= !decls.is_empty() || default_file.is_some() || !notes.is_empty();
            let sops = self
                .evaluated
                .and_then(|e| e.get(&m.name))
                .and_then(|(_, fields)| fields.sops.as_ref());
            let default_file = match sops.and_then(|s| s.default_sops_file.as_ref()) {
                Some(path) => Some(SopsFileRef::Path {
                    path: flake_path(self.root, path),
                }),
                None => default_file,
            };
            if let Some(default) = default_file {
                self.defaults.insert(m.name.clone(), default);
            }
            if let Some(sops) = sops {
                declared_anything |= !sops.secrets.is_empty();
                decls = evaluated_declarations(self.root, m, decls, sops);
                notes.clear();
            }
            self.report.declarations.extend(decls);
            for n in notes {
                self.push(n, vec![m.name.clone()], Vec::new(), None);
            }
        }
        self.report.sops_yaml = self.sops_yaml.as_ref().map(|(p, _)| rel_to(self.root, p));
        self.report.configured = declared_anything || self.sops_yaml.is_some();
        if !self.report.configured {
            self.report.findings.clear();
            return;
        }
        self.check_sops_yaml_readable();
        let references: Vec<Reference> = self.cluster.members.iter().flat_map(references).collect();
        self.load_files();
        self.check_keys();
        self.check_needs(&references);
        self.check_recipients();
        self.check_rules();
        self.report.findings.sort_by(|a, b| {
            let (a, b) = (&a.finding, &b.finding);
            (&a.file, a.line, a.column, a.id).cmp(&(&b.file, b.line, b.column, b.id))
        });
        // The same finding for several declarations (a missing file: one
        // line for many secrets): keep one, with every host and secret.
        let mut merged: Vec<SecretFinding> = Vec::new();
        for f in std::mem::take(&mut self.report.findings) {
            match merged.iter_mut().find(|m| m.finding == f.finding) {
                Some(m) => {
                    for h in f.hosts {
                        if !m.hosts.contains(&h) {
                            m.hosts.push(h);
                        }
                    }
                    for s in f.secrets {
                        if !m.secrets.contains(&s) {
                            m.secrets.push(s);
                        }
                    }
                }
                None => merged.push(f),
            }
        }
        self.report.findings = merged;
    }

    fn check_sops_yaml_readable(&mut self) {
        let Some((path, Err(e))) = &self.sops_yaml else {
            return;
        };
        let rel = rel_to(self.root, path);
        let finding = file_finding(
            "NF207",
            Severity::Error,
            &rel,
            None,
            1,
            format!("{} cannot be read: {e}", rel.display()),
            "fix .sops.yaml; nixflip compares each SOPS file's recipients with its creation rules"
                .into(),
        );
        self.push(finding, Vec::new(), Vec::new(), None);
    }

    /// Read every SOPS file a declaration points at, once.
    fn load_files(&mut self) {
        let paths: BTreeSet<PathBuf> = self
            .report
            .declarations
            .iter()
            .filter_map(|d| match &d.sops_file {
                SopsFileRef::Path { path } => Some(path.clone()),
                _ => None,
            })
            .collect();
        for path in paths {
            let abs = self.root.join(&path);
            let loaded = match std::fs::read_to_string(&abs) {
                Err(source) => Err(SopsError::Io {
                    path: path.display().to_string(),
                    source,
                }),
                Ok(text) => SopsFile::parse(&text, SopsFormat::from_path(&path)).map(|f| (text, f)),
            };
            let summary = match &loaded {
                Ok((_, f)) => FileSecrets {
                    file: path.clone(),
                    keys: sops_nix_keys(f),
                    recipients: f.age_recipients().iter().map(|r| r.to_string()).collect(),
                    rule_line: self.rule_for(&path).map(|r| r.line),
                    error: None,
                },
                Err(e) => FileSecrets {
                    file: path.clone(),
                    keys: Vec::new(),
                    recipients: Vec::new(),
                    rule_line: None,
                    error: Some(e.to_string()),
                },
            };
            self.report.files.push(summary);
            self.files.insert(path, loaded);
        }
        self.report_unreadable_files();
        self.report_unsupported();
    }

    fn rule_for(&self, path: &Path) -> Option<&crate::secrets::CreationRule> {
        let (yaml, Ok(config)) = self.sops_yaml.as_ref()? else {
            return None;
        };
        let dir = yaml.parent()?;
        config.rule_for_path(dir, &self.root.join(path))
    }

    fn secrets_in(&self, path: &Path) -> Vec<String> {
        let set: BTreeSet<String> = self
            .report
            .declarations
            .iter()
            .filter(|d| matches!(&d.sops_file, SopsFileRef::Path { path: p } if p == path))
            .map(|d| d.name.clone())
            .collect();
        set.into_iter().collect()
    }

    /// NF207 for missing or unparsable files, and for declarations without a
    /// file; NF206 for files given by an expression.
    fn report_unreadable_files(&mut self) {
        let decls = self.report.declarations.clone();
        for d in &decls {
            match &d.sops_file {
                SopsFileRef::Missing if d.evaluated => {
                    let f = at(
                        "NF207",
                        Severity::Error,
                        &d.host,
                        &d.loc,
                        format!("{}: sops.secrets.\"{}\" has no sopsFile, and sops.defaultSopsFile is not set on {} (as nix eval computes it): sops-nix cannot install it", d.host, d.name, d.host),
                        format!("set sopsFile = ./path/to/secrets.yaml; on the declaration, or sops.defaultSopsFile on {}", d.host),
                    );
                    self.push(f, vec![d.host.clone()], vec![d.name.clone()], None);
                }
                SopsFileRef::Missing => {
                    // Another module (of an input, or one nixflip does not
                    // read) may set sops.defaultSopsFile: not checkable
                    // statically, which is no reason to refuse anything.
                    let f = at(
                        "NF206",
                        Severity::Warning,
                        &d.host,
                        &d.loc,
                        format!("{}: sops.secrets.\"{}\" has no sopsFile, and no file of {} that nixflip reads sets sops.defaultSopsFile (a module it does not evaluate may): its key and recipients are not checked", d.host, d.name, d.host),
                        format!("set sopsFile on the declaration, or sops.defaultSopsFile in a file of {}; or run with --eval to read what Nix computes", d.host),
                    );
                    self.push(f, vec![d.host.clone()], vec![d.name.clone()], None);
                }
                SopsFileRef::Expr { expr, unbound } => {
                    let loc = d.file_loc.as_ref().unwrap_or(&d.loc);
                    let help = match unbound {
                        Some(name) => format!("if `{name}` is the flake root, say so in nixflip.toml: [flake] root_names = [\"{name}\"]; or run with --eval to read what Nix computes"),
                        None => "write the path as a literal (./secrets/x.yaml, or self + \"/secrets/x.yaml\"), or run with --eval to read what Nix computes".into(),
                    };
                    let f = at(
                        "NF206",
                        Severity::Warning,
                        &d.host,
                        loc,
                        format!("{}: the SOPS file of sops.secrets.\"{}\" is `{expr}`, which nixflip cannot resolve statically; its key and recipients are not checked", d.host, d.name),
                        help,
                    );
                    self.push(f, vec![d.host.clone()], vec![d.name.clone()], None);
                }
                SopsFileRef::Path { path } => {
                    let Some(Err(e)) = self.files.get(path) else {
                        continue;
                    };
                    let (message, finding_loc) = match e {
                        SopsError::Io { .. } => (
                            format!(
                                "{}: its SOPS file {} does not exist or cannot be read",
                                d.host,
                                path.display()
                            ),
                            None,
                        ),
                        other => (
                            format!("{} is not a readable SOPS file: {other}", path.display()),
                            Some(error_line(other)),
                        ),
                    };
                    let help = "create the file with `sops` (or fix the path); nixflip needs a SOPS file with a `sops` section to check keys and recipients".to_string();
                    let f = match finding_loc {
                        None => at(
                            "NF207",
                            Severity::Error,
                            &d.host,
                            d.file_loc.as_ref().unwrap_or(&d.loc),
                            message,
                            help,
                        ),
                        Some(line) => {
                            let text =
                                std::fs::read_to_string(self.root.join(path)).unwrap_or_default();
                            file_finding(
                                "NF207",
                                Severity::Error,
                                path,
                                Some(&text),
                                line,
                                message,
                                help,
                            )
                        }
                    };
                    self.push(
                        f,
                        vec![d.host.clone()],
                        vec![d.name.clone()],
                        Some(path.clone()),
                    );
                }
            }
        }
    }

    /// NF205: features nixflip cannot check or decrypt.
    fn report_unsupported(&mut self) {
        let mut found = Vec::new();
        for (path, loaded) in &self.files {
            let Ok((text, file)) = loaded else { continue };
            let blocker = file.decryption_blocker();
            for u in file.unsupported() {
                let blocking = blocker.as_ref() == Some(&u)
                    || matches!(
                        u,
                        Unsupported::Shamir { .. } | Unsupported::NoAgeRecipient { .. }
                    );
                let line = match &u {
                    Unsupported::PostQuantumRecipient { recipient }
                    | Unsupported::PluginRecipient { recipient } => file
                        .metadata()
                        .age_recipients()
                        .iter()
                        .find(|r| &r.recipient == recipient)
                        .map_or_else(|| sops_line(text, file.format()), |r| r.line),
                    _ => sops_line(text, file.format()),
                };
                let (severity, help) = if blocking {
                    (Severity::Error, "nixflip (like sops-nix on the host) needs age recipients in a single key group: re-create the file with age recipients (`sops updatekeys` after changing .sops.yaml)".to_string())
                } else {
                    (Severity::Warning, "this recipient is not checked; members are checked against the file's X25519 and ssh-ed25519 recipients".to_string())
                };
                found.push((
                    path.clone(),
                    text.clone(),
                    line,
                    severity,
                    format!("{}: unsupported SOPS feature: {u}", path.display()),
                    help,
                ));
            }
        }
        for (path, text, line, severity, message, help) in found {
            let f = file_finding("NF205", severity, &path, Some(&text), line, message, help);
            let secrets = self.secrets_in(&path);
            self.push(f, Vec::new(), secrets, Some(path));
        }
    }

    /// NF201: each declaration's key exists in its file.
    fn check_keys(&mut self) {
        let decls = self.report.declarations.clone();
        let mut seen: BTreeMap<(PathBuf, usize, usize), usize> = BTreeMap::new();
        for d in &decls {
            let SopsFileRef::Path { path } = &d.sops_file else {
                continue;
            };
            let Some(Ok((_, file))) = self.files.get(path) else {
                continue;
            };
            if matches!(d.format.as_deref(), Some("binary" | "dotenv" | "ini")) {
                continue; // the whole file is the secret: no key to look up
            }
            let Some(key) = &d.key else {
                let f = at(
                    "NF206",
                    Severity::Warning,
                    &d.host,
                    &d.loc,
                    format!("{}: the key of sops.secrets.\"{}\" is not a literal, so nixflip cannot check it exists in {}", d.host, d.name, path.display()),
                    "write key = \"a/b\"; as a string literal".into(),
                );
                self.push(
                    f,
                    vec![d.host.clone()],
                    vec![d.name.clone()],
                    Some(path.clone()),
                );
                continue;
            };
            if file.lookup_sops_nix_key(key).is_some() {
                continue;
            }
            // A declaration in a file shared by several hosts: one finding.
            let id = (d.loc.file.clone(), d.loc.span.start, d.loc.span.end);
            if let Some(&index) = seen.get(&id) {
                self.report.findings[index].hosts.push(d.host.clone());
                continue;
            }
            let keys = sops_nix_keys(file);
            let listing = if keys.len() > 8 {
                format!("{}, …", keys[..8].join(", "))
            } else {
                keys.join(", ")
            };
            let selector: String = key.split('/').map(|k| format!("[\"{k}\"]")).collect();
            let f = at(
                "NF201",
                Severity::Error,
                &d.host,
                &d.loc,
                format!("{}: sops.secrets.\"{}\" reads key `{key}` from {}, but the file has no such key (it has: {listing})", d.host, d.name, path.display()),
                format!("add the value with `sops set {} '{selector}' '\"…\"'` (or `sops edit {}`), or fix the declaration's `key`", path.display(), path.display()),
            );
            seen.insert(id, self.report.findings.len());
            self.push(
                f,
                vec![d.host.clone()],
                vec![d.name.clone()],
                Some(path.clone()),
            );
        }
    }

    /// NF202: every member declares what its role needs and what its own
    /// cluster options use.
    fn check_needs(&mut self, references: &[Reference]) {
        let secrets = &self.cluster.config.config.profile.secrets;
        let role_needs = |role: &Role| -> BTreeMap<String, String> {
            let (listed, options): (_, &[&str]) = match role {
                Role::Primary => (&secrets.primary, &PRIMARY_OPTIONS),
                Role::Standby => (&secrets.standby, &STANDBY_OPTIONS),
                _ => return BTreeMap::new(),
            };
            let role_name = if *role == Role::Primary {
                "primary"
            } else {
                "standby"
            };
            match listed {
                Some(names) => names
                    .get_ref()
                    .iter()
                    .map(|n| (n.clone(), format!("[profile.{role_name}] secrets lists it")))
                    .collect(),
                None => {
                    let mut out = BTreeMap::new();
                    for r in references
                        .iter()
                        .filter(|r| options.contains(&r.option.as_str()))
                    {
                        out.entry(r.secret.clone())
                            .or_insert_with(|| format!("{} uses it on {}", r.option, r.host));
                    }
                    out
                }
            }
        };
        // What each needed name stands for: the SOPS file and key of the
        // declaration on the host that uses it. Another host declaring the
        // same file and key under another name has the secret too.
        let mut targets: BTreeMap<String, (SopsFileRef, Option<String>)> = BTreeMap::new();
        for r in references {
            if let Some(d) = self
                .report
                .declarations
                .iter()
                .find(|d| d.host == r.host && d.name == r.secret)
            {
                targets
                    .entry(r.secret.clone())
                    .or_insert_with(|| (d.sops_file.clone(), d.key.clone()));
            }
        }
        for d in &self.report.declarations {
            targets
                .entry(d.name.clone())
                .or_insert_with(|| (d.sops_file.clone(), d.key.clone()));
        }
        let all_declarations = self.report.declarations.clone();
        for m in &self.cluster.members {
            let role = m.role();
            let mut needs = role_needs(&role);
            for r in references.iter().filter(|r| r.host == m.name) {
                needs
                    .entry(r.secret.clone())
                    .or_insert_with(|| format!("its {} uses it", r.option));
            }
            let declared: BTreeSet<String> = self
                .report
                .declarations
                .iter()
                .filter(|d| d.host == m.name)
                .map(|d| d.name.clone())
                .collect();
            // This host's declaration of the same file and key, if any.
            let equivalent = |name: &String| -> Option<String> {
                let (file, key) = targets.get(name)?;
                if matches!(file, SopsFileRef::Expr { .. }) || key.is_none() {
                    return None;
                }
                all_declarations
                    .iter()
                    .find(|d| d.host == m.name && &d.sops_file == file && &d.key == key)
                    .map(|d| d.name.clone())
            };
            // The needs under the names this host declares them by (for the gate).
            let mut resolved: BTreeSet<String> = BTreeSet::new();
            for (name, why) in &needs {
                if declared.contains(name) {
                    resolved.insert(name.clone());
                    continue;
                }
                if let Some(own) = equivalent(name) {
                    resolved.insert(own);
                    continue;
                }
                resolved.insert(name.clone());
                let own_ref = references
                    .iter()
                    .find(|r| r.host == m.name && &r.secret == name);
                let loc = own_ref
                    .map(|r| r.loc.clone())
                    .or_else(|| first_declaration(&self.report.declarations, &m.name))
                    .or_else(|| m.def(super::ROLE).map(def_loc));
                let role_text = match role {
                    Role::Primary => format!("{} is the primary", m.name),
                    Role::Standby => format!("{} is a standby", m.name),
                    _ => m.name.clone(),
                };
                let message = format!(
                    "{role_text} and needs secret `{name}` ({why}), but {} does not declare sops.secrets.\"{name}\": it would not exist on the host",
                    m.name
                );
                let help = self.declaration_hint(name, m);
                let f = match &loc {
                    Some(loc) => at("NF202", Severity::Error, &m.name, loc, message, help),
                    None => Finding {
                        id: "NF202",
                        severity: Severity::Error,
                        host: Some(m.name.clone()),
                        file: m.file.clone(),
                        line: 1,
                        column: 1,
                        span: None,
                        message,
                        help,
                    },
                };
                self.push(f, vec![m.name.clone()], vec![name.clone()], None);
            }
            let recipient = host_key(self.cluster, self.root, &m.name);
            self.report.members.push(MemberSecrets {
                host: m.name.clone(),
                role: match role {
                    Role::Primary => Some("primary".into()),
                    Role::Standby => Some("standby".into()),
                    _ => None,
                },
                recipient: recipient.as_ref().map(|k| k.display.clone()),
                recipient_source: recipient.map(|k| k.source),
                declared: declared.into_iter().collect(),
                needs: resolved.into_iter().collect(),
            });
        }
    }

    /// How to declare `name` on `m`: as another member declares it, if one
    /// does, with the SOPS file that declaration would read on `m` (its own
    /// `sopsFile` read in `m`'s file, or `m`'s default file), and whether
    /// that file has the key and lists `m` as a recipient.
    fn declaration_hint(&self, name: &str, m: &Member) -> String {
        let key = crate::nixedit::path::render_key(name);
        let Some(d) = self
            .report
            .declarations
            .iter()
            .find(|d| d.name == name && d.host != m.name)
        else {
            return format!(
                "declare it on {}: add `sops.secrets.{key} = {{ }};` to {}",
                m.name,
                m.file.display()
            );
        };
        let value = d.value_text.clone().unwrap_or_else(|| "{ … }".into());
        let mut hint = format!(
            "declare it on {}: add `sops.secrets.{key} = {value};` to {} (as {} declares it at {}:{})",
            m.name,
            m.file.display(),
            d.host,
            d.loc.file.display(),
            d.loc.line
        );
        let target = self.copied_file(d, m);
        let secret_key = d.key.clone().unwrap_or_else(|| name.to_string());
        let reads = match &target {
            SopsFileRef::Path { path } => {
                let has_key = match self.files.get(path) {
                    Some(Ok((_, file))) => Some(file.lookup_sops_nix_key(&secret_key).is_some()),
                    _ => None,
                };
                let recipient = match (host_key(self.cluster, self.root, &m.name), self.files.get(path)) {
                    (Some(k), Some(Ok((_, file)))) => {
                        let recipients: BTreeSet<String> = file
                            .age_recipients()
                            .iter()
                            .map(|r| normalize_recipient(r))
                            .collect();
                        Some(k.forms.iter().any(|f| recipients.contains(f)))
                    }
                    _ => None,
                };
                let has = match has_key {
                    Some(true) => "which has that key".to_string(),
                    Some(false) => format!("which has no key `{secret_key}` (add it with `sops set`)"),
                    None => "which nixflip cannot read".to_string(),
                };
                let member = match (has_key, recipient) {
                    (None, _) => String::new(),
                    (_, Some(true)) => format!(" and lists {} as a recipient", m.name),
                    (_, Some(false)) => format!(" but does not list {} as a recipient (add its key to .sops.yaml, then `sops updatekeys {}`)", m.name, path.display()),
                    (_, None) => format!("; whether {} can decrypt it is unknown (its age key is not in nixflip.toml)", m.name),
                };
                format!("there it would read key `{secret_key}` from {}, {has}{member}", path.display())
            }
            SopsFileRef::Expr { expr, .. } => format!("there its SOPS file would be `{expr}`, which nixflip cannot resolve"),
            SopsFileRef::Missing => format!("there it would read the default SOPS file, and {} sets none that nixflip can see: add a sopsFile", m.name),
        };
        hint.push_str("; ");
        hint.push_str(&reads);
        hint
    }

    /// The SOPS file `d` (another member's declaration) would read if its
    /// text were written in `m`'s host file.
    fn copied_file(&self, d: &Declaration, m: &Member) -> SopsFileRef {
        let own_file = d.file_loc.as_ref().filter(|loc| {
            loc.file == d.loc.file
                && d.loc.span.start <= loc.span.start
                && loc.span.end <= d.loc.span.end
        });
        let Some(loc) = own_file else {
            // It reads its host's default file: on `m`, `m`'s.
            return self
                .defaults
                .get(&m.name)
                .cloned()
                .unwrap_or(SopsFileRef::Missing);
        };
        let text = self
            .cluster
            .sources
            .text(&loc.file)
            .and_then(|t| t.get(loc.span.clone()))
            .unwrap_or_default();
        // Read the expression as if written in m's file (one binding, so
        // the reader resolves it in that file's directory).
        let wrapped = format!("{{ x = {text}; }}");
        let parsed = rnix::Root::parse(&wrapped);
        let Some(value) = parsed
            .syntax()
            .descendants()
            .find(|n| n.kind() == rnix::SyntaxKind::NODE_ATTRPATH_VALUE)
            .and_then(|b| crate::nixedit::syntax::binding_value(&b))
        else {
            return SopsFileRef::Missing;
        };
        let reader = crate::cluster::flake::reader::Reader::new(&self.cluster.sources);
        declarations::path_ref(&reader, &self.cluster.flake.root_names, &value, &m.file)
    }

    /// NF203 (and NF206 when a member's key is unknown).
    fn check_recipients(&mut self) {
        for m in &self.cluster.members {
            let mut by_file: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
            for d in self.report.declarations.iter().filter(|d| d.host == m.name) {
                if let SopsFileRef::Path { path } = &d.sops_file {
                    by_file
                        .entry(path.clone())
                        .or_default()
                        .push(d.name.clone());
                }
            }
            if by_file.is_empty() {
                continue;
            }
            let Some(key) = host_key(self.cluster, self.root, &m.name) else {
                let loc = first_declaration(&self.report.declarations, &m.name);
                let files: Vec<String> = by_file.keys().map(|p| p.display().to_string()).collect();
                let message = format!(
                    "{}'s age recipient is unknown, so nixflip cannot check that it can decrypt {}",
                    m.name,
                    files.join(", ")
                );
                let help = format!("set [hosts.\"{}\"] age = \"age1…\" or ssh_host_key = \"ssh-ed25519 …\" (its /etc/ssh/ssh_host_ed25519_key.pub) in nixflip.toml", m.name);
                if let Some(loc) = loc {
                    let f = at("NF206", Severity::Warning, &m.name, &loc, message, help);
                    self.push(f, vec![m.name.clone()], Vec::new(), None);
                }
                continue;
            };
            for (path, names) in by_file {
                let Some(Ok((text, file))) = self.files.get(&path) else {
                    continue;
                };
                if file.age_recipients().is_empty() {
                    continue; // NF205 says why
                }
                let recipients: BTreeSet<String> = file
                    .age_recipients()
                    .iter()
                    .map(|r| normalize_recipient(r))
                    .collect();
                if key.forms.iter().any(|f| recipients.contains(f)) {
                    continue;
                }
                let rule = self.rule_for(&path);
                let help = match rule {
                    Some(r) if r.age.iter().any(|a| key.forms.contains(&normalize_recipient(a))) => {
                        format!("the .sops.yaml rule (line {}) lists {}: run `sops updatekeys {}`", r.line, key.display, path.display())
                    }
                    Some(r) => format!("add {} to the .sops.yaml creation rule at line {}, then run `sops updatekeys {}`", key.display, r.line, path.display()),
                    None => format!("add {} as a recipient: `sops rotate -i --add-age {} {}`", key.display, key.display, path.display()),
                };
                let message = format!(
                    "{} is not a recipient of {}: it cannot decrypt {} (its key {} from {} is not among the file's {} age recipients)",
                    m.name,
                    path.display(),
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                    key.display,
                    key.source,
                    recipients.len()
                );
                let line = age_line(file, text);
                let f = file_finding(
                    "NF203",
                    Severity::Error,
                    &path,
                    Some(text),
                    line,
                    message,
                    help,
                );
                let f = Finding {
                    host: Some(m.name.clone()),
                    ..f
                };
                self.push(f, vec![m.name.clone()], names, Some(path.clone()));
            }
        }
    }

    /// NF204: recipients against the first matching `.sops.yaml` rule.
    fn check_rules(&mut self) {
        let Some((yaml, Ok(_))) = &self.sops_yaml else {
            return;
        };
        let yaml_rel = rel_to(self.root, yaml);
        let mut found = Vec::new();
        for (path, loaded) in &self.files {
            let Ok((text, file)) = loaded else { continue };
            let line = age_line(file, text);
            let Some(rule) = self.rule_for(path) else {
                found.push((path.clone(), text.clone(), line, Severity::Warning,
                    format!("no creation rule of {} matches {}, so `sops updatekeys` cannot keep its recipients in line", yaml_rel.display(), path.display()),
                    format!("add a creation rule whose path_regex matches {}", path.display())));
                continue;
            };
            if rule.key_groups > 1 {
                found.push((path.clone(), text.clone(), line, Severity::Error,
                    format!("the {} rule at line {} for {} uses {} key groups (Shamir), which nixflip does not check", yaml_rel.display(), rule.line, path.display(), rule.key_groups),
                    "use one key group of age recipients".into()));
                continue;
            }
            let diff = compare_recipients(file, rule);
            if diff.is_empty() {
                continue;
            }
            let mut parts = Vec::new();
            if !diff.missing.is_empty() {
                parts.push(format!(
                    "not encrypted to {} (listed by the rule)",
                    diff.missing.join(", ")
                ));
            }
            if !diff.extra.is_empty() {
                parts.push(format!(
                    "still encrypted to {} (no longer in the rule)",
                    diff.extra.join(", ")
                ));
            }
            found.push((path.clone(), text.clone(), line, Severity::Error,
                format!("{}'s recipients differ from the first matching rule of {} (line {}): {}; a `sops updatekeys` was forgotten", path.display(), yaml_rel.display(), rule.line, parts.join("; ")),
                format!("run `sops updatekeys {}`", path.display())));
        }
        for (path, text, line, severity, message, help) in found {
            let f = file_finding("NF204", severity, &path, Some(&text), line, message, help);
            let secrets = self.secrets_in(&path);
            self.push(f, Vec::new(), secrets, Some(path));
        }
    }
}

/// A member's declarations as `nix eval` computed them: every evaluated
/// secret, at its static declaration when nixflip found one (else at the
/// host file), with the evaluated file and key. A static declaration Nix
/// does not have (under a false `mkIf`) is dropped.
fn evaluated_declarations(
    root: &Path,
    m: &Member,
    statics: Vec<Declaration>,
    sops: &EvaluatedSops,
) -> Vec<Declaration> {
    let host_loc = Loc {
        file: m.file.clone(),
        span: 0..0,
        line: 1,
        column: 1,
    };
    sops.secrets
        .iter()
        .map(|(name, secret)| {
            let mut d = statics
                .iter()
                .find(|d| &d.name == name)
                .cloned()
                .unwrap_or_else(|| Declaration {
                    host: m.name.clone(),
                    name: name.clone(),
                    key: None,
                    sops_file: SopsFileRef::Missing,
                    format: None,
                    file: m.file.clone(),
                    line: 1,
                    loc: host_loc.clone(),
                    file_loc: None,
                    value_text: None,
                    evaluated: false,
                });
            // Where Nix cannot compute a value (the evaluation of it fails),
            // the static reading stands; only a file that neither gives is
            // missing.
            match &secret.sops_file {
                Some(path) => {
                    d.sops_file = SopsFileRef::Path {
                        path: flake_path(root, path),
                    };
                    d.evaluated = true;
                }
                None if matches!(d.sops_file, SopsFileRef::Missing) => d.evaluated = true,
                None => {}
            }
            if let Some(key) = &secret.key {
                d.key = Some(key.clone());
            }
            if secret.format.is_some() {
                d.format = secret.format.clone();
            }
            d
        })
        .collect()
}

/// A file path as Nix prints it, as nixflip names it: a file of the flake
/// (Nix evaluates the flake from a copy in the store) relative to its root,
/// anything else as it is. A store path is in a copy of this flake when the
/// store object holds the same `flake.nix` (or, failing that, the same file
/// at the same place).
pub fn flake_path(root: &Path, evaluated: &str) -> PathBuf {
    let path = Path::new(evaluated);
    if let Ok(inside) = path.strip_prefix(root) {
        return inside.to_path_buf();
    }
    let Ok(in_store) = path.strip_prefix("/nix/store") else {
        return path.to_path_buf();
    };
    let mut parts = in_store.components();
    let Some(object) = parts.next() else {
        return path.to_path_buf();
    };
    let rel: PathBuf = parts.collect();
    let object = Path::new("/nix/store").join(object);
    let same = |a: &Path, b: &Path| match (std::fs::read(a), std::fs::read(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let copy_of_flake =
        same(&object.join("flake.nix"), &root.join("flake.nix")) || same(path, &root.join(&rel));
    if copy_of_flake && !rel.as_os_str().is_empty() {
        rel
    } else {
        path.to_path_buf()
    }
}

/// The key a member answers to, in every form a SOPS file may name it.
#[derive(Clone, Debug)]
pub struct HostKey {
    /// Normalised recipient strings (age1…, `ssh-ed25519 AAAA…`).
    pub forms: Vec<String>,
    /// The age1… form shown in messages.
    pub display: String,
    /// Where it came from.
    pub source: String,
}

/// From `[hosts.NAME]` `age`, `ssh_host_key` or `ssh_host_key_file`
/// (converted with ssh-to-age, and kept as a native ssh recipient too).
pub fn host_key(cluster: &Cluster, root: &Path, name: &str) -> Option<HostKey> {
    let host = cluster.config.config.hosts.get(name)?;
    let mut forms = Vec::new();
    let mut display = None;
    let mut sources = Vec::new();
    if let Some(age) = &host.age {
        forms.push(normalize_recipient(age.get_ref()));
        display.get_or_insert_with(|| age.get_ref().trim().to_string());
        sources.push(format!("hosts.\"{name}\".age"));
    }
    let ssh_keys = [
        host.ssh_host_key.as_ref().map(|k| {
            (
                k.get_ref().clone(),
                format!("hosts.\"{name}\".ssh_host_key"),
            )
        }),
        host.ssh_host_key_file.as_ref().and_then(|f| {
            std::fs::read_to_string(root.join(f.get_ref()))
                .ok()
                .map(|t| (t, format!("hosts.\"{name}\".ssh_host_key_file")))
        }),
    ];
    for (line, source) in ssh_keys.into_iter().flatten() {
        if let Ok(age) = ssh_public_key_to_age(&line) {
            forms.push(normalize_recipient(&line));
            forms.push(age.clone());
            display.get_or_insert(age);
            sources.push(format!("{source}, via ssh-to-age"));
        }
    }
    Some(HostKey {
        forms,
        display: display?,
        source: sources.join(" and "),
    })
}

/// `.sops.yaml` in the flake root, or in a parent directory up to the root
/// of the git repository the flake sits in (sops looks upwards too).
pub fn find_sops_yaml(root: &Path) -> Option<PathBuf> {
    let top = root.ancestors().find(|d| d.join(".git").exists());
    for dir in root.ancestors() {
        let candidate = dir.join(".sops.yaml");
        if candidate.is_file() {
            return Some(candidate);
        }
        if Some(dir) == top || top.is_none() {
            return None;
        }
    }
    None
}

fn rel_to(root: &Path, path: &Path) -> PathBuf {
    PathBuf::from(relative_path(root, path))
}

/// The sops-nix form (`a/b`) of every key path that leads to a value.
fn sops_nix_keys(file: &SopsFile) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in file.keys() {
        let joined = k
            .path
            .iter()
            .filter(|s| !s.starts_with('['))
            .cloned()
            .collect::<Vec<_>>()
            .join("/");
        if !out.contains(&joined) {
            out.push(joined);
        }
    }
    out
}

fn node_loc(rel: &Path, text: &str, node: &SyntaxNode) -> Loc {
    let range = node.text_range();
    let span = usize::from(range.start())..usize::from(range.end());
    let (line, column) = crate::nixedit::line_col(text, span.start);
    Loc {
        file: rel.to_path_buf(),
        span,
        line,
        column,
    }
}

fn def_loc(def: &super::Def) -> Loc {
    Loc {
        file: def.file.clone(),
        span: def.span.clone(),
        line: def.line,
        column: def.column,
    }
}

fn first_declaration(decls: &[Declaration], host: &str) -> Option<Loc> {
    decls
        .iter()
        .filter(|d| d.host == host)
        .min_by_key(|d| (d.loc.file.clone(), d.loc.span.start))
        .map(|d| d.loc.clone())
}

fn short(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        format!("{}…", one_line.chars().take(59).collect::<String>())
    } else {
        one_line
    }
}

fn at(
    id: &'static str,
    severity: Severity,
    host: &str,
    loc: &Loc,
    message: String,
    help: String,
) -> Finding {
    Finding {
        id,
        severity,
        host: Some(host.to_string()),
        file: loc.file.clone(),
        line: loc.line,
        column: loc.column,
        span: Some((loc.span.start, loc.span.end)),
        message,
        help,
    }
}

/// A finding on a line of a non-Nix file (SOPS file, `.sops.yaml`): the span
/// covers the line's text.
fn file_finding(
    id: &'static str,
    severity: Severity,
    file: &Path,
    text: Option<&str>,
    line: usize,
    message: String,
    help: String,
) -> Finding {
    let span = text.and_then(|t| line_span(t, line));
    let column = span.as_ref().map_or(1, |(s, _)| {
        let start_of_line = text.map_or(0, |t| t[..*s].rfind('\n').map_or(0, |i| i + 1));
        s - start_of_line + 1
    });
    Finding {
        id,
        severity,
        host: None,
        file: file.to_path_buf(),
        line: line.max(1),
        column,
        span,
        message,
        help,
    }
}

/// Byte range of the text on 1-based `line`, without its indentation.
fn line_span(text: &str, line: usize) -> Option<(usize, usize)> {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let body = l.trim_end_matches(['\n', '\r']);
            let indent = body.len() - body.trim_start().len();
            let (start, end) = (offset + indent, offset + body.len());
            return (end > start).then_some((start, end));
        }
        offset += l.len();
    }
    None
}

/// Line of the top-level `sops` key.
fn sops_line(text: &str, format: SopsFormat) -> usize {
    let needle = match format {
        SopsFormat::Yaml => "sops:",
        SopsFormat::Json => "\"sops\":",
    };
    text.lines()
        .position(|l| match format {
            SopsFormat::Yaml => l.starts_with(needle),
            SopsFormat::Json => l.trim_start().starts_with(needle),
        })
        .map_or(1, |i| i + 1)
}

/// Line of the first age recipient (else the `sops` key).
fn age_line(file: &SopsFile, text: &str) -> usize {
    file.metadata()
        .age_recipients()
        .first()
        .map_or_else(|| sops_line(text, file.format()), |r| r.line)
}

fn error_line(e: &SopsError) -> usize {
    match e {
        SopsError::Yaml { line, .. }
        | SopsError::Json { line, .. }
        | SopsError::Metadata { line, .. }
        | SopsError::EncValue { line, .. }
        | SopsError::ValueNotDecrypted { line, .. } => *line,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_spans() {
        let text = "a: 1\n    b: 2\n";
        assert_eq!(line_span(text, 2), Some((9, 13)));
        assert_eq!(line_span(text, 9), None);
    }
}
