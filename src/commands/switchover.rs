//! `switchover HOST` (and `--resume`, `--abort`, `--dry-run`): arguments in, the library's
//! switchover, its progress and report rendered.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::Args;
use nixflip::deploy::{RebuildFlags, RebuildOptions};
use nixflip::error::{Error, Result, EXIT_FINDINGS, EXIT_OK};
use nixflip::live::switchover::{self, Event, Kind, Location, Options, Report, Step};
use nixflip::render;

use super::cluster::print_findings;
use crate::Cli;

#[derive(Args, Debug)]
pub struct SwitchoverArgs {
    /// The standby to make primary (not with --resume or --abort)
    #[arg(required_unless_present_any = ["resume", "abort"])]
    pub host: Option<String>,
    /// Continue the switchover in progress after an interruption or a failure
    #[arg(long, conflicts_with_all = ["abort", "dry_run"])]
    pub resume: bool,
    /// Undo the switchover in progress, if the new primary was not promoted yet
    #[arg(long, conflicts_with = "dry_run")]
    pub abort: bool,
    /// Run the pre-flight and print every step's commands; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// How a new switchover or failover runs: DNS, nixos-rebuild and `nix eval`
/// arguments, and carried address rules.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Leave the DNS record alone
    #[arg(long)]
    pub no_dns: bool,
    /// Build the new configurations on this host (default: [rebuild] build_host)
    #[arg(long, value_name = "HOST")]
    pub build_host: Option<String>,
    /// Pass --use-remote-sudo to nixos-rebuild (for non-root targets)
    #[arg(long, conflicts_with = "sudo")]
    pub use_remote_sudo: bool,
    /// Pass --sudo to nixos-rebuild (newer nixos-rebuild; for non-root targets)
    #[arg(long)]
    pub sudo: bool,
    /// Append ARG to every nixos-rebuild call (repeatable; replaces [rebuild] extra_args)
    #[arg(
        long = "nixos-rebuild-arg",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub nixos_rebuild_args: Vec<String>,
    /// Extra argument for `nix eval` (repeatable), e.g. --nix-option=--offline
    #[arg(long = "nix-option", value_name = "ARG", allow_hyphen_values = true)]
    pub nix_options: Vec<String>,
    /// Carry the old primary's hand-written firewall rules and pg_hba lines to the new primary
    #[arg(long)]
    pub carry_address_rules: bool,
}

impl RunArgs {
    /// Flags that choose how a new switchover runs (a resumed one goes on
    /// as it was started).
    fn start_flags(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if self.no_dns {
            set.push("--no-dns");
        }
        if self.build_host.is_some() {
            set.push("--build-host");
        }
        if self.use_remote_sudo {
            set.push("--use-remote-sudo");
        }
        if self.sudo {
            set.push("--sudo");
        }
        if !self.nixos_rebuild_args.is_empty() {
            set.push("--nixos-rebuild-arg");
        }
        if !self.nix_options.is_empty() {
            set.push("--nix-option");
        }
        if self.carry_address_rules {
            set.push("--carry-address-rules");
        }
        set
    }

    /// The run's options: the rebuild flags over `[rebuild]` of the flake's
    /// nixflip.toml, as `nixflip rebuild` resolves them.
    pub fn options(&self, location: &Location) -> Result<Options> {
        let root = nixflip::cluster::discover::find_flake_root(&location.flake)?;
        let config_rebuild = nixflip::config::load(&root, location.config.as_deref())?
            .config
            .rebuild;
        let flags = RebuildFlags {
            build_host: self.build_host.clone(),
            use_remote_sudo: self.use_remote_sudo,
            sudo: self.sudo,
            extra_args: self.nixos_rebuild_args.clone(),
            ..RebuildFlags::default()
        };
        let rebuild = RebuildOptions::resolve(&flags, &config_rebuild);
        Ok(Options {
            no_dns: self.no_dns,
            build_host: rebuild.build_host,
            use_remote_sudo: rebuild.use_remote_sudo,
            sudo: rebuild.sudo,
            rebuild_args: rebuild.extra_args,
            nix_args: self.nix_options.clone(),
            carry_address_rules: self.carry_address_rules,
        })
    }
}

pub fn switchover(cli: &Cli, args: &SwitchoverArgs) -> Result<i32> {
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
            "--resume and --abort take no HOST: the journal says which switchover is in progress",
            "drop the host name",
        ));
    }
    if (args.resume || args.abort) && !args.run.start_flags().is_empty() {
        return Err(Error::usage(
            format!(
                "{} applies to a new switchover; a resumed one goes on as it was started",
                args.run.start_flags().join(", ")
            ),
            "drop those flags",
        ));
    }
    let mut view = Progress::new(cli, Kind::Switchover);
    if args.abort {
        let aborted = switchover::abort(Kind::Switchover, location, &mut |e| view.event(cli, e))?;
        view.clear();
        match aborted.restarted {
            Some(host) => println!(
                "aborted: {host}'s PostgreSQL and Synapse were started again; it is the primary it was"
            ),
            None => println!("aborted: nothing had been changed on the hosts"),
        }
        println!("journal: {}", aborted.journal.display());
        return Ok(EXIT_OK);
    }
    if !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
        return Err(Error::refused(
            "stdin is not a terminal, so nixflip cannot ask before it switches over",
            "pass --yes to proceed without asking",
        ));
    }
    let mut confirm = |question: &str| -> Result<()> {
        if args.yes {
            Ok(())
        } else {
            super::confirm(question, "switches over")
        }
    };
    if args.resume {
        // No spinner is showing when a question is asked: a step's end
        // clears it, and a resumed run asks before its first step.
        let report = switchover::resume(Kind::Switchover, location, &mut confirm, &mut |e| {
            view.event(cli, e)
        });
        view.clear();
        return finish(cli, report?);
    }
    let host = args.host.clone().unwrap_or_default();
    let options = args.run.options(&location)?;
    if args.dry_run {
        let plan = switchover::dry_run(location, &host, options, &mut |e| view.event(cli, e));
        view.clear();
        let Some(plan) = plan? else {
            println!("{host} is already the primary; nothing to do");
            return Ok(EXIT_OK);
        };
        print!("{}", render_dry_run(&plan));
        eprintln!("dry run: the pre-flight ran; nothing was changed");
        return Ok(EXIT_OK);
    }
    let report = switchover::start(location, &host, options, &mut confirm, &mut |e| {
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

/// The report, then the final `status --live`; exit 1 when it has errors.
pub(super) fn finish(cli: &Cli, report: Option<Report>) -> Result<i32> {
    let Some(report) = report else {
        return Ok(EXIT_OK);
    };
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
    // After a failover the old primary is down or cut off, as the operator
    // said: what status finds about it is expected, and `rejoin` fixes it.
    let counted: Vec<_> = status
        .findings
        .iter()
        .filter(|f| {
            report.kind != Kind::Failover || f.host.as_deref() != Some(report.old_primary.as_str())
        })
        .cloned()
        .collect();
    Ok(if nixflip::cluster::rules::error_count(&counted) > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

fn seconds(s: f64) -> String {
    format!("{s:.2} s")
}

pub fn render_report(r: &Report) -> String {
    let mut out = match r.kind {
        Kind::Switchover => format!(
            "switched over: {} is the primary, {} its standby\n",
            r.new_primary, r.old_primary
        ),
        Kind::Failover => format!(
            "failed over: {} is the primary; {} is declared its standby (bring it back with `nixflip rejoin {}`)\n",
            r.new_primary, r.old_primary, r.old_primary
        ),
    };
    if let Some(loss) = &r.loss {
        out.push_str(&format!(
            "  data-loss window: {}\n",
            loss.describe(&r.old_primary, &r.new_primary)
        ));
    }
    if let Some(lsn) = &r.fence_lsn {
        out.push_str(&format!("  fence LSN: {lsn}"));
        if let Some(tl) = r.timeline {
            out.push_str(&format!(" ({} promoted on timeline {tl})", r.new_primary));
        }
        out.push('\n');
    }
    if r.fence_lsn.is_none() {
        if let Some(tl) = r.timeline {
            out.push_str(&format!("  {} promoted on timeline {tl}\n", r.new_primary));
        }
    }
    if let Some(commit) = &r.commit {
        out.push_str(&format!("  flip committed: {commit}\n"));
    }
    if let Some(dns) = &r.dns {
        out.push_str(&format!("  DNS: {dns}\n"));
    }
    if let Some(v) = &r.smoke {
        out.push_str(&format!(
            "  smoke test: {} answered at {} ({} versions)\n",
            v.url,
            v.address,
            v.versions.len()
        ));
    }
    if let Some(f) = &r.federation {
        out.push_str(&format!("  federation tester: {f}\n"));
    }
    if let Some(w) = r.write_unavailable_seconds {
        out.push_str(&format!(
            "  write-unavailability window: {} (from stopping Synapse on {} to {} taking writes)\n",
            seconds(w),
            r.old_primary,
            r.new_primary
        ));
    }
    if let Some(t) = r.total_seconds {
        out.push_str(&format!(
            "  total: {} without the build ahead ({} building)\n",
            seconds(t),
            seconds(r.build_seconds)
        ));
    }
    out.push_str(&format!("  journal: {}\n", r.journal.display()));
    out
}

pub fn render_dry_run(plan: &switchover::DryRun) -> String {
    let mut out = format!(
        "switchover from {} to {} (dry run)\n\n",
        plan.old_primary, plan.new_primary
    );
    out.push_str(&render::plan::promote_text(&plan.plan));
    for (step, lines) in &plan.steps {
        out.push_str(&format!("\n{}. {}\n", step.number(), step.title()));
        for line in lines {
            let place = match (&line.host, &line.target) {
                (Some(host), Some(target)) => format!("{host} ({target}): "),
                _ => String::new(),
            };
            out.push_str(&format!("   {place}{}\n", line.command));
            if let Some(sql) = &line.sql {
                for sql_line in sql.trim_end().lines() {
                    out.push_str(&format!("       | {sql_line}\n"));
                }
            }
        }
    }
    out
}

/// Progress: a spinner with the current step and its elapsed time on a
/// terminal, plain lines otherwise.
pub(super) struct Progress {
    kind: Kind,
    bar: Option<indicatif::ProgressBar>,
    terminal: bool,
    quiet: bool,
    step: Option<(Step, Instant)>,
}

impl Progress {
    pub(super) fn new(cli: &Cli, kind: Kind) -> Progress {
        Progress {
            kind,
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            quiet: cli.quiet,
            step: None,
        }
    }

    pub(super) fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub(super) fn event(&mut self, cli: &Cli, event: Event<'_>) {
        match event {
            Event::Findings(findings, cluster) => {
                self.clear();
                print_findings(cli, cluster, findings);
            }
            Event::Warning(text) => self.line(&format!("warning: {text}")),
            _ if self.quiet => {}
            Event::Step { step, again } => {
                self.clear();
                self.step = Some((step, Instant::now()));
                let head = format!(
                    "[{}/{}] {}{}",
                    self.kind.position(step),
                    self.kind.steps().len(),
                    step.title(),
                    if again { " (again)" } else { "" }
                );
                if self.terminal {
                    let bar = indicatif::ProgressBar::new_spinner();
                    if let Ok(style) = indicatif::ProgressStyle::with_template(
                        "{spinner} {prefix}: {msg} {elapsed}",
                    ) {
                        bar.set_style(style);
                    }
                    bar.set_prefix(head);
                    bar.enable_steady_tick(Duration::from_millis(100));
                    self.bar = Some(bar);
                } else {
                    eprintln!("==> {head}");
                }
            }
            Event::AlreadyDone { step } => {
                self.line(&format!(
                    "[{}/{}] {}: done earlier",
                    self.kind.position(step),
                    self.kind.steps().len(),
                    step.title()
                ));
            }
            Event::Doing(text) => match &self.bar {
                Some(bar) => bar.set_message(text),
                None => eprintln!("    {text}"),
            },
            Event::Output { host, line } => self.line(&format!("    {host}> {line}")),
            Event::Done { step, seconds: s } => {
                self.clear();
                eprintln!(
                    "[{}/{}] {}: done ({})",
                    self.kind.position(step),
                    self.kind.steps().len(),
                    step.title(),
                    seconds(s)
                );
            }
        }
    }
}
