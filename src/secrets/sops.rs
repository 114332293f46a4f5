//! Reading SOPS files without decrypting them: plaintext key paths (with line numbers),
//! `ENC[...]` values and the `sops` metadata section.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::error::{SopsError, Unsupported};
use super::tree::{self, Node, Value};

/// The two stores nixflip reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SopsFormat {
    /// YAML (`.yaml`, `.yml`, and the default for other extensions, like sops-nix).
    Yaml,
    /// JSON (`.json`).
    Json,
}

impl SopsFormat {
    /// Pick the format from a file name the way sops does: `.json` is JSON, everything else that
    /// nixflip reads is YAML. (`.env`/`.ini`/binary stores are not handled.)
    pub fn from_path(path: &Path) -> SopsFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => SopsFormat::Json,
            _ => SopsFormat::Yaml,
        }
    }
}

/// What kind of node a key path leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A scalar value (encrypted or not).
    Leaf,
    /// A mapping.
    Map,
    /// A list.
    List,
}

/// A plaintext key path of a leaf value, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKey {
    /// Mapping keys from the root; list items contribute their index as a segment (e.g.
    /// `["a_list", "0"]`). Indices are NOT part of the sops AAD path.
    pub path: Vec<String>,
    /// 1-based line of the value (the key's line for mapping values).
    pub line: usize,
}

impl SecretKey {
    /// The path for display: `nested.test.file`, `a_list[0]`.
    pub fn display_path(&self) -> String {
        display_path(&self.path)
    }
}

pub(crate) fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg.starts_with('[') {
            out.push_str(seg);
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// The `type` of an encrypted value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncType {
    /// `str`
    Str,
    /// `int`
    Int,
    /// `float`
    Float,
    /// `bool`
    Bool,
    /// `bytes`
    Bytes,
    /// `comment` (YAML comments)
    Comment,
    /// Anything else (rejected on decryption).
    Other(String),
}

impl EncType {
    fn parse(s: &str) -> EncType {
        match s {
            "str" => EncType::Str,
            "int" => EncType::Int,
            "float" => EncType::Float,
            "bool" => EncType::Bool,
            "bytes" => EncType::Bytes,
            "comment" => EncType::Comment,
            other => EncType::Other(other.to_string()),
        }
    }

    /// The name as written in the file.
    pub fn as_str(&self) -> &str {
        match self {
            EncType::Str => "str",
            EncType::Int => "int",
            EncType::Float => "float",
            EncType::Bool => "bool",
            EncType::Bytes => "bytes",
            EncType::Comment => "comment",
            EncType::Other(s) => s,
        }
    }
}

/// A parsed `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` value (ciphertext only; not secret).
#[derive(Clone, PartialEq, Eq)]
pub struct EncValue {
    /// Ciphertext.
    pub data: Vec<u8>,
    /// IV (32 bytes for sops).
    pub iv: Vec<u8>,
    /// GCM tag (16 bytes).
    pub tag: Vec<u8>,
    /// The plaintext's type (the `type:` field).
    pub value_type: EncType,
}

impl fmt::Debug for EncValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncValue")
            .field("data_len", &self.data.len())
            .field("iv_len", &self.iv.len())
            .field("tag_len", &self.tag.len())
            .field("value_type", &self.value_type)
            .finish()
    }
}

impl EncValue {
    /// Whether a string looks like a sops encrypted value.
    pub fn is_enc(text: &str) -> bool {
        text.starts_with("ENC[") && text.ends_with(']')
    }

    /// Parse an `ENC[...]` string. The error reason never contains the string itself.
    pub fn parse(text: &str) -> Result<EncValue, String> {
        let inner = text
            .strip_prefix("ENC[")
            .and_then(|t| t.strip_suffix(']'))
            .ok_or_else(|| "not of the form ENC[...]".to_string())?;
        let mut parts = inner.split(',');
        let cipher = parts.next().unwrap_or_default();
        if cipher != "AES256_GCM" {
            return Err(format!("unsupported cipher {cipher:?}"));
        }
        let mut field = |name: &str| -> Result<&str, String> {
            parts
                .next()
                .and_then(|p| p.strip_prefix(name))
                .and_then(|p| p.strip_prefix(':'))
                .ok_or_else(|| format!("missing `{name}:` field"))
        };
        let data = field("data")?;
        let iv = field("iv")?;
        let tag = field("tag")?;
        let ty = field("type")?;
        if parts.next().is_some() {
            return Err("unexpected extra field".into());
        }
        let b64 = |name: &str, s: &str| {
            BASE64
                .decode(s)
                .map_err(|_| format!("`{name}` is not valid base64"))
        };
        Ok(EncValue {
            data: b64("data", data)?,
            iv: b64("iv", iv)?,
            tag: b64("tag", tag)?,
            value_type: EncType::parse(ty),
        })
    }
}

/// How an age recipient string is to be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientKind {
    /// A native age X25519 recipient (`age1…`, bech32 HRP `age`).
    X25519,
    /// An ssh ed25519 public key used directly (age's ssh-ed25519 stanza, sops-nix native ssh).
    SshEd25519,
    /// An ssh RSA public key used directly.
    SshRsa,
    /// A post-quantum recipient (`age1pq1…`). Unsupported.
    PostQuantum,
    /// An age plugin recipient (`age1<name>1…`). Unsupported.
    Plugin(String),
    /// Not recognised.
    Unknown,
}

impl RecipientKind {
    /// Classify a recipient string.
    pub fn classify(recipient: &str) -> RecipientKind {
        let r = recipient.trim();
        if r.starts_with("ssh-ed25519 ") {
            return RecipientKind::SshEd25519;
        }
        if r.starts_with("ssh-rsa ") {
            return RecipientKind::SshRsa;
        }
        if let Ok((hrp, _)) = bech32::decode(r) {
            let hrp = hrp.to_lowercase();
            if hrp == "age" {
                return RecipientKind::X25519;
            }
            if hrp == "age1pq" {
                return RecipientKind::PostQuantum;
            }
            if let Some(name) = hrp.strip_prefix("age1") {
                return RecipientKind::Plugin(name.to_string());
            }
        } else if let Some(rest) = r.strip_prefix("age1") {
            // Long post-quantum and plugin recipients exceed bech32's length limit; classify
            // them by their prefix.
            if rest.starts_with("pq1") {
                return RecipientKind::PostQuantum;
            }
            if let Some(pos) = rest.find('1') {
                if pos > 0 && rest[..pos].bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return RecipientKind::Plugin(rest[..pos].to_string());
                }
            }
        }
        RecipientKind::Unknown
    }

    /// Whether nixflip can unwrap a data key for this kind of recipient.
    pub fn is_supported(&self) -> bool {
        matches!(
            self,
            RecipientKind::X25519 | RecipientKind::SshEd25519 | RecipientKind::SshRsa
        )
    }
}

/// One `age` entry of the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeRecipient {
    /// The recipient as written in the file.
    pub recipient: String,
    /// Its kind.
    pub kind: RecipientKind,
    /// The armored age file holding the data key.
    pub enc: String,
    /// 1-based line of the entry.
    pub line: usize,
    /// Index into `key_groups`, or `None` for the flat `sops.age` list.
    pub group: Option<usize>,
}

/// Presence counts of non-age key types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherKeys {
    /// `pgp` entries.
    pub pgp: usize,
    /// `kms` entries.
    pub kms: usize,
    /// `gcp_kms` entries.
    pub gcp_kms: usize,
    /// `azure_kv` entries.
    pub azure_kv: usize,
    /// `hc_vault` entries.
    pub hc_vault: usize,
}

impl OtherKeys {
    /// Names of the key types present.
    pub fn present(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (name, n) in [
            ("pgp", self.pgp),
            ("kms", self.kms),
            ("gcp_kms", self.gcp_kms),
            ("azure_kv", self.azure_kv),
            ("hc_vault", self.hc_vault),
        ] {
            if n > 0 {
                out.push(name);
            }
        }
        out
    }

    fn add(&mut self, other: &OtherKeys) {
        self.pgp += other.pgp;
        self.kms += other.kms;
        self.gcp_kms += other.gcp_kms;
        self.azure_kv += other.azure_kv;
        self.hc_vault += other.hc_vault;
    }
}

/// One entry of `sops.key_groups`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyGroup {
    /// Age recipients of the group.
    pub age: Vec<AgeRecipient>,
    /// Other key types in the group.
    pub others: OtherKeys,
}

/// The `sops` metadata section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SopsMetadata {
    /// The flat `sops.age` list.
    pub age: Vec<AgeRecipient>,
    /// `sops.key_groups` (empty when the flat form is used).
    pub key_groups: Vec<KeyGroup>,
    /// Non-age key types in the flat form.
    pub others: OtherKeys,
    /// `lastmodified`, as written (RFC 3339).
    pub lastmodified: Option<String>,
    /// The encrypted MAC, `ENC[...]`.
    pub mac: Option<String>,
    /// The sops version that wrote the file.
    pub version: Option<String>,
    /// `unencrypted_suffix`
    pub unencrypted_suffix: Option<String>,
    /// `encrypted_suffix`
    pub encrypted_suffix: Option<String>,
    /// `unencrypted_regex`
    pub unencrypted_regex: Option<String>,
    /// `encrypted_regex`
    pub encrypted_regex: Option<String>,
    /// `unencrypted_comment_regex`
    pub unencrypted_comment_regex: Option<String>,
    /// `encrypted_comment_regex`
    pub encrypted_comment_regex: Option<String>,
    /// `mac_only_encrypted`
    pub mac_only_encrypted: bool,
    /// `shamir_threshold`
    pub shamir_threshold: Option<u64>,
}

impl SopsMetadata {
    /// All age recipients, flat list first, then key groups in order.
    pub fn age_recipients(&self) -> Vec<&AgeRecipient> {
        self.age
            .iter()
            .chain(self.key_groups.iter().flat_map(|g| g.age.iter()))
            .collect()
    }

    /// All non-age key types (flat and in groups).
    pub fn other_keys(&self) -> OtherKeys {
        let mut all = self.others.clone();
        for g in &self.key_groups {
            all.add(&g.others);
        }
        all
    }
}

/// A parsed SOPS file: the plaintext tree (values still encrypted) and the metadata.
#[derive(Debug, Clone)]
pub struct SopsFile {
    format: SopsFormat,
    /// The document without the `sops` key.
    pub(crate) root: Node,
    metadata: SopsMetadata,
}

fn meta_err(field: &str, line: usize, reason: impl Into<String>) -> SopsError {
    SopsError::Metadata {
        field: field.to_string(),
        line,
        reason: reason.into(),
    }
}

fn opt_string(meta: &Node, key: &str) -> Result<Option<String>, SopsError> {
    match meta.get(key) {
        None => Ok(None),
        Some(e) => match &e.node.value {
            Value::Scalar(s) if s.kind == tree::ScalarKind::Null => Ok(None),
            Value::Scalar(s) if s.text.is_empty() => Ok(None),
            Value::Scalar(s) => Ok(Some(s.text.clone())),
            _ => Err(meta_err(
                &format!("sops.{key}"),
                e.line,
                "expected a string",
            )),
        },
    }
}

/// Items of a metadata list (`null` and absent mean empty).
fn list_items<'a>(node: &'a Node, field: &str) -> Result<&'a [Node], SopsError> {
    match &node.value {
        Value::List(items) => Ok(items),
        Value::Scalar(s) if s.kind == tree::ScalarKind::Null => Ok(&[]),
        _ => Err(meta_err(field, node.line, "expected a list")),
    }
}

fn count_list(parent: &Node, key: &str, field: &str) -> Result<usize, SopsError> {
    match parent.get(key) {
        None => Ok(0),
        Some(e) => Ok(list_items(&e.node, &format!("{field}.{key}"))?.len()),
    }
}

fn parse_age_list(
    parent: &Node,
    field: &str,
    group: Option<usize>,
) -> Result<Vec<AgeRecipient>, SopsError> {
    let Some(entry) = parent.get("age") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, item) in list_items(&entry.node, &format!("{field}.age"))?
        .iter()
        .enumerate()
    {
        let here = format!("{field}.age[{i}]");
        let get = |k: &str| -> Result<String, SopsError> {
            item.get(k)
                .and_then(|e| e.node.scalar())
                .map(|s| s.text.clone())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| meta_err(&format!("{here}.{k}"), item.line, "missing"))
        };
        let recipient = get("recipient")?;
        let enc = get("enc")?;
        out.push(AgeRecipient {
            kind: RecipientKind::classify(&recipient),
            recipient: recipient.trim().to_string(),
            enc,
            line: item.line,
            group,
        });
    }
    Ok(out)
}

fn parse_others(parent: &Node, field: &str) -> Result<OtherKeys, SopsError> {
    Ok(OtherKeys {
        pgp: count_list(parent, "pgp", field)?,
        kms: count_list(parent, "kms", field)?,
        gcp_kms: count_list(parent, "gcp_kms", field)?,
        azure_kv: count_list(parent, "azure_kv", field)?,
        hc_vault: count_list(parent, "hc_vault", field)?,
    })
}

fn parse_metadata(meta: &Node) -> Result<SopsMetadata, SopsError> {
    if meta.as_map().is_none() {
        return Err(meta_err("sops", meta.line, "expected a mapping"));
    }
    let mut key_groups = Vec::new();
    if let Some(e) = meta.get("key_groups") {
        for (i, g) in list_items(&e.node, "sops.key_groups")?.iter().enumerate() {
            let field = format!("sops.key_groups[{i}]");
            if g.as_map().is_none() {
                return Err(meta_err(&field, g.line, "expected a mapping"));
            }
            key_groups.push(KeyGroup {
                age: parse_age_list(g, &field, Some(i))?,
                others: parse_others(g, &field)?,
            });
        }
    }
    let mac_only_encrypted = match meta.get("mac_only_encrypted") {
        None => false,
        Some(e) => match e.node.scalar().map(|s| s.text.as_str()) {
            Some("true" | "True" | "TRUE") => true,
            Some("false" | "False" | "FALSE" | "") => false,
            _ => {
                return Err(meta_err(
                    "sops.mac_only_encrypted",
                    e.line,
                    "expected a bool",
                ))
            }
        },
    };
    let shamir_threshold = match meta.get("shamir_threshold") {
        None => None,
        Some(e) => match e.node.scalar() {
            Some(s) if s.kind == tree::ScalarKind::Null => None,
            Some(s) => Some(
                s.text
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
                    .ok_or_else(|| {
                        meta_err("sops.shamir_threshold", e.line, "expected an integer")
                    })?,
            ),
            None => {
                return Err(meta_err(
                    "sops.shamir_threshold",
                    e.line,
                    "expected an integer",
                ))
            }
        },
    };
    Ok(SopsMetadata {
        age: parse_age_list(meta, "sops", None)?,
        key_groups,
        others: parse_others(meta, "sops")?,
        lastmodified: opt_string(meta, "lastmodified")?,
        mac: opt_string(meta, "mac")?,
        version: opt_string(meta, "version")?,
        unencrypted_suffix: opt_string(meta, "unencrypted_suffix")?,
        encrypted_suffix: opt_string(meta, "encrypted_suffix")?,
        unencrypted_regex: opt_string(meta, "unencrypted_regex")?,
        encrypted_regex: opt_string(meta, "encrypted_regex")?,
        unencrypted_comment_regex: opt_string(meta, "unencrypted_comment_regex")?,
        encrypted_comment_regex: opt_string(meta, "encrypted_comment_regex")?,
        mac_only_encrypted,
        shamir_threshold,
    })
}

/// Walk leaves in document order: `(aad_path, display_path, line, scalar)`.
pub(crate) fn walk_leaves<'a>(
    node: &'a Node,
    aad_path: &mut Vec<String>,
    path: &mut Vec<String>,
    line: usize,
    out: &mut Vec<(Vec<String>, Vec<String>, usize, &'a tree::Scalar)>,
) {
    match &node.value {
        Value::Scalar(s) => out.push((aad_path.clone(), path.clone(), line, s)),
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                let item_line = if item.line > 0 { item.line } else { line };
                walk_leaves(item, aad_path, path, item_line, out);
                path.pop();
            }
        }
        Value::Map(entries) => {
            for e in entries {
                aad_path.push(e.key.clone());
                path.push(e.key.clone());
                walk_leaves(&e.node, aad_path, path, e.line, out);
                aad_path.pop();
                path.pop();
            }
        }
    }
}

impl SopsFile {
    /// Parse a SOPS file's text. Fails if the text does not parse or has no valid `sops`
    /// metadata mapping. Unsupported features are not errors here; see
    /// [`SopsFile::unsupported`].
    pub fn parse(text: &str, format: SopsFormat) -> Result<SopsFile, SopsError> {
        let root = match format {
            SopsFormat::Yaml => tree::parse_yaml(text)?,
            SopsFormat::Json => tree::parse_json(text)?,
        };
        let Value::Map(mut entries) = root.value else {
            return Err(SopsError::NotSops {
                reason: "the document is not a mapping".into(),
            });
        };
        let pos = entries
            .iter()
            .position(|e| e.key == "sops")
            .ok_or_else(|| SopsError::NotSops {
                reason: "there is no top-level `sops` metadata section".into(),
            })?;
        let meta = entries.remove(pos);
        let metadata = parse_metadata(&meta.node)?;
        Ok(SopsFile {
            format,
            root: Node {
                line: root.line,
                value: Value::Map(entries),
            },
            metadata,
        })
    }

    /// Read and parse a file; the format comes from its extension.
    pub fn load(path: &Path) -> Result<SopsFile, SopsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SopsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        SopsFile::parse(&text, SopsFormat::from_path(path))
    }

    /// The format the file was parsed as.
    pub fn format(&self) -> SopsFormat {
        self.format
    }

    /// The metadata section.
    pub fn metadata(&self) -> &SopsMetadata {
        &self.metadata
    }

    /// Leaf key paths in document order (the `sops` section excluded). List items carry their
    /// index as a segment `"[i]"`.
    pub fn keys(&self) -> Vec<SecretKey> {
        let mut out = Vec::new();
        walk_leaves(&self.root, &mut Vec::new(), &mut Vec::new(), 1, &mut out);
        out.into_iter()
            .map(|(_, path, line, _)| SecretKey { path, line })
            .collect()
    }

    /// Top-level key names in document order.
    pub fn top_level_keys(&self) -> Vec<&str> {
        self.root
            .as_map()
            .map(|m| m.iter().map(|e| e.key.as_str()).collect())
            .unwrap_or_default()
    }

    /// Look up a mapping-key path (list indices may be given as `"0"` or `"[0]"`); returns the
    /// line and the kind of node found.
    pub fn lookup<S: AsRef<str>>(&self, path: &[S]) -> Option<(usize, NodeKind)> {
        let mut node = &self.root;
        let mut line = 1;
        for seg in path {
            let seg = seg.as_ref();
            match &node.value {
                Value::Map(entries) => {
                    let e = entries.iter().find(|e| e.key == seg)?;
                    line = e.line;
                    node = &e.node;
                }
                Value::List(items) => {
                    let idx = seg.trim_start_matches('[').trim_end_matches(']');
                    let i: usize = idx.parse().ok()?;
                    node = items.get(i)?;
                    line = node.line;
                }
                Value::Scalar(_) => return None,
            }
        }
        let kind = match node.value {
            Value::Map(_) => NodeKind::Map,
            Value::List(_) => NodeKind::List,
            Value::Scalar(_) => NodeKind::Leaf,
        };
        Some((line, kind))
    }

    /// Whether a key path exists (any node kind).
    pub fn has_key<S: AsRef<str>>(&self, path: &[S]) -> bool {
        self.lookup(path).is_some()
    }

    /// Look up a sops-nix `key` option: nested keys separated by `/`. An empty key means the
    /// whole file (sops-nix `key = ""`), reported as the root mapping at line 1.
    pub fn lookup_sops_nix_key(&self, key: &str) -> Option<(usize, NodeKind)> {
        if key.is_empty() {
            return Some((1, NodeKind::Map));
        }
        let segs: Vec<&str> = key.split('/').collect();
        self.lookup(&segs)
    }

    /// Parse the `ENC[...]` value at a key path, if it is one.
    pub fn enc_value<S: AsRef<str>>(&self, path: &[S]) -> Option<Result<EncValue, String>> {
        let mut node = &self.root;
        for seg in path {
            let seg = seg.as_ref();
            node = match &node.value {
                Value::Map(entries) => &entries.iter().find(|e| e.key == seg)?.node,
                Value::List(items) => {
                    let idx = seg.trim_start_matches('[').trim_end_matches(']');
                    items.get(idx.parse::<usize>().ok()?)?
                }
                Value::Scalar(_) => return None,
            };
        }
        let s = node.scalar()?;
        EncValue::is_enc(&s.text).then(|| EncValue::parse(&s.text))
    }

    /// All age recipient strings (flat list, then key groups), as written.
    pub fn age_recipients(&self) -> Vec<&str> {
        self.metadata
            .age_recipients()
            .into_iter()
            .map(|r| r.recipient.as_str())
            .collect()
    }

    /// Features of this file that nixflip does not handle. Non-empty does not always block
    /// decryption (e.g. a post-quantum recipient next to an X25519 one); see
    /// [`SopsFile::decryption_blocker`].
    pub fn unsupported(&self) -> Vec<Unsupported> {
        let m = &self.metadata;
        let mut out = Vec::new();
        if m.key_groups.len() > 1 {
            out.push(Unsupported::Shamir {
                groups: m.key_groups.len(),
                threshold: m.shamir_threshold,
            });
        }
        let recipients = m.age_recipients();
        if recipients.is_empty() {
            out.push(Unsupported::NoAgeRecipient {
                others: m.other_keys().present(),
            });
        }
        for r in recipients {
            match &r.kind {
                RecipientKind::PostQuantum => out.push(Unsupported::PostQuantumRecipient {
                    recipient: r.recipient.clone(),
                }),
                RecipientKind::Plugin(_) | RecipientKind::Unknown => {
                    out.push(Unsupported::PluginRecipient {
                        recipient: r.recipient.clone(),
                    })
                }
                _ => {}
            }
        }
        out
    }

    /// The unsupported feature that prevents decryption with age, if any: several key groups
    /// (Shamir), no age recipient, or only unsupported age recipients.
    pub fn decryption_blocker(&self) -> Option<Unsupported> {
        let all = self.unsupported();
        if let Some(s) = all.iter().find(|u| matches!(u, Unsupported::Shamir { .. })) {
            return Some(s.clone());
        }
        if let Some(s) = all
            .iter()
            .find(|u| matches!(u, Unsupported::NoAgeRecipient { .. }))
        {
            return Some(s.clone());
        }
        let recipients = self.metadata.age_recipients();
        if !recipients.iter().any(|r| r.kind.is_supported()) {
            return all.into_iter().next();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enc_value_parses() {
        let v = EncValue::parse("ENC[AES256_GCM,data:oOQ=,iv:5P+1UQyIYOW8xXgsvTXC17msGcA6IGB3N8n+pstfqjo=,tag:ox4rgjbb8c0vYZ2XmwRgpg==,type:str]").unwrap();
        assert_eq!(v.data.len(), 2);
        assert_eq!(v.iv.len(), 32);
        assert_eq!(v.tag.len(), 16);
        assert_eq!(v.value_type, EncType::Str);
        assert!(EncValue::parse("ENC[AES256_CBC,data:a,iv:b,tag:c,type:str]").is_err());
        assert!(EncValue::parse("ENC[AES256_GCM,data:!!,iv:b,tag:c,type:str]").is_err());
    }

    #[test]
    fn recipient_kinds() {
        assert_eq!(
            RecipientKind::classify(
                "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw"
            ),
            RecipientKind::X25519
        );
        assert_eq!(
            RecipientKind::classify("ssh-ed25519 AAAAC3Nza comment"),
            RecipientKind::SshEd25519
        );
        assert_eq!(
            RecipientKind::classify("age1pq1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"),
            RecipientKind::PostQuantum
        );
        assert_eq!(
            RecipientKind::classify("age1yubikey1qwerty"),
            RecipientKind::Plugin("yubikey".into())
        );
    }

    #[test]
    fn display_paths() {
        let p: Vec<String> = ["a", "[0]", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(display_path(&p), "a[0].b");
    }
}
