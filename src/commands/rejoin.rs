//! `rejoin HOST [--reseed]`: arguments in, the library's rejoin, its choice and report rendered.
//! It must never decide the way itself: the library chooses and says why.

use std::io::IsTerminal;

use clap::Args;
use nixflip::deploy::{RebuildFlags, RebuildOptions};
use nixflip::error::{Error, Result, EXIT_FINDINGS, EXIT_OK};
use nixflip::live::rejoin::{self, Event, Options, Way};
use nixflip::live::switchover::Location;
use nixflip::render;

use super::cluster::print_findings;
use crate::Cli;

#[derive(Args, Debug)]
pub struct RejoinArgs {
    /// The former primary, declared a standby in the flake, to follow the current primary
    pub host: String,
    /// Allow a new base backup when pg_rewind cannot be used (the old data directory is renamed aside, never deleted)
    #[arg(long)]
    pub reseed: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Pass --use-remote-sudo to nixos-rebuild (for non-root targets)
    #[arg(long, conflicts_with = "sudo")]
    pub use_remote_sudo: bool,
    /// Pass --sudo to nixos-rebuild (newer nixos-rebuild; for non-root targets)
    #[arg(long)]
    pub sudo: bool,
    /// Build the configuration on this host (default: [rebuild] build_host)
    #[arg(long, value_name = "HOST")]
    pub build_host: Option<String>,
    /// Append ARG to the nixos-rebuild call (repeatable; replaces [rebuild] extra_args)
    #[arg(
        long = "nixos-rebuild-arg",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub nixos_rebuild_args: Vec<String>,
}

pub fn rejoin(cli: &Cli, args: &RejoinArgs) -> Result<i32> {
    let location = Location {
        flake: match &cli.flake {
            Some(dir) => std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone()),
            None => nixflip::cluster::discover::find_flake_root(std::path::Path::new("."))?,
        },
        config: cli
            .config
            .as_ref()
            .map(|c| std::fs::canonicalize(c).unwrap_or_else(|_| c.clone())),
    };
    let terminal = std::io::stdin().is_terminal();
    if !args.yes && !terminal {
        return Err(Error::refused(
            "stdin is not a terminal, so nixflip cannot ask before it rejoins the host",
            "pass --yes to proceed without asking",
        ));
    }
    let config_rebuild = {
        let root = nixflip::cluster::discover::find_flake_root(&location.flake)?;
        nixflip::config::load(&root, location.config.as_deref())?
            .config
            .rebuild
    };
    let flags = RebuildFlags {
        build_host: args.build_host.clone(),
        use_remote_sudo: args.use_remote_sudo,
        sudo: args.sudo,
        extra_args: args.nixos_rebuild_args.clone(),
        ..RebuildFlags::default()
    };
    let options = Options {
        reseed: args.reseed,
        can_ask: terminal,
        rebuild: RebuildOptions::resolve(&flags, &config_rebuild),
    };
    let quiet = cli.quiet;
    let mut confirm = |question: &str| -> Result<()> {
        if args.yes {
            Ok(())
        } else {
            super::confirm(question, "rejoins the host")
        }
    };
    let report =
        rejoin::rejoin(
            location,
            &args.host,
            options,
            &mut confirm,
            &mut |event| match event {
                Event::Warning(text) => eprintln!("warning: {text}"),
                Event::Chosen(a) => {
                    eprintln!("way: {} ({})", a.way.describe(), a.reason);
                    if a.way == Way::Rewind {
                        eprintln!("rewound: {}", rejoin::range_text(a));
                    }
                }
                _ if quiet => {}
                Event::Step(name) => eprintln!("==> {name}"),
                Event::Doing(text) => eprintln!("    {text}"),
                Event::Output { host, line } => eprintln!("    {host}> {line}"),
            },
        )?;
    print!("{}", render_report(&report));
    let Some(status) = &report.status else {
        return Ok(EXIT_OK);
    };
    println!();
    print!("{}", render::live::table(status));
    if status.findings.is_empty() {
        println!("\nno findings");
        return Ok(EXIT_OK);
    }
    println!();
    let root = nixflip::cluster::discover::find_flake_root(
        cli.flake.as_deref().unwrap_or(std::path::Path::new(".")),
    )?;
    let cluster = super::cluster::load_cluster(cli, &root)?;
    print_findings(cli, &cluster, &status.findings);
    Ok(
        if nixflip::cluster::rules::error_count(&status.findings) > 0 {
            EXIT_FINDINGS
        } else {
            EXIT_OK
        },
    )
}

pub fn render_report(r: &rejoin::Report) -> String {
    let Some(a) = &r.assessment else {
        return format!(
            "{} already streams from {}; nothing to do ({})\n",
            r.host, r.primary, r.receiver
        );
    };
    let way = if r.kept_aside.is_some() {
        Way::Reseed
    } else {
        a.way
    };
    let mut out = format!(
        "rejoined: {} is a standby of {} ({})\n  why: {}\n",
        r.host,
        r.primary,
        way.describe(),
        a.reason
    );
    if a.way == Way::Rewind {
        out.push_str(&format!("  rewound: {}\n", rejoin::range_text(a)));
    }
    if let Some(said) = &r.rewind {
        out.push_str(&format!("  pg_rewind: {said}\n"));
    }
    if let Some(aside) = &r.kept_aside {
        out.push_str(&format!("  old data directory kept at {aside}\n"));
    }
    out.push_str(&format!("  {}\n", r.receiver));
    if let Some(journal) = &r.journal {
        out.push_str(&format!("  journal: {}\n", journal.display()));
    }
    out
}
