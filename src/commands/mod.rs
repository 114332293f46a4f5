//! One module per command group: each turns parsed arguments into library
//! calls and renders the result.

pub mod add_host;
pub mod cluster;
pub mod diff;
pub mod edit;
pub mod explain;
pub mod failover;
pub mod init;
pub mod live;
pub mod promote;
pub mod rebuild;
pub mod rejoin;
pub mod secrets;
pub mod switchover;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use nixflip::error::{Error, Result};
use nixflip::eval;
use nixflip::transaction;

/// Ask `question` on the terminal; refuse (exit 4) when stdin is not one, so
/// nixflip never waits on a pipe. `what` names what was not done.
pub fn confirm(question: &str, what: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::refused(
            format!("stdin is not a terminal, so nixflip cannot ask before it {what}"),
            "pass --yes to proceed without asking",
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::refused(format!("cannot read the answer: {e}"), "pass --yes"))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES") {
        Ok(())
    } else {
        Err(Error::refused(
            format!("not confirmed; nixflip did not proceed ({what})"),
            "answer y to proceed",
        ))
    }
}

/// Run git in `root` with an argv (no shell); its stdout, or an exit-3 error
/// carrying git's own message.
pub fn git(root: &Path, args: &[&str]) -> Result<String> {
    nixflip::git::text(root, args)
}

/// The flags of every command that writes a change of the flake (promote,
/// add-host): one struct, flattened into each, read by the library as
/// [`transaction::WriteOptions`] and [`transaction::Proof`].
#[derive(clap::Args, Debug, Clone)]
pub struct WriteArgs {
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
    /// Make one git commit of the change
    #[arg(long)]
    pub commit: bool,
    /// Extra argument for `nix eval` (repeatable), e.g. --nix-option=--offline
    #[arg(long = "nix-option", value_name = "ARG", allow_hyphen_values = true)]
    pub nix_options: Vec<String>,
}

impl WriteArgs {
    pub fn options(&self) -> transaction::WriteOptions {
        transaction::WriteOptions {
            dry_run: self.dry_run,
            yes: self.yes,
            interactive: std::io::stdin().is_terminal(),
            allow_dirty: self.allow_dirty,
            commit: self.commit,
        }
    }

    pub fn proof(&self, skip_secrets: bool) -> transaction::Proof {
        transaction::Proof {
            eval: !self.no_eval,
            skip_secrets,
            nix_args: self.nix_options.clone(),
        }
    }
}

/// `-v` shows the `nix` command the library is about to run.
pub fn show_command(cli: &crate::Cli) -> impl FnMut(&[String]) + '_ {
    move |argv: &[String]| {
        if cli.verbose > 0 {
            eprintln!("running: nix {}", nixflip::names::display_command(argv));
        }
    }
}

/// Render a validation that did not pass, and its exit code (or the
/// refusal for missing secrets). `what` names the change in the messages.
pub fn report_failed_validation(
    cli: &crate::Cli,
    validation: &transaction::Validation,
    what: &str,
) -> Result<i32> {
    use transaction::Outcome;
    match &validation.outcome {
        Outcome::Proven { .. } | Outcome::Unproven => Ok(nixflip::error::EXIT_OK),
        Outcome::Inconsistent {
            findings,
            evaluated,
        } => {
            cluster::print_findings(cli, &validation.after, findings);
            let how = if *evaluated {
                ", as nix eval computes it,"
            } else {
                ""
            };
            eprintln!("{what}{how} would not be consistent; nothing was written");
            Ok(nixflip::error::EXIT_FINDINGS)
        }
        Outcome::Mismatched(mismatches) => {
            print_mismatches(mismatches);
            eprintln!("help: another definition wins over the one nixflip edited (a lib.mkForce or mkOverride elsewhere?); find it with `nixflip status` or `nix eval`, then fix or remove it");
            Ok(nixflip::error::EXIT_FINDINGS)
        }
        Outcome::SecretsMissing { host, missing } => {
            let findings: Vec<_> = missing.iter().map(|f| f.finding.clone()).collect();
            cluster::print_findings(cli, &validation.after, &findings);
            Err(transaction::secrets_refusal(host, missing))
        }
        Outcome::MemberMissing(name) => Err(Error::failed(
            format!("{name} is not found as a member after the change"),
            "is its directory excluded in nixflip.toml ([cluster] exclude)?",
        )),
    }
}

/// Warnings a passed validation carries: secrets notes, skipped secrets,
/// no evaluation.
pub fn report_validation_warnings(
    cli: &crate::Cli,
    validation: &transaction::Validation,
    host: &str,
) {
    if !cli.quiet {
        cluster::print_findings(cli, &validation.after, &validation.secret_notes);
    }
    if !validation.secrets_skipped.is_empty() {
        let lines: Vec<String> = validation
            .secrets_skipped
            .iter()
            .map(|f| transaction::secret_problem_line(f, true))
            .collect();
        eprintln!(
            "warning: --skip-secrets: {host} will be primary without secrets it needs; Synapse may not start there:\n{}",
            lines.join("\n")
        );
    }
    if matches!(validation.outcome, transaction::Outcome::Unproven) {
        eprintln!("warning: --no-eval: the change was not proven with `nix eval`");
    }
}

/// What was written, and the commit made with `--commit` (a failed one is
/// the command's error: the files are written, the message says how to
/// commit them).
pub fn report_applied(cli: &crate::Cli, applied: transaction::Applied) -> Result<bool> {
    if !cli.quiet {
        for path in &applied.written {
            eprintln!("wrote {}", path.display());
        }
    }
    match applied.commit {
        transaction::Commit::NotAsked => Ok(false),
        transaction::Commit::Made { id, subject } => {
            println!("committed {id}: {subject}");
            Ok(true)
        }
        transaction::Commit::Failed(error) => Err(error),
    }
}

/// Every field where `nix eval` disagrees with the plan, on stderr.
pub fn print_mismatches(mismatches: &[eval::Mismatch]) {
    eprintln!("nix eval disagrees with the plan; nothing was written:");
    for m in mismatches {
        eprintln!(
            "  {}: {} should be {} but evaluates to {}",
            m.host, m.field, m.intended, m.evaluated
        );
    }
}
