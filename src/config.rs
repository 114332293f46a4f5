//! `nixflip.toml` at the flake root: optional; pins what discovery
//! would otherwise infer. Unknown keys and bad values are errors naming the key
//! and its line.

use crate::names::{is_valid_address, is_valid_host_name, validate_target};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde::Deserialize;
use toml::Spanned;

/// The default option path of the cluster module.
pub const DEFAULT_OPTION: &str = "hectic.generic.matrix-cluster";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub cluster: ClusterConfig,
    #[serde(default)]
    pub hosts: BTreeMap<String, HostConfig>,
    #[serde(default)]
    pub profile: Profiles,
    #[serde(default)]
    pub rebuild: RebuildConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub live: LiveConfig,
    /// `switchover`'s DNS record (absent: the command needs `--no-dns`).
    pub dns: Option<DnsConfig>,
    #[serde(default)]
    pub smoke: SmokeConfig,
    #[serde(default)]
    pub switchover: SwitchoverConfig,
    /// `nixosModules` names nixflip cannot resolve from flake.nix, pinned to
    /// their files (relative to the flake root): `[modules] NAME = "path"`.
    #[serde(default)]
    pub modules: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub flake: FlakeConfig,
}

/// `[flake]`: how the flake's own files refer to it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlakeConfig {
    /// Names that stand for the flake root in host and module files (as
    /// `flake` does after `flake = ./.;` in flake.nix), beyond those
    /// flake.nix binds itself and `self`.
    #[serde(default)]
    pub root_names: Vec<Spanned<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Option path of the cluster module.
    #[serde(default = "default_option")]
    pub option: Spanned<String>,
    /// Paths (relative to the option) that must be equal on all members.
    #[serde(default = "default_shared")]
    pub shared: Vec<String>,
    /// Directories (relative to the flake root) not scanned for hosts.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            option: default_option(),
            shared: default_shared(),
            exclude: Vec::new(),
        }
    }
}

fn default_option() -> Spanned<String> {
    Spanned::new(0..0, DEFAULT_OPTION.to_string())
}

fn default_shared() -> Vec<String> {
    vec!["matrixDomain".into(), "objectStorage.s3.bucket".into()]
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The host's file, relative to the flake root.
    pub file: Option<Spanned<String>>,
    /// The `nixosConfigurations` attribute.
    pub attr: Option<Spanned<String>>,
    /// The host's address (IP or DNS name).
    pub address: Option<Spanned<String>>,
    /// ssh target for nixos-rebuild (default root@ADDRESS).
    pub target: Option<Spanned<String>>,
    /// The host's age recipient.
    pub age: Option<Spanned<String>>,
    /// The host's ssh-ed25519 public key.
    pub ssh_host_key: Option<Spanned<String>>,
    /// A file holding the host's ssh-ed25519 public key (relative to the
    /// flake root), e.g. a copy of /etc/ssh/ssh_host_ed25519_key.pub.
    pub ssh_host_key_file: Option<Spanned<String>>,
    /// How `status --live` reaches the host's PostgreSQL and Synapse.
    #[serde(default)]
    pub live: HostLiveConfig,
}

/// `[hosts.X.live]`: where a member's PostgreSQL and Synapse are, as seen on
/// the host itself. Unset keys take NixOS's defaults (see `crate::live`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostLiveConfig {
    /// The data directory (default: PostgreSQL's own `data_directory`, else
    /// the one `/var/lib/postgresql/<major>`).
    pub pg_data: Option<Spanned<String>>,
    /// PostgreSQL's port (default 5432).
    pub pg_port: Option<Spanned<u16>>,
    /// The OS and database superuser psql runs as (default `postgres`).
    pub pg_user: Option<Spanned<String>>,
    /// The directory of PostgreSQL's Unix socket (default `/run/postgresql`).
    pub pg_socket_dir: Option<Spanned<String>>,
    /// The systemd unit of PostgreSQL (default `postgresql`).
    pub postgresql_service: Option<Spanned<String>>,
    /// The systemd unit of Synapse (default `matrix-synapse`).
    pub synapse_service: Option<Spanned<String>>,
    /// Synapse's listener as seen on the host (default `http://127.0.0.1:8008`).
    pub synapse_url: Option<Spanned<String>>,
    /// The address clients reach this member at: what `switchover` points
    /// the DNS record at when it becomes primary (default: its address).
    pub public_address: Option<Spanned<String>>,
}

/// `[dns]`: the record `switchover` moves to the new primary, through
/// Porkbun's API or a command of the operator's.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// The zone (the domain registered at the provider), e.g. `example.org`.
    pub domain: Spanned<String>,
    /// The record's name within the zone (`matrix`); empty for the apex.
    #[serde(default = "empty_name")]
    pub name: Spanned<String>,
    /// `A` or `AAAA` (default: by the new primary's address).
    pub r#type: Option<Spanned<String>>,
    /// The pre-flight warns when the record's TTL is higher (seconds).
    #[serde(default = "default_max_ttl")]
    pub max_ttl: Spanned<u64>,
    /// Files (relative to the flake root) holding Porkbun's API key and
    /// secret API key.
    pub api_key_file: Option<Spanned<String>>,
    pub secret_api_key_file: Option<Spanned<String>>,
    /// Porkbun's JSON API base URL.
    pub api_url: Option<Spanned<String>>,
    /// Instead of Porkbun: an argv run to change the record, with
    /// `{name}`, `{type}`, `{address}`, `{old_address}`, `{host}` replaced.
    pub command: Option<Spanned<Vec<String>>>,
}

fn empty_name() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

fn default_max_ttl() -> Spanned<u64> {
    Spanned::new(0..0, 600)
}

/// `[smoke]`: how `switchover` proves the new primary serves.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeConfig {
    /// The public base URL of the client API (default `https://MATRIXDOMAIN`).
    pub url: Option<Spanned<String>>,
    /// A federation tester's report URL, `{server_name}` replaced; it must
    /// answer JSON with `"FederationOK": true`.
    pub federation_tester: Option<Spanned<String>>,
    /// Seconds to keep asking until the new primary answers.
    pub timeout: Option<Spanned<u64>>,
}

/// `[switchover]`: how long each bounded wait of `switchover` may take.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SwitchoverConfig {
    /// Seconds the new primary may take to replay past the fence LSN.
    pub catchup_timeout: Spanned<u64>,
    /// Seconds `pg_promote` waits for the promotion.
    pub promote_timeout: Spanned<u64>,
    /// Seconds a service may take to stop or start.
    pub service_timeout: Spanned<u64>,
    /// Seconds the old primary may take to stream from the new one.
    pub rejoin_timeout: Spanned<u64>,
    /// Seconds `rejoin` gives a crash recovery, `pg_rewind` or a new base
    /// backup.
    pub copy_timeout: Spanned<u64>,
}

impl Default for SwitchoverConfig {
    fn default() -> Self {
        let at = |v| Spanned::new(0..0, v);
        SwitchoverConfig {
            catchup_timeout: at(30),
            promote_timeout: at(60),
            service_timeout: at(120),
            rejoin_timeout: at(60),
            copy_timeout: at(3600),
        }
    }
}

/// `[live]`: how `status --live` connects, and the thresholds of its findings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// A standby further behind the primary than this many bytes of WAL.
    pub max_lag_bytes: u64,
    /// A standby further behind than this many seconds.
    pub max_lag_seconds: Spanned<f64>,
    /// A replication slot holding back more WAL than this.
    pub max_slot_retained_bytes: u64,
    /// The data directory's filesystem with less free space than this.
    pub min_free_percent: Spanned<f64>,
    /// An OpenSSH known_hosts file (relative to the flake root) used instead
    /// of the user's; host keys are checked either way.
    pub known_hosts: Option<Spanned<String>>,
    /// An ssh private key (relative to the flake root); default: ssh's own
    /// choice (agent, ~/.ssh/config, ~/.ssh/id_*).
    pub identity_file: Option<Spanned<String>>,
    /// Seconds ssh may take to connect.
    pub connect_timeout: Spanned<u64>,
    /// Seconds one remote command may take.
    pub command_timeout: Spanned<u64>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        let at = |v| Spanned::new(0..0, v);
        LiveConfig {
            max_lag_bytes: 16 * 1024 * 1024,
            max_lag_seconds: at(30.0),
            max_slot_retained_bytes: 1024 * 1024 * 1024,
            min_free_percent: at(10.0),
            known_hosts: None,
            identity_file: None,
            connect_timeout: Spanned::new(0..0, 10),
            command_timeout: Spanned::new(0..0, 30),
        }
    }
}

/// Extra values a host gets when it becomes primary or standby: option paths
/// relative to the cluster option, with literal values. The key `secrets` is
/// reserved: it lists the `sops.secrets` names the role needs and is taken out
/// of the table when the file is loaded (see [`RoleSecrets`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    #[serde(default)]
    pub primary: toml::Table,
    #[serde(default)]
    pub standby: toml::Table,
    #[serde(skip)]
    pub secrets: RoleSecrets,
}

/// `[profile.primary] secrets = [...]` and `[profile.standby] secrets = [...]`:
/// the `sops.secrets` names a host needs in that role. `None` means the
/// default (what the cluster options reference).
#[derive(Debug, Default, Clone)]
pub struct RoleSecrets {
    pub primary: Option<Spanned<Vec<String>>>,
    pub standby: Option<Spanned<Vec<String>>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebuildConfig {
    /// `nixos-rebuild` action (default "switch").
    pub action: Option<String>,
    /// `--build-host` for every rebuild.
    pub build_host: Option<String>,
    /// Add `--use-remote-sudo` (for non-root targets).
    #[serde(default)]
    pub use_remote_sudo: bool,
    /// More arguments appended to every `nixos-rebuild` call.
    #[serde(default)]
    pub extra_args: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Extra arguments for `nix eval` (e.g. ["--offline"], or
    /// ["--override-input", "nixpkgs", "path:/…"]).
    #[serde(default)]
    pub nix_args: Vec<String>,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(code(nixflip::config))]
pub struct ConfigError {
    pub message: String,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("{label}")]
    pub span: Option<SourceSpan>,
    pub label: String,
    #[help]
    pub help: Option<String>,
}

/// Loaded configuration with where it came from (for diagnostics).
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub config: Config,
    pub path: Option<PathBuf>,
    pub text: String,
}

impl Loaded {
    /// An error pointing at `span` of the config file.
    pub fn error(
        &self,
        span: Range<usize>,
        message: String,
        label: &str,
        help: &str,
    ) -> ConfigError {
        let name = self
            .path
            .as_ref()
            .map_or("nixflip.toml".into(), |p| p.display().to_string());
        ConfigError {
            message,
            src: NamedSource::new(name, self.text.clone()),
            span: (!span.is_empty()).then(|| (span.start, span.end - span.start).into()),
            label: label.into(),
            help: Some(help.into()),
        }
    }
}

/// A bad `nixflip.toml` is bad input.
impl From<ConfigError> for crate::Error {
    fn from(e: ConfigError) -> Self {
        crate::Error::caused(crate::error::EXIT_BAD_INPUT, e)
    }
}

/// Load `path` if given, else `ROOT/nixflip.toml` when it exists, else defaults.
pub fn load(root: &Path, path: Option<&Path>) -> Result<Loaded, crate::Error> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => {
            let default = root.join("nixflip.toml");
            if !default.exists() {
                return Ok(Loaded::default());
            }
            default
        }
    };
    let text = crate::error::read_text(&path)?;
    from_text(path, text, &|file: &Path| root.join(file).is_file(), root)
}

/// Parse and validate a config given as text (e.g. `nixflip.toml` at a git
/// revision): `path` names it in diagnostics, `exists` says whether a host
/// file (relative to the flake root) exists where the config applies.
pub fn from_text(
    path: PathBuf,
    text: String,
    exists: &dyn Fn(&Path) -> bool,
    root: &Path,
) -> Result<Loaded, crate::Error> {
    let config: Config = toml::from_str(&text)
        .map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let loaded = Loaded {
                config: Config::default(),
                path: Some(path.clone()),
                text: text.clone(),
            };
            let message = e.message().to_string();
            let help = if message.contains("unknown field") {
                "remove the key or fix its spelling; the valid keys are listed above"
            } else {
                "see the configuration section of the README for each key and its type"
            };
            loaded.error(span, format!("{}: {message}", path.display()), "here", help)
        })
        .map_err(crate::Error::from)?;
    let mut loaded = Loaded {
        config,
        path: Some(path),
        text,
    };
    take_profile_secrets(&mut loaded)?;
    validate(root, exists, &loaded)?;
    Ok(loaded)
}

/// Take the reserved `secrets` key out of the profile tables (it names
/// `sops.secrets`, it is not an option value to write), checking that it is a
/// list of strings.
fn take_profile_secrets(loaded: &mut Loaded) -> Result<(), ConfigError> {
    // A second, lenient pass over the text only to learn where each profile
    // value is (toml::Table keeps no spans).
    #[derive(Deserialize, Default)]
    struct SpannedDoc {
        #[serde(default)]
        profile: BTreeMap<String, BTreeMap<String, Spanned<toml::Value>>>,
    }
    let spans: SpannedDoc = toml::from_str(&loaded.text).unwrap_or_default();
    for role in ["primary", "standby"] {
        let profile = &mut loaded.config.profile;
        let table = if role == "primary" {
            &mut profile.primary
        } else {
            &mut profile.standby
        };
        let Some(value) = table.remove("secrets") else {
            continue;
        };
        let span = spans
            .profile
            .get(role)
            .and_then(|t| t.get("secrets"))
            .map_or(0..0, |s| s.span());
        let names: Option<Vec<String>> = value.as_array().and_then(|items| {
            items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect()
        });
        let Some(names) = names else {
            return Err(loaded.error(
                span,
                format!("profile.{role}.secrets: expected a list of strings (sops.secrets names)"),
                "not a list of strings",
                "for example secrets = [\"matrix/secrets\", \"postgres/replication\"]",
            ));
        };
        let names = Some(Spanned::new(span, names));
        if role == "primary" {
            loaded.config.profile.secrets.primary = names;
        } else {
            loaded.config.profile.secrets.standby = names;
        }
    }
    Ok(())
}

/// Where the key `name` of the `hosts` table is written (`[hosts."NAME"]`,
/// `[hosts.NAME]`, `"NAME" = { … }`): table keys carry no span of their own.
/// Empty when it cannot be found (a key written with escapes).
fn host_key_span(text: &str, name: &str) -> Range<usize> {
    let quoted = format!("\"{name}\"");
    let bare = format!("hosts.{name}");
    text.find(&quoted)
        .map(|at| at..at + quoted.len())
        .or_else(|| {
            text.find(&bare)
                .map(|at| at + "hosts.".len()..at + bare.len())
        })
        .unwrap_or(0..0)
}

/// Values serde cannot judge: addresses, files that must exist, host names.
fn validate(
    root: &Path,
    exists: &dyn Fn(&Path) -> bool,
    loaded: &Loaded,
) -> Result<(), ConfigError> {
    for (name, host) in &loaded.config.hosts {
        if !is_valid_host_name(name) {
            return Err(loaded.error(
                host_key_span(&loaded.text, name),
                format!("hosts.\"{name}\": not a usable host name"),
                "this host name",
                "host names may contain letters, digits, '.', '-' and '_', and must not start with '-'",
            ));
        }
        if let Some(address) = &host.address {
            if !is_valid_address(address.get_ref()) {
                return Err(loaded.error(
                    address.span(),
                    format!(
                        "hosts.\"{name}\".address: `{}` is not an IP address or host name",
                        address.get_ref()
                    ),
                    "not an address",
                    "write an IPv4/IPv6 address (128.140.75.58, 2001:db8::1) or a DNS name",
                ));
            }
        }
        if let Some(file) = &host.file {
            if !exists(Path::new(file.get_ref())) {
                return Err(loaded.error(
                    file.span(),
                    format!(
                        "hosts.\"{name}\".file: {} does not exist",
                        root.join(file.get_ref()).display()
                    ),
                    "no such file",
                    "paths are relative to the flake root (the directory holding flake.nix)",
                ));
            }
        }
        validate_host_keys(root, loaded, name, host)?;
        validate_host_live(loaded, name, &host.live)?;
        if let Some(target) = &host.target {
            if let Err(why) = validate_target(target.get_ref()) {
                return Err(loaded.error(
                    target.span(),
                    format!("hosts.\"{name}\".target: {why}"),
                    "unsafe target",
                    "write user@host or host",
                ));
            }
        }
    }
    validate_live(loaded)?;
    validate_switchover(root, exists, loaded)?;
    for (name, file) in &loaded.config.modules {
        if !exists(Path::new(file.get_ref())) {
            return Err(loaded.error(
                file.span(),
                format!(
                    "modules.\"{name}\": {} does not exist",
                    root.join(file.get_ref()).display()
                ),
                "no such file",
                "paths are relative to the flake root (the directory holding flake.nix)",
            ));
        }
    }
    for name in &loaded.config.flake.root_names {
        if !crate::names::is_nix_identifier(name.get_ref()) {
            return Err(loaded.error(
                name.span(),
                format!(
                    "flake.root_names: `{}` is not a Nix variable name",
                    name.get_ref()
                ),
                "not a variable name",
                "list the names host files use for the flake root, e.g. root_names = [\"flake\"]",
            ));
        }
    }
    let option = &loaded.config.cluster.option;
    if option
        .get_ref()
        .parse::<crate::nixedit::AttrPath>()
        .is_err()
    {
        return Err(loaded.error(
            option.span(),
            "cluster.option is not an attribute path".into(),
            "here",
            "for example hectic.generic.matrix-cluster",
        ));
    }
    Ok(())
}

/// `age`, `ssh_host_key` and `ssh_host_key_file` must hold keys nixflip can
/// compare with a SOPS file's recipients.
fn validate_host_keys(
    root: &Path,
    loaded: &Loaded,
    name: &str,
    host: &HostConfig,
) -> Result<(), ConfigError> {
    use crate::secrets::{ssh_public_key_to_age, RecipientKind};
    if let Some(age) = &host.age {
        if RecipientKind::classify(age.get_ref()) != RecipientKind::X25519 {
            return Err(loaded.error(
                age.span(),
                format!(
                    "hosts.\"{name}\".age: `{}` is not an age X25519 recipient",
                    age.get_ref()
                ),
                "not an age1… recipient",
                "write the host's public age key (age1…); for an ssh host key use ssh_host_key",
            ));
        }
    }
    if let Some(key) = &host.ssh_host_key {
        if let Err(e) = ssh_public_key_to_age(key.get_ref()) {
            return Err(loaded.error(
                key.span(),
                format!("hosts.\"{name}\".ssh_host_key: {e}"),
                "not an ssh-ed25519 public key",
                "paste the host's /etc/ssh/ssh_host_ed25519_key.pub (`ssh-keyscan -t ed25519 HOST`)",
            ));
        }
    }
    if let Some(file) = &host.ssh_host_key_file {
        let path = root.join(file.get_ref());
        let problem = match std::fs::read_to_string(&path) {
            Err(e) => Some(format!("cannot read {}: {e}", path.display())),
            Ok(text) => ssh_public_key_to_age(&text).err().map(|e| e.to_string()),
        };
        if let Some(problem) = problem {
            return Err(loaded.error(
                file.span(),
                format!("hosts.\"{name}\".ssh_host_key_file: {problem}"),
                "no usable ssh-ed25519 public key",
                "paths are relative to the flake root; the file holds one `ssh-ed25519 AAAA…` line",
            ));
        }
    }
    Ok(())
}

/// `[hosts.X.live]` values that would be wrong on any host: relative paths,
/// names psql or systemctl would read as options, URLs that are not HTTP.
fn validate_host_live(
    loaded: &Loaded,
    name: &str,
    live: &HostLiveConfig,
) -> Result<(), ConfigError> {
    let key = |k: &str| format!("hosts.\"{name}\".live.{k}");
    for (k, value) in [
        ("pg_data", &live.pg_data),
        ("pg_socket_dir", &live.pg_socket_dir),
    ] {
        if let Some(value) = value {
            if !value.get_ref().starts_with('/') || value.get_ref().contains('\0') {
                return Err(loaded.error(
                    value.span(),
                    format!("{}: `{}` is not an absolute path", key(k), value.get_ref()),
                    "not an absolute path",
                    "write the path as it is on the host, e.g. /var/lib/postgresql/15",
                ));
            }
        }
    }
    for (k, value) in [
        ("pg_user", &live.pg_user),
        ("postgresql_service", &live.postgresql_service),
        ("synapse_service", &live.synapse_service),
    ] {
        if let Some(value) = value {
            let text = value.get_ref();
            let usable = !text.is_empty()
                && !text.starts_with('-')
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | ':'));
            if !usable {
                return Err(loaded.error(
                    value.span(),
                    format!("{}: `{text}` is not a usable name", key(k)),
                    "not a user or unit name",
                    "names may contain letters, digits and . - _ @ :, and must not start with '-'",
                ));
            }
        }
    }
    if let Some(port) = live.pg_port.as_ref().filter(|p| *p.get_ref() == 0) {
        return Err(loaded.error(
            port.span(),
            format!("{}: 0 is not a port", key("pg_port")),
            "here",
            "write PostgreSQL's port, e.g. 5432",
        ));
    }
    if let Some(address) = &live.public_address {
        if !is_valid_address(address.get_ref()) {
            return Err(loaded.error(
                address.span(),
                format!(
                    "{}: `{}` is not an IP address or host name",
                    key("public_address"),
                    address.get_ref()
                ),
                "not an address",
                "write the address the DNS record should hold when this host is primary, e.g. 128.140.75.58",
            ));
        }
    }
    if let Some(url) = &live.synapse_url {
        let text = url.get_ref();
        let rest = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/'))
            || text.chars().any(char::is_whitespace)
        {
            return Err(loaded.error(
                url.span(),
                format!("{}: `{text}` is not an http:// or https:// URL", key("synapse_url")),
                "not an HTTP URL",
                "write Synapse's listener as the host itself reaches it, e.g. http://127.0.0.1:8008",
            ));
        }
    }
    Ok(())
}

/// `[live]` thresholds must be numbers a finding can compare with.
fn validate_live(loaded: &Loaded) -> Result<(), ConfigError> {
    let live = &loaded.config.live;
    let percent = &live.min_free_percent;
    if !(0.0..=100.0).contains(percent.get_ref()) {
        return Err(loaded.error(
            percent.span(),
            format!("live.min_free_percent: {} is not a percentage", percent.get_ref()),
            "not between 0 and 100",
            "write the free space below which the data directory's filesystem is a finding, e.g. 10",
        ));
    }
    let seconds = &live.max_lag_seconds;
    if !seconds.get_ref().is_finite() || *seconds.get_ref() < 0.0 {
        return Err(loaded.error(
            seconds.span(),
            format!(
                "live.max_lag_seconds: {} is not a number of seconds",
                seconds.get_ref()
            ),
            "negative or not a number",
            "write how far behind (in seconds) a standby may be, e.g. 30",
        ));
    }
    for (key, value) in [
        ("connect_timeout", &live.connect_timeout),
        ("command_timeout", &live.command_timeout),
    ] {
        if *value.get_ref() == 0 {
            return Err(loaded.error(
                value.span(),
                format!("live.{key}: 0 seconds leaves no time at all"),
                "zero",
                "write a number of seconds, e.g. 10",
            ));
        }
    }
    Ok(())
}

/// `[dns]`, `[smoke]` and `[switchover]`: values `switchover` could not use.
fn validate_switchover(
    root: &Path,
    exists: &dyn Fn(&Path) -> bool,
    loaded: &Loaded,
) -> Result<(), ConfigError> {
    let config = &loaded.config;
    let s = &config.switchover;
    for (key, value) in [
        ("catchup_timeout", &s.catchup_timeout),
        ("promote_timeout", &s.promote_timeout),
        ("service_timeout", &s.service_timeout),
        ("rejoin_timeout", &s.rejoin_timeout),
        ("copy_timeout", &s.copy_timeout),
    ] {
        if *value.get_ref() == 0 {
            return Err(loaded.error(
                value.span(),
                format!("switchover.{key}: 0 seconds leaves no time at all"),
                "zero",
                "write a number of seconds, e.g. 30",
            ));
        }
    }
    if let Some(dns) = &config.dns {
        validate_dns(root, exists, loaded, dns)?;
    }
    let smoke = &config.smoke;
    if let Some(url) = &smoke.url {
        // Plain http is judged when the address is known: it is accepted
        // only for a new primary on this machine.
        let text = url.get_ref();
        let as_https = text
            .strip_prefix("http://")
            .map_or_else(|| text.clone(), |rest| format!("https://{rest}"));
        if let Err(why) = crate::names::check_service_url(&as_https) {
            return Err(loaded.error(
                url.span(),
                format!("smoke.url: {why}"),
                "not a usable URL",
                "write the public base URL of the client API, e.g. https://matrix.example.org",
            ));
        }
    }
    if let Some(tester) = &smoke.federation_tester {
        let probe = tester.get_ref().replace("{server_name}", "example.org");
        let why = crate::names::check_service_url(&probe).err().or_else(|| {
            (!tester.get_ref().contains("{server_name}"))
                .then_some("it has no {server_name} to put the server name in")
        });
        if let Some(why) = why {
            return Err(loaded.error(
                tester.span(),
                format!("smoke.federation_tester: {why}"),
                "not a usable URL",
                "for example https://federationtester.matrix.org/api/report?server_name={server_name}",
            ));
        }
    }
    if let Some(timeout) = smoke.timeout.as_ref().filter(|t| *t.get_ref() == 0) {
        return Err(loaded.error(
            timeout.span(),
            "smoke.timeout: 0 seconds leaves no time at all".into(),
            "zero",
            "write a number of seconds, e.g. 60",
        ));
    }
    Ok(())
}

/// A DNS label or a name made of them (`matrix`, `chat.eu`); `*` alone for
/// a wildcard.
fn is_dns_name(text: &str) -> bool {
    text == "*"
        || text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn validate_dns(
    root: &Path,
    exists: &dyn Fn(&Path) -> bool,
    loaded: &Loaded,
    dns: &DnsConfig,
) -> Result<(), ConfigError> {
    if !is_dns_name(dns.domain.get_ref()) || !dns.domain.get_ref().contains('.') {
        return Err(loaded.error(
            dns.domain.span(),
            format!("dns.domain: `{}` is not a domain", dns.domain.get_ref()),
            "not a domain",
            "write the zone as registered at the provider, e.g. example.org",
        ));
    }
    if !dns.name.get_ref().is_empty() && !is_dns_name(dns.name.get_ref()) {
        return Err(loaded.error(
            dns.name.span(),
            format!("dns.name: `{}` is not a record name", dns.name.get_ref()),
            "not a DNS name",
            "write the name within the zone (matrix for matrix.example.org), or \"\" for the zone's apex",
        ));
    }
    if let Some(kind) = dns
        .r#type
        .as_ref()
        .filter(|t| !matches!(t.get_ref().as_str(), "A" | "AAAA"))
    {
        return Err(loaded.error(
            kind.span(),
            format!("dns.type: `{}` is not a record type switchover changes", kind.get_ref()),
            "not A or AAAA",
            "write \"A\" (IPv4) or \"AAAA\" (IPv6), or leave it out to follow the new primary's address",
        ));
    }
    match (&dns.command, &dns.api_key_file, &dns.secret_api_key_file) {
        (Some(command), None, None) => {
            if dns.api_url.is_some() {
                let url = dns.api_url.as_ref().map_or(0..0, |u| u.span());
                return Err(loaded.error(
                    url,
                    "dns.api_url: the record is changed by dns.command, so there is no API to call"
                        .into(),
                    "unused",
                    "remove api_url, or remove command to use Porkbun's API",
                ));
            }
            let first = command.get_ref().first();
            if first.is_none_or(|p| p.is_empty() || p.starts_with('-')) {
                return Err(loaded.error(
                    command.span(),
                    "dns.command: the first element must be the program to run".into(),
                    "no program",
                    "for example command = [\"./scripts/set-dns\", \"{name}\", \"{address}\"]",
                ));
            }
        }
        (None, Some(key), Some(secret)) => {
            for (name, file) in [("api_key_file", key), ("secret_api_key_file", secret)] {
                if !exists(Path::new(file.get_ref())) {
                    return Err(loaded.error(
                        file.span(),
                        format!(
                            "dns.{name}: {} does not exist",
                            root.join(file.get_ref()).display()
                        ),
                        "no such file",
                        "paths are relative to the flake root; the file holds the key alone",
                    ));
                }
            }
            if let Some(url) = &dns.api_url {
                if let Err(why) = crate::names::check_service_url(url.get_ref()) {
                    return Err(loaded.error(
                        url.span(),
                        format!("dns.api_url: {why}"),
                        "not a usable API URL",
                        "Porkbun's is https://api.porkbun.com/api/json/v3 (the default)",
                    ));
                }
            }
        }
        (Some(command), _, _) => {
            return Err(loaded.error(
                command.span(),
                "dns.command and Porkbun's API keys are both set".into(),
                "one or the other",
                "keep command for your own provider, or the two key files for Porkbun",
            ));
        }
        (None, _, _) => {
            return Err(loaded.error(
                dns.domain.span(),
                "[dns] needs Porkbun's api_key_file and secret_api_key_file, or a command".into(),
                "how should the record change?",
                "add api_key_file and secret_api_key_file (files holding the keys), or command = [argv…]; or remove [dns] and pass --no-dns",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_host_name_is_pointed_at_in_the_file() {
        let text = "[cluster]\noption = \"a.b\"\n\n[hosts.\"-rf\"]\naddress = \"10.0.0.1\"\n";
        let Err(crate::Error::Caused(error)) = from_text(
            PathBuf::from("nixflip.toml"),
            text.to_string(),
            &|_| true,
            Path::new("/flake"),
        ) else {
            panic!("a host named -rf is refused");
        };
        let labels: Vec<_> = error.labels().into_iter().flatten().collect();
        assert_eq!(labels.len(), 1);
        let at = labels[0].offset();
        assert_eq!(&text[at..at + labels[0].len()], "\"-rf\"");
        assert_eq!(labels[0].label(), Some("this host name"));
    }
}
