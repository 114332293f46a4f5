//! Writing SOPS YAML files: the inverse of [`super::decrypt`], so that the example flake and
//! the tests can carry SOPS files made for them without the `sops` tool.
//!
//! The output follows the format sops 3.9 writes for YAML: four-space indentation, one
//! `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` per leaf (AES-256-GCM, a random 32-byte IV, AAD =
//! the mapping keys of the path joined by `:` plus a trailing `:`), the data key wrapped for each
//! age recipient in its own armored age file, and the MAC (SHA-512 over the plaintext leaves in
//! document order, upper-case hex) encrypted with AAD = `lastmodified`. Leaves under a key that
//! ends in `_unencrypted` stay in plaintext (and are in the MAC), as with sops' default
//! `unencrypted_suffix`. Empty strings and `null` are not encrypted, as in sops.
//!
//! Comments in the plaintext are dropped (sops would encrypt them).

use std::str::FromStr;

use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::decrypt::{go_bool, go_float, parse_float_text, SopsAes};
use super::error::SopsError;
use super::sops::RecipientKind;
use super::tree::{self, parse_yaml_int, Node, ScalarKind, Value};

/// The suffix sops leaves in plaintext by default.
pub const UNENCRYPTED_SUFFIX: &str = "_unencrypted";
/// The sops version whose YAML format [`encrypt_yaml`] writes.
pub const SOPS_FORMAT_VERSION: &str = "3.9.4";

fn enc_err(reason: impl Into<String>) -> SopsError {
    SopsError::Encrypt {
        reason: reason.into(),
    }
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, SopsError> {
    let mut buf = Zeroizing::new([0u8; N]);
    getrandom::getrandom(buf.as_mut_slice())
        .map_err(|e| enc_err(format!("no randomness from the operating system: {e}")))?;
    Ok(buf)
}

/// Encrypt a plaintext YAML mapping to a SOPS YAML document for `recipients` (age `age1…`
/// X25519 recipients or `ssh-ed25519 …` public keys), with `lastmodified` (RFC 3339, UTC,
/// seconds: `2026-11-23T12:00:00Z`) as the MAC's additional data.
pub fn encrypt_yaml(
    plaintext: &str,
    recipients: &[&str],
    lastmodified: &str,
) -> Result<String, SopsError> {
    if recipients.is_empty() {
        return Err(enc_err("at least one age recipient is needed"));
    }
    if !is_rfc3339_utc(lastmodified) {
        return Err(enc_err(format!(
            "lastmodified {lastmodified:?} is not of the form 2026-11-23T12:00:00Z"
        )));
    }
    let root = tree::parse_yaml(plaintext)?;
    let Value::Map(entries) = &root.value else {
        return Err(enc_err("the plaintext document is not a mapping"));
    };
    if entries.iter().any(|e| e.key == "sops") {
        return Err(enc_err("the plaintext already has a top-level `sops` key"));
    }
    let key = random::<32>()?;
    let mut stanzas = Vec::new();
    for r in recipients {
        stanzas.push((r.trim().to_string(), wrap_data_key(r, &key)?));
    }
    let mut writer = Writer {
        key: &key,
        hasher: Sha512::new(),
        out: String::new(),
    };
    writer.map(entries, 0, &mut Vec::new())?;
    let Writer { hasher, out, .. } = writer;
    let mac = hex::encode_upper(hasher.finalize());
    let mac = encrypt_value(&key, mac.as_bytes(), lastmodified.as_bytes(), "str")?;
    let mut out = out;
    out.push_str("sops:\n    age:\n");
    for (recipient, armored) in &stanzas {
        out.push_str(&format!(
            "        - recipient: {recipient}\n          enc: |\n"
        ));
        for line in armored.lines() {
            out.push_str(&format!("            {line}\n"));
        }
    }
    out.push_str(&format!(
        "    lastmodified: \"{lastmodified}\"\n    mac: {mac}\n    unencrypted_suffix: {UNENCRYPTED_SUFFIX}\n    version: {SOPS_FORMAT_VERSION}\n"
    ));
    Ok(out)
}

/// The data key as an armored age file for one recipient.
fn wrap_data_key(recipient: &str, key: &[u8; 32]) -> Result<String, SopsError> {
    let r = recipient.trim();
    let result = match RecipientKind::classify(r) {
        RecipientKind::X25519 => age::x25519::Recipient::from_str(r)
            .map_err(|e| enc_err(format!("recipient {r}: {e}")))
            .and_then(|rec| age::encrypt_and_armor(&rec, key).map_err(|e| enc_err(e.to_string()))),
        RecipientKind::SshEd25519 => age::ssh::Recipient::from_str(r)
            .map_err(|e| enc_err(format!("recipient {r}: {e:?}")))
            .and_then(|rec| age::encrypt_and_armor(&rec, key).map_err(|e| enc_err(e.to_string()))),
        _ => Err(enc_err(format!(
            "recipient {r} is not an age X25519 (age1…) or ssh-ed25519 recipient"
        ))),
    };
    result
}

/// `ENC[AES256_GCM,…]` of `plain` with a fresh IV.
fn encrypt_value(key: &[u8; 32], plain: &[u8], aad: &[u8], ty: &str) -> Result<String, SopsError> {
    let iv = random::<32>()?;
    let cipher = SopsAes::new(GenericArray::from_slice(key));
    let mut buf = Zeroizing::new(plain.to_vec());
    let tag = cipher
        .encrypt_in_place_detached(GenericArray::from_slice(iv.as_slice()), aad, &mut buf)
        .map_err(|_| enc_err("AES-GCM encryption failed"))?;
    Ok(format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{ty}]",
        BASE64.encode(buf.as_slice()),
        BASE64.encode(iv.as_slice()),
        BASE64.encode(tag.as_slice())
    ))
}

fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Walks the plaintext tree in document order, writing YAML and feeding the MAC.
struct Writer<'a> {
    key: &'a [u8; 32],
    hasher: Sha512,
    out: String,
}

impl Writer<'_> {
    fn map(
        &mut self,
        entries: &[tree::Entry],
        indent: usize,
        path: &mut Vec<String>,
    ) -> Result<(), SopsError> {
        for e in entries {
            self.out
                .push_str(&format!("{}{}:", " ".repeat(indent), yaml_string(&e.key)));
            path.push(e.key.clone());
            self.value(&e.node, indent, path)?;
            path.pop();
        }
        Ok(())
    }

    /// A value after `key:` (or after `- ` for list items: `indent` is then the item's).
    fn value(
        &mut self,
        node: &Node,
        indent: usize,
        path: &mut Vec<String>,
    ) -> Result<(), SopsError> {
        match &node.value {
            Value::Scalar(s) => {
                let text = self.leaf(s, path)?;
                self.out.push_str(&format!(" {text}\n"));
            }
            Value::Map(entries) if entries.is_empty() => self.out.push_str(" {}\n"),
            Value::List(items) if items.is_empty() => self.out.push_str(" []\n"),
            Value::Map(entries) => {
                self.out.push('\n');
                self.map(entries, indent + 4, path)?;
            }
            Value::List(items) => {
                self.out.push('\n');
                self.list(items, indent + 4, path)?;
            }
        }
        Ok(())
    }

    fn list(
        &mut self,
        items: &[Node],
        indent: usize,
        path: &mut Vec<String>,
    ) -> Result<(), SopsError> {
        for item in items {
            // Write the item as if it sat two columns further in, then put the dash in
            // front of its first line: `- a: 1\n  b: 2`.
            let start = self.out.len();
            match &item.value {
                Value::Map(entries) if !entries.is_empty() => {
                    self.map(entries, indent + 2, path)?
                }
                Value::List(inner) if !inner.is_empty() => self.list(inner, indent + 2, path)?,
                _ => {
                    self.out.push_str(&" ".repeat(indent + 1));
                    self.value(item, indent, path)?;
                }
            }
            let pad = " ".repeat(indent + 2);
            if self.out[start..].starts_with(&pad) {
                self.out.replace_range(
                    start..start + pad.len(),
                    &format!("{}- ", " ".repeat(indent)),
                );
            }
        }
        Ok(())
    }

    /// The text of one leaf: encrypted unless a key on its path ends in the suffix.
    fn leaf(&mut self, s: &tree::Scalar, path: &[String]) -> Result<String, SopsError> {
        let (ty, canonical, mac): (&str, Zeroizing<String>, Zeroizing<String>) = match s.kind {
            ScalarKind::Null => return Ok("null".into()),
            ScalarKind::Str => (
                "str",
                Zeroizing::new(s.text.clone()),
                Zeroizing::new(s.text.clone()),
            ),
            ScalarKind::Int => {
                let n = parse_yaml_int(&s.text)
                    .ok_or_else(|| enc_err(format!("{}: not an integer", path.join("."))))?;
                (
                    "int",
                    Zeroizing::new(n.to_string()),
                    Zeroizing::new(n.to_string()),
                )
            }
            ScalarKind::Float => {
                let f = parse_float_text(&s.text)
                    .ok_or_else(|| enc_err(format!("{}: not a number", path.join("."))))?;
                (
                    "float",
                    Zeroizing::new(go_float(f)),
                    Zeroizing::new(go_float(f)),
                )
            }
            ScalarKind::Bool => {
                let b = go_bool(&s.text)
                    .ok_or_else(|| enc_err(format!("{}: not a bool", path.join("."))))?;
                // Encrypted as `true`, hashed as Go's `True` (sops' ToBytes).
                (
                    "bool",
                    Zeroizing::new(b.to_string()),
                    Zeroizing::new(if b { "True" } else { "False" }.to_string()),
                )
            }
        };
        self.hasher.update(mac.as_bytes());
        let plaintext_leaf = path.iter().any(|k| k.ends_with(UNENCRYPTED_SUFFIX));
        if plaintext_leaf || (s.kind == ScalarKind::Str && s.text.is_empty()) {
            return Ok(match s.kind {
                ScalarKind::Str => yaml_string(&canonical),
                _ => canonical.to_string(),
            });
        }
        let mut aad = path.join(":");
        aad.push(':');
        encrypt_value(self.key, canonical.as_bytes(), aad.as_bytes(), ty)
    }
}

/// A string as a YAML scalar: plain when that reads back as the same string, else
/// double-quoted.
fn yaml_string(s: &str) -> String {
    let plain_ok = !s.is_empty()
        && tree::resolve_plain(s) == ScalarKind::Str
        && !s.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !s.ends_with(|c: char| c.is_whitespace() || c == ':')
        && !s.contains(": ")
        && !s.contains(" #")
        && s.chars().all(|c| !c.is_control());
    if plain_ok {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_quote_only_when_needed() {
        assert_eq!(yaml_string("matrix"), "matrix");
        assert_eq!(yaml_string("signing-key"), "signing-key");
        assert_eq!(yaml_string("true"), "\"true\"");
        assert_eq!(yaml_string("12"), "\"12\"");
        assert_eq!(yaml_string("a: b"), "\"a: b\"");
        assert_eq!(yaml_string("line\nnext"), "\"line\\nnext\"");
        assert_eq!(yaml_string(""), "\"\"");
    }

    #[test]
    fn timestamps() {
        assert!(is_rfc3339_utc("2026-11-23T12:00:00Z"));
        assert!(!is_rfc3339_utc("2026-11-23 12:00:00"));
    }
}
