//! The DNS record a switchover moves to the new primary: read and changed through Porkbun's JSON
//! API, or changed by a command of the operator's for any other provider. It must never put an
//! API key on a command line, in a URL or in a message: keys come from files and travel only in
//! request bodies.
//!
//! Porkbun (`https://api.porkbun.com/api/json/v3`): `POST
//! /dns/retrieveByNameType/DOMAIN/TYPE[/NAME]` answers `{"status":
//! "SUCCESS", "records": [{"name", "type", "content", "ttl", …}]}`, `POST
//! /dns/editByNameType/DOMAIN/TYPE[/NAME]` with `content` and `ttl` changes
//! every record of that name and type; both take `apikey` and
//! `secretapikey` in the JSON body, and a failure answers `{"status":
//! "ERROR", "message": …}`.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::config::DnsConfig;
use crate::error::{Error, Result};

/// Porkbun's API, unless `[dns] api_url` says otherwise.
pub const PORKBUN_API: &str = "https://api.porkbun.com/api/json/v3";

/// Connect, send and receive timeouts, each.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A key read from a file. Its `Debug` is `***`; it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
struct Key(String);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One record as the provider shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: String,
    pub ttl: Option<u64>,
}

/// The record `[dns]` names: zone, name within it, and type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordName {
    pub domain: String,
    /// Empty for the zone's apex.
    pub name: String,
    /// `A` or `AAAA`.
    pub kind: String,
}

impl RecordName {
    /// The full name (`matrix.example.org`).
    pub fn fqdn(&self) -> String {
        if self.name.is_empty() {
            self.domain.clone()
        } else {
            format!("{}.{}", self.name, self.domain)
        }
    }
}

impl fmt::Display for RecordName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.fqdn(), self.kind)
    }
}

/// How the record is changed.
pub enum Provider {
    Porkbun(Porkbun),
    /// `[dns] command`: an argv with placeholders.
    Command(Vec<String>),
}

/// Where the record is, and how it is changed.
pub struct Dns {
    pub record: RecordName,
    pub max_ttl: u64,
    pub provider: Provider,
    /// The flake root: the command runs there.
    root: std::path::PathBuf,
}

/// The record type for an address: `A` for IPv4, `AAAA` for IPv6.
pub fn record_type(address: &str) -> Option<&'static str> {
    match address.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some("A"),
        IpAddr::V6(_) => Some("AAAA"),
    }
}

impl Dns {
    /// From `[dns]`, for a record that will hold `address` (its type
    /// follows the address unless `type` is set). Exit 2 for an address a
    /// record cannot hold or a key file that cannot be read.
    pub fn from_config(root: &Path, config: &DnsConfig, address: &str) -> Result<Dns> {
        let kind = match (&config.r#type, record_type(address)) {
            (_, None) => {
                return Err(Error::usage(
                    format!("`{address}` is not an IP address, so an A or AAAA record cannot hold it"),
                    "set the new primary's public_address in [hosts.X.live] to the IP address clients should reach",
                ))
            }
            (Some(kind), Some(wanted)) if kind.get_ref() != wanted => {
                return Err(Error::usage(
                    format!("[dns] type is {}, but the new primary's address {address} needs {wanted}", kind.get_ref()),
                    "fix [dns] type, or leave it out to follow the address",
                ))
            }
            (_, Some(wanted)) => wanted.to_string(),
        };
        let record = RecordName {
            domain: config.domain.get_ref().clone(),
            name: config.name.get_ref().clone(),
            kind,
        };
        let provider = match (
            &config.command,
            &config.api_key_file,
            &config.secret_api_key_file,
        ) {
            (Some(command), _, _) => Provider::Command(command.get_ref().clone()),
            (None, Some(key), Some(secret)) => Provider::Porkbun(Porkbun::new(
                config
                    .api_url
                    .as_ref()
                    .map_or(PORKBUN_API, |u| u.get_ref().as_str()),
                read_key(&root.join(key.get_ref()), "api_key_file")?,
                read_key(&root.join(secret.get_ref()), "secret_api_key_file")?,
            )?),
            _ => {
                return Err(Error::usage(
                    "[dns] needs Porkbun's two key files or a command",
                    "see the switchover section of the README",
                ))
            }
        };
        Ok(Dns {
            record,
            max_ttl: *config.max_ttl.get_ref(),
            provider,
            root: root.to_path_buf(),
        })
    }

    /// The record as the provider has it (Porkbun); `None` for a command,
    /// which can only change it.
    pub fn read(&self) -> Result<Option<Vec<Record>>> {
        match &self.provider {
            Provider::Porkbun(api) => api.retrieve(&self.record).map(Some),
            Provider::Command(_) => Ok(None),
        }
    }

    /// Point the record at `address` (keeping `ttl` when known).
    pub fn update(
        &self,
        address: &str,
        old_address: &str,
        host: &str,
        ttl: Option<u64>,
    ) -> Result<()> {
        match &self.provider {
            Provider::Porkbun(api) => api.edit(&self.record, address, ttl),
            Provider::Command(argv) => {
                let argv = self.command_argv(argv, address, old_address, host);
                run_command(&self.root, &argv)
            }
        }
    }

    /// What [`Dns::update`] runs or sends, for `--dry-run`.
    pub fn describe_update(&self, address: &str, old_address: &str, host: &str) -> String {
        match &self.provider {
            Provider::Porkbun(api) => format!(
                "POST {}/dns/editByNameType/{} (content {address}, the keys in the body)",
                api.base,
                api.path(&self.record)
            ),
            Provider::Command(argv) => {
                crate::names::display_command(&self.command_argv(argv, address, old_address, host))
            }
        }
    }

    fn command_argv(
        &self,
        argv: &[String],
        address: &str,
        old_address: &str,
        host: &str,
    ) -> Vec<String> {
        argv.iter()
            .map(|a| {
                a.replace("{name}", &self.record.fqdn())
                    .replace("{type}", &self.record.kind)
                    .replace("{address}", address)
                    .replace("{old_address}", old_address)
                    .replace("{host}", host)
            })
            .collect()
    }
}

/// A key file's content, trimmed. Exit 2 when it cannot be read or is
/// empty; the message never shows the content.
fn read_key(path: &Path, key: &str) -> Result<Key> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value = text.trim();
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::usage(
            format!("[dns] {key}: {} does not hold one key", path.display()),
            "the file must hold the key alone, on one line",
        ));
    }
    Ok(Key(value.to_string()))
}

/// Run the operator's command; exit 3 with its message when it fails.
fn run_command(root: &Path, argv: &[String]) -> Result<()> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::usage(
            "[dns] command is empty",
            "give the program and its arguments",
        ));
    };
    // A relative path names a program in the flake (`./scripts/set-dns`),
    // whatever directory nixflip runs in; a bare name is looked up on PATH.
    let program = if program.contains('/') && !program.starts_with('/') {
        root.join(program).display().to_string()
    } else {
        program.clone()
    };
    let out = duct::cmd(&program, args)
        .dir(root)
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| {
            Error::external(
                format!("cannot run the DNS command `{program}`: {e}"),
                "check [dns] command (a relative program is looked up on PATH; paths like ./x are relative to the flake root)",
            )
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    Err(Error::external(
        format!(
            "the DNS command failed ({}): {}",
            out.status,
            if last.is_empty() { "no message" } else { last }
        ),
        format!("the command was: {}", crate::names::display_command(argv)),
    ))
}

/// Porkbun's JSON API, with the two keys.
pub struct Porkbun {
    base: String,
    api_key: Key,
    secret_key: Key,
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct PorkbunAnswer {
    status: Option<String>,
    message: Option<String>,
    #[serde(default)]
    records: Vec<PorkbunRecord>,
}

#[derive(Deserialize)]
struct PorkbunRecord {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    content: String,
    ttl: Option<serde_json::Value>,
}

impl Porkbun {
    fn new(base: &str, api_key: Key, secret_key: Key) -> Result<Porkbun> {
        let base = base.trim_end_matches('/');
        crate::names::check_service_url(base).map_err(|why| {
            Error::usage(
                format!("[dns] api_url `{base}`: {why}"),
                "Porkbun's is https://api.porkbun.com/api/json/v3",
            )
        })?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(crate::forge::USER_AGENT)
            .timeout_connect(Some(TIMEOUT))
            .timeout_recv_response(Some(TIMEOUT))
            .timeout_global(Some(TIMEOUT * 2))
            .max_redirects(0)
            .build();
        Ok(Porkbun {
            base: base.to_string(),
            api_key,
            secret_key,
            agent: config.into(),
        })
    }

    /// `DOMAIN/TYPE[/NAME]`.
    fn path(&self, record: &RecordName) -> String {
        let mut path = format!("{}/{}", record.domain, record.kind);
        if !record.name.is_empty() {
            path.push('/');
            path.push_str(&record.name);
        }
        path
    }

    /// Every record of the name and type.
    pub fn retrieve(&self, record: &RecordName) -> Result<Vec<Record>> {
        let answer = self.call("retrieveByNameType", record, serde_json::Map::new())?;
        Ok(answer
            .records
            .into_iter()
            .map(|r| Record {
                name: r.name,
                kind: r.kind,
                content: r.content,
                ttl: r.ttl.and_then(|t| match t {
                    serde_json::Value::Number(n) => n.as_u64(),
                    serde_json::Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                }),
            })
            .collect())
    }

    /// Change every record of the name and type to `content`.
    pub fn edit(&self, record: &RecordName, content: &str, ttl: Option<u64>) -> Result<()> {
        let mut fields = serde_json::Map::new();
        fields.insert("content".into(), content.into());
        if let Some(ttl) = ttl {
            fields.insert("ttl".into(), ttl.to_string().into());
        }
        self.call("editByNameType", record, fields).map(|_| ())
    }

    fn call(
        &self,
        endpoint: &str,
        record: &RecordName,
        mut fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<PorkbunAnswer> {
        let url = format!("{}/dns/{endpoint}/{}", self.base, self.path(record));
        let shown = format!(
            "POST {}/dns/{endpoint}/{}",
            host_of(&self.base),
            self.path(record)
        );
        fields.insert("apikey".into(), self.api_key.0.clone().into());
        fields.insert("secretapikey".into(), self.secret_key.0.clone().into());
        let body = serde_json::Value::Object(fields).to_string();
        let result = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.as_str());
        let mut response = result.map_err(|e| {
            Error::external(
                format!(
                    "Porkbun's API cannot be reached ({shown}): {}",
                    self.clean(&e.to_string())
                ),
                "check [dns] api_url and the network",
            )
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| {
                Error::external(
                    format!(
                        "Porkbun's answer to {shown} could not be read: {}",
                        self.clean(&e.to_string())
                    ),
                    "try again",
                )
            })?;
        let answer: Option<PorkbunAnswer> = serde_json::from_str(&text).ok();
        let message = answer
            .as_ref()
            .and_then(|a| a.message.clone())
            .map(|m| self.clean(&m));
        match answer {
            Some(a) if (200..300).contains(&status) && a.status.as_deref() == Some("SUCCESS") => {
                Ok(a)
            }
            _ => Err(Error::external(
                format!(
                    "Porkbun refused {shown} (HTTP {status}){}",
                    message.map(|m| format!(": {m}")).unwrap_or_default()
                ),
                "check the API keys' files, that API access is on for the domain, and the record's name and type",
            )),
        }
    }

    /// `text` without the keys (an error message that echoes a request).
    fn clean(&self, text: &str) -> String {
        let mut out = text.to_string();
        for key in [&self.api_key, &self.secret_key] {
            if !key.0.is_empty() {
                out = out.replace(&key.0, "***");
            }
        }
        out
    }
}

/// `scheme://host[:port]` of a base URL, for messages.
fn host_of(base: &str) -> String {
    match url::Url::parse(base) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_types_follow_the_address() {
        assert_eq!(record_type("203.0.113.7"), Some("A"));
        assert_eq!(record_type("2001:db8::7"), Some("AAAA"));
        assert_eq!(record_type("host.example.org"), None);
    }

    #[test]
    fn names_and_paths() {
        let apex = RecordName {
            domain: "example.org".into(),
            name: String::new(),
            kind: "A".into(),
        };
        assert_eq!(apex.fqdn(), "example.org");
        let sub = RecordName {
            name: "matrix".into(),
            ..apex.clone()
        };
        assert_eq!(sub.to_string(), "matrix.example.org A");
        let api = Porkbun::new(
            "http://127.0.0.1:1/api/json/v3/",
            Key("pk1_a".into()),
            Key("sk1_b".into()),
        )
        .expect("loopback http is accepted");
        assert_eq!(api.path(&apex), "example.org/A");
        assert_eq!(api.path(&sub), "example.org/A/matrix");
        assert_eq!(api.clean("bad key pk1_a / sk1_b"), "bad key *** / ***");
        assert_eq!(format!("{:?}", api.api_key), "***");
        assert!(Porkbun::new("http://api.porkbun.com", Key("a".into()), Key("b".into())).is_err());
    }

    #[test]
    fn command_placeholders() {
        let dns = Dns {
            record: RecordName {
                domain: "example.org".into(),
                name: "matrix".into(),
                kind: "A".into(),
            },
            max_ttl: 600,
            provider: Provider::Command(vec![
                "./set-dns".into(),
                "{name}".into(),
                "{type}={address}".into(),
                "was {old_address} on {host}".into(),
            ]),
            root: "/flake".into(),
        };
        assert_eq!(
            dns.describe_update("10.0.0.2", "10.0.0.1", "beta"),
            "./set-dns matrix.example.org 'A=10.0.0.2' 'was 10.0.0.1 on beta'"
        );
    }
}
