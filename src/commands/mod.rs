//! One module per command group: each turns parsed arguments into library
//! calls and renders the result.

pub mod add_host;
pub mod cluster;
pub mod diff;
pub mod edit;
pub mod init;
pub mod promote;
pub mod rebuild;
pub mod secrets;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use nixflip::error::{Error, Result};

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
    let output = duct::cmd("git", args)
        .dir(root)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| Error::external(format!("cannot run git: {e}"), "install git"))?;
    if !output.status.success() {
        return Err(Error::external(
            format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            "see git's message",
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
