//! `promote HOST`: plan the flip, rewrite in a scratch copy, prove it with
//! `nix eval`, show the diff, then apply atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use nixflip::cluster::plan::{plan_promote, Plan};
use nixflip::cluster::{rules, Cluster};
use nixflip::error::{Error, Result, EXIT_FINDINGS, EXIT_OK};
use nixflip::eval;
use nixflip::fsx::{self, FileWrite};
use nixflip::nixedit;
use nixflip::render::unified_diff;

use super::cluster::{flake_root, load_cluster, print_findings};
use super::{confirm, git};
use crate::Cli;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum PlanFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Args, Debug)]
pub struct PromoteArgs {
    /// The host to make primary
    pub host: String,
    /// Plan, rewrite and validate, print the diff, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Skip the `nix eval` proof (a warning says so)
    #[arg(long)]
    pub no_eval: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Write even if the files to edit have uncommitted changes
    #[arg(long)]
    pub allow_dirty: bool,
    /// Make one git commit stating the flip
    #[arg(long)]
    pub commit: bool,
    /// After writing, run nixos-rebuild: the new primary first, then the old primary, then the others
    #[arg(long)]
    pub rebuild: bool,
    /// Promote even if the new primary would lack a SOPS secret it needs (a warning says so)
    #[arg(long)]
    pub skip_secrets: bool,
    /// Extra argument for `nix eval` (repeatable), e.g. --nix-option=--offline
    #[arg(long = "nix-option", value_name = "ARG", allow_hyphen_values = true)]
    pub nix_options: Vec<String>,
    /// Output format of the plan and diff
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

/// A file's text before and after the flip.
struct Rewrite {
    path: PathBuf,
    old: String,
    new: String,
}

pub fn promote(cli: &Cli, args: &PromoteArgs) -> Result<i32> {
    if args.commit && args.allow_dirty {
        // The commit would sweep the user's own uncommitted edits to these
        // files in under nixflip's subject.
        return Err(Error::usage(
            "--commit cannot be combined with --allow-dirty",
            "commit or stash your own changes first and use --commit, or use --allow-dirty without --commit and commit yourself",
        ));
    }
    let root = flake_root(cli, None)?;
    let cluster = load_cluster(cli, &root)?;
    let plan = plan_promote(&cluster, &args.host)?;
    if plan.is_noop() {
        let msg = format!(
            "{} is already the primary and every member agrees; nothing to do",
            plan.new_primary
        );
        match args.format {
            PlanFormat::Json => println!(
                "{}",
                serde_json::json!({ "plan": plan, "noop": true, "message": msg })
            ),
            _ => println!("{msg}"),
        }
        return Ok(EXIT_OK);
    }
    if args.format == PlanFormat::Text && !cli.quiet {
        print!("{}", render_plan_text(&plan));
    }
    // Nix starts loading now, before the scratch flake exists, and waits at
    // a gate until it is written: its start-up overlaps the rewrite and the
    // copy instead of following them.
    let mut scratch = eval::Scratch::new()?;
    let pending = if args.no_eval {
        None
    } else {
        Some(super::start_member_eval(
            cli,
            &cluster,
            eval::Flake::ScratchBeingWritten(&scratch),
            &args.nix_options,
        )?)
    };
    // From here on the scratch directory (and a Nix held at its gate) is
    // cleaned up however nixflip ends, Ctrl-C and kill -9 included. (Not
    // before Nix starts: the janitor's own start-up would delay Nix's.)
    scratch.watch();
    let rewrites = rewrite(&cluster, &plan)?;
    // The scratch copy goes while the diff prints (the janitor removes it;
    // without one, a thread, which `_scratch_removal` waits for).
    let (validation, _scratch_removal) =
        validate(cli, &cluster, &plan, &rewrites, (scratch, pending), args)?;
    if let Some(code) = validation {
        return Ok(code);
    }
    let color = cli.color.enabled_for_stdout();
    match args.format {
        PlanFormat::Text => {
            println!();
            for r in &rewrites {
                print!(
                    "{}",
                    unified_diff(&r.path.display().to_string(), &r.old, &r.new, color)
                );
            }
        }
        PlanFormat::Markdown => print!("{}", render_plan_markdown(&plan, &rewrites)),
        PlanFormat::Json => {
            let diffs: BTreeMap<String, String> = rewrites
                .iter()
                .map(|r| {
                    (
                        r.path.display().to_string(),
                        unified_diff(&r.path.display().to_string(), &r.old, &r.new, false),
                    )
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "plan": plan, "diffs": diffs, "dryRun": args.dry_run })
                )
                .unwrap_or_default()
            );
        }
    }
    if args.dry_run {
        if !cli.quiet {
            eprintln!("dry run: nothing was written");
        }
        return if args.rebuild {
            rebuild_after(cli, &plan, args)
        } else {
            Ok(EXIT_OK)
        };
    }
    apply(cli, &root, &plan, &rewrites, args)?;
    if args.rebuild {
        return rebuild_after(cli, &plan, args);
    }
    Ok(EXIT_OK)
}

/// `--rebuild`: the rebuild command, in the order the flip requires.
fn rebuild_after(cli: &Cli, plan: &Plan, args: &PromoteArgs) -> Result<i32> {
    let rebuild_args = super::rebuild::RebuildArgs {
        hosts: Vec::new(),
        dry_run: args.dry_run,
        action: None,
        build_host: None,
        use_remote_sudo: false,
        sudo: false,
        nixos_rebuild_args: Vec::new(),
        yes: args.yes,
        ignore_findings: false,
    };
    super::rebuild::rebuild_in_order(
        cli,
        &rebuild_args,
        Some((&plan.new_primary, plan.old_primary.as_deref())),
    )
}

/// Apply the plan's edits to the files in memory.
fn rewrite(cluster: &Cluster, plan: &Plan) -> Result<Vec<Rewrite>> {
    let mut out = Vec::new();
    for (path, changes) in plan.edits_by_file(&cluster.option) {
        let file = cluster.sources.get(&path).ok_or_else(|| {
            Error::usage(
                format!("{} is not a parsed file of the flake", path.display()),
                "the plan names a file nixflip did not read, which is a bug: please report it with `nixflip status --json`",
            )
        })?;
        let edited = nixedit::set_many(&path.display().to_string(), file.text(), &changes)?;
        if edited.changed {
            out.push(Rewrite {
                path,
                old: file.text().to_string(),
                new: edited.text,
            });
        }
    }
    Ok(out)
}

/// Write the rewrite into the scratch copy, re-run the rules there, and
/// prove the result with the `nix eval` waiting on it. `Some(exit code)`
/// when it fails; and the removal of the scratch copy, once Nix is done.
fn validate(
    cli: &Cli,
    cluster: &Cluster,
    plan: &Plan,
    rewrites: &[Rewrite],
    (mut scratch, mut pending): (eval::Scratch, Option<eval::Pending>),
    args: &PromoteArgs,
) -> Result<(Option<i32>, Option<eval::Removal>)> {
    scratch.copy_from(&cluster.root)?;
    for r in rewrites {
        scratch.write(&r.path, &r.new)?;
    }
    // The scratch flake is complete: Nix may read it. The static checks
    // below run while it evaluates (an early return drops `pending`, which
    // kills it).
    if let Some(pending) = &mut pending {
        pending.open_gate()?;
    }
    // The flip rewrites no nixflip.toml: the configuration already loaded
    // is the scratch copy's too.
    let mut after = cluster.with_rewrites(
        scratch.flake(),
        rewrites.iter().map(|r| (r.path.clone(), r.new.clone())),
        cluster.config.clone(),
    )?;
    let findings: Vec<_> = rules::check(&after)
        .into_iter()
        .filter(|f| f.severity == nixflip::cluster::Severity::Error)
        .collect();
    if !findings.is_empty() {
        print_findings(cli, &after, &findings);
        eprintln!("the flipped cluster would not be consistent; nothing was written");
        return Ok((Some(EXIT_FINDINGS), None));
    }
    // The secrets checks as the files say run while Nix evaluates; its
    // answer about sops only adds a second run when it tells something new.
    let static_secrets = nixflip::cluster::secrets::check_at(&after, &cluster.root);
    let Some(mut pending) = pending else {
        secrets_gate(cli, &after, plan, args, static_secrets)?;
        eprintln!("warning: --no-eval: the rewrite was not proven with `nix eval`");
        return Ok((None, None));
    };
    // Nix prints its answer a few milliseconds before it has exited, and
    // from then on reads nothing of the scratch copy: remove it meanwhile.
    let (removal, evaluated) = if pending.answered()? {
        let removal = scratch.remove();
        (removal, pending.finish()?)
    } else {
        let evaluated = pending.finish()?;
        (scratch.remove(), evaluated)
    };
    let secrets =
        nixflip::cluster::secrets::refine(static_secrets, &after, &cluster.root, &evaluated);
    secrets_gate(cli, &after, plan, args, secrets)?;
    // The rules judge what Nix computed too (a definition nixflip did not
    // edit may still win somewhere it cannot see).
    nixflip::cluster::evaluated::overlay(&mut after, &evaluated);
    let evaluated_findings: Vec<_> = rules::check(&after)
        .into_iter()
        .filter(|f| f.severity == nixflip::cluster::Severity::Error)
        .collect();
    let mismatches = eval::mismatches(&plan.intended, &evaluated);
    if mismatches.is_empty() && !evaluated_findings.is_empty() {
        print_findings(cli, &after, &evaluated_findings);
        eprintln!("the flipped cluster, as nix eval computes it, would not be consistent; nothing was written");
        return Ok((Some(EXIT_FINDINGS), removal));
    }
    if mismatches.is_empty() {
        if !cli.quiet && args.format == PlanFormat::Text {
            println!("\nnix eval: every member evaluates to the planned roles ({} members, one nix process)", evaluated.len());
        }
        return Ok((None, removal));
    }
    super::print_mismatches(&mismatches);
    eprintln!("help: another definition wins over the one nixflip edited (a lib.mkForce or mkOverride elsewhere?); find it with `nixflip status` or `nix eval`, then fix or remove it");
    Ok((Some(EXIT_FINDINGS), removal))
}

/// The new primary must have every secret its role needs: declared, present
/// in its SOPS file, in a file it is a recipient of. `report` holds the
/// checks on the flipped cluster (with what the one `nix eval` computed of
/// sops, when there is one; SOPS files read from the real flake). A cluster
/// without any SOPS configuration is not checked.
fn secrets_gate(
    cli: &Cli,
    after: &Cluster,
    plan: &Plan,
    args: &PromoteArgs,
    report: nixflip::cluster::secrets::SecretsReport,
) -> Result<()> {
    if !report.configured {
        return Ok(());
    }
    let host = &plan.new_primary;
    let blocking = report.blocking_for(host);
    let notes: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.finding.severity == nixflip::cluster::Severity::Warning)
        .filter(|f| f.hosts.iter().any(|h| h == host))
        .map(|f| f.finding.clone())
        .collect();
    if !cli.quiet {
        print_findings(cli, after, &notes);
    }
    if blocking.is_empty() {
        return Ok(());
    }
    // One line per problem: the secrets, the file to fix, and how.
    let line = |f: &nixflip::cluster::secrets::SecretFinding, with_message: bool| {
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
    };
    if args.skip_secrets {
        let lines: Vec<String> = blocking.iter().map(|f| line(f, true)).collect();
        eprintln!(
            "warning: --skip-secrets: {host} will be primary without secrets it needs; Synapse may not start there:\n{}",
            lines.join("\n")
        );
        return Ok(());
    }
    let lines: Vec<String> = blocking.iter().map(|f| line(f, false)).collect();
    let findings: Vec<_> = blocking.iter().map(|f| f.finding.clone()).collect();
    print_findings(cli, after, &findings);
    Err(Error::refused(
        format!(
            "{host} would become primary without secrets it needs; nothing was written:\n{}",
            lines.join("\n")
        ),
        "fix the secrets first (`nixflip secrets check` lists every finding), or pass --skip-secrets to promote anyway",
    ))
}

fn apply(
    cli: &Cli,
    root: &Path,
    plan: &Plan,
    rewrites: &[Rewrite],
    args: &PromoteArgs,
) -> Result<()> {
    let files: Vec<PathBuf> = rewrites.iter().map(|r| r.path.clone()).collect();
    if !args.allow_dirty {
        refuse_dirty(root, &files)?;
    }
    if !args.yes {
        confirm(&format!("write {} file(s)?", files.len()), "writes")?;
    }
    let _lock = fsx::lock(root)?;
    // Re-read under the lock: refuse if a file changed since it was planned.
    for r in rewrites {
        let now = nixflip::error::read_text(&root.join(&r.path))?;
        if now != r.old {
            return Err(Error::refused(
                format!("{} changed while nixflip was planning", r.path.display()),
                "run the command again",
            ));
        }
    }
    let writes: Vec<FileWrite> = rewrites
        .iter()
        .map(|r| FileWrite {
            path: root.join(&r.path),
            content: r.new.clone(),
        })
        .collect();
    fsx::write_all(&writes)?;
    if !cli.quiet {
        for r in rewrites {
            eprintln!("wrote {}", r.path.display());
        }
    }
    if args.commit {
        let message = commit_message(plan);
        commit(root, &files, &message).map_err(|e| not_committed(e, &files, &message))?;
    }
    Ok(())
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
            names = nixflip::names::display_command(&argv[5..]),
            command = nixflip::names::display_command(&argv)
        ),
    )
}

pub fn commit_message(plan: &Plan) -> String {
    let mut subject = format!("nixflip: promote {} to primary", plan.new_primary);
    if let Some(old) = &plan.old_primary {
        subject.push_str(&format!("; {old} becomes standby"));
    }
    let mut body = String::new();
    for c in &plan.changes {
        body.push_str(&format!(
            "- {}: {} {} -> {}\n",
            c.host, c.field, c.old, c.new
        ));
    }
    format!("{subject}\n\n{body}")
}

/// Refuse when git has uncommitted changes to any file to edit (§9).
pub fn refuse_dirty(root: &Path, files: &[PathBuf]) -> Result<()> {
    if git(root, &["rev-parse", "--is-inside-work-tree"]).is_err() {
        return Ok(()); // not a git work tree: nothing to protect against
    }
    let mut args = vec!["status", "--porcelain", "--"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let dirty = git(root, &args)?;
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

fn commit(root: &Path, files: &[PathBuf], message: &str) -> Result<()> {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut add = vec!["add", "--"];
    add.extend(names.iter().map(String::as_str));
    git(root, &add).map_err(|e| short_git_error(e, "add", &add))?;
    let mut args = vec!["commit", "-q", "-m", message, "--"];
    args.extend(names.iter().map(String::as_str));
    git(root, &args).map_err(|e| short_git_error(e, "commit", &args))?;
    Ok(())
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

pub fn render_plan_text(plan: &Plan) -> String {
    let mut out = format!("Promote {} to primary", plan.new_primary);
    if let Some(old) = &plan.old_primary {
        out.push_str(&format!(" ({old} becomes standby)"));
    }
    out.push('\n');
    let mut hosts: Vec<&str> = plan.changes.iter().map(|c| c.host.as_str()).collect();
    hosts.dedup();
    let width = plan
        .changes
        .iter()
        .map(|c| c.field.len())
        .max()
        .unwrap_or(0);
    for host in hosts {
        out.push_str(&format!("  {host}\n"));
        for c in plan.changes.iter().filter(|c| c.host == host) {
            out.push_str(&format!(
                "    {:<width$}  {} → {}   ({})\n",
                c.field,
                c.old,
                c.new,
                c.file.display()
            ));
            if let Some(note) = &c.note {
                out.push_str(&format!("    {:<width$}  note: {note}\n", ""));
            }
        }
    }
    out
}

/// Markdown for a pull request or chat: values and paths are escaped with
/// the helpers of the review renderer (code spans and fences that survive
/// backticks, HTML-escaped `<summary>`).
fn render_plan_markdown(plan: &Plan, rewrites: &[Rewrite]) -> String {
    use nixflip::render::review::{cell, code, fence_for, html};
    let mut out = format!(
        "### nixflip: promote {}\n\n| host | field | before | after |\n| --- | --- | --- | --- |\n",
        code(&plan.new_primary)
    );
    for c in &plan.changes {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&c.host),
            cell(&code(&c.field)),
            cell(&code(&c.old)),
            cell(&code(&c.new))
        ));
    }
    for r in rewrites {
        let path = r.path.display().to_string();
        let diff = unified_diff(&path, &r.old, &r.new, false);
        let fence = fence_for(&diff);
        out.push_str(&format!(
            "\n<details><summary><code>{}</code></summary>\n\n{fence}diff\n{diff}{fence}\n</details>\n",
            html(&path)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nixflip::cluster::plan::Change;
    use nixflip::nixedit::{NewValue, Value};

    #[test]
    fn markdown_escapes_paths_and_values() {
        let path = PathBuf::from("hosts/<b>&x.nix");
        let plan = Plan {
            new_primary: "b".into(),
            old_primary: None,
            standbys: Vec::new(),
            changes: vec![Change {
                host: "b".into(),
                field: "role".into(),
                file: path.clone(),
                old: "\"a|`b\"".into(),
                new: "\"primary\"".into(),
                value: NewValue::Literal(Value::String("primary".into())),
                note: None,
            }],
            intended: BTreeMap::new(),
        };
        let rewrite = Rewrite {
            path,
            old: "x\n".into(),
            new: "y\n".into(),
        };
        let md = render_plan_markdown(&plan, &[rewrite]);
        assert!(md.contains("<summary><code>hosts/&lt;b&gt;&amp;x.nix</code></summary>"));
        assert!(md.contains("| ``\"a\\|`b\"`` |"), "{md}");
    }
}
