//! `status`, `check` and `hook install`: the cluster as it is written.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use nixflip::cluster::{rules, Cluster, Finding};
use nixflip::config;
use nixflip::error::{Error, Result, EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK};
use nixflip::generate::HOOK_MARKER;
use nixflip::render::{self, FindingDiagnostic};

use crate::Cli;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON (stable: members and findings)
    #[arg(long)]
    pub json: bool,
    /// Read what every member runs, over ssh and in parallel (PostgreSQL's role, timeline, LSNs,
    /// replication, slots, Synapse, disk), and report drift from the flake and danger; exit 1 on
    /// an error finding, 3 when a host cannot be reached
    #[arg(long)]
    pub live: bool,
    /// With --live, on a terminal: redraw every SECONDS until interrupted (Ctrl-C)
    #[arg(
        long,
        value_name = "SECONDS",
        requires = "live",
        conflicts_with = "json"
    )]
    pub watch: Option<u64>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum CheckFormat {
    Text,
    Json,
    Github,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Files or directories whose clusters to check (as pre-commit passes them); default: the flake
    pub paths: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    /// Also evaluate every member's managed fields with one `nix eval` and run the rules on what
    /// Nix computes (catches definitions nixflip cannot see, e.g. a mkForce in an outside module)
    #[arg(long)]
    pub eval: bool,
    /// Check the cluster as it is staged in the git index (what `git commit` would record),
    /// not the files in the work tree: the pre-commit entry point
    #[arg(long, conflicts_with = "eval")]
    pub staged: bool,
    /// Extra argument for `nix eval` with --eval (repeatable), e.g. --nix-option=--offline
    #[arg(
        long = "nix-option",
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "eval"
    )]
    pub nix_options: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Write .git/hooks/pre-commit that runs `nixflip check` on staged .nix files
    Install(HookInstallArgs),
}

#[derive(Args, Debug)]
pub struct HookInstallArgs {
    /// Replace a pre-commit hook that nixflip did not write
    #[arg(long)]
    pub force: bool,
}

/// The flake root from --flake, or by walking up from `start`.
pub fn flake_root(cli: &Cli, start: Option<&Path>) -> Result<PathBuf> {
    match &cli.flake {
        Some(dir) => nixflip::cluster::discover::find_flake_root(dir),
        None => nixflip::cluster::discover::find_flake_root(start.unwrap_or(Path::new("."))),
    }
}

pub fn load_cluster(cli: &Cli, root: &Path) -> Result<Cluster> {
    let loaded = config::load(root, cli.config.as_deref())?;
    Cluster::load(root, loaded)
}

pub fn status(cli: &Cli, args: &StatusArgs) -> Result<i32> {
    let root = flake_root(cli, None)?;
    let cluster = load_cluster(cli, &root)?;
    if args.live {
        return super::live::status(cli, args, &root, &cluster);
    }
    let findings = rules::check(&cluster);
    let literals = nixflip::cluster::addresses::scan(&cluster);
    let mentions = nixflip::cluster::addresses::mentions(&cluster, &literals);
    if args.json {
        let json = render::status::json(&root, &cluster, &mentions, &findings);
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
        return Ok(status_code(&findings));
    }
    print!(
        "{}",
        render::status::text(&root, &cluster, &mentions, render::stdout_width())
    );
    if cluster.members.is_empty() {
        return Ok(EXIT_OK);
    }
    if findings.is_empty() {
        println!("\nno findings");
    } else {
        println!();
        print_findings(cli, &cluster, &findings);
    }
    Ok(status_code(&findings))
}

/// `status` exits like `check`: 1 when it lists an error finding.
fn status_code(findings: &[Finding]) -> i32 {
    if rules::error_count(findings) > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

/// Findings as miette diagnostics on stderr.
pub fn print_findings(cli: &Cli, cluster: &Cluster, findings: &[Finding]) {
    for finding in findings {
        // Findings may point into files that are not Nix (SOPS files, .sops.yaml).
        let text = cluster
            .sources
            .text(&finding.file)
            .map(str::to_string)
            .or_else(|| std::fs::read_to_string(cluster.root.join(&finding.file)).ok())
            .unwrap_or_default();
        let diagnostic = FindingDiagnostic {
            finding: finding.clone(),
            src: miette::NamedSource::new(finding.file.display().to_string(), text),
        };
        if !cli.quiet || finding.severity == nixflip::cluster::Severity::Error {
            eprintln!("{:?}", miette::Report::new(diagnostic));
        }
    }
}

fn summary(findings: &[Finding], members: usize) -> String {
    let errors = rules::error_count(findings);
    let warnings = findings.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {} in {}",
        plural(errors, "error"),
        plural(warnings, "warning"),
        plural(members, "member")
    )
}

pub fn check(cli: &Cli, args: &CheckArgs) -> Result<i32> {
    let roots = check_roots(cli, args)?;
    let mut worst = EXIT_OK;
    let mut all_json = Vec::new();
    // A failed `nix eval` does not hide the static findings: they are
    // reported first, then Nix's error (its exit code, 3).
    let mut eval_error = None;
    for root in &roots {
        let (code, json, failed) = check_flake(cli, args, root)?;
        worst = worst.max(code);
        all_json.extend(json);
        if eval_error.is_none() {
            eval_error = failed;
        }
    }
    if args.format == CheckFormat::Json {
        let json = if all_json.len() == 1 {
            all_json.remove(0)
        } else {
            serde_json::Value::Array(all_json)
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    }
    match eval_error {
        Some(error) => Err(error),
        None => Ok(worst),
    }
}

/// The flakes to check: the given paths grouped by the flake they belong
/// to; no paths (or `--flake`): this flake.
fn check_roots(cli: &Cli, args: &CheckArgs) -> Result<Vec<PathBuf>> {
    if args.paths.is_empty() || cli.flake.is_some() {
        return Ok(vec![flake_root(cli, None)?]);
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    for path in &args.paths {
        let root = nixflip::cluster::discover::find_flake_root(path)?;
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    Ok(roots)
}

/// Check one flake and print its report (JSON is returned, to print once
/// for all flakes): its exit code, its JSON, and the error of a failed
/// `nix eval`.
fn check_flake(
    cli: &Cli,
    args: &CheckArgs,
    root: &Path,
) -> Result<(i32, Option<serde_json::Value>, Option<Error>)> {
    let loaded = if args.staged {
        nixflip::review::cluster_in_index(root, cli.config.as_deref())
    } else {
        load_cluster(cli, root)
    };
    let mut cluster = match loaded {
        Ok(cluster) => cluster,
        Err(error) => return parse_failure_report(args, root, error),
    };
    let mut findings = rules::check(&cluster);
    let mut failed = None;
    if args.eval && !cluster.members.is_empty() {
        match nixflip::eval::recheck(
            &mut cluster,
            findings.clone(),
            &args.nix_options,
            &mut super::show_command(cli),
        ) {
            Ok(evaluated) => findings = evaluated,
            Err(error) => failed = Some(error),
        }
    }
    let code = if rules::error_count(&findings) > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };
    let failed_line = failed.as_ref().map_or(String::new(), |_| {
        "; nix eval failed (its error follows)".to_string()
    });
    let summary_line = format!(
        "nixflip check: {}{failed_line}",
        summary(&findings, cluster.members.len())
    );
    let mut json = None;
    match args.format {
        CheckFormat::Json => {
            let mut value = serde_json::json!({ "flake": root, "members": cluster.members.len(), "findings": findings });
            if let Some(error) = &failed {
                value["evalError"] = serde_json::json!(error.to_string());
            }
            json = Some(render::status::with_shared_modules(value, &cluster));
        }
        CheckFormat::Github => {
            let prefix = github_prefix(root);
            for f in &findings {
                println!("{}", render::github_annotation(f, &prefix));
            }
            if let Some(error) = &failed {
                println!("{}", render::github_error(&error.to_string()));
            }
            println!("{summary_line}");
        }
        CheckFormat::Text => {
            print_findings(cli, &cluster, &findings);
            if !cli.quiet {
                if let Some(line) = render::status::shared_modules_line(&cluster) {
                    println!("{line}");
                }
                println!("{summary_line}");
            }
        }
    }
    Ok((code, json, failed))
}

/// A flake that does not parse: people get the diagnostic (as the error);
/// tools get it as a finding in their format too, and the run goes on with
/// the next flake (exit 2).
fn parse_failure_report(
    args: &CheckArgs,
    root: &Path,
    error: Error,
) -> Result<(i32, Option<serde_json::Value>, Option<Error>)> {
    let finding = rules::parse_failure(&error);
    let Some(finding) = finding.filter(|_| args.format != CheckFormat::Text) else {
        return Err(error);
    };
    eprintln!("{:?}", miette::Report::new(error));
    let findings = vec![finding];
    if args.format == CheckFormat::Github {
        println!(
            "{}",
            render::github_annotation(&findings[0], &github_prefix(root))
        );
        println!("nixflip check: {}", summary(&findings, 0));
        return Ok((EXIT_BAD_INPUT, None, None));
    }
    let json = serde_json::json!({ "flake": root, "members": 0, "findings": findings });
    Ok((EXIT_BAD_INPUT, Some(json), None))
}

/// GitHub wants paths relative to the repository root: the flake may sit in
/// a subdirectory of it.
fn github_prefix(root: &Path) -> String {
    super::git(root, &["rev-parse", "--show-prefix"])
        .map(|p| p.trim().to_string())
        .unwrap_or_default()
}

/// Whether a hook file exists that nixflip did not write. Read as bytes: a
/// hook that is not UTF-8 (a binary, another encoding) is foreign too. A read
/// error other than "not found" is reported, never taken as "no hook".
fn existing_hook_is_foreign(hook: &Path) -> Result<bool> {
    match std::fs::read(hook) {
        Ok(bytes) => Ok(!bytes
            .windows(HOOK_MARKER.len())
            .any(|w| w == HOOK_MARKER.as_bytes())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Read {
            path: hook.to_path_buf(),
            source,
        }),
    }
}

pub fn hook(cli: &Cli, command: &HookCommand) -> Result<i32> {
    let HookCommand::Install(args) = command;
    let root = flake_root(cli, None)?;
    let git_dir = super::git(&root, &["rev-parse", "--git-path", "hooks"]).map_err(|_| {
        Error::usage(
            format!("{} is not inside a git repository", root.display()),
            "run `git init` first; the hook lives in .git/hooks",
        )
    })?;
    let hooks = if Path::new(git_dir.trim()).is_absolute() {
        PathBuf::from(git_dir.trim())
    } else {
        root.join(git_dir.trim())
    };
    let hook = hooks.join("pre-commit");
    if !args.force && existing_hook_is_foreign(&hook)? {
        return Err(Error::refused(
            format!(
                "{} already exists and was not written by nixflip",
                hook.display()
            ),
            "pass --force to replace it, or call `nixflip check` from your own hook",
        ));
    }
    // Where the flake sits in the repository, relative: the hook finds the
    // repository itself when it runs.
    let prefix = super::git(&root, &["rev-parse", "--show-prefix"])?;
    let script = nixflip::generate::pre_commit_hook(prefix.trim())?;
    std::fs::create_dir_all(&hooks).map_err(|source| Error::Write {
        path: hooks.clone(),
        help: "check permissions".into(),
        source,
    })?;
    // Atomic and executable from the start: a commit racing the install
    // sees the old hook or the new one, never half a script.
    nixflip::fsx::replace_file(&hook, script.as_bytes(), 0o755)?;
    if !cli.quiet {
        // `git rev-parse --git-path` answers relative to the flake (`../.git/…`).
        let shown = std::fs::canonicalize(&hook).unwrap_or_else(|_| hook.clone());
        println!("wrote {}", shown.display());
    }
    Ok(EXIT_OK)
}
