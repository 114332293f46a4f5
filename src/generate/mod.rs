//! The generator: a new cluster flake from `templates/`
//! (`nixflip init`), and a new member added to an existing one
//! (`nixflip add-host`, in [`add_host`]).
//!
//! The templates are embedded in the binary, so an installed nixflip needs no
//! files beside it. They are rendered with minijinja; the `nix` filter turns
//! any value into an escaped Nix string literal, so no input can break out of
//! a string. Two templates are emitted verbatim: the cluster module (a copy
//! of `nix/matrix-cluster.nix`, kept identical by a test) and
//! the CI workflow (a copy of `examples/ci/github-actions.yml`), because they
//! hold no variables and the workflow's own `${{ … }}` syntax is Jinja's.

pub mod add_host;

use std::net::IpAddr;
use std::path::PathBuf;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::cluster::rules::host_cidr;
use crate::error::{Error, Result};
use crate::names::{is_valid_address, is_valid_host_name};

/// The cluster module, exactly as `nix/matrix-cluster.nix`.
pub const MODULE: &str = include_str!("../../templates/matrix-cluster.nix");
/// The pull-request bot's GitHub Actions workflow.
pub const WORKFLOW: &str = include_str!("../../templates/ci/github-actions.yml");
const FLAKE: &str = include_str!("../../templates/flake.nix");
const HOST: &str = include_str!("../../templates/host.nix");
const CONFIG: &str = include_str!("../../templates/nixflip.toml");
const PRE_COMMIT: &str = include_str!("../../templates/pre-commit-config.yaml");
const HOOK: &str = include_str!("../../templates/pre-commit-hook.sh");

/// The line that marks a git hook as nixflip's own (`hook install` replaces
/// only hooks that hold it).
pub const HOOK_MARKER: &str = "# nixflip pre-commit hook";

/// The git pre-commit hook for a flake at `flake_dir` in its repository
/// (relative: `""` or `.` for the top). It finds the repository when it runs.
pub fn pre_commit_hook(flake_dir: &str) -> Result<String> {
    let dir = flake_dir.trim_end_matches('/');
    let dir = if dir.is_empty() { "." } else { dir };
    let quoted = format!("'{}'", dir.replace('\'', "'\\''"));
    render(
        "pre-commit-hook.sh",
        HOOK,
        minijinja::context! { flake => quoted },
    )
}

/// The system every generated host is built for (the attribute suffix).
pub const DEFAULT_SYSTEM: &str = "x86_64-linux";

/// A file the generator produces, relative to the flake root.
#[derive(Clone, Debug)]
pub struct Generated {
    pub path: PathBuf,
    pub content: String,
}

/// `NAME=ADDRESS` from the command line.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub address: String,
}

impl std::str::FromStr for HostSpec {
    type Err = String;

    /// Parse and validate `NAME=ADDRESS` (the error is clap's message).
    fn from_str(text: &str) -> std::result::Result<HostSpec, String> {
        let (name, address) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}` is not NAME=ADDRESS"))?;
        check_host_name(name).map_err(with_help)?;
        check_address(address).map_err(with_help)?;
        Ok(HostSpec {
            name: name.to_string(),
            address: address.to_string(),
        })
    }
}

/// A usage error as one line for clap: the message, then the help.
fn with_help(error: Error) -> String {
    match error {
        Error::Usage { message, help } => format!("{message}\n  help: {help}"),
        other => other.to_string(),
    }
}

/// A host name becomes a file name (`hosts/NAME.nix`) and part of a Nix
/// attribute name (`"NAME|x86_64-linux"`): letters, digits, '.', '-', '_'.
pub fn check_host_name(name: &str) -> Result<()> {
    if is_valid_host_name(name) && !name.ends_with('.') && name.len() <= 63 {
        return Ok(());
    }
    let bad: String = name
        .chars()
        .filter(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .collect();
    let why = if name.is_empty() {
        "it is empty".to_string()
    } else if !bad.is_empty() {
        format!("it contains {bad:?}")
    } else if name.len() > 63 {
        "it is longer than 63 characters".to_string()
    } else {
        "it starts with '-' or '.', or ends with '.'".to_string()
    };
    Err(Error::usage(
        format!("`{name}` cannot be a host name: {why}"),
        "host names become file names and Nix attribute names: use letters, digits, '.', '-' and '_', not starting with '-' or '.'",
    ))
}

/// An IP address: the generator writes every member's address into the
/// others' `allowedSourceIPs`, which must be CIDRs (pg_hba and iptables
/// rules), so a DNS name is refused rather than written there.
pub fn check_address(address: &str) -> Result<()> {
    if address.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let what = if is_valid_address(address) {
        "a DNS name, not an IP address"
    } else {
        "not an IP address"
    };
    Err(Error::usage(
        format!("`{address}` is {what}"),
        "allowedSourceIPs needs an IP address; give the host's IP (128.140.75.58, 2001:db8::1)",
    ))
}

/// The Matrix server name: a DNS name (an IP would be a poor server name,
/// but Synapse accepts one, so it is allowed).
pub fn check_domain(domain: &str) -> Result<()> {
    if is_valid_address(domain) {
        return Ok(());
    }
    Err(Error::usage(
        format!("`{domain}` is not a domain name"),
        "pass the Matrix server name, e.g. --domain example.org",
    ))
}

/// The address as a replication source: a host network (/32, /128) for an
/// IP. Callers pass addresses [`check_address`] accepted; anything else is
/// returned as it is (and `check` reports it in an allowedSourceIPs list).
pub fn source_cidr(address: &str) -> String {
    address
        .parse::<IpAddr>()
        .map(host_cidr)
        .unwrap_or_else(|_| address.to_string())
}

/// A valid `networking.hostName` (no dots) for a nixflip host name.
pub fn system_host_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn nix_filter(value: String) -> String {
    crate::nixedit::value::render_string(&value)
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_keep_trailing_newline(true);
    // A missing variable is a bug in nixflip, never an empty string in a file.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("nix", nix_filter);
    env
}

/// Render one of the embedded templates.
fn render<S: Serialize>(name: &str, source: &'static str, ctx: S) -> Result<String> {
    let template_error = |e: minijinja::Error| {
        Error::failed(
            format!("template {name} failed to render: {e:#}"),
            "this is a bug in nixflip's templates; please report it",
        )
    };
    let mut env = environment();
    env.add_template(name, source).map_err(template_error)?;
    env.get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(template_error)
}

/// What a host file needs; expressions (`*_expr`, `secrets_file`, …) are Nix
/// source written as given, everything else is quoted by the template.
#[derive(Clone, Debug, Serialize)]
pub struct HostFile {
    pub name: String,
    pub role: String,
    pub domain: String,
    pub address: String,
    pub peer: String,
    pub allowed: Vec<String>,
    /// The module header, e.g. `{ config, lib, pkgs, self, ... }:`.
    pub header: String,
    /// Lines of a `let` around the module body (bindings the copied values use).
    pub lets: Vec<String>,
    pub imports: Vec<String>,
    pub hostname: String,
    pub state_version: String,
    /// `None`: not written (the host gets it from a module it imports).
    pub domain_expr: Option<String>,
    pub secrets_file: Option<String>,
    pub signing_key_file: Option<String>,
    pub password_file: Option<String>,
    /// More `replication` option lines (`sslMode = "…";`).
    pub replication_extra: Vec<String>,
    /// More cluster option lines (`objectStorage.s3.bucket = "…";`).
    pub extra: Vec<String>,
    /// Lines after the cluster block (secret declarations); "" is a blank line.
    pub tail: Vec<String>,
}

pub fn render_host(host: &HostFile) -> Result<String> {
    render("host.nix", HOST, host)
}

/// What `nixflip init` is asked for.
#[derive(Clone, Debug)]
pub struct InitSpec {
    pub domain: String,
    pub primary: HostSpec,
    pub standbys: Vec<HostSpec>,
    pub system: String,
}

impl InitSpec {
    pub fn members(&self) -> impl Iterator<Item = &HostSpec> {
        std::iter::once(&self.primary).chain(&self.standbys)
    }

    /// Names and addresses must be unique, and there must be a standby.
    pub fn validate(&self) -> Result<()> {
        check_domain(&self.domain)?;
        if self.standbys.is_empty() {
            return Err(Error::usage(
                "a cluster needs at least one standby",
                "pass --standby NAME=ADDRESS (repeatable)",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut addresses = std::collections::BTreeSet::new();
        for h in self.members() {
            check_host_name(&h.name)?;
            check_address(&h.address)?;
            if !names.insert(h.name.as_str()) {
                return Err(Error::usage(
                    format!("the host name `{}` is given twice", h.name),
                    "every member needs its own name",
                ));
            }
            if !addresses.insert(h.address.as_str()) {
                return Err(Error::usage(
                    format!("the address {} is given to two hosts", h.address),
                    "every member needs its own address",
                ));
            }
        }
        Ok(())
    }
}

/// The host file `nixflip init` writes for `host`.
fn init_host(spec: &InitSpec, host: &HostSpec, role: &str) -> HostFile {
    let peer = if role == "primary" {
        &spec.standbys[0].address
    } else {
        &spec.primary.address
    };
    HostFile {
        name: host.name.clone(),
        role: role.into(),
        domain: spec.domain.clone(),
        address: host.address.clone(),
        peer: peer.clone(),
        // Every other member, so that any later promote is a pure flip.
        allowed: spec
            .members()
            .filter(|o| o.name != host.name)
            .map(|o| source_cidr(&o.address))
            .collect(),
        header: "{ config, lib, pkgs, self, ... }:".into(),
        lets: Vec::new(),
        imports: vec!["self.nixosModules.matrix-cluster".into()],
        hostname: system_host_name(&host.name),
        // The release the generated flake pins (templates/flake.nix): a
        // freshly installed host starts at that state version.
        state_version: "25.11".into(),
        domain_expr: Some(nix_filter(spec.domain.clone())),
        secrets_file: Some(nix_filter("/run/secrets/matrix/secrets".into())),
        signing_key_file: Some(nix_filter("/run/secrets/matrix/signing-key".into())),
        password_file: Some(nix_filter("/run/secrets/postgres/replication".into())),
        replication_extra: Vec::new(),
        extra: Vec::new(),
        tail: Vec::new(),
    }
}

#[derive(Serialize)]
struct FlakeCtx<'a> {
    domain: &'a str,
    system: &'a str,
    primary: &'a HostSpec,
    hosts: Vec<&'a HostSpec>,
}

/// Every file of a new cluster flake, relative to its root.
pub fn init_files(spec: &InitSpec) -> Result<Vec<Generated>> {
    spec.validate()?;
    let flake = render(
        "flake.nix",
        FLAKE,
        FlakeCtx {
            domain: &spec.domain,
            system: &spec.system,
            primary: &spec.primary,
            hosts: spec.members().collect(),
        },
    )?;
    let domain_ctx = minijinja::context! { domain => spec.domain };
    let mut files = vec![
        Generated {
            path: "flake.nix".into(),
            content: flake,
        },
        Generated {
            path: "modules/matrix-cluster.nix".into(),
            content: MODULE.to_string(),
        },
    ];
    for host in spec.members() {
        let role = if host == &spec.primary {
            "primary"
        } else {
            "standby"
        };
        files.push(Generated {
            path: PathBuf::from("hosts").join(format!("{}.nix", host.name)),
            content: render_host(&init_host(spec, host, role))?,
        });
    }
    files.extend([
        Generated {
            path: "nixflip.toml".into(),
            content: render("nixflip.toml", CONFIG, &domain_ctx)?,
        },
        Generated {
            path: ".pre-commit-config.yaml".into(),
            content: render("pre-commit-config.yaml", PRE_COMMIT, &domain_ctx)?,
        },
        Generated {
            path: ".github/workflows/nixflip.yml".into(),
            content: WORKFLOW.to_string(),
        },
    ]);
    Ok(files)
}

/// Where `dir` lies in a git work tree: `Some(top level)`, else `None`.
pub fn git_work_tree(dir: &std::path::Path) -> Option<PathBuf> {
    let top = crate::git::text(dir, &["rev-parse", "--show-toplevel"]).ok()?;
    let top = top.trim();
    (!top.is_empty()).then(|| PathBuf::from(top))
}

/// `git add --intent-to-add -- FILES` (paths relative to `dir`): a flake in
/// a git work tree is read through git (`nixos-rebuild --flake .`), which
/// leaves out files git does not know; an intent-to-add entry is known
/// without being staged, so the user still decides what to commit.
/// `Ok(false)` when `dir` is not in a git work tree (nothing to do).
pub fn git_intent_to_add(dir: &std::path::Path, files: &[PathBuf]) -> Result<bool> {
    if files.is_empty() || git_work_tree(dir).is_none() {
        return Ok(false);
    }
    let mut args: Vec<std::ffi::OsString> =
        vec!["add".into(), "--intent-to-add".into(), "--".into()];
    args.extend(files.iter().map(|f| f.as_os_str().to_owned()));
    crate::git::bytes(dir, &args, None).map_err(|e| {
        Error::external(
            format!("{e}"),
            "run `git add` on the new files yourself (is the path in .gitignore?): a git flake does not see untracked files",
        )
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_specs_parse_and_validate() {
        let ok: std::result::Result<HostSpec, _> = "alpha=192.0.2.1".parse();
        assert_eq!(
            ok,
            Ok(HostSpec {
                name: "alpha".into(),
                address: "192.0.2.1".into()
            })
        );
        assert!("alpha".parse::<HostSpec>().is_err());
        assert!("al/pha=192.0.2.1".parse::<HostSpec>().is_err());
        assert!("alpha=300.0.0.1".parse::<HostSpec>().is_err());
        assert!("alpha=2001:db8::1".parse::<HostSpec>().is_ok());
        // A DNS name cannot go into allowedSourceIPs (pg_hba, iptables).
        let dns = "alpha=db1.example.org".parse::<HostSpec>();
        assert!(
            dns.as_ref()
                .is_err_and(|e| e.contains("allowedSourceIPs needs an IP address")),
            "{dns:?}"
        );
    }

    #[test]
    fn the_nix_filter_escapes() {
        assert_eq!(nix_filter("a\"${b}".into()), r#""a\"\${b}""#);
    }

    #[test]
    fn system_host_names_have_no_dots() {
        assert_eq!(system_host_name("bfs.poland.xray"), "bfs-poland-xray");
    }
}
