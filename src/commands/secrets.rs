//! `secrets check`: the SOPS checks, without a key, and with
//! `--decrypt` also value decryption and MAC verification.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use nixflip::cluster::rules;
use nixflip::cluster::secrets;
use nixflip::error::{Error, Result, EXIT_FINDINGS, EXIT_OK};
use nixflip::render;
use nixflip::secrets::{AgeIdentities, SopsError};

use super::cluster::{flake_root, load_cluster, print_findings, CheckFormat};
use crate::Cli;

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Check SOPS declarations, keys, recipients and .sops.yaml rules; exit 1 on errors
    Check(SecretsCheckArgs),
}

#[derive(Args, Debug)]
pub struct SecretsCheckArgs {
    /// Also unwrap the data key, decrypt every value and verify the MAC (needs an age identity:
    /// --age-key, SOPS_AGE_KEY_FILE or SOPS_AGE_KEY). Values are never printed.
    #[arg(long)]
    pub decrypt: bool,
    /// An age identity file (AGE-SECRET-KEY-1… lines, or an OpenSSH ed25519 private key);
    /// implies --decrypt
    #[arg(long, value_name = "FILE")]
    pub age_key: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    /// Read every member's sops.defaultSopsFile and sops.secrets.<name>.{sopsFile,key} from one
    /// `nix eval` instead of the files (sees what modules nixflip does not read set)
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

pub fn secrets(cli: &Cli, command: &SecretsCommand) -> Result<i32> {
    let SecretsCommand::Check(args) = command;
    check(cli, args)
}

fn identities(args: &SecretsCheckArgs) -> Result<AgeIdentities> {
    let loaded = match &args.age_key {
        Some(path) => AgeIdentities::from_file(path),
        None => AgeIdentities::from_env(),
    };
    loaded.map_err(|e| match e {
        SopsError::NoIdentity => Error::usage(
            "--decrypt needs an age identity, and none was given",
            "pass --age-key FILE, or set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY",
        ),
        other => Error::from(other),
    })
}

fn check(cli: &Cli, args: &SecretsCheckArgs) -> Result<i32> {
    let root = flake_root(cli, None)?;
    let cluster = load_cluster(cli, &root)?;
    // Read the identity first: a bad key file is bad input, whatever the cluster.
    let ids = if args.decrypt || args.age_key.is_some() {
        Some(identities(args)?)
    } else {
        None
    };
    let mut report = if args.eval && !cluster.members.is_empty() {
        let evaluated = nixflip::eval::start_members(
            &cluster,
            &[],
            nixflip::eval::Flake::Own(&root),
            &nixflip::eval::Extra::new(),
            &args.nix_options,
            &mut super::show_command(cli),
        )?
        .finish()?;
        secrets::check_evaluated(&cluster, &root, &evaluated)
    } else {
        secrets::check(&cluster)
    };
    let mut outcomes = Vec::new();
    if let (Some(ids), true) = (&ids, report.configured) {
        let (found, findings) = secrets::decrypt_files(&report, &root, ids);
        outcomes = found;
        report.findings.extend(findings);
    }
    let findings = report.plain_findings();
    match args.format {
        CheckFormat::Json => {
            let json = serde_json::json!({
                "flake": root,
                "configured": report.configured,
                "sopsYaml": report.sops_yaml,
                "members": report.members,
                "files": report.files,
                "declarations": report.declarations,
                "decrypted": ids.as_ref().map(|_| &outcomes),
                "findings": findings,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        CheckFormat::Github => {
            let prefix = super::git(&root, &["rev-parse", "--show-prefix"])
                .map(|p| p.trim().to_string())
                .unwrap_or_default();
            for f in &findings {
                println!("{}", render::github_annotation(f, &prefix));
            }
            println!(
                "nixflip secrets check: {}",
                render::secrets::summary(&report, &findings)
            );
        }
        CheckFormat::Text => {
            if !report.configured {
                if !cli.quiet {
                    println!(
                        "no SOPS configuration in {} (no sops.secrets, sops.defaultSopsFile or .sops.yaml): nothing to check",
                        root.display()
                    );
                }
                return Ok(EXIT_OK);
            }
            if !cli.quiet {
                print!(
                    "{}",
                    render::secrets::overview(
                        &report,
                        &outcomes,
                        ids.is_some(),
                        render::stdout_width()
                    )
                );
            }
            print_findings(cli, &cluster, &findings);
            if !cli.quiet {
                println!(
                    "nixflip secrets check: {}",
                    render::secrets::summary(&report, &findings)
                );
            }
        }
    }
    Ok(if rules::error_count(&findings) > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}
