//! The flake side of a switchover: the flip as a [`transaction::Change`], proven before the
//! fence and written and committed after the promotion. It must never write a file whose text
//! is not the one validated, and never write some files and not others.
//!
//! Proving and writing are the shared transaction's ([`transaction::validate`],
//! [`transaction::Session::apply`]), as for `promote`; what is the
//! switchover's own is the split between the two and the journal's record of
//! the validated texts, which a resumed run checks the files against.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cluster::plan::{plan_promote, Plan};
use crate::cluster::{Cluster, Finding};
use crate::error::{Error, Result};
use crate::eval::{self, Mismatch};
use crate::transaction::{self, Change, Commit, FileChange, Outcome, Proof, WriteOptions};

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
    /// The files as promote's plan rewrites them, with the switchover's
    /// commit message.
    pub change: Change,
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Flip {
    /// Plan promoting `host` (its primary now `old`) and apply the edits to
    /// the files in memory; `carry`: carry the old primary's hand-written
    /// firewall rules and pg_hba lines too (as `promote
    /// --carry-address-rules`).
    pub fn prepare(cluster: &Cluster, host: &str, old: &str, carry: bool) -> Result<Flip> {
        let plan = plan_promote(cluster, host, carry)?;
        let mut change = Change::promote(cluster, &plan)?;
        change.commit_message =
            commit_message(super::Kind::Switchover, host, old, &plan, &change.paths());
        Ok(Flip { plan, change })
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
        self.change.paths()
    }

    /// What the journal keeps to recognise the files later.
    pub fn records(&self) -> Vec<FileRecord> {
        self.change
            .files
            .iter()
            .map(|f| FileRecord {
                path: f.path.clone(),
                old_sha256: sha256(f.old.as_deref().unwrap_or_default()),
                new_sha256: sha256(&f.new),
            })
            .collect()
    }
}

/// The commit's message: its subject states the switchover; the body lists
/// the changes (or, when an earlier attempt wrote the files, the files).
fn commit_message(
    kind: super::Kind,
    host: &str,
    old: &str,
    plan: &Plan,
    files: &[PathBuf],
) -> String {
    let verb = match kind {
        super::Kind::Switchover => "switch over",
        super::Kind::Failover => "fail over",
    };
    let subject = format!("nixflip: {verb} to {host}; {old} becomes standby");
    let mut body = String::new();
    for c in &plan.changes {
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
    Mismatches(Vec<Mismatch>),
}

/// Prove the flip with the shared transaction: the rules on the flipped
/// files and the new primary's secrets gate, and with `eval` one `nix eval`
/// of every member. `nix_args`: the command line's (the transaction adds
/// `[eval] nix_args`).
fn prove(
    cluster: &Cluster,
    flip: &Flip,
    eval: bool,
    nix_args: &[String],
) -> Result<std::result::Result<(), Invalid>> {
    let proof = Proof {
        eval,
        skip_secrets: false,
        nix_args: nix_args.to_vec(),
    };
    let validation = transaction::validate(cluster, &flip.change, &proof, &mut |_| {})?;
    match validation.outcome {
        Outcome::Proven { .. } | Outcome::Unproven => Ok(Ok(())),
        Outcome::Inconsistent { findings, .. } => {
            Ok(Err(Invalid::Findings(findings, Box::new(validation.after))))
        }
        Outcome::Mismatched(mismatches) => Ok(Err(Invalid::Mismatches(mismatches))),
        Outcome::SecretsMissing { host, missing } => {
            let lines: Vec<String> = missing
                .iter()
                .map(|f| transaction::secret_problem_line(f, false))
                .collect();
            Err(Error::refused(
                format!(
                    "{host} would become primary without secrets it needs:\n{}",
                    lines.join("\n")
                ),
                "fix the secrets first (`nixflip secrets check` lists every finding); nothing was changed",
            ))
        }
        Outcome::MemberMissing(name) => Err(Error::failed(
            format!("{name} is not a member after the flip"),
            "check the flake with `nixflip check`",
        )),
    }
}

/// The pre-flight's part of the proof, without Nix: the rules on the
/// flipped files and the new primary's secrets gate (refused, exit 4).
pub fn precheck(cluster: &Cluster, flip: &Flip) -> Result<std::result::Result<(), Invalid>> {
    prove(cluster, flip, false, &[])
}

/// The whole proof (the rules, the secrets gate, one `nix eval` of every
/// member); when it holds, a scratch copy of the flipped flake to build the
/// configurations from.
pub fn validate(
    cluster: &Cluster,
    flip: &Flip,
    nix_args: &[String],
) -> Result<std::result::Result<eval::Scratch, Invalid>> {
    if let Err(invalid) = prove(cluster, flip, true, nix_args)? {
        return Ok(Err(invalid));
    }
    // The validation's own scratch copy is gone by now; the builds get one
    // of their own, written from the same texts.
    let scratch = eval::Scratch::copy_of(&cluster.root)?;
    for f in &flip.change.files {
        scratch.write(&f.path, &f.new)?;
    }
    Ok(Ok(scratch))
}

/// Refuse when git has uncommitted changes to the files the flip edits:
/// the commit would carry them under nixflip's subject.
pub fn refuse_dirty(root: &Path, files: &[PathBuf]) -> Result<()> {
    transaction::refuse_dirty(root, files).map_err(|e| match e {
        Error::Refused { message, .. } => Error::refused(message, "commit or stash them first"),
        other => other,
    })
}

/// What [`write_and_commit`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    pub written: Vec<PathBuf>,
    /// The commit, when the flake is in git.
    pub commit: Option<String>,
}

fn in_git(root: &Path) -> bool {
    crate::git::text(root, &["rev-parse", "--is-inside-work-tree"]).is_ok()
}

/// Write the flip validated earlier (the texts recorded in `records`) and
/// commit it, through the shared transaction. Files an earlier attempt
/// wrote are kept (and committed when they are not yet); a file whose text
/// is neither the validated old nor new one is refused.
pub fn write_and_commit(
    cluster: &Cluster,
    host: &str,
    old: &str,
    carry: bool,
    records: &[FileRecord],
    kind: super::Kind,
) -> Result<Written> {
    let root = &cluster.root;
    let flip = Flip::prepare(cluster, host, old, carry)?;
    let mut change = flip.change.clone();
    for f in &change.files {
        let record = records.iter().find(|rec| rec.path == f.path);
        let matches = record.is_some_and(|rec| {
            rec.old_sha256 == sha256(f.old.as_deref().unwrap_or_default())
                && rec.new_sha256 == sha256(&f.new)
        });
        if !matches {
            return Err(Error::refused(
                format!(
                    "{} changed since the flip was validated; nixflip writes only what it validated",
                    f.path.display()
                ),
                "look at the file (git diff), put it back as it was, then resume",
            ));
        }
    }
    let to_write = change.files.len();
    // A recorded file the plan no longer rewrites was written by an earlier
    // attempt: it must hold the new text, and goes into the change as it is
    // so that the commit takes it.
    let mut kept = Vec::new();
    for rec in records {
        if change.files.iter().any(|f| f.path == rec.path) {
            continue;
        }
        let now = crate::error::read_text(&root.join(&rec.path))?;
        if sha256(&now) != rec.new_sha256 {
            return Err(Error::refused(
                format!("{} is not the file the flip validated", rec.path.display()),
                "look at the file (git diff), put it back as it was, then resume",
            ));
        }
        kept.push(FileChange {
            path: rec.path.clone(),
            old: Some(now.clone()),
            new: now,
        });
    }
    change.files.extend(kept);
    // After an earlier attempt wrote the files, the plan has no changes
    // left to list: the message lists the files.
    change.commit_message = commit_message(kind, host, old, &flip.plan, &change.paths());
    let git = in_git(root) && !change.files.is_empty();
    // Already written and committed by an earlier attempt: nothing to do.
    let uncommitted = git && refuse_dirty(root, &change.paths()).is_err();
    let mut out = Written::default();
    if to_write > 0 || uncommitted {
        let session = transaction::begin(
            root,
            WriteOptions {
                yes: true,
                commit: git,
                ..WriteOptions::default()
            },
        )?;
        let applied = session.apply(&change)?;
        if to_write > 0 {
            out.written = flip.files();
        }
        if let Commit::Failed(e) = applied.commit {
            // The transaction's own help gives a `git commit` to run by
            // hand; here `--resume` commits what is written.
            let text = e.to_string();
            let cause = text
                .strip_prefix("the files were written but not committed: ")
                .unwrap_or(&text);
            return Err(Error::external(
                format!("the flip is written but not committed: {cause}"),
                "fix what stopped git (a hook, no identity), then resume",
            ));
        }
    }
    if git {
        out.commit = crate::git::text(root, &["rev-parse", "HEAD"])
            .ok()
            .map(|h| h.trim().to_string());
    }
    Ok(out)
}
