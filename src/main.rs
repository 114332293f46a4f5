//! The `nixflip` command line: argument parsing and rendering only; the work
//! is done by the library.

#![allow(clippy::result_large_err)]

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use nixflip::render::ColorChoice;

/// Flip primary/standby roles in a NixOS cluster flake: losslessly, checked,
/// and proven with `nix eval` before anything is written.
#[derive(Parser, Debug)]
#[command(
    name = "nixflip",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 success or nothing to do, 1 findings or validation failed, \
2 bad input or usage, 3 an external command failed, 4 refused for safety."
)]
pub struct Cli {
    /// The flake directory (default: the nearest directory with a flake.nix, walking up from here)
    #[arg(long, global = true, value_name = "DIR")]
    pub flake: Option<std::path::PathBuf>,
    /// The nixflip.toml to use (default: FLAKE/nixflip.toml when it exists)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Say less (only errors)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more: show the external commands nixflip runs (nix eval)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When to use colour (NO_COLOR is honoured with `auto`)
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`: the command-line face of [`ColorChoice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    fn choice(self) -> ColorChoice {
        match self {
            ColorWhen::Auto => ColorChoice::Auto,
            ColorWhen::Always => ColorChoice::Always,
            ColorWhen::Never => ColorChoice::Never,
        }
    }

    pub fn enabled_for_stdout(self) -> bool {
        self.choice().enabled_for_stdout()
    }

    pub fn enabled_for_stderr(self) -> bool {
        self.choice().enabled_for_stderr()
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the value a .nix file defines at an attribute path
    Get(commands::edit::GetArgs),
    /// Set an attribute in a .nix file, changing nothing else
    Set(commands::edit::SetArgs),
    /// Remove an attribute's binding from a .nix file
    Unset(commands::edit::UnsetArgs),
    /// Show the cluster members, their roles and addresses, then any findings
    Status(commands::cluster::StatusArgs),
    /// Check the cluster's consistency (pre-commit entry point); exit 1 on errors
    Check(commands::cluster::CheckArgs),
    /// Make HOST the primary and the old primary a standby: plan, validate with nix eval, diff, apply
    Promote(commands::promote::PromoteArgs),
    /// Manage the git pre-commit hook
    #[command(subcommand)]
    Hook(commands::cluster::HookCommand),
    /// Run nixos-rebuild on the members in role order: the primary first, then the standbys
    Rebuild(commands::rebuild::RebuildArgs),
    /// Planned failover to HOST with no committed data lost: fence, catch up, promote, flip, switch, DNS, smoke test
    Switchover(commands::switchover::SwitchoverArgs),
    /// The primary is gone: promote the standby HOST with what it has (--fence), flip, switch, DNS, smoke test
    Failover(commands::failover::FailoverArgs),
    /// Make a former primary a standby of the current primary: plain standby, pg_rewind, or (--reseed) a new base backup
    Rejoin(commands::rejoin::RejoinArgs),
    /// Role diff between two git revisions (or the work tree), for reviewers and PR bots
    Diff(commands::diff::DiffArgs),
    /// Post the role diff on a pull request, or update nixflip's earlier comment
    Comment(commands::diff::CommentArgs),
    /// Create a new cluster flake: module, host files, flake.nix, nixflip.toml, hook and CI files
    Init(commands::init::InitArgs),
    /// Add a standby of the current primary: host file, flake entry, every member's allowedSourceIPs
    AddHost(commands::add_host::AddHostArgs),
    /// Explain a finding: what it means, why it matters, how to fix it (e.g. `nixflip explain NF003`)
    Explain(commands::explain::ExplainArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, e.g. `nixflip man > nixflip.1`
    Man,
    /// SOPS secrets: declarations, keys, recipients, .sops.yaml rules, decryption
    #[command(subcommand)]
    Secrets(commands::secrets::SecretsCommand),
    /// (internal) Remove a scratch copy once stdin closes; started by nixflip itself
    #[command(hide = true)]
    Janitor { dir: std::path::PathBuf },
}

fn print_completions(shell: clap_complete::Shell) -> nixflip::Result<i32> {
    let mut command = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut command, "nixflip", &mut std::io::stdout());
    Ok(nixflip::error::EXIT_OK)
}

/// One man page for the whole tool: clap_mangen's sections, with the
/// subcommands listed in it (with their usage and options) instead of
/// pointing at `nixflip-COMMAND(1)` pages that are never installed.
fn print_man() -> nixflip::Result<i32> {
    let command = <Cli as clap::CommandFactory>::command();
    let mut page = Vec::new();
    man_page(&command, &mut page).map_err(|e| {
        nixflip::Error::external(format!("cannot render the man page: {e}"), "report this")
    })?;
    use std::io::Write;
    std::io::stdout().write_all(&page).map_err(|e| {
        nixflip::Error::external(format!("cannot write the man page: {e}"), "check stdout")
    })?;
    Ok(nixflip::error::EXIT_OK)
}

fn man_page(command: &clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    use roff::{roman, Roff};
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let mut commands = Roff::new();
    commands.control("SH", ["COMMANDS"]);
    for sub in command.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = format!("nixflip {}", sub.get_name());
        if sub.has_subcommands() {
            for nested in sub.get_subcommands().filter(|c| !c.is_hide_set()) {
                let nested_name = format!("{name} {}", nested.get_name());
                man_command(&mut commands, nested, &nested_name);
            }
        } else {
            man_command(&mut commands, sub, &name);
        }
    }
    commands.text([roman(
        "Run nixflip COMMAND --help for the full help of a command.",
    )]);
    commands.to_writer(out)?;
    man.render_extra_section(out)?;
    man.render_version_section(out)
}

/// One entry of the man page's COMMANDS section: usage, about, arguments.
fn man_command(page: &mut roff::Roff, command: &clap::Command, name: &str) {
    use roff::{bold, roman};
    let mut command = command.clone().bin_name(name);
    let usage = command.render_usage().to_string();
    page.control("TP", []);
    page.text([bold(usage.trim_start_matches("Usage: "))]);
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        page.text([roman(about.to_string())]);
    }
    let shown = command.get_arguments().filter(|a| {
        !a.is_hide_set() && !a.is_global_set() && !matches!(a.get_id().as_str(), "help" | "version")
    });
    for arg in shown {
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => arg.get_id().to_string().to_uppercase(),
        };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        page.control("RS", []);
        page.control("TP", []);
        page.text([bold(flag)]);
        page.text([roman(help)]);
        page.control("RE", []);
    }
}

fn main() -> ExitCode {
    // A janitor (started by promote, see nixflip::eval::Scratch) starts up
    // while promote's Nix does: it skips the argument parser.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let [_, command, dir] = args.as_slice() {
        if command == "janitor" {
            return ExitCode::from(nixflip::eval::janitor(std::path::Path::new(dir)) as u8);
        }
    }
    let cli = Cli::parse();
    nixflip::eval::enable_janitor();
    let color = cli.color.enabled_for_stderr();
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(color)
                // Nix's own messages and URLs are shown as they are, not
                // re-wrapped at 80 columns; the terminal wraps long lines.
                .wrap_lines(false)
                .build(),
        )
    }));
    let result = match &cli.command {
        Command::Get(args) => commands::edit::get(&cli, args),
        Command::Set(args) => commands::edit::set(&cli, args),
        Command::Unset(args) => commands::edit::unset(&cli, args),
        Command::Status(args) => commands::cluster::status(&cli, args),
        Command::Check(args) => commands::cluster::check(&cli, args),
        Command::Hook(command) => commands::cluster::hook(&cli, command),
        Command::Promote(args) => commands::promote::promote(&cli, args),
        Command::Rebuild(args) => commands::rebuild::rebuild(&cli, args),
        Command::Switchover(args) => commands::switchover::switchover(&cli, args),
        Command::Rejoin(args) => commands::rejoin::rejoin(&cli, args),
        Command::Failover(args) => commands::failover::failover(&cli, args),
        Command::Diff(args) => commands::diff::diff(&cli, args),
        Command::Comment(args) => commands::diff::comment(&cli, args),
        Command::Init(args) => commands::init::init(&cli, args),
        Command::AddHost(args) => commands::add_host::add_host(&cli, args),
        Command::Explain(args) => commands::explain::explain(args),
        Command::Completions { shell } => print_completions(*shell),
        Command::Man => print_man(),
        Command::Secrets(command) => commands::secrets::secrets(&cli, command),
        Command::Janitor { dir } => Ok(nixflip::eval::janitor(dir)),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(error) => {
            let code = error.exit_code();
            eprintln!("{:?}", miette::Report::new(error));
            ExitCode::from(code as u8)
        }
    }
}
