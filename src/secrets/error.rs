//! Errors of the SOPS module. Messages name keys, lines, recipients and files, never values.

use std::fmt;

/// A SOPS feature that nixflip recognises but does not handle. It is always reported, never
/// silently passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsupported {
    /// The data key is split with Shamir secret sharing across several key groups.
    Shamir {
        /// Number of key groups in the file.
        groups: usize,
        /// `shamir_threshold` from the metadata (sops defaults it to the number of groups).
        threshold: Option<u64>,
    },
    /// The file has no age recipient; it can only be opened with the listed key types.
    NoAgeRecipient {
        /// The other key types present (`pgp`, `kms`, `gcp_kms`, `azure_kv`, `hc_vault`).
        others: Vec<&'static str>,
    },
    /// A post-quantum age recipient (`age1pq1…`).
    PostQuantumRecipient {
        /// The recipient as written in the file.
        recipient: String,
    },
    /// An age plugin recipient (`age1<plugin>1…`, including `age1tag1…`), which needs an
    /// external plugin.
    PluginRecipient {
        /// The recipient as written in the file.
        recipient: String,
    },
    /// An age plugin identity (`AGE-PLUGIN-…`).
    PluginIdentity {
        /// Where the identity came from.
        origin: String,
    },
    /// A passphrase-protected or otherwise unusable ssh private key.
    SshKey {
        /// Where the key came from.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value encrypted with a cipher other than AES256_GCM.
    Cipher {
        /// The cipher name.
        cipher: String,
    },
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::Shamir { groups, threshold } => {
                write!(
                    f,
                    "Shamir secret sharing of the data key across {groups} key groups"
                )?;
                if let Some(t) = threshold {
                    write!(f, " (shamir_threshold {t})")?;
                }
                Ok(())
            }
            Unsupported::NoAgeRecipient { others } => {
                if others.is_empty() {
                    write!(f, "a file without any age recipient")
                } else {
                    write!(
                        f,
                        "a file without any age recipient (only {})",
                        others.join(", ")
                    )
                }
            }
            Unsupported::PostQuantumRecipient { recipient } => {
                write!(f, "post-quantum age recipient {recipient}")
            }
            Unsupported::PluginRecipient { recipient } => {
                write!(f, "age plugin recipient {recipient}")
            }
            Unsupported::PluginIdentity { origin } => {
                write!(f, "age plugin identity in {origin}")
            }
            Unsupported::SshKey { origin, reason } => {
                write!(f, "ssh private key {origin}: {reason}")
            }
            Unsupported::Cipher { cipher } => write!(f, "value cipher {cipher}"),
        }
    }
}

/// Everything that can go wrong in the SOPS module.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SopsError {
    /// The YAML text does not parse.
    #[error("invalid YAML at line {line}: {message}")]
    #[diagnostic(
        code(nixflip::secrets::yaml),
        help("fix the YAML syntax; sops files must be a single YAML document")
    )]
    Yaml {
        /// 1-based line.
        line: usize,
        /// Parser message.
        message: String,
    },

    /// The JSON text does not parse.
    #[error("invalid JSON at line {line}: {message}")]
    #[diagnostic(code(nixflip::secrets::json), help("fix the JSON syntax"))]
    Json {
        /// 1-based line.
        line: usize,
        /// Parser message.
        message: String,
    },

    /// The document shape is not a sops file.
    #[error("not a SOPS file: {reason}")]
    #[diagnostic(
        code(nixflip::secrets::not_sops),
        help("encrypt the file with `sops --encrypt --in-place FILE`; a SOPS file is a mapping with a top-level `sops` metadata section")
    )]
    NotSops {
        /// What is missing or wrong.
        reason: String,
    },

    /// A metadata field has the wrong shape.
    #[error("invalid sops metadata field `{field}` at line {line}: {reason}")]
    #[diagnostic(
        code(nixflip::secrets::metadata),
        help("the `sops` section is written by sops; restore it from version control or re-encrypt the file")
    )]
    Metadata {
        /// Field path, e.g. `sops.age[0].recipient`.
        field: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// A value that should be encrypted is not a well-formed `ENC[...]` string.
    #[error("value of `{path}` (line {line}) is not a valid ENC[...] value: {reason}")]
    #[diagnostic(
        code(nixflip::secrets::enc_value),
        help("values must be written by sops; re-set the value with `sops set` or `sops edit`")
    )]
    EncValue {
        /// Key path joined with `.`.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong (never the value).
        reason: String,
    },

    /// A feature nixflip does not handle.
    #[error("unsupported SOPS feature: {0}")]
    #[diagnostic(
        code(nixflip::secrets::unsupported),
        help("nixflip handles age (x25519 and ssh-ed25519) recipients with a single key group; use the `sops` tool for this file")
    )]
    Unsupported(Unsupported),

    /// An identity (private key) could not be read.
    #[error("cannot read age identity from {origin}: {reason}")]
    #[diagnostic(
        code(nixflip::secrets::identity),
        help("an identity file holds `AGE-SECRET-KEY-1…` lines (comments start with `#`), or is an unencrypted OpenSSH ed25519 private key")
    )]
    Identity {
        /// Where it came from (path or environment variable name).
        origin: String,
        /// What is wrong (never key material).
        reason: String,
    },

    /// No identity was given at all.
    #[error("no age identity available")]
    #[diagnostic(
        code(nixflip::secrets::no_identity),
        help("set SOPS_AGE_KEY_FILE to an age key file, SOPS_AGE_KEY to a key, or SOPS_AGE_SSH_PRIVATE_KEY_FILE to an ssh ed25519 key")
    )]
    NoIdentity,

    /// None of the identities opens any of the file's age stanzas.
    #[error("none of the given identities ({identities}) can unwrap the data key; the file's age recipients are: {recipients}")]
    #[diagnostic(
        code(nixflip::secrets::no_matching_identity),
        help("use the key of one of the file's recipients, or add your recipient to .sops.yaml and run `sops updatekeys` with a key that can already decrypt")
    )]
    NoMatchingIdentity {
        /// Public forms of the identities tried, comma-separated.
        identities: String,
        /// The file's recipients, comma-separated.
        recipients: String,
    },

    /// An age stanza decrypted but did not hold a 32-byte key, or the age file was malformed.
    #[error("age data key for recipient {recipient} is unusable: {reason}")]
    #[diagnostic(
        code(nixflip::secrets::data_key),
        help("the `enc` block of this recipient is damaged; re-encrypt with `sops updatekeys` or `sops rotate`")
    )]
    DataKey {
        /// The recipient whose stanza was opened.
        recipient: String,
        /// What is wrong.
        reason: String,
    },

    /// A value did not decrypt: its ciphertext, IV or tag was changed, or it was moved to
    /// another key (the key path is authenticated).
    #[error("value of `{path}` (line {line}) does not decrypt: {reason}")]
    #[diagnostic(
        code(nixflip::secrets::value),
        help("the encrypted value was edited or moved to another key outside sops; restore the file from version control")
    )]
    ValueNotDecrypted {
        /// Key path joined with `.` (list indices as `[i]`).
        path: String,
        /// 1-based line.
        line: usize,
        /// Why (authentication failure, bad type, ...), never the value.
        reason: String,
    },

    /// The MAC stored in the file does not match the values.
    #[error("MAC mismatch: the values differ from what sops signed (a value was changed, added, removed or reordered outside sops)")]
    #[diagnostic(
        code(nixflip::secrets::mac_mismatch),
        help("restore the file from version control, or if the edit was intended, redo it with `sops edit`")
    )]
    MacMismatch,

    /// The stored MAC cannot be decrypted: `lastmodified` or `mac` was edited.
    #[error("the stored MAC does not decrypt with lastmodified {lastmodified:?}: the `lastmodified` or `mac` field was edited outside sops")]
    #[diagnostic(
        code(nixflip::secrets::mac_undecryptable),
        help("restore the `sops` section from version control")
    )]
    MacUndecryptable {
        /// The `lastmodified` string used as AAD.
        lastmodified: String,
    },

    /// The file has no MAC or no lastmodified.
    #[error("the file has no {field}; its integrity cannot be verified")]
    #[diagnostic(
        code(nixflip::secrets::mac_missing),
        help("re-encrypt the file with sops")
    )]
    MacMissing {
        /// `sops.mac` or `sops.lastmodified`.
        field: &'static str,
    },

    /// A `.sops.yaml` problem.
    #[error(".sops.yaml: {reason}")]
    #[diagnostic(
        code(nixflip::secrets::sops_yaml),
        help("see https://github.com/getsops/sops#using-sops-yaml-conf-to-select-kms-pgp-and-age-for-new-files")
    )]
    SopsYaml {
        /// What is wrong.
        reason: String,
    },

    /// An ssh public key could not be converted.
    #[error("cannot convert ssh key to age: {reason}")]
    #[diagnostic(
        code(nixflip::secrets::ssh_to_age),
        help("only `ssh-ed25519 AAAA…` keys convert to age recipients (e.g. /etc/ssh/ssh_host_ed25519_key.pub)")
    )]
    SshKey {
        /// What is wrong.
        reason: String,
    },

    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    #[diagnostic(code(nixflip::secrets::io), help("check the path and its permissions"))]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
