//! Age identities (private keys) used to unwrap a SOPS data key.
//!
//! Sources, as sops reads them: `SOPS_AGE_KEY` (identity text), `SOPS_AGE_KEY_FILE` (path to an
//! age key file), `SOPS_AGE_SSH_PRIVATE_KEY_FILE` (an OpenSSH private key), or an explicit path.
//! An unencrypted OpenSSH ed25519 key yields two identities: the native age ssh-ed25519 one
//! (for `ssh-ed25519 …` recipients) and its ssh-to-age X25519 conversion (for `age1…`
//! recipients made with `ssh-to-age`).

use std::ffi::OsString;
use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::error::{SopsError, Unsupported};
use super::ssh_to_age::{ed25519_public_to_age, read_ssh_string, ssh_private_key_to_age_identity};

struct Entry {
    /// The public recipient this identity answers to.
    public: String,
    /// Where it came from.
    origin: String,
    identity: Box<dyn age::Identity + Send + Sync>,
}

/// A set of age identities. Its `Debug` output shows only public recipients and origins.
#[derive(Default)]
pub struct AgeIdentities {
    entries: Vec<Entry>,
}

impl fmt::Debug for AgeIdentities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (&e.public, &e.origin)))
            .finish()
    }
}

fn id_err(origin: &str, reason: impl Into<String>) -> SopsError {
    SopsError::Identity {
        origin: origin.to_string(),
        reason: reason.into(),
    }
}

/// Extract the ed25519 public key and seed from an unencrypted OpenSSH private key
/// (`openssh-key-v1`, cipher `none`). `None` for other key types or encrypted keys.
fn openssh_ed25519(text: &str) -> Option<([u8; 32], Zeroizing<[u8; 32]>)> {
    let begin = "-----BEGIN OPENSSH PRIVATE KEY-----";
    let end = "-----END OPENSSH PRIVATE KEY-----";
    let start = text.find(begin)? + begin.len();
    let stop = text[start..].find(end)? + start;
    let b64: Zeroizing<String> = Zeroizing::new(
        text[start..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    let raw = Zeroizing::new(BASE64.decode(b64.as_bytes()).ok()?);
    let mut cur = raw.strip_prefix(b"openssh-key-v1\0")?;
    let cipher = read_ssh_string(&mut cur)?;
    let _kdf = read_ssh_string(&mut cur)?;
    let _kdf_options = read_ssh_string(&mut cur)?;
    if cipher != b"none" {
        return None;
    }
    let nkeys = u32::from_be_bytes(cur.get(..4)?.try_into().ok()?);
    cur = cur.get(4..)?;
    if nkeys != 1 {
        return None;
    }
    let _public_blob = read_ssh_string(&mut cur)?;
    let mut private = read_ssh_string(&mut cur)?;
    private = private.get(8..)?; // two check integers
    if read_ssh_string(&mut private)? != b"ssh-ed25519" {
        return None;
    }
    let pk: [u8; 32] = read_ssh_string(&mut private)?.try_into().ok()?;
    let sk = read_ssh_string(&mut private)?;
    if sk.len() != 64 || sk[32..] != pk {
        return None;
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&sk[..32]);
    Some((pk, seed))
}

impl AgeIdentities {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no identity is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Public recipients of the identities, in order (`age1…` or `ssh-ed25519 AAAA…`).
    pub fn public_recipients(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.public.as_str()).collect()
    }

    /// Add all identities of another set.
    pub fn extend(&mut self, other: AgeIdentities) {
        self.entries.extend(other.entries);
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.entries
            .iter()
            .map(|e| e.identity.as_ref() as &dyn age::Identity)
    }

    /// Parse identity text: either an age identity file (`AGE-SECRET-KEY-1…` lines, `#`
    /// comments, blank lines) or an OpenSSH private key. `origin` names the source in messages.
    /// Errors never contain key material.
    pub fn parse(text: &str, origin: &str) -> Result<AgeIdentities, SopsError> {
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
            || text.contains("-----BEGIN RSA PRIVATE KEY-----")
        {
            return Self::parse_ssh(text, origin);
        }
        let mut out = AgeIdentities::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with("AGE-PLUGIN-") {
                return Err(SopsError::Unsupported(Unsupported::PluginIdentity {
                    origin: origin.to_string(),
                }));
            }
            let identity: age::x25519::Identity = line.parse().map_err(|_| {
                id_err(
                    origin,
                    format!("line {} is not an age identity (AGE-SECRET-KEY-1…)", n + 1),
                )
            })?;
            out.entries.push(Entry {
                public: identity.to_public().to_string(),
                origin: origin.to_string(),
                identity: Box::new(identity),
            });
        }
        if out.is_empty() {
            return Err(id_err(origin, "no identity found"));
        }
        Ok(out)
    }

    fn parse_ssh(text: &str, origin: &str) -> Result<AgeIdentities, SopsError> {
        let key = age::ssh::Identity::from_buffer(text.as_bytes(), Some(origin.to_string()))
            .map_err(|e| id_err(origin, format!("not a readable ssh private key ({e})")))?;
        let mut out = AgeIdentities::new();
        match &key {
            age::ssh::Identity::Unencrypted(_) => {}
            age::ssh::Identity::Encrypted(_) => {
                return Err(SopsError::Unsupported(Unsupported::SshKey {
                    origin: origin.to_string(),
                    reason: "the key is passphrase-protected".into(),
                }))
            }
            age::ssh::Identity::Unsupported(_) => {
                return Err(SopsError::Unsupported(Unsupported::SshKey {
                    origin: origin.to_string(),
                    reason: "the key type is not supported by age".into(),
                }))
            }
        }
        match openssh_ed25519(text) {
            Some((pk, seed)) => {
                let mut blob = Vec::with_capacity(51);
                blob.extend_from_slice(&11u32.to_be_bytes());
                blob.extend_from_slice(b"ssh-ed25519");
                blob.extend_from_slice(&32u32.to_be_bytes());
                blob.extend_from_slice(&pk);
                out.entries.push(Entry {
                    public: format!("ssh-ed25519 {}", BASE64.encode(&blob)),
                    origin: origin.to_string(),
                    identity: Box::new(key),
                });
                // The ssh-to-age conversion of the same key.
                let converted = ssh_private_key_to_age_identity(&seed)?;
                let x25519: age::x25519::Identity = converted
                    .parse()
                    .map_err(|_| id_err(origin, "ssh-to-age conversion failed"))?;
                out.entries.push(Entry {
                    public: ed25519_public_to_age(&pk)?,
                    origin: format!("{origin} (ssh-to-age)"),
                    identity: Box::new(x25519),
                });
            }
            None => out.entries.push(Entry {
                public: format!("ssh-rsa key {origin}"),
                origin: origin.to_string(),
                identity: Box::new(key),
            }),
        }
        Ok(out)
    }

    /// Read an identity file (age key file or OpenSSH private key).
    pub fn from_file(path: &Path) -> Result<AgeIdentities, SopsError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| SopsError::Io {
                    path: path.display().to_string(),
                    source,
                })?,
            );
        Self::parse(&text, &path.display().to_string())
    }

    /// Identities from the process environment; see [`AgeIdentities::from_env_with`].
    pub fn from_env() -> Result<AgeIdentities, SopsError> {
        Self::from_env_with(|name| std::env::var_os(name))
    }

    /// Identities from `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE` and `SOPS_AGE_SSH_PRIVATE_KEY_FILE`
    /// (all that are set, in that order), looked up with `lookup`. Returns
    /// [`SopsError::NoIdentity`] if none is set.
    pub fn from_env_with(
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<AgeIdentities, SopsError> {
        let mut out = AgeIdentities::new();
        if let Some(value) = lookup("SOPS_AGE_KEY") {
            let text = Zeroizing::new(
                value
                    .into_string()
                    .map_err(|_| id_err("SOPS_AGE_KEY", "not valid UTF-8"))?,
            );
            out.extend(Self::parse(&text, "SOPS_AGE_KEY")?);
        }
        for var in ["SOPS_AGE_KEY_FILE", "SOPS_AGE_SSH_PRIVATE_KEY_FILE"] {
            if let Some(path) = lookup(var) {
                if !path.is_empty() {
                    out.extend(Self::from_file(Path::new(&path))?);
                }
            }
        }
        if out.is_empty() {
            return Err(SopsError::NoIdentity);
        }
        Ok(out)
    }
}
