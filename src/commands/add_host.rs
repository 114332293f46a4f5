//! `add-host NAME --address ADDRESS`: a new standby of the current primary,
//! with the same safety rules as `promote`: plan in memory, validate in a
//! scratch copy (rules, then one `nix eval`), show the diff, then write all
//! files or none.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use nixflip::cluster::{rules, Cluster, Severity};
use nixflip::error::{Error, Result, EXIT_FINDINGS, EXIT_OK};
use nixflip::eval;
use nixflip::fsx::{self, FileWrite};
use nixflip::generate::add_host::{plan_add_host, AddHostPlan, AddHostRequest};
use nixflip::render::unified_diff;

use super::cluster::{flake_root, load_cluster, print_findings};
use super::confirm;
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
    /// Plan, validate and print the diff; write nothing
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
    /// Extra argument for `nix eval` (repeatable), e.g. --nix-option=--offline
    #[arg(long = "nix-option", value_name = "ARG", allow_hyphen_values = true)]
    pub nix_options: Vec<String>,
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
    if !cli.quiet {
        print!("{}", render_plan(&plan));
    }
    if let Some(code) = validate(cli, &cluster, &plan, args)? {
        return Ok(code);
    }
    let color = cli.color.enabled_for_stdout();
    println!();
    for c in &plan.changes {
        let name = c.path.display().to_string();
        print!(
            "{}",
            unified_diff(&name, c.old.as_deref().unwrap_or(""), &c.new, color)
        );
    }
    if args.dry_run {
        if !cli.quiet {
            eprintln!("dry run: nothing was written");
        }
        return Ok(EXIT_OK);
    }
    apply(cli, &root, &plan, args)?;
    let in_git = track_new_files(cli, &root, &plan);
    if !cli.quiet {
        let commit = if in_git {
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
        println!(
            "\nNext: {commit}restore a base backup of {p} on {n} (pg_basebackup -h {pa} -U replicator -D <data dir> -X stream),\nrebuild {p} first (its pg_hba now admits {n}), then {n}:\n  nixos-rebuild switch --flake .#'{attr}' --target-host root@{a}",
            p = plan.primary,
            n = plan.name,
            pa = plan.primary_address,
            attr = plan.attr,
            a = args.address
        );
    }
    Ok(EXIT_OK)
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

fn render_plan(plan: &AddHostPlan) -> String {
    let mut out = format!(
        "Add {} as a standby of {} ({}): flake attribute {}, file {}\n",
        plan.name,
        plan.primary,
        plan.primary_address,
        plan.attr,
        plan.file.display()
    );
    for c in &plan.changes {
        let what = if c.old.is_none() { "new file" } else { "edit" };
        out.push_str(&format!("  {what:<8}  {}\n", c.path.display()));
    }
    for n in &plan.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    out
}

/// Rules and `nix eval` on a scratch copy with the changes; `Some(exit
/// code)` when the result is not right.
fn validate(
    cli: &Cli,
    cluster: &Cluster,
    plan: &AddHostPlan,
    args: &AddHostArgs,
) -> Result<Option<i32>> {
    let scratch = eval::Scratch::copy_of(&cluster.root)?;
    let writes: Vec<FileWrite> = plan
        .changes
        .iter()
        .map(|c| FileWrite {
            path: scratch.flake().join(&c.path),
            content: c.new.clone(),
        })
        .collect();
    fsx::create_all(&writes)?;
    let after = cluster.with_rewrites(
        scratch.flake(),
        plan.changes.iter().map(|c| (c.path.clone(), c.new.clone())),
        // add-host writes no nixflip.toml: the loaded one holds there too.
        cluster.config.clone(),
    )?;
    if after.member(&plan.name).is_none() {
        return Err(Error::failed(
            format!("{} is not found as a member after the change", plan.name),
            "is its directory excluded in nixflip.toml ([cluster] exclude)?",
        ));
    }
    let errors: Vec<_> = rules::check(&after)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        print_findings(cli, &after, &errors);
        eprintln!(
            "the cluster with {} would not be consistent; nothing was written",
            plan.name
        );
        return Ok(Some(EXIT_FINDINGS));
    }
    if args.no_eval {
        eprintln!("warning: --no-eval: the result was not proven with `nix eval`");
        return Ok(None);
    }
    let evaluated = super::start_member_eval(
        cli,
        &after,
        eval::Flake::Scratch(&scratch),
        &eval::Extra::new(),
        &args.nix_options,
    )?
    .finish()?;
    let mismatches = eval::mismatches(&plan.intended, &evaluated);
    if mismatches.is_empty() {
        if !cli.quiet {
            println!(
                "\nnix eval: {} evaluates as a standby of {}, and {} admits it ({} members, one nix process)",
                plan.name,
                plan.primary,
                plan.primary,
                evaluated.len()
            );
        }
        return Ok(None);
    }
    super::print_mismatches(&mismatches);
    Ok(Some(EXIT_FINDINGS))
}

fn apply(cli: &Cli, root: &std::path::Path, plan: &AddHostPlan, args: &AddHostArgs) -> Result<()> {
    let edited: Vec<PathBuf> = plan
        .changes
        .iter()
        .filter(|c| c.old.is_some())
        .map(|c| c.path.clone())
        .collect();
    if !args.allow_dirty {
        super::promote::refuse_dirty(root, &edited)?;
    }
    if !args.yes {
        confirm(&format!("write {} file(s)?", plan.changes.len()), "writes")?;
    }
    let _lock = fsx::lock(root)?;
    // Under the lock: nothing changed since planning, and the new file is still new.
    for c in &plan.changes {
        let path = root.join(&c.path);
        let unchanged = match &c.old {
            Some(old) => nixflip::error::read_text(&path)? == *old,
            None => !path.exists(),
        };
        if !unchanged {
            return Err(Error::refused(
                format!("{} changed while nixflip was planning", c.path.display()),
                "run the command again",
            ));
        }
    }
    let writes: Vec<FileWrite> = plan
        .changes
        .iter()
        .map(|c| FileWrite {
            path: root.join(&c.path),
            content: c.new.clone(),
        })
        .collect();
    fsx::create_all(&writes)?;
    if !cli.quiet {
        for c in &plan.changes {
            eprintln!("wrote {}", c.path.display());
        }
    }
    Ok(())
}
