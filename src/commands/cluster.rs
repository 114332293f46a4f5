//! `status`, `check` and `hook install`: the cluster as it is written.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use nixflip::cluster::{rules, Cluster, Finding, Member, Role};
use nixflip::config;
use nixflip::error::{Error, Result, EXIT_FINDINGS, EXIT_OK};
use nixflip::render::{self, FindingDiagnostic};

use crate::Cli;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON (stable: members and findings)
    #[arg(long)]
    pub json: bool,
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

fn member_row(m: &Member) -> Vec<String> {
    let role = match m.role() {
        Role::Primary => "primary".to_string(),
        Role::Standby => "standby".to_string(),
        Role::Invalid(expr) => format!("?{expr}"),
        Role::Missing => "(unset)".to_string(),
    };
    let synapse = match m.effective_synapse() {
        Some(true) => "on",
        Some(false) => "off",
        None => "?",
    };
    let def_line = m.def(nixflip::cluster::ROLE).map_or(1, |d| d.line);
    vec![
        m.name.clone(),
        role,
        synapse.to_string(),
        m.address.clone().unwrap_or_else(|| "?".into()),
        m.peer_host().map_or_else(
            || {
                m.def(nixflip::cluster::PEER_HOST)
                    .map_or("-".into(), |d| d.expr.clone())
            },
            str::to_string,
        ),
        m.allowed_ips()
            .map_or_else(|| "-".into(), |ips| ips.join(",")),
        format!(
            "{}:{}",
            m.def(nixflip::cluster::ROLE)
                .map_or(&m.file, |d| &d.file)
                .display(),
            def_line
        ),
    ]
}

pub fn member_json(m: &Member) -> serde_json::Value {
    serde_json::json!({
        "host": m.name,
        "role": match m.role() { Role::Primary => Some("primary"), Role::Standby => Some("standby"), _ => None },
        "synapse": m.effective_synapse(),
        "address": m.address,
        "addressSource": m.address_source,
        "peerHost": m.peer_host(),
        "allowedSourceIPs": m.allowed_ips(),
        "secretsFile": m.has_secrets_file(),
        "file": m.file,
        "line": m.def(nixflip::cluster::ROLE).map(|d| d.line),
        "attr": m.attr,
    })
}

pub fn status(cli: &Cli, args: &StatusArgs) -> Result<i32> {
    let root = flake_root(cli, None)?;
    let cluster = load_cluster(cli, &root)?;
    let findings = rules::check(&cluster);
    if args.json {
        let json = serde_json::json!({
            "flake": root,
            "option": cluster.option.to_string(),
            "members": cluster.members.iter().map(member_json).collect::<Vec<_>>(),
            "findings": findings,
        });
        let json = with_shared_modules(json, &cluster);
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
        return Ok(EXIT_OK);
    }
    if cluster.members.is_empty() {
        println!(
            "no cluster members found under `{}` in {}",
            cluster.option,
            root.display()
        );
        if let Some(line) = shared_modules_line(&cluster) {
            println!("{line}");
        }
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = cluster.members.iter().map(member_row).collect();
    print!(
        "{}",
        render::table_within(
            &[
                "HOST",
                "ROLE",
                "SYNAPSE",
                "ADDRESS",
                "PEERHOST",
                "ALLOWEDSOURCEIPS",
                "FILE"
            ],
            &rows,
            render::stdout_width()
        )
    );
    if let Some(line) = shared_modules_line(&cluster) {
        println!("\n{line}");
    }
    if findings.is_empty() {
        println!("\nno findings");
    } else {
        println!();
        print_findings(cli, &cluster, &findings);
    }
    Ok(EXIT_OK)
}

/// "shared modules (not members): …", when discovery found any: they set
/// cluster options for the hosts that use them, outside the per-member model.
fn shared_modules_line(cluster: &Cluster) -> Option<String> {
    if cluster.shared_modules.is_empty() {
        return None;
    }
    let files: Vec<String> = cluster
        .shared_modules
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    Some(format!(
        "shared modules (not members): {}",
        files.join(", ")
    ))
}

/// Adds `sharedModules` to a JSON object when there are any (absent otherwise,
/// so the output of a cluster without them is unchanged).
fn with_shared_modules(mut json: serde_json::Value, cluster: &Cluster) -> serde_json::Value {
    if !cluster.shared_modules.is_empty() {
        json["sharedModules"] = serde_json::json!(cluster.shared_modules);
    }
    json
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
    // Group the given paths by the flake they belong to; no paths: this flake.
    let mut roots: Vec<PathBuf> = Vec::new();
    if args.paths.is_empty() || cli.flake.is_some() {
        roots.push(flake_root(cli, None)?);
    } else {
        for path in &args.paths {
            let root = nixflip::cluster::discover::find_flake_root(path)?;
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
    }
    let mut worst = EXIT_OK;
    let mut all_json = Vec::new();
    for root in &roots {
        let mut cluster = load_cluster(cli, root)?;
        let mut findings = rules::check(&cluster);
        if args.eval && !cluster.members.is_empty() {
            findings = with_evaluated(cli, &mut cluster, findings, &args.nix_options)?;
        }
        if rules::error_count(&findings) > 0 {
            worst = EXIT_FINDINGS;
        }
        match args.format {
            CheckFormat::Json => all_json.push(with_shared_modules(serde_json::json!({ "flake": root, "members": cluster.members.len(), "findings": findings }), &cluster)),
            CheckFormat::Github => {
                let prefix = github_prefix(root);
                for f in &findings {
                    println!("{}", render::github_annotation(f, &prefix));
                }
                println!("nixflip check: {}", summary(&findings, cluster.members.len()));
            }
            CheckFormat::Text => {
                print_findings(cli, &cluster, &findings);
                if !cli.quiet {
                    if let Some(line) = shared_modules_line(&cluster) {
                        println!("{line}");
                    }
                    println!("nixflip check: {}", summary(&findings, cluster.members.len()));
                }
            }
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
    Ok(worst)
}

/// Overlay the evaluated fields (one `nix eval` for all members) and merge
/// the rules' verdict on them with the static findings.
fn with_evaluated(
    cli: &Cli,
    cluster: &mut Cluster,
    mut findings: Vec<Finding>,
    nix_options: &[String],
) -> Result<Vec<Finding>> {
    let root = cluster.root.clone();
    let evaluated =
        super::start_member_eval(cli, cluster, nixflip::eval::Flake::Own(&root), nix_options)?
            .finish()?;
    findings.extend(nixflip::cluster::evaluated::overlay(cluster, &evaluated));
    findings.extend(rules::check(cluster));
    findings.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.id, &a.message)
            .cmp(&(&b.file, b.line, b.column, b.id, &b.message))
    });
    findings.dedup();
    Ok(findings)
}

/// GitHub wants paths relative to the repository root: the flake may sit in
/// a subdirectory of it.
fn github_prefix(root: &Path) -> String {
    super::git(root, &["rev-parse", "--show-prefix"])
        .map(|p| p.trim().to_string())
        .unwrap_or_default()
}

const HOOK_MARKER: &str = "# nixflip pre-commit hook";

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
    let flake_arg = root.display().to_string().replace('\'', "'\\''");
    let script = format!(
        "#!/bin/sh\n{HOOK_MARKER} (nixflip hook install; safe to edit or delete)\n\
         # Checks the cluster when a staged .nix file changes; exits non-zero on errors.\n\
         files=$(git diff --cached --name-only --diff-filter=ACMRD -- '*.nix')\n\
         [ -z \"$files\" ] && exit 0\n\
         exec nixflip --flake '{flake_arg}' check\n"
    );
    std::fs::create_dir_all(&hooks).map_err(|source| Error::Write {
        path: hooks.clone(),
        help: "check permissions".into(),
        source,
    })?;
    // Atomic and executable from the start: a commit racing the install
    // sees the old hook or the new one, never half a script.
    nixflip::fsx::replace_file(&hook, script.as_bytes(), 0o755)?;
    if !cli.quiet {
        println!("wrote {}", hook.display());
    }
    Ok(EXIT_OK)
}
