//! `promote HOST`: plan the flip, prove it in a scratch copy with the rules,
//! the secrets gate and one `nix eval`, show the diff, then write it all or
//! nothing (the pipeline is [`nixflip::transaction`]).

use clap::{Args, ValueEnum};
use nixflip::cluster::carry::Action;
use nixflip::cluster::plan::{plan_promote, Plan};
use nixflip::error::{Result, EXIT_OK};
use nixflip::render::plan as render_plan;
use nixflip::transaction::{self, Change};

use super::cluster::{flake_root, load_cluster};
use super::{confirm, WriteArgs};
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
    #[command(flatten)]
    pub write: WriteArgs,
    /// After writing, run nixos-rebuild: the new primary first, then the old primary, then the others
    #[arg(long)]
    pub rebuild: bool,
    /// Promote even if the new primary would lack a SOPS secret it needs (a warning says so)
    #[arg(long)]
    pub skip_secrets: bool,
    /// Also give the new primary the old primary's hand-written firewall rules and pg_hba lines
    /// that name members (plain strings and lists under networking.firewall.* and
    /// services.postgresql.authentication), addresses exchanged; the old copies stay
    #[arg(long)]
    pub carry_address_rules: bool,
    /// Output format of the plan and diff
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

pub fn promote(cli: &Cli, args: &PromoteArgs) -> Result<i32> {
    let root = flake_root(cli, None)?;
    let cluster = load_cluster(cli, &root)?;
    let plan = plan_promote(&cluster, &args.host, args.carry_address_rules)?;
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
    // Refusals that need no evaluation come before the plan is shown and
    // before Nix runs: flags, no terminal to ask on, the lock, a dirty tree.
    let session = transaction::begin(&root, args.write.options())?;
    let change = Change::promote(&cluster, &plan)?;
    session.refuse_dirty(&change)?;
    if args.format == PlanFormat::Text && !cli.quiet {
        print!("{}", render_plan::promote_text(&plan));
    }
    let validation = transaction::validate(
        &cluster,
        &change,
        &args.write.proof(args.skip_secrets),
        &mut super::show_command(cli),
    )?;
    if !validation.passed() {
        return super::report_failed_validation(cli, &validation, "the flipped cluster");
    }
    super::report_validation_warnings(cli, &validation, &plan.new_primary);
    if let transaction::Outcome::Proven { members } = validation.outcome {
        if !cli.quiet && args.format == PlanFormat::Text {
            println!("\nnix eval: every member evaluates to the planned roles ({members} members, one nix process)");
        }
    }
    warn_unrewritten(cli, &plan);
    match args.format {
        PlanFormat::Text => {
            println!();
            print!(
                "{}",
                render_plan::diffs(&change.files, cli.color.enabled_for_stdout())
            );
        }
        PlanFormat::Markdown => print!("{}", render_plan::promote_markdown(&plan, &change.files)),
        PlanFormat::Json => println!(
            "{}",
            render_plan::promote_json(&plan, &change.files, args.write.dry_run)
        ),
    }
    if args.write.dry_run {
        if !cli.quiet {
            eprintln!("dry run: nothing was written");
        }
    } else {
        if !args.write.yes {
            confirm(&format!("write {} file(s)?", change.files.len()), "writes")?;
        }
        super::report_applied(cli, session.apply(&change)?)?;
    }
    if args.rebuild {
        return rebuild_after(cli, &plan, args);
    }
    Ok(EXIT_OK)
}

/// One line on stderr when the plan leaves literals that need an edit:
/// the plan lists them, this makes sure they are not missed.
fn warn_unrewritten(cli: &Cli, plan: &Plan) {
    let pending = plan
        .not_rewritten
        .iter()
        .filter(|n| match (n.action, &n.edit) {
            (Action::Stays, _) | (_, None) => false,
            (Action::Carry, Some(e)) => !(plan.carry_address_rules && e.carryable),
            (Action::Edit, Some(_)) => true,
        })
        .count();
    if pending > 0 && !cli.quiet {
        let hint = if plan.carry_address_rules {
            ""
        } else {
            " (--carry-address-rules carries the old primary's firewall rules and pg_hba lines)"
        };
        eprintln!(
            "warning: {pending} literal(s) outside the cluster options name a member whose role flips and are not rewritten; the plan lists each with its edit{hint}"
        );
    }
}

/// `--rebuild`: the rebuild command, in the order the flip requires.
fn rebuild_after(cli: &Cli, plan: &Plan, args: &PromoteArgs) -> Result<i32> {
    let rebuild_args = super::rebuild::RebuildArgs {
        hosts: Vec::new(),
        dry_run: args.write.dry_run,
        action: None,
        build_host: None,
        use_remote_sudo: false,
        sudo: false,
        nixos_rebuild_args: Vec::new(),
        yes: args.write.yes,
        ignore_findings: false,
    };
    super::rebuild::rebuild_in_order(
        cli,
        &rebuild_args,
        Some((&plan.new_primary, plan.old_primary.as_deref())),
    )
}
