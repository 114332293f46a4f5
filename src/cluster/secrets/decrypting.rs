//! `--decrypt`: every readable SOPS file of a report, decrypted with the
//! given identities; values are never kept beyond the library's zeroizing
//! report, and never shown.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{error_line, file_finding, sops_line, SecretFinding, SecretsReport};
use crate::cluster::rules::Severity;
use crate::secrets::{AgeIdentities, SopsError, SopsFile, SopsFormat};

/// What `--decrypt` found for one file (never a value).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptOutcome {
    pub file: PathBuf,
    pub decrypted: usize,
    pub values: usize,
    pub mac_verified: bool,
    pub unwrapped_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Decrypt every readable SOPS file of the report with `identities`, verify
/// values and MACs; failures become NF208 findings.
pub fn decrypt_files(
    report: &SecretsReport,
    root: &Path,
    identities: &AgeIdentities,
) -> (Vec<DecryptOutcome>, Vec<SecretFinding>) {
    let mut outcomes = Vec::new();
    let mut findings = Vec::new();
    for summary in report.files.iter().filter(|f| f.error.is_none()) {
        let path = &summary.file;
        let Ok(text) = std::fs::read_to_string(root.join(path)) else {
            continue;
        };
        let Ok(file) = SopsFile::parse(&text, SopsFormat::from_path(path)) else {
            continue;
        };
        if file.decryption_blocker().is_some() {
            continue; // NF205 already says so
        }
        let result = file.decrypt(identities);
        let (outcome, problem) = match result {
            Err(e) => (
                DecryptOutcome {
                    file: path.clone(),
                    decrypted: 0,
                    values: file.keys().len(),
                    mac_verified: false,
                    unwrapped_by: None,
                    error: Some(e.to_string()),
                },
                Some((
                    sops_line(&text, file.format()),
                    e.to_string(),
                    decrypt_help(&e),
                )),
            ),
            Ok(report) => {
                let problem = report.check().err().map(|e| {
                    let line = error_line(&e).max(1);
                    let line = if line == 1 {
                        sops_line(&text, file.format())
                    } else {
                        line
                    };
                    (line, e.to_string(), decrypt_help(&e))
                });
                (
                    DecryptOutcome {
                        file: path.clone(),
                        decrypted: report.keys.iter().filter(|k| k.decrypted).count(),
                        values: report.keys.len(),
                        mac_verified: report.mac_ok,
                        unwrapped_by: Some(report.data_key_unwrapped_by.clone()),
                        error: problem.as_ref().map(|(_, m, _)| m.clone()),
                    },
                    problem,
                )
            }
        };
        if let Some((line, message, help)) = problem {
            let f = file_finding(
                "NF208",
                Severity::Error,
                path,
                Some(&text),
                line,
                format!("{}: {message}", path.display()),
                help,
            );
            findings.push(SecretFinding {
                finding: f,
                hosts: Vec::new(),
                secrets: Vec::new(),
                sops_file: Some(path.clone()),
            });
        }
        outcomes.push(outcome);
    }
    (outcomes, findings)
}

fn decrypt_help(e: &SopsError) -> String {
    use miette::Diagnostic;
    e.help().map_or_else(String::new, |h| h.to_string())
}
