//! From a planned change of the flake to files on disk, the one way every
//! writer (promote, add-host, switchover's flip) goes: prove the change in a
//! scratch copy (the rules, the secrets gate, one `nix eval` for all
//! members), then write every file or none under the lock, optionally as one
//! git commit. It never prints and never asks: callers render and confirm.
//! See docs/ARCHITECTURE.md for where it sits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cluster::carry::CarryCheck;
use crate::cluster::plan::Intended;
use crate::cluster::secrets::{SecretFinding, SecretsReport};
use crate::cluster::{evaluated, rules, Cluster, Finding, Severity};
use crate::error::{Error, Result};
use crate::eval::{self, Mismatch};
use crate::fsx::{self, FileWrite};

/// One file's text before (`None`: a new file) and after the change.
#[derive(Clone, Debug)]
pub struct FileChange {
    /// Relative to the flake root.
    pub path: PathBuf,
    pub old: Option<String>,
    pub new: String,
}

/// A change of the flake and what must hold once it is made.
#[derive(Clone, Debug, Default)]
pub struct Change {
    pub files: Vec<FileChange>,
    /// The managed fields each member must evaluate to.
    pub intended: BTreeMap<String, Intended>,
    /// Carried options that must evaluate to hold their lines.
    pub carry_checks: Vec<CarryCheck>,
    /// The member that must have every secret its new role needs (promote's
    /// new primary); `None`: no secrets gate.
    pub secrets_for: Option<String>,
    /// Members that must exist after the change (add-host's new host).
    pub new_members: Vec<String>,
    /// The commit message when the caller asks for a commit.
    pub commit_message: String,
}

impl Change {
    /// The change a promote plan makes: its rewrites (with the carried rules
    /// when asked), the intended fields, the new primary's secrets gate.
    pub fn promote(cluster: &Cluster, plan: &crate::cluster::plan::Plan) -> Result<Change> {
        let files = plan
            .rewrites(cluster)?
            .into_iter()
            .map(|r| FileChange {
                path: r.path,
                old: Some(r.old),
                new: r.new,
            })
            .collect();
        Ok(Change {
            files,
            intended: plan.intended.clone(),
            carry_checks: if plan.carry_address_rules {
                plan.carry_checks.clone()
            } else {
                Vec::new()
            },
            secrets_for: Some(plan.new_primary.clone()),
            new_members: Vec::new(),
            commit_message: plan.commit_message(),
        })
    }

    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }

    /// Files that exist and are edited (a new file has nothing to protect).
    fn edited_paths(&self) -> Vec<PathBuf> {
        self.files
            .iter()
            .filter(|f| f.old.is_some())
            .map(|f| f.path.clone())
            .collect()
    }
}

/// How a change is proven.
#[derive(Clone, Debug, Default)]
pub struct Proof {
    /// Run the one `nix eval` (off: `--no-eval`, a warning for the caller).
    pub eval: bool,
    /// Let a new primary lack secrets it needs (`--skip-secrets`).
    pub skip_secrets: bool,
    /// Extra `nix eval` arguments from the command line (`[eval] nix_args`
    /// from nixflip.toml are added by [`validate`]).
    pub nix_args: Vec<String>,
}

/// What proving a change found.
#[derive(Debug)]
pub enum Outcome {
    /// Nix evaluates every member as intended and the rules hold there too.
    Proven { members: usize },
    /// The rules hold in the files; `nix eval` was not asked for.
    Unproven,
    /// The changed cluster breaks the rules: as written (`evaluated` false)
    /// or as Nix computes it.
    Inconsistent {
        findings: Vec<Finding>,
        evaluated: bool,
    },
    /// Nix disagrees with the intended values (a definition elsewhere wins).
    Mismatched(Vec<Mismatch>),
    /// The member to gain its role's secrets would lack some.
    SecretsMissing {
        host: String,
        missing: Vec<SecretFinding>,
    },
    /// A member the change adds is not found afterwards.
    MemberMissing(String),
}

/// The result of [`validate`]: the outcome, the changed cluster, and the
/// secrets gate's notes about the host it guards.
pub struct Validation {
    pub outcome: Outcome,
    /// The cluster as the change leaves it (the evaluated fields in place
    /// when Nix ran).
    pub after: Cluster,
    /// Warnings about the guarded host (an unknown key): shown, never blocking.
    pub secret_notes: Vec<Finding>,
    /// Problems `--skip-secrets` let through: the caller warns.
    pub secrets_skipped: Vec<SecretFinding>,
}

/// What [`validate`] gathers on its way to an outcome.
#[derive(Default)]
struct Gathered {
    secret_notes: Vec<Finding>,
    secrets_skipped: Vec<SecretFinding>,
}

impl Gathered {
    /// The secrets gate on `report` for `change.secrets_for`: its warnings
    /// kept as notes; `Some` refusal when a secret is missing (unless
    /// `proof.skip_secrets`, which records them instead).
    fn gate(
        &mut self,
        change: &Change,
        proof: &Proof,
        report: Option<SecretsReport>,
    ) -> Option<Outcome> {
        let (Some(host), Some(report)) = (&change.secrets_for, report) else {
            return None;
        };
        let gate = secrets_gate(report, host);
        self.secret_notes = gate.notes;
        if gate.missing.is_empty() {
            None
        } else if proof.skip_secrets {
            self.secrets_skipped = gate.missing;
            None
        } else {
            Some(Outcome::SecretsMissing {
                host: host.clone(),
                missing: gate.missing,
            })
        }
    }

    fn with(self, outcome: Outcome, after: Cluster) -> Validation {
        Validation {
            outcome,
            after,
            secret_notes: self.secret_notes,
            secrets_skipped: self.secrets_skipped,
        }
    }
}

impl Validation {
    pub fn passed(&self) -> bool {
        matches!(self.outcome, Outcome::Proven { .. } | Outcome::Unproven)
    }
}

/// Write the change into a scratch copy of the flake, run the rules there,
/// the secrets gate for `change.secrets_for`, and (with `proof.eval`) one
/// `nix eval` of every member, compared with the intended values. The user's
/// tree is never touched. `on_command` sees the `nix` argv before it runs.
pub fn validate(
    cluster: &Cluster,
    change: &Change,
    proof: &Proof,
    on_command: &mut dyn FnMut(&[String]),
) -> Result<Validation> {
    // The copy is complete before Nix starts: starting Nix earlier, held
    // until the copy is written, could hide only the copy (about a
    // millisecond, benches/scratch.rs). From its first fill the copy is
    // watched by a janitor, which removes it however nixflip ends, Ctrl-C
    // and kill -9 included, and off nixflip's path when it ends normally.
    let mut scratch = eval::Scratch::new()?;
    scratch.copy_from(&cluster.root)?;
    for f in &change.files {
        scratch.write(&f.path, &f.new)?;
    }
    let carried = eval::carry_paths(&change.carry_checks);
    let pending = if proof.eval {
        Some(eval::start_members(
            cluster,
            &change.new_members,
            eval::Flake::Scratch(&scratch),
            &carried,
            &proof.nix_args,
            on_command,
        )?)
    } else {
        None
    };
    // The changes write no nixflip.toml: the configuration already loaded
    // is the scratch copy's too.
    let mut after = cluster.with_rewrites(
        scratch.flake(),
        change.files.iter().map(|f| (f.path.clone(), f.new.clone())),
        cluster.config.clone(),
    )?;
    let mut done = Gathered::default();
    if let Some(name) = change
        .new_members
        .iter()
        .find(|n| after.member(n).is_none())
    {
        return Ok(done.with(Outcome::MemberMissing(name.clone()), after));
    }
    let errors = errors_of(&after);
    if !errors.is_empty() {
        let outcome = Outcome::Inconsistent {
            findings: errors,
            evaluated: false,
        };
        return Ok(done.with(outcome, after));
    }
    // The secrets checks as the files say run while Nix evaluates; its
    // answer about sops replaces the static reading where it has one.
    let static_secrets = change
        .secrets_for
        .as_ref()
        .map(|_| crate::cluster::secrets::check_at(&after, &cluster.root));
    let Some(pending) = pending else {
        if let Some(outcome) = done.gate(change, proof, static_secrets) {
            return Ok(done.with(outcome, after));
        }
        return Ok(done.with(Outcome::Unproven, after));
    };
    let evaluated = pending.finish()?;
    // Nix has exited: the copy goes to the janitor.
    drop(scratch);
    let refined = static_secrets
        .map(|report| crate::cluster::secrets::refine(report, &after, &cluster.root, &evaluated));
    if let Some(outcome) = done.gate(change, proof, refined) {
        return Ok(done.with(outcome, after));
    }
    // The rules judge what Nix computed too: a definition nixflip did not
    // edit may still win somewhere it cannot see.
    evaluated::overlay(&mut after, &evaluated);
    let mut mismatches = eval::mismatches(&change.intended, &evaluated);
    mismatches.extend(eval::carry_mismatches(&change.carry_checks, &evaluated));
    let evaluated_errors = errors_of(&after);
    let outcome = if !mismatches.is_empty() {
        Outcome::Mismatched(mismatches)
    } else if !evaluated_errors.is_empty() {
        Outcome::Inconsistent {
            findings: evaluated_errors,
            evaluated: true,
        }
    } else {
        Outcome::Proven {
            members: evaluated.len(),
        }
    };
    Ok(done.with(outcome, after))
}

fn errors_of(cluster: &Cluster) -> Vec<Finding> {
    rules::check(cluster)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

struct SecretsGate {
    notes: Vec<Finding>,
    missing: Vec<SecretFinding>,
}

/// `host` must have every secret its role needs: declared, present in its
/// SOPS file, in a file it is a recipient of (`report`: the checks on the
/// changed cluster, SOPS files read from the real flake). A cluster without
/// any SOPS configuration is not checked.
fn secrets_gate(report: SecretsReport, host: &str) -> SecretsGate {
    if !report.configured {
        return SecretsGate {
            notes: Vec::new(),
            missing: Vec::new(),
        };
    }
    let notes = report
        .findings
        .iter()
        .filter(|f| f.finding.severity == Severity::Warning)
        .filter(|f| f.hosts.iter().any(|h| h == host))
        .map(|f| f.finding.clone())
        .collect();
    let missing = report.blocking_for(host).into_iter().cloned().collect();
    SecretsGate { notes, missing }
}

/// One line per missing secret: the secrets, the file to fix, and how.
pub fn secret_problem_line(f: &SecretFinding, with_message: bool) -> String {
    let names: Vec<String> = f.secrets.iter().map(|s| format!("`{s}`")).collect();
    let file = f.sops_file.as_ref().unwrap_or(&f.finding.file);
    let message = if with_message {
        format!("{}\n    ", f.finding.message)
    } else {
        String::new()
    };
    format!(
        "  - {} ({}, {}): {message}fix: {}",
        names.join(", "),
        f.finding.id,
        file.display(),
        f.finding.help
    )
}

/// The refusal (exit 4) for [`Outcome::SecretsMissing`].
pub fn secrets_refusal(host: &str, missing: &[SecretFinding]) -> Error {
    let lines: Vec<String> = missing
        .iter()
        .map(|f| secret_problem_line(f, false))
        .collect();
    Error::refused(
        format!(
            "{host} would become primary without secrets it needs; nothing was written:\n{}",
            lines.join("\n")
        ),
        "fix the secrets first (`nixflip secrets check` lists every finding), or pass --skip-secrets to promote anyway",
    )
}

// ------------------------------------------------------------------ writing

/// How a change may be written.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteOptions {
    /// Validate and show, write nothing.
    pub dry_run: bool,
    /// The user agreed beforehand (`--yes`).
    pub yes: bool,
    /// stdin is a terminal, so the caller can ask.
    pub interactive: bool,
    /// Write over uncommitted changes to the files (`--allow-dirty`).
    pub allow_dirty: bool,
    /// Make one git commit of the change (`--commit`).
    pub commit: bool,
}

/// A writing run, from before planning to the written files: it holds the
/// lock from the start, so two runs cannot plan on the same files.
pub struct Session {
    root: PathBuf,
    opts: WriteOptions,
    _lock: Option<fsx::Lock>,
}

/// What [`Session::apply`] did.
#[derive(Debug)]
pub struct Applied {
    pub written: Vec<PathBuf>,
    pub commit: Commit,
}

/// The commit of an applied change.
#[derive(Debug)]
pub enum Commit {
    /// No `--commit`.
    NotAsked,
    /// The commit's short id and subject.
    Made { id: String, subject: String },
    /// The files are written, git refused: the error says how to finish.
    Failed(Error),
}

/// Start a writing run in the flake at `root`: the refusals that need no
/// planning and no evaluation come first (bad flag combinations, no way to
/// confirm, the lock held by another run).
pub fn begin(root: &Path, opts: WriteOptions) -> Result<Session> {
    if opts.commit && opts.allow_dirty {
        // The commit would sweep the user's own uncommitted edits to these
        // files in under nixflip's subject.
        return Err(Error::usage(
            "--commit cannot be combined with --allow-dirty",
            "commit or stash your own changes first and use --commit, or use --allow-dirty without --commit and commit yourself",
        ));
    }
    if opts.dry_run {
        return Ok(Session {
            root: root.to_path_buf(),
            opts,
            _lock: None,
        });
    }
    if !opts.yes && !opts.interactive {
        return Err(Error::refused(
            "stdin is not a terminal, so nixflip cannot ask before it writes",
            "pass --yes to proceed without asking (or --dry-run to see the change)",
        ));
    }
    let lock = fsx::lock(root)?;
    Ok(Session {
        root: root.to_path_buf(),
        opts,
        _lock: Some(lock),
    })
}

impl Session {
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn options(&self) -> WriteOptions {
        self.opts
    }

    /// Refuse (exit 4) when git has uncommitted changes to a file the change
    /// edits, unless `--allow-dirty` or a dry run. Cheap: callers run it
    /// right after planning, before any evaluation.
    pub fn refuse_dirty(&self, change: &Change) -> Result<()> {
        if self.opts.allow_dirty || self.opts.dry_run {
            return Ok(());
        }
        refuse_dirty(&self.root, &change.edited_paths())
    }

    /// Write every file of `change` or none (re-read under the lock first:
    /// a file that changed since it was planned is refused), then commit
    /// when asked. A failed commit leaves the files written: see [`Commit`].
    pub fn apply(&self, change: &Change) -> Result<Applied> {
        if self.opts.dry_run {
            return Err(Error::usage(
                "a dry run writes nothing",
                "this is a bug in the caller: report it",
            ));
        }
        for f in &change.files {
            let path = self.root.join(&f.path);
            let unchanged = match &f.old {
                Some(old) => crate::error::read_text(&path)? == *old,
                None => !path.exists(),
            };
            if !unchanged {
                return Err(Error::refused(
                    format!("{} changed while nixflip was planning", f.path.display()),
                    "run the command again",
                ));
            }
        }
        let writes: Vec<FileWrite> = change
            .files
            .iter()
            .map(|f| FileWrite {
                path: self.root.join(&f.path),
                content: f.new.clone(),
            })
            .collect();
        if change.files.iter().any(|f| f.old.is_none()) {
            fsx::create_all(&writes)?;
        } else {
            fsx::write_all(&writes)?;
        }
        let written = change.paths();
        let commit = if !self.opts.commit {
            Commit::NotAsked
        } else {
            match commit(&self.root, &written, &change.commit_message) {
                Ok((id, subject)) => Commit::Made { id, subject },
                Err(e) => Commit::Failed(not_committed(e, &written, &change.commit_message)),
            }
        };
        Ok(Applied { written, commit })
    }
}

/// Refuse when git has uncommitted changes to any of `files`.
pub fn refuse_dirty(root: &Path, files: &[PathBuf]) -> Result<()> {
    if files.is_empty() || crate::git::text(root, &["rev-parse", "--is-inside-work-tree"]).is_err()
    {
        return Ok(()); // not a git work tree: nothing to protect against
    }
    let mut args = vec!["status", "--porcelain", "--"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let dirty = crate::git::text(root, &args)?;
    if dirty.trim().is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "uncommitted changes to files nixflip would edit:\n{}",
            dirty.trim_end()
        ),
        "commit or stash them first, or pass --allow-dirty",
    ))
}

/// `git add` and `git commit` exactly `files`; the new commit's id and subject.
fn commit(root: &Path, files: &[PathBuf], message: &str) -> Result<(String, String)> {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut add = vec!["add", "--"];
    add.extend(names.iter().map(String::as_str));
    crate::git::text(root, &add).map_err(|e| short_git_error(e, "add", &add))?;
    let mut args = vec!["commit", "-q", "-m", message, "--"];
    args.extend(names.iter().map(String::as_str));
    crate::git::text(root, &args).map_err(|e| short_git_error(e, "commit", &args))?;
    let id = crate::git::text(root, &["rev-parse", "--short", "HEAD"])?;
    let subject = message.lines().next().unwrap_or_default().to_string();
    Ok((id.trim().to_string(), subject))
}

/// The files are on disk already when `git commit` fails: say so, and give
/// the command that finishes the job (exit 3, an external command failed).
fn not_committed(error: Error, files: &[PathBuf], message: &str) -> Error {
    let subject = message.lines().next().unwrap_or_default().to_string();
    let mut argv = vec![
        "git".to_string(),
        "commit".into(),
        "-m".into(),
        subject,
        "--".into(),
    ];
    argv.extend(files.iter().map(|f| f.display().to_string()));
    let cause = match error {
        Error::External { message, .. } => message,
        other => other.to_string(),
    };
    Error::external(
        format!("the files were written but not committed: {cause}"),
        format!(
            "fix what stopped git, then run in the flake directory: `git add -- {names} && {command}`",
            names = crate::names::display_command(&argv[5..]),
            command = crate::names::display_command(&argv)
        ),
    )
}

/// `git NAME failed: STDERR` instead of the whole argv (which holds the
/// multi-line commit message).
fn short_git_error(error: Error, name: &str, args: &[&str]) -> Error {
    match error {
        Error::External { message, help } => {
            let prefix = format!("git {} failed: ", args.join(" "));
            match message.strip_prefix(&prefix) {
                Some(stderr) => Error::external(format!("git {name} failed: {stderr}"), help),
                None => Error::External { message, help },
            }
        }
        other => other,
    }
}
