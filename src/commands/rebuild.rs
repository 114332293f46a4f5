//! `rebuild [HOSTS…]`: run `nixos-rebuild` on the members in role order
//! (the primary first, then the standbys); stop at the first
//! failure and print the command that resumes from it.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use nixflip::cluster::rules;
use nixflip::deploy::{self, Event, RebuildOptions, RebuildReport, ResumeContext};
use nixflip::error::{Error, Result, EXIT_EXTERNAL, EXIT_OK};
use nixflip::names;

use super::cluster::{flake_root, load_cluster, print_findings};
use crate::Cli;

#[derive(Args, Debug)]
pub struct RebuildArgs {
    /// Hosts to rebuild (default: every member); they always run in role order
    pub hosts: Vec<String>,
    /// Print the nixos-rebuild commands, run nothing
    #[arg(long)]
    pub dry_run: bool,
    /// nixos-rebuild action (default: [rebuild] action in nixflip.toml, else switch)
    #[arg(long, value_name = "ACTION", value_parser = clap::builder::PossibleValuesParser::new(deploy::ACTIONS))]
    pub action: Option<String>,
    /// Build on this host (default: [rebuild] build_host)
    #[arg(long, value_name = "HOST")]
    pub build_host: Option<String>,
    /// Pass --use-remote-sudo (older nixos-rebuild; for non-root targets)
    #[arg(long, conflicts_with = "sudo")]
    pub use_remote_sudo: bool,
    /// Pass --sudo (newer nixos-rebuild; for non-root targets)
    #[arg(long)]
    pub sudo: bool,
    /// Append ARG to every nixos-rebuild call (repeatable; replaces [rebuild] extra_args)
    #[arg(
        long = "nixos-rebuild-arg",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub nixos_rebuild_args: Vec<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Rebuild even when the cluster's consistency check finds errors
    #[arg(long)]
    pub ignore_findings: bool,
}

impl RebuildArgs {
    fn flags(&self) -> deploy::RebuildFlags {
        deploy::RebuildFlags {
            action: self.action.clone(),
            build_host: self.build_host.clone(),
            use_remote_sudo: self.use_remote_sudo,
            sudo: self.sudo,
            extra_args: self.nixos_rebuild_args.clone(),
            dry_run: self.dry_run,
        }
    }
}

pub fn rebuild(cli: &Cli, args: &RebuildArgs) -> Result<i32> {
    rebuild_in_order(cli, args, None)
}

/// Rebuild; `promoted` = (new primary, old primary) right after a flip, which
/// fixes the order: the new primary first, then the old one, then the rest.
pub fn rebuild_in_order(
    cli: &Cli,
    args: &RebuildArgs,
    promoted: Option<(&str, Option<&str>)>,
) -> Result<i32> {
    let root = flake_root(cli, None)?;
    let cluster = load_cluster(cli, &root)?;
    let opts = RebuildOptions::resolve(&args.flags(), &cluster.config.config.rebuild);
    opts.validate()?;
    deploy::check_hosts(&cluster, &args.hosts)?;

    let findings = rules::check(&cluster);
    if rules::error_count(&findings) > 0 {
        print_findings(cli, &cluster, &findings);
        if !args.ignore_findings {
            return Err(Error::refused(
                "the cluster has consistency errors; rebuilding now could apply them",
                "fix them (see `nixflip check`), or pass --ignore-findings",
            ));
        }
    }

    let hosts = deploy::order(
        &cluster,
        promoted.map(|p| p.0),
        promoted.and_then(|p| p.1),
        &args.hosts,
    );
    let steps = deploy::plan(&cluster, &hosts)?;
    if steps.is_empty() {
        if !cli.quiet {
            println!("no cluster members to rebuild in {}", root.display());
        }
        return Ok(EXIT_OK);
    }
    if opts.dry_run {
        for step in &steps {
            println!("{}", names::display_command(&deploy::command(step, &opts)));
        }
        return Ok(EXIT_OK);
    }

    deploy::require_nixos_rebuild()?;
    if !args.yes {
        confirm(&steps, &opts)?;
    }

    let mut spinner: Option<indicatif::ProgressBar> = None;
    let show_progress = std::io::stderr().is_terminal() && !cli.quiet;
    let mut on_event = |event: Event| match event {
        Event::Started { host, command } => {
            eprintln!("==> {host}: {}", names::display_command(&command));
            if show_progress {
                let bar = indicatif::ProgressBar::new_spinner();
                if let Ok(style) =
                    indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                {
                    bar.set_style(style);
                }
                bar.set_message(format!("rebuilding {host}"));
                bar.enable_steady_tick(Duration::from_millis(120));
                spinner = Some(bar);
            }
        }
        Event::Output { line, .. } => match &spinner {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        },
        Event::Finished { host, ok, code } => {
            if let Some(bar) = spinner.take() {
                bar.finish_and_clear();
            }
            if ok {
                eprintln!("==> {host}: done");
            } else {
                eprintln!("==> {host}: failed ({})", describe_code(code));
            }
        }
    };
    let report = deploy::run(&steps, &opts, &mut on_event)?;

    let context = ResumeContext {
        flake: Some(root.clone()),
        config: cli
            .config
            .as_ref()
            .map(|c| std::fs::canonicalize(c).unwrap_or_else(|_| c.clone())),
    };
    print_summary(cli, &report, &opts, &context);
    Ok(if report.ok() { EXIT_OK } else { EXIT_EXTERNAL })
}

fn describe_code(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".into(),
    }
}

/// Show the commands in order, then ask (refused without a terminal).
fn confirm(steps: &[deploy::Step], opts: &RebuildOptions) -> Result<()> {
    if std::io::stdin().is_terminal() {
        eprintln!("nixflip will run, in this order, stopping at the first failure:");
        for step in steps {
            eprintln!("  {}", names::display_command(&deploy::command(step, opts)));
        }
    }
    super::confirm(
        &format!("Rebuild {} host(s)?", steps.len()),
        "rebuilds (or --dry-run to see the commands)",
    )
}

fn print_summary(
    cli: &Cli,
    report: &RebuildReport,
    opts: &RebuildOptions,
    context: &ResumeContext,
) {
    if report.ok() && cli.quiet {
        return;
    }
    let list = |hosts: &[String]| {
        if hosts.is_empty() {
            "-".to_string()
        } else {
            hosts.join(", ")
        }
    };
    println!("rebuilt:     {}", list(&report.done));
    if let Some(failed) = &report.failed {
        println!(
            "failed:      {} ({}): {}",
            failed.host,
            describe_code(failed.code),
            names::display_command(&failed.command)
        );
    }
    println!("not rebuilt: {}", list(&report.not_run));
    if let Some(resume) = deploy::resume_command(report, opts, context) {
        println!("resume with: {}", names::display_command(&resume));
    }
}
