//! `init [DIR]`: scaffold a complete cluster flake from the embedded templates.

use std::path::PathBuf;

use clap::Args;
use nixflip::error::{Error, Result, EXIT_OK};
use nixflip::fsx::{self, FileWrite};
use nixflip::generate::{self, HostSpec, InitSpec};

use crate::Cli;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Where to create the flake (default: the current directory)
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The Matrix server name (matrixDomain), e.g. example.org
    #[arg(long)]
    pub domain: String,
    /// The primary, as NAME=ADDRESS
    #[arg(long, value_name = "NAME=ADDRESS")]
    pub primary: HostSpec,
    /// A standby, as NAME=ADDRESS (repeatable; at least one)
    #[arg(long = "standby", value_name = "NAME=ADDRESS", required = true)]
    pub standbys: Vec<HostSpec>,
    /// The system of every host (the `NAME|SYSTEM` attribute suffix)
    #[arg(long, default_value = generate::DEFAULT_SYSTEM)]
    pub system: String,
    /// Overwrite files that already exist
    #[arg(long)]
    pub force: bool,
}

pub fn init(cli: &Cli, args: &InitArgs) -> Result<i32> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let spec = InitSpec {
        domain: args.domain.clone(),
        primary: args.primary.clone(),
        standbys: args.standbys.clone(),
        system: args.system.clone(),
    };
    if !is_system(&spec.system) {
        return Err(Error::usage(
            format!("`{}` is not a Nix system name", spec.system),
            "for example x86_64-linux or aarch64-linux",
        ));
    }
    let files = generate::init_files(&spec)?;
    let existing: Vec<String> = files
        .iter()
        .filter(|f| dir.join(&f.path).exists())
        .map(|f| f.path.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(Error::refused(
            format!(
                "{} already has files nixflip would write:\n  {}",
                dir.display(),
                existing.join("\n  ")
            ),
            "pick an empty directory, or pass --force to overwrite them",
        ));
    }
    let writes: Vec<FileWrite> = files
        .iter()
        .map(|f| FileWrite {
            path: dir.join(&f.path),
            content: f.content.clone(),
        })
        .collect();
    fsx::create_all(&writes)?;
    let in_git = track_files(cli, &dir, &files);
    if !cli.quiet {
        print!("{}", summary(&dir, &spec, &files, &existing, in_git));
    }
    Ok(EXIT_OK)
}

/// In a git work tree, `git add --intent-to-add` what was written (a git
/// flake sees no untracked file); whether DIR is in one. A failure is a
/// warning: the files are written.
fn track_files(cli: &Cli, dir: &std::path::Path, files: &[generate::Generated]) -> bool {
    let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    match generate::git_intent_to_add(dir, &paths) {
        Ok(true) => {
            if !cli.quiet {
                eprintln!("git add --intent-to-add: the new files (so the git flake sees them)");
            }
            true
        }
        Ok(false) => false,
        Err(e) => {
            eprintln!("warning: the files are written, but git does not know them:");
            eprintln!("{:?}", miette::Report::new(e));
            true
        }
    }
}

fn is_system(system: &str) -> bool {
    let mut parts = system.split('-');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// What was written and what to run next.
fn summary(
    dir: &std::path::Path,
    spec: &InitSpec,
    files: &[generate::Generated],
    replaced: &[String],
    in_git: bool,
) -> String {
    let mut out = format!(
        "Created the {} cluster flake in {}:\n",
        spec.domain,
        dir.display()
    );
    for f in files {
        let path = f.path.display().to_string();
        let mark = if replaced.contains(&path) {
            "  (replaced)"
        } else {
            ""
        };
        out.push_str(&format!("  {path}{mark}\n"));
    }
    let p = &spec.primary;
    out.push_str("\nNext:\n");
    if dir != std::path::Path::new(".") {
        out.push_str(&format!("  cd {}\n", dir.display()));
    }
    // Inside a repository `git init` would nest a second one.
    out.push_str(if in_git {
        "  git add . && git commit -m 'matrix cluster'    # flakes only see files git tracks\n"
    } else {
        "  git init && git add -A      # flakes only see files git tracks\n"
    });
    out.push_str(&format!(
        "  nix flake lock              # pin nixpkgs (needs the network)\n  nixflip check               # the cluster is consistent\n  nixflip hook install        # or: pre-commit install\n  # put the secrets in place (see the comments in hosts/*.nix), then rebuild the primary first:\n  nixos-rebuild switch --flake .#'{}|{}' --target-host root@{}\n",
        p.name,
        spec.system,
        p.address
    ));
    for s in &spec.standbys {
        out.push_str(&format!(
            "  # on {}: pg_basebackup from {} into the data directory, then\n  nixos-rebuild switch --flake .#'{}|{}' --target-host root@{}\n",
            s.name, p.name, s.name, spec.system, s.address
        ));
    }
    out
}
