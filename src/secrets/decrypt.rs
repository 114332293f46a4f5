//! Unwrapping the data key with age, decrypting values and verifying the MAC, following the
//! sops (Go) implementation:
//!
//! - Each `sops.age[].enc` is an armored age file whose payload is the 32-byte data key.
//! - A value is `ENC[AES256_GCM,data,iv,tag,type]`: AES-256-GCM with a 32-byte IV, key = data
//!   key, AAD = the mapping keys of its path joined by `:` plus a trailing `:` (list indices are
//!   not part of the path).
//! - Whether a leaf is encrypted follows `unencrypted_suffix`, `encrypted_suffix`,
//!   `unencrypted_regex` and `encrypted_regex`, each tested against every mapping key of the path.
//! - The MAC is SHA-512 over the plaintext leaves in document order, hex upper case. Leaves are
//!   hashed as sops' `ToBytes` renders them: strings and bytes raw, ints in decimal, floats in
//!   shortest form without exponent, bools as `True`/`False`. `null` values are not leaves.
//!   With `mac_only_encrypted`, only encrypted leaves are hashed.
//! - The stored MAC is itself encrypted with AAD = `lastmodified` (RFC 3339).
//!
//! YAML comments (which sops also encrypts, `#ENC[...type:comment]`) are not covered by the MAC
//! and are not read: the YAML parser drops comments, so nixflip neither decrypts nor reports them.

use std::fmt;
use std::io::Read as _;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use regex::Regex;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::error::SopsError;
use super::identity::AgeIdentities;
use super::sops::{display_path, EncType, EncValue, SopsFile, SopsMetadata};
use super::tree::{parse_yaml_int, Node, ScalarKind, Value};

/// AES-256-GCM with sops' 32-byte nonce.
pub(crate) type SopsAes = AesGcm<Aes256, U32>;

/// Outcome of MAC verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacStatus {
    /// The computed MAC equals the stored one.
    Verified,
    /// Both are known and differ.
    Mismatch,
    /// The stored MAC does not decrypt with the data key and `lastmodified`.
    StoredMacUndecryptable,
    /// `sops.mac` or `sops.lastmodified` is absent.
    Missing(&'static str),
    /// Some values did not decrypt, so no MAC could be computed.
    Incomplete,
}

/// What happened to one leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    /// Encrypted and decrypted successfully.
    Decrypted,
    /// Left in plaintext by the file's suffix/regex rules (or an empty string, which sops does
    /// not encrypt).
    Plaintext,
    /// A `null` value (sops neither encrypts nor hashes it).
    Null,
    /// Failed; the reason never contains the value.
    Failed(String),
}

/// Report for one leaf key, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReport {
    /// Key path; list items carry `"[i]"` segments.
    pub path: Vec<String>,
    /// 1-based line.
    pub line: usize,
    /// Whether the file's rules say this leaf is encrypted.
    pub encrypted: bool,
    /// Whether its plaintext is available (decrypted, or stored in plaintext).
    pub decrypted: bool,
    /// The `type:` of the encrypted value.
    pub value_type: Option<EncType>,
    /// Details.
    pub status: KeyStatus,
}

impl KeyReport {
    /// `a.b[0]` form of the path.
    pub fn display_path(&self) -> String {
        display_path(&self.path)
    }
}

/// A decrypted leaf: canonical text (or raw bytes) in a zeroizing buffer.
struct Plain {
    kind: PlainKind,
    bytes: Zeroizing<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PlainKind {
    Str,
    Int,
    Float,
    Bool,
    Bytes,
    Null,
    Failed,
}

enum PNode {
    Map(Vec<(String, PNode)>),
    List(Vec<PNode>),
    Leaf(Plain),
}

/// The result of [`decrypt`]. Holds the plaintext internally (zeroed on drop); its `Debug`
/// output never shows values.
pub struct DecryptReport {
    /// The file recipient whose age stanza yielded the data key.
    pub data_key_unwrapped_by: String,
    /// One entry per leaf, in document order.
    pub keys: Vec<KeyReport>,
    /// MAC verification outcome.
    pub mac: MacStatus,
    /// `mac == MacStatus::Verified`.
    pub mac_ok: bool,
    lastmodified: String,
    plaintext: PNode,
}

impl fmt::Debug for DecryptReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptReport")
            .field("data_key_unwrapped_by", &self.data_key_unwrapped_by)
            .field("keys", &self.keys)
            .field("mac", &self.mac)
            .field("mac_ok", &self.mac_ok)
            .field("plaintext", &"<redacted>")
            .finish()
    }
}

impl DecryptReport {
    /// Whether every value decrypted and the MAC verified.
    pub fn is_ok(&self) -> bool {
        self.mac_ok
            && self
                .keys
                .iter()
                .all(|k| !matches!(k.status, KeyStatus::Failed(_)))
    }

    /// The first problem as an error: a value that did not decrypt, then the MAC.
    pub fn check(&self) -> Result<(), SopsError> {
        if let Some(k) = self
            .keys
            .iter()
            .find(|k| matches!(k.status, KeyStatus::Failed(_)))
        {
            let reason = match &k.status {
                KeyStatus::Failed(r) => r.clone(),
                _ => String::new(),
            };
            return Err(SopsError::ValueNotDecrypted {
                path: k.display_path(),
                line: k.line,
                reason,
            });
        }
        match &self.mac {
            MacStatus::Verified => Ok(()),
            MacStatus::Mismatch => Err(SopsError::MacMismatch),
            MacStatus::StoredMacUndecryptable => Err(SopsError::MacUndecryptable {
                lastmodified: self.lastmodified.clone(),
            }),
            MacStatus::Missing(field) => Err(SopsError::MacMissing { field }),
            MacStatus::Incomplete => Err(SopsError::MacMismatch),
        }
    }

    /// **For tests and verification only**: the whole decrypted tree as JSON, in document
    /// order, in a zeroizing buffer. Floats with an integral value are written as integers (as
    /// Go's JSON encoder does). Values that failed to decrypt are `null`. Never print this.
    pub fn plaintext_json(&self) -> Zeroizing<String> {
        let mut capacity = 0;
        size_hint(&self.plaintext, &mut capacity);
        let mut out = Zeroizing::new(String::with_capacity(capacity));
        write_json(&self.plaintext, &mut out);
        out
    }
}

fn size_hint(node: &PNode, total: &mut usize) {
    match node {
        PNode::Map(entries) => {
            for (k, v) in entries {
                *total += k.len() * 6 + 4;
                size_hint(v, total);
            }
            *total += 2;
        }
        PNode::List(items) => {
            for v in items {
                size_hint(v, total);
                *total += 1;
            }
            *total += 2;
        }
        PNode::Leaf(p) => *total += p.bytes.len() * 6 + 8,
    }
}

fn write_json_str(bytes: &[u8], out: &mut String) {
    out.push('"');
    for ch in String::from_utf8_lossy(bytes).chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                let n = c as u32;
                for shift in [4u32, 0] {
                    let d = (n >> shift) & 0xF;
                    out.push(char::from_digit(d, 16).unwrap_or('0'));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_json(node: &PNode, out: &mut String) {
    match node {
        PNode::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(k.as_bytes(), out);
                out.push(':');
                write_json(v, out);
            }
            out.push('}');
        }
        PNode::List(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(v, out);
            }
            out.push(']');
        }
        PNode::Leaf(p) => match p.kind {
            PlainKind::Str | PlainKind::Bytes => write_json_str(&p.bytes, out),
            PlainKind::Int | PlainKind::Bool => {
                out.push_str(&String::from_utf8_lossy(&p.bytes));
            }
            PlainKind::Float => {
                let text = String::from_utf8_lossy(&p.bytes);
                if text
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '-' || c == '.')
                {
                    out.push_str(&text);
                } else {
                    // NaN / ±Inf have no JSON form.
                    write_json_str(&p.bytes, out);
                }
            }
            PlainKind::Null | PlainKind::Failed => out.push_str("null"),
        },
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f}")
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

pub(crate) fn parse_float_text(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// The bytes sops hashes for a leaf (`sops.ToBytes`).
fn mac_bytes(p: &Plain) -> Option<Zeroizing<Vec<u8>>> {
    match p.kind {
        PlainKind::Bool => Some(Zeroizing::new(
            if p.bytes.as_slice() == b"true" {
                "True"
            } else {
                "False"
            }
            .as_bytes()
            .to_vec(),
        )),
        PlainKind::Null | PlainKind::Failed => None,
        _ => Some(Zeroizing::new(p.bytes.to_vec())),
    }
}

struct Rules {
    unencrypted_suffix: Option<String>,
    encrypted_suffix: Option<String>,
    unencrypted_regex: Option<Regex>,
    encrypted_regex: Option<Regex>,
}

impl Rules {
    fn new(m: &SopsMetadata) -> Result<Rules, SopsError> {
        let re = |field: &str, s: &Option<String>| -> Result<Option<Regex>, SopsError> {
            s.as_deref()
                .map(|p| {
                    Regex::new(p).map_err(|e| SopsError::Metadata {
                        field: format!("sops.{field}"),
                        line: 0,
                        reason: format!("invalid regex: {e}"),
                    })
                })
                .transpose()
        };
        Ok(Rules {
            unencrypted_suffix: m.unencrypted_suffix.clone(),
            encrypted_suffix: m.encrypted_suffix.clone(),
            unencrypted_regex: re("unencrypted_regex", &m.unencrypted_regex)?,
            encrypted_regex: re("encrypted_regex", &m.encrypted_regex)?,
        })
    }

    /// sops' decision, in sops' order (only one option is normally set).
    fn encrypted(&self, path: &[String]) -> bool {
        let mut encrypted = true;
        if let Some(s) = &self.unencrypted_suffix {
            if path.iter().any(|k| k.ends_with(s.as_str())) {
                encrypted = false;
            }
        }
        if let Some(s) = &self.encrypted_suffix {
            encrypted = path.iter().any(|k| k.ends_with(s.as_str()));
        }
        if let Some(re) = &self.unencrypted_regex {
            if path.iter().any(|k| re.is_match(k)) {
                encrypted = false;
            }
        }
        if let Some(re) = &self.encrypted_regex {
            encrypted = path.iter().any(|k| re.is_match(k));
        }
        encrypted
    }
}

/// Decrypt one `ENC[...]` value. The error reason never contains plaintext.
fn decrypt_enc(key: &[u8; 32], enc: &EncValue, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    if enc.iv.len() != 32 {
        return Err(format!("IV is {} bytes, expected 32", enc.iv.len()));
    }
    if enc.tag.len() != 16 {
        return Err(format!("tag is {} bytes, expected 16", enc.tag.len()));
    }
    let cipher = SopsAes::new(GenericArray::from_slice(key));
    let mut buf = Zeroizing::new(enc.data.clone());
    cipher
        .decrypt_in_place_detached(
            GenericArray::from_slice(&enc.iv),
            aad,
            buf.as_mut_slice(),
            GenericArray::from_slice(&enc.tag),
        )
        .map_err(|_| {
            "authentication failed (the ciphertext, IV or tag was changed, or the value was moved from another key)".to_string()
        })?;
    Ok(buf)
}

/// Turn decrypted bytes into a typed leaf per the `type:` field (as sops' AES cipher does).
fn typed(value_type: &EncType, bytes: Zeroizing<Vec<u8>>) -> Result<Plain, String> {
    let text = || std::str::from_utf8(&bytes).map_err(|_| "value is not UTF-8".to_string());
    let plain = |kind, s: String| Plain {
        kind,
        bytes: Zeroizing::new(s.into_bytes()),
    };
    match value_type {
        EncType::Str => Ok(Plain {
            kind: PlainKind::Str,
            bytes,
        }),
        EncType::Bytes => Ok(Plain {
            kind: PlainKind::Bytes,
            bytes,
        }),
        EncType::Int => {
            let n: i64 = text()?
                .parse()
                .map_err(|_| "value of type int is not an integer".to_string())?;
            Ok(plain(PlainKind::Int, n.to_string()))
        }
        EncType::Float => {
            let f: f64 = text()?
                .parse()
                .map_err(|_| "value of type float is not a number".to_string())?;
            Ok(plain(PlainKind::Float, go_float(f)))
        }
        EncType::Bool => {
            let b =
                go_bool(text()?).ok_or_else(|| "value of type bool is not a bool".to_string())?;
            Ok(plain(PlainKind::Bool, b.to_string()))
        }
        EncType::Comment => Err("a comment-typed value in a value position".into()),
        EncType::Other(t) => Err(format!("unknown value type {t:?}")),
    }
}

/// A plaintext leaf as it is stored in the file.
fn stored_plain(kind: ScalarKind, text: &str) -> Result<Plain, String> {
    let plain = |kind, s: String| Plain {
        kind,
        bytes: Zeroizing::new(s.into_bytes()),
    };
    match kind {
        ScalarKind::Null => Ok(plain(PlainKind::Null, String::new())),
        ScalarKind::Str => Ok(plain(PlainKind::Str, text.to_string())),
        ScalarKind::Bool => Ok(plain(
            PlainKind::Bool,
            go_bool(text)
                .ok_or_else(|| "invalid bool".to_string())?
                .to_string(),
        )),
        ScalarKind::Int => match parse_yaml_int(text) {
            Some(n) => Ok(plain(PlainKind::Int, n.to_string())),
            None => Err("invalid integer".into()),
        },
        ScalarKind::Float => match parse_float_text(text) {
            Some(f) => Ok(plain(PlainKind::Float, go_float(f))),
            None => Err("invalid number".into()),
        },
    }
}

struct Walker<'a> {
    key: &'a [u8; 32],
    rules: Rules,
    mac_only_encrypted: bool,
    hasher: Sha512,
    reports: Vec<KeyReport>,
    failed: bool,
}

impl Walker<'_> {
    fn walk(
        &mut self,
        node: &Node,
        aad_path: &mut Vec<String>,
        path: &mut Vec<String>,
        line: usize,
    ) -> PNode {
        match &node.value {
            Value::Map(entries) => PNode::Map(
                entries
                    .iter()
                    .map(|e| {
                        aad_path.push(e.key.clone());
                        path.push(e.key.clone());
                        let v = self.walk(&e.node, aad_path, path, e.line);
                        aad_path.pop();
                        path.pop();
                        (e.key.clone(), v)
                    })
                    .collect(),
            ),
            Value::List(items) => PNode::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        path.push(format!("[{i}]"));
                        let v = self.walk(item, aad_path, path, item.line.max(1));
                        path.pop();
                        v
                    })
                    .collect(),
            ),
            Value::Scalar(s) => {
                let encrypted = self.rules.encrypted(aad_path);
                let mut report = KeyReport {
                    path: path.clone(),
                    line,
                    encrypted,
                    decrypted: false,
                    value_type: None,
                    status: KeyStatus::Null,
                };
                let result: Result<Plain, String> = if s.kind == ScalarKind::Null {
                    Ok(Plain {
                        kind: PlainKind::Null,
                        bytes: Zeroizing::new(Vec::new()),
                    })
                } else if !encrypted {
                    stored_plain(s.kind, &s.text)
                } else if s.kind != ScalarKind::Str {
                    Err("expected an encrypted ENC[...] value, found a plain scalar".into())
                } else if s.text.is_empty() {
                    // sops does not encrypt empty strings.
                    Ok(Plain {
                        kind: PlainKind::Str,
                        bytes: Zeroizing::new(Vec::new()),
                    })
                } else {
                    match EncValue::parse(&s.text) {
                        Err(reason) => Err(format!("not a valid ENC[...] value: {reason}")),
                        Ok(enc) => {
                            report.value_type = Some(enc.value_type.clone());
                            let mut aad = aad_path.join(":");
                            aad.push(':');
                            decrypt_enc(self.key, &enc, aad.as_bytes())
                                .and_then(|bytes| typed(&enc.value_type, bytes))
                        }
                    }
                };
                let plain = match result {
                    Ok(p) => {
                        report.status = match p.kind {
                            PlainKind::Null => KeyStatus::Null,
                            _ if encrypted && !s.text.is_empty() => KeyStatus::Decrypted,
                            _ => KeyStatus::Plaintext,
                        };
                        report.decrypted = p.kind != PlainKind::Null;
                        if !self.mac_only_encrypted || encrypted {
                            if let Some(b) = mac_bytes(&p) {
                                self.hasher.update(b.as_slice());
                            }
                        }
                        p
                    }
                    Err(reason) => {
                        self.failed = true;
                        report.status = KeyStatus::Failed(reason);
                        Plain {
                            kind: PlainKind::Failed,
                            bytes: Zeroizing::new(Vec::new()),
                        }
                    }
                };
                self.reports.push(report);
                PNode::Leaf(plain)
            }
        }
    }
}

/// Unwrap the data key: try each supported age recipient's stanza with all identities.
fn unwrap_data_key(
    file: &SopsFile,
    identities: &AgeIdentities,
) -> Result<(Zeroizing<[u8; 32]>, String), SopsError> {
    if let Some(blocker) = file.decryption_blocker() {
        return Err(SopsError::Unsupported(blocker));
    }
    if identities.is_empty() {
        return Err(SopsError::NoIdentity);
    }
    let recipients = file.metadata().age_recipients();
    let mut stanza_error: Option<SopsError> = None;
    for r in recipients.iter().filter(|r| r.kind.is_supported()) {
        let armored = age::armor::ArmoredReader::new(r.enc.as_bytes());
        let decryptor = match age::Decryptor::new(armored) {
            Ok(d) => d,
            Err(e) => {
                stanza_error.get_or_insert(SopsError::DataKey {
                    recipient: r.recipient.clone(),
                    reason: format!("the enc block is not a valid age file ({e})"),
                });
                continue;
            }
        };
        match decryptor.decrypt(identities.iter()) {
            Ok(mut stream) => {
                let mut payload = Zeroizing::new(Vec::with_capacity(64));
                if let Err(e) = stream.read_to_end(&mut payload) {
                    return Err(SopsError::DataKey {
                        recipient: r.recipient.clone(),
                        reason: format!("the age payload does not decrypt ({e})"),
                    });
                }
                let mut key = Zeroizing::new([0u8; 32]);
                if payload.len() != 32 {
                    return Err(SopsError::DataKey {
                        recipient: r.recipient.clone(),
                        reason: format!("the payload is {} bytes, expected 32", payload.len()),
                    });
                }
                key.copy_from_slice(&payload);
                return Ok((key, r.recipient.clone()));
            }
            Err(age::DecryptError::NoMatchingKeys) => continue,
            Err(e) => {
                stanza_error.get_or_insert(SopsError::DataKey {
                    recipient: r.recipient.clone(),
                    reason: e.to_string(),
                });
            }
        }
    }
    if let Some(e) = stanza_error {
        return Err(e);
    }
    Err(SopsError::NoMatchingIdentity {
        identities: identities.public_recipients().join(", "),
        recipients: recipients
            .iter()
            .map(|r| r.recipient.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Unwrap the data key with `identities`, decrypt every value and verify the MAC.
///
/// Returns `Err` when decryption cannot start (unsupported feature, no identity, no matching
/// identity, damaged age stanza, invalid regex in the metadata). Per-value failures and MAC
/// problems are in the report; call [`DecryptReport::check`] to turn them into an error.
pub fn decrypt(file: &SopsFile, identities: &AgeIdentities) -> Result<DecryptReport, SopsError> {
    let meta = file.metadata();
    let (key, unwrapped_by) = unwrap_data_key(file, identities)?;
    let mut walker = Walker {
        key: &key,
        rules: Rules::new(meta)?,
        mac_only_encrypted: meta.mac_only_encrypted,
        hasher: Sha512::new(),
        reports: Vec::new(),
        failed: false,
    };
    let plaintext = walker.walk(&file.root, &mut Vec::new(), &mut Vec::new(), 1);
    let lastmodified = meta.lastmodified.clone().unwrap_or_default();
    let Walker {
        hasher,
        reports,
        failed,
        ..
    } = walker;
    let mac = if failed {
        MacStatus::Incomplete
    } else {
        match (&meta.mac, &meta.lastmodified) {
            (None, _) => MacStatus::Missing("sops.mac"),
            (_, None) => MacStatus::Missing("sops.lastmodified"),
            (Some(stored), Some(lastmodified)) => {
                let computed = hex::encode_upper(hasher.finalize());
                match EncValue::parse(stored)
                    .and_then(|enc| decrypt_enc(&key, &enc, lastmodified.as_bytes()))
                {
                    Err(_) => MacStatus::StoredMacUndecryptable,
                    Ok(stored_plain) => {
                        if stored_plain.as_slice() == computed.as_bytes() {
                            MacStatus::Verified
                        } else {
                            MacStatus::Mismatch
                        }
                    }
                }
            }
        }
    };
    Ok(DecryptReport {
        data_key_unwrapped_by: unwrapped_by,
        keys: reports,
        mac_ok: mac == MacStatus::Verified,
        mac,
        lastmodified,
        plaintext,
    })
}

impl SopsFile {
    /// See [`decrypt`].
    pub fn decrypt(&self, identities: &AgeIdentities) -> Result<DecryptReport, SopsError> {
        decrypt(self, identities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_format() {
        assert_eq!(go_float(2.75), "2.75");
        assert_eq!(go_float(7.0), "7");
        assert_eq!(go_float(1e21), "1000000000000000000000");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn bools_hash_capitalised() {
        let p = Plain {
            kind: PlainKind::Bool,
            bytes: Zeroizing::new(b"true".to_vec()),
        };
        assert_eq!(mac_bytes(&p).unwrap().as_slice(), b"True");
    }

    #[test]
    fn rules_follow_sops_order() {
        let meta = SopsMetadata {
            unencrypted_suffix: Some("_unencrypted".into()),
            ..Default::default()
        };
        let rules = Rules::new(&meta).unwrap();
        assert!(rules.encrypted(&["a".into(), "b".into()]));
        assert!(!rules.encrypted(&["a_unencrypted".into(), "b".into()]));
        let meta = SopsMetadata {
            encrypted_regex: Some("^(data|stringData)$".into()),
            ..Default::default()
        };
        let rules = Rules::new(&meta).unwrap();
        assert!(rules.encrypted(&["data".into(), "x".into()]));
        assert!(!rules.encrypted(&["metadata".into(), "name".into()]));
    }
}
