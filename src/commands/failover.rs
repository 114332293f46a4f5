//! `failover HOST --fence` (and `--resume`, `--abort`): arguments in, the library's failover, its
//! progress and report rendered. It must never assume the old primary is fenced: the operator says so.

use std::io::IsTerminal;

use clap::Args;
use nixflip::error::{Error, Result, EXIT_OK};
use nixflip::live::switchover::{self, Kind, Location};

use super::switchover::{finish, Progress, RunArgs};
use crate::Cli;

#[derive(Args, Debug)]
pub struct FailoverArgs {
    /// The standby to promote (not with --resume or --abort)
    #[arg(required_unless_present_any = ["resume", "abort"])]
    pub host: Option<String>,
    /// State that the old primary is down or cut off from its clients (required: promoting while it still takes writes is a split brain)
    #[arg(long)]
    pub fence: bool,
    /// Continue the failover in progress after an interruption or a failure
    #[arg(long, conflicts_with = "abort")]
    pub resume: bool,
    /// Drop the failover in progress, if HOST was not promoted yet
    #[arg(long)]
    pub abort: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn failover(cli: &Cli, args: &FailoverArgs) -> Result<i32> {
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
    if (args.resume || args.abort) && args.host.is_some() {
        return Err(Error::usage(
            "--resume and --abort take no HOST: the journal says which failover is in progress",
            "drop the host name",
        ));
    }
    let mut view = Progress::new(cli, Kind::Failover);
    if args.abort {
        let aborted = switchover::abort(Kind::Failover, location, &mut |e| view.event(cli, e))?;
        view.clear();
        println!("aborted: nothing had been changed on the hosts");
        println!("journal: {}", aborted.journal.display());
        return Ok(EXIT_OK);
    }
    let terminal = std::io::stdin().is_terminal();
    if !args.resume && !args.fence {
        let host = args.host.clone().unwrap_or_default();
        if !terminal {
            return Err(Error::refused(
                format!("failover to {host} needs --fence: nixflip does not assume that the old primary is down or cut off"),
                "make sure the old primary cannot take writes (powered off, or cut off from its clients), then pass --fence",
            ));
        }
        super::confirm(
            "is the old primary down or cut off from its clients, so that it cannot take writes while the new one is promoted?",
            "fails over (a split brain is worse than an outage)",
        )?;
    }
    if !args.yes && !terminal {
        return Err(Error::refused(
            "stdin is not a terminal, so nixflip cannot ask before it fails over",
            "pass --yes to proceed without asking",
        ));
    }
    let mut confirm = |question: &str| -> Result<()> {
        if args.yes {
            Ok(())
        } else {
            super::confirm(question, "fails over")
        }
    };
    if args.resume {
        let report = switchover::resume(Kind::Failover, location, &mut confirm, &mut |e| {
            view.event(cli, e)
        });
        view.clear();
        return finish(cli, report?);
    }
    let host = args.host.clone().unwrap_or_default();
    let options = args.run.options(&location)?;
    let report = switchover::failover(location, &host, options, &mut confirm, &mut |e| {
        view.event(cli, e)
    });
    view.clear();
    match report? {
        None => {
            println!("{host} is already the primary; nothing to do");
            Ok(EXIT_OK)
        }
        Some(report) => finish(cli, Some(report)),
    }
}
