//! The flake side of a switchover: plan the flip, prove it in a scratch copy (rules, secrets
//! gate, one `nix eval`), and once the database is promoted write and commit it. It must never
//! write a file whose text is not the one validated, and never write some files and not others.
//!
//! This is promote's pipeline (the planner, the lossless editor, the scratch
//! copy, `fsx::write_all` under the lock, one git commit), called from the
//! library so that a switchover can split it: validate before the fence,
//! write after the promotion.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cluster::plan::{plan_promote, Plan, Rewrite};
use crate::cluster::{rules, Cluster, Finding, Severity};
use crate::error::{Error, Result};
use crate::eval;
use crate::fsx::{self, FileWrite};

/// A file of the flip as the journal keeps it: which text it had and gets.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileRecord {
    pub path: PathBuf,
    pub old_sha256: String,
    pub new_sha256: String,
}

/// The flip of a cluster to a new primary, in memory.
pub struct Flip {
    pub plan: Plan,
    pub rewrites: Vec<Rewrite>,
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Flip {
    /// Plan promoting `host` and apply the edits to the files in memory;
    /// `carry`: carry the old primary's hand-written firewall rules and
    /// pg_hba lines too (as `promote --carry-address-rules`).
    pub fn prepare(cluster: &Cluster, host: &str, carry: bool) -> Result<Flip> {
        let plan = plan_promote(cluster, host, carry)?;
        let rewrites = plan.rewrites(cluster)?;
        Ok(Flip { plan, rewrites })
    }

    /// Literals outside the cluster options that name a member whose role
    /// flips and that the flip leaves as they are (promote's plan lists
    /// them with their edit).
    pub fn unrewritten(&self) -> usize {
        use crate::cluster::carry::Action;
        self.plan
            .not_rewritten
            .iter()
            .filter(|n| match (n.action, &n.edit) {
                (Action::Stays, _) | (_, None) => false,
                (Action::Carry, Some(e)) => !(self.plan.carry_address_rules && e.carryable),
                (Action::Edit, Some(_)) => true,
            })
            .count()
    }

    pub fn files(&self) -> Vec<PathBuf> {
        self.rewrites.iter().map(|r| r.path.clone()).collect()
    }

    /// What the journal keeps to recognise the files later.
    pub fn records(&self) -> Vec<FileRecord> {
        self.rewrites
            .iter()
            .map(|r| FileRecord {
                path: r.path.clone(),
                old_sha256: sha256(&r.old),
                new_sha256: sha256(&r.new),
            })
            .collect()
    }
}

/// The commit's message: its subject states the switchover; the body lists
/// the changes (or, when an earlier attempt wrote the files, the files).
fn commit_message(host: &str, old: &str, flip: &Flip, files: &[PathBuf]) -> String {
    let subject = format!("nixflip: switch over to {host}; {old} becomes standby");
    let mut body = String::new();
    for c in &flip.plan.changes {
        body.push_str(&format!(
            "- {}: {} {} -> {}\n",
            c.host, c.field, c.old, c.new
        ));
    }
    if body.is_empty() {
        for f in files {
            body.push_str(&format!("- {}\n", f.display()));
        }
    }
    format!("{subject}\n\n{body}")
}

/// Why the flip does not validate.
pub enum Invalid {
    /// The consistency rules find errors in the flipped cluster (as
    /// written, or as `nix eval` computes it).
    Findings(Vec<Finding>, Box<Cluster>),
    /// `nix eval` gives other values than the plan.
    Mismatches(Vec<eval::Mismatch>),
}

/// Prove the flip in a scratch copy: the rules on the rewritten cluster,
/// the new primary's secrets, then one `nix eval` of every member. The
/// scratch copy is returned (the configurations are built from it).
pub fn validate(
    cluster: &Cluster,
    flip: &Flip,
    nix_args: &[String],
) -> Result<std::result::Result<eval::Scratch, Invalid>> {
    let scratch = eval::Scratch::copy_of(&cluster.root)?;
    for r in &flip.rewrites {
        scratch.write(&r.path, &r.new)?;
    }
    let hosts = eval::member_hosts(cluster);
    let carried = if flip.plan.carry_address_rules {
        eval::carry_paths(&flip.plan.carry_checks)
    } else {
        eval::Extra::new()
    };
    let pending = eval::start_with(
        eval::Flake::Scratch(&scratch),
        &cluster.option,
        &hosts,
        &carried,
        nix_args,
    )?;
    let mut after = cluster.with_rewrites(
        scratch.flake(),
        flip.rewrites
            .iter()
            .map(|r| (r.path.clone(), r.new.clone())),
        cluster.config.clone(),
    )?;
    let errors = |c: &Cluster| -> Vec<Finding> {
        rules::check(c)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .collect()
    };
    let findings = errors(&after);
    if !findings.is_empty() {
        return Ok(Err(Invalid::Findings(findings, Box::new(after))));
    }
    secrets_gate(&cluster.root, &after, &flip.plan.new_primary)?;
    let evaluated = pending.finish()?;
    crate::cluster::evaluated::overlay(&mut after, &evaluated);
    let mut mismatches = eval::mismatches(&flip.plan.intended, &evaluated);
    if flip.plan.carry_address_rules {
        mismatches.extend(eval::carry_mismatches(&flip.plan.carry_checks, &evaluated));
    }
    if !mismatches.is_empty() {
        return Ok(Err(Invalid::Mismatches(mismatches)));
    }
    let findings = errors(&after);
    if !findings.is_empty() {
        return Ok(Err(Invalid::Findings(findings, Box::new(after))));
    }
    Ok(Ok(scratch))
}

/// The new primary must have every secret its role needs (as `promote`
/// checks): refused (exit 4) otherwise. A cluster without SOPS is not
/// checked.
fn secrets_gate(root: &Path, after: &Cluster, host: &str) -> Result<()> {
    let report = crate::cluster::secrets::check_at(after, root);
    if !report.configured {
        return Ok(());
    }
    let blocking = report.blocking_for(host);
    if blocking.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = blocking
        .iter()
        .map(|f| {
            let file = f.sops_file.as_ref().unwrap_or(&f.finding.file);
            format!(
                "  - {} ({}, {}): fix: {}",
                f.secrets.join(", "),
                f.finding.id,
                file.display(),
                f.finding.help
            )
        })
        .collect();
    Err(Error::refused(
        format!(
            "{host} would become primary without secrets it needs:\n{}",
            lines.join("\n")
        ),
        "fix the secrets first (`nixflip secrets check` lists every finding); nothing was changed",
    ))
}

/// Refuse when git has uncommitted changes to the files the flip edits:
/// the commit would carry them under nixflip's subject.
pub fn refuse_dirty(root: &Path, files: &[PathBuf]) -> Result<()> {
    if files.is_empty() || crate::git::text(root, &["rev-parse", "--is-inside-work-tree"]).is_err()
    {
        return Ok(());
    }
    let dirty = dirty_files(root, files)?;
    if dirty.trim().is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "uncommitted changes to files the switchover would edit:\n{}",
            dirty.trim_end()
        ),
        "commit or stash them first",
    ))
}

fn dirty_files(root: &Path, files: &[PathBuf]) -> Result<String> {
    let mut args = vec!["status".to_string(), "--porcelain".into(), "--".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    crate::git::text(root, &args)
}

/// What [`write_and_commit`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    pub written: Vec<PathBuf>,
    /// The commit, when the flake is in git.
    pub commit: Option<String>,
}

/// Write the flip validated earlier (the texts recorded in `records`) and
/// commit it. Files already written (a resumed run) are left as they are;
/// a file whose text is neither the old nor the new one is refused.
pub fn write_and_commit(
    cluster: &Cluster,
    host: &str,
    old: &str,
    carry: bool,
    records: &[FileRecord],
) -> Result<Written> {
    let root = &cluster.root;
    let flip = Flip::prepare(cluster, host, carry)?;
    let mut writes = Vec::new();
    for r in &flip.rewrites {
        let record = records.iter().find(|rec| rec.path == r.path);
        let matches = record.is_some_and(|rec| {
            rec.old_sha256 == sha256(&r.old) && rec.new_sha256 == sha256(&r.new)
        });
        if !matches {
            return Err(Error::refused(
                format!(
                    "{} changed since the flip was validated; nixflip writes only what it validated",
                    r.path.display()
                ),
                "look at the file (git diff), put it back as it was, then resume",
            ));
        }
        writes.push(FileWrite {
            path: root.join(&r.path),
            content: r.new.clone(),
        });
    }
    // Every recorded file must now hold either its new text (written by an
    // earlier attempt) or be among the writes.
    for rec in records {
        if flip.rewrites.iter().any(|r| r.path == rec.path) {
            continue;
        }
        let now = crate::error::read_text(&root.join(&rec.path))?;
        if sha256(&now) != rec.new_sha256 {
            return Err(Error::refused(
                format!("{} is not the file the flip validated", rec.path.display()),
                "look at the file (git diff), put it back as it was, then resume",
            ));
        }
    }
    let mut out = Written::default();
    if !writes.is_empty() {
        let _lock = fsx::lock(root)?;
        for r in &flip.rewrites {
            let now = crate::error::read_text(&root.join(&r.path))?;
            if now != r.old {
                return Err(Error::refused(
                    format!("{} changed while nixflip was writing", r.path.display()),
                    "resume to try again",
                ));
            }
        }
        fsx::write_all(&writes)?;
        out.written = flip.files();
    }
    let files: Vec<PathBuf> = records.iter().map(|r| r.path.clone()).collect();
    if files.is_empty() || crate::git::text(root, &["rev-parse", "--is-inside-work-tree"]).is_err()
    {
        return Ok(out);
    }
    if !dirty_files(root, &files)?.trim().is_empty() {
        let message = commit_message(host, old, &flip, &files);
        let mut add = vec!["add".to_string(), "--".into()];
        add.extend(files.iter().map(|f| f.display().to_string()));
        crate::git::text(root, &add)?;
        let mut commit = vec![
            "commit".to_string(),
            "-q".into(),
            "-m".into(),
            message,
            "--".into(),
        ];
        commit.extend(files.iter().map(|f| f.display().to_string()));
        crate::git::text(root, &commit).map_err(|e| {
            Error::external(
                format!("the flip is written but not committed: {e}"),
                "fix what stopped git (a hook, no identity), then resume",
            )
        })?;
    }
    out.commit = crate::git::text(root, &["rev-parse", "HEAD"])
        .ok()
        .map(|h| h.trim().to_string());
    Ok(out)
}
