//! `add-host NAME --address ADDRESS`: a new standby of the current primary,
//! with the same safety rules as `promote` ([`nixflip::transaction`]): plan
//! in memory, prove it in a scratch copy (rules, then one `nix eval`), show
//! the diff, then write all files or none.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use nixflip::error::{Error, Result, EXIT_OK};
use nixflip::generate::add_host::{plan_add_host, AddHostPlan, AddHostRequest};
use nixflip::render::plan as render_plan;
use nixflip::transaction;

use super::cluster::{flake_root, load_cluster};
use super::{confirm, WriteArgs};
use crate::Cli;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum NewRole {
    Standby,
    Primary,
}

#[derive(Args, Debug)]
pub struct AddHostArgs {
    /// The new host's name (its file and flake attribute are named after it)
    pub name: String,
    /// The new host's IP address (it goes into allowedSourceIPs, which need an IP)
    #[arg(long)]
    pub address: String,
    /// The new host's role: only standby (add it, then `nixflip promote` it)
    #[arg(long, value_enum, default_value_t = NewRole::Standby)]
    pub role: NewRole,
    /// Where to write the host file (default: the primary's path with the name replaced)
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub write: WriteArgs,
}

pub fn add_host(cli: &Cli, args: &AddHostArgs) -> Result<i32> {
    if args.role == NewRole::Primary {
        return Err(Error::refused(
            "a new host cannot join as a second primary (split brain)",
            format!(
                "add it as a standby, let it catch up, then run `nixflip promote {}`",
                args.name
            ),
        ));
    }
    let root = flake_root(cli, None)?;
    let cluster = load_cluster(cli, &root)?;
    let request = AddHostRequest {
        name: args.name.clone(),
        address: args.address.clone(),
        file: args.file.clone(),
    };
    let plan = plan_add_host(&cluster, &request)?;
    // Refusals that need no evaluation come before the plan is shown and
    // before Nix runs: flags, no terminal to ask on, the lock, a dirty tree.
    let session = transaction::begin(&root, args.write.options())?;
    let change = plan.change();
    session.refuse_dirty(&change)?;
    if !cli.quiet {
        print!("{}", render_plan::add_host_text(&plan));
    }
    let validation = transaction::validate(
        &cluster,
        &change,
        &args.write.proof(false),
        &mut super::show_command(cli),
    )?;
    let what = format!("the cluster with {}", plan.name);
    if !validation.passed() {
        return super::report_failed_validation(cli, &validation, &what);
    }
    super::report_validation_warnings(cli, &validation, &plan.name);
    if let transaction::Outcome::Proven { members } = validation.outcome {
        if !cli.quiet {
            println!(
                "\nnix eval: {n} evaluates as a standby of {p}, and {p} admits it ({members} members, one nix process)",
                n = plan.name,
                p = plan.primary
            );
        }
    }
    println!();
    print!(
        "{}",
        render_plan::diffs(&change.files, cli.color.enabled_for_stdout())
    );
    if args.write.dry_run {
        if !cli.quiet {
            eprintln!("dry run: nothing was written");
        }
        return Ok(EXIT_OK);
    }
    if !args.write.yes {
        confirm(&format!("write {} file(s)?", change.files.len()), "writes")?;
    }
    let committed = super::report_applied(cli, session.apply(&change)?)?;
    let in_git = !committed && track_new_files(cli, &root, &plan);
    if !cli.quiet {
        print!("{}", next_steps(&plan, &args.address, in_git));
    }
    Ok(EXIT_OK)
}

/// What the operator does next: commit (unless committed), seed the new
/// host from the primary, rebuild the primary first.
fn next_steps(plan: &AddHostPlan, address: &str, commit_first: bool) -> String {
    let commit = if commit_first {
        let paths: Vec<String> = plan
            .changes
            .iter()
            .map(|c| c.path.display().to_string())
            .collect();
        format!(
            "commit the change, since nixos-rebuild --flake . reads the flake through git:\n  git add {} && git commit -m 'add {}'\nthen ",
            paths.join(" "),
            plan.name
        )
    } else {
        String::new()
    };
    format!(
        "\nNext: {commit}restore a base backup of {p} on {n} (pg_basebackup -h {pa} -U replicator -D <data dir> -X stream),\nrebuild {p} first (its pg_hba now admits {n}), then {n}:\n  nixos-rebuild switch --flake .#'{attr}' --target-host root@{a}\n",
        p = plan.primary,
        n = plan.name,
        pa = plan.primary_address,
        attr = plan.attr,
        a = address
    )
}

/// `git add --intent-to-add` the new files when the flake is in a git work
/// tree (a git flake does not see untracked files); whether it is. A failure
/// is a warning: the files are written, the user can add them.
fn track_new_files(cli: &Cli, root: &std::path::Path, plan: &AddHostPlan) -> bool {
    let new: Vec<PathBuf> = plan
        .changes
        .iter()
        .filter(|c| c.old.is_none())
        .map(|c| c.path.clone())
        .collect();
    match nixflip::generate::git_intent_to_add(root, &new) {
        Ok(true) => {
            if !cli.quiet {
                for f in &new {
                    eprintln!(
                        "git add --intent-to-add {} (so the git flake sees it)",
                        f.display()
                    );
                }
            }
            true
        }
        Ok(false) => false,
        Err(e) => {
            eprintln!("warning: the files are written, but git does not know the new ones:");
            eprintln!("{:?}", miette::Report::new(e));
            true
        }
    }
}
