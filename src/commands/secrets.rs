//! `secrets check`: the SOPS checks, without a key, and with
//! `--decrypt` also value decryption and MAC verification.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use nixflip::cluster::rules::{self, Finding};
use nixflip::cluster::secrets::{self, DecryptOutcome, SecretsReport};
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
    let mut report = secrets::check(&cluster);
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
            println!("nixflip secrets check: {}", summary(&report, &findings));
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
                print!("{}", overview(&report, &outcomes, ids.is_some()));
            }
            print_findings(cli, &cluster, &findings);
            if !cli.quiet {
                println!("nixflip secrets check: {}", summary(&report, &findings));
            }
        }
    }
    Ok(if rules::error_count(&findings) > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

/// The files and members as nixflip sees them (no values).
fn overview(report: &SecretsReport, outcomes: &[DecryptOutcome], decrypting: bool) -> String {
    let mut out = String::new();
    for f in &report.files {
        let rule = match (&report.sops_yaml, f.rule_line) {
            (Some(y), Some(line)) => format!(", {} rule at line {line}", y.display()),
            (Some(y), None) => format!(", no {} rule", y.display()),
            (None, _) => String::new(),
        };
        match &f.error {
            Some(_) => out.push_str(&format!("{}: unreadable\n", f.file.display())),
            None => out.push_str(&format!(
                "{}: {} keys, {} age recipients{rule}\n",
                f.file.display(),
                f.keys.len(),
                f.recipients.len()
            )),
        }
    }
    if decrypting {
        for o in outcomes {
            match (&o.error, &o.unwrapped_by) {
                (None, Some(by)) => out.push_str(&format!(
                    "{}: {}/{} values decrypted, MAC verified (data key unwrapped for {by})\n",
                    o.file.display(),
                    o.decrypted,
                    o.values
                )),
                _ => out.push_str(&format!(
                    "{}: does not decrypt (see below)\n",
                    o.file.display()
                )),
            }
        }
    }
    let rows: Vec<Vec<String>> = report
        .members
        .iter()
        .map(|m| {
            vec![
                m.host.clone(),
                m.role.clone().unwrap_or_else(|| "?".into()),
                m.recipient
                    .as_deref()
                    .map_or_else(|| "(unknown)".into(), shorten),
                join_or_dash(&m.declared),
                join_or_dash(&m.needs),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&render::table(
        &["HOST", "ROLE", "RECIPIENT", "DECLARES", "NEEDS"],
        &rows,
    ));
    out.push('\n');
    out
}

fn shorten(recipient: &str) -> String {
    let chars: Vec<char> = recipient.chars().collect();
    if chars.len() <= 20 {
        return recipient.to_string();
    }
    format!(
        "{}…{}",
        chars[..10].iter().collect::<String>(),
        chars[chars.len() - 6..].iter().collect::<String>()
    )
}

fn join_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

fn summary(report: &SecretsReport, findings: &[Finding]) -> String {
    let errors = rules::error_count(findings);
    let warnings = findings.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {} in {}, {}",
        plural(errors, "error"),
        plural(warnings, "warning"),
        plural(report.members.len(), "member"),
        plural(report.files.len(), "SOPS file")
    )
}
