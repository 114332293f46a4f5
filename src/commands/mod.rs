//! One module per command group: each turns parsed arguments into library
//! calls and renders the result.

pub mod add_host;
pub mod cluster;
pub mod diff;
pub mod edit;
pub mod explain;
pub mod init;
pub mod promote;
pub mod rebuild;
pub mod secrets;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use nixflip::cluster::Cluster;
use nixflip::error::{Error, Result};
use nixflip::eval;

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

/// Start the one `nix eval` of every member's managed fields in `flake`
/// (the cluster's own, or a scratch copy holding a rewrite); `-v` shows the
/// command. `extra`: the command line's `--nix-option`s.
pub fn start_member_eval(
    cli: &crate::Cli,
    cluster: &Cluster,
    flake: eval::Flake,
    extra: &[String],
) -> Result<eval::Pending> {
    let hosts = eval::member_hosts(cluster);
    let nix_args = eval::configured_nix_args(cluster, extra);
    if cli.verbose > 0 {
        let argv = eval::eval_args(flake, &cluster.option, &hosts, &nix_args);
        eprintln!("running: nix {}", nixflip::names::display_command(&argv));
    }
    eval::start(flake, &cluster.option, &hosts, &nix_args)
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
