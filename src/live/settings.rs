//! Per-member live settings and the finding thresholds, resolved from `nixflip.toml` with
//! NixOS's defaults. It must never guess a target: a member without one is bad input.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::{Cluster, Member};
use crate::config::Loaded;
use crate::error::{Error, Result};
use crate::names::Target;

use super::ssh::SshOptions;

/// NixOS's `services.postgresql.settings.port` default.
pub const DEFAULT_PG_PORT: u16 = 5432;
/// The NixOS module runs PostgreSQL as, and names its superuser, `postgres`.
pub const DEFAULT_PG_USER: &str = "postgres";
/// NixOS's socket directory (`/run/postgresql`).
pub const DEFAULT_PG_SOCKET_DIR: &str = "/run/postgresql";
/// The data directory's parent on NixOS: `/var/lib/postgresql/<major>`.
pub const DEFAULT_PG_DATA_PARENT: &str = "/var/lib/postgresql";
pub const DEFAULT_POSTGRESQL_SERVICE: &str = "postgresql";
pub const DEFAULT_SYNAPSE_SERVICE: &str = "matrix-synapse";
/// The cluster module's Synapse listener (loopback only, behind nginx).
pub const DEFAULT_SYNAPSE_URL: &str = "http://127.0.0.1:8008";

/// Where one member's services are, as seen on the host itself.
#[derive(Clone, Debug, PartialEq)]
pub struct HostSettings {
    pub host: String,
    pub target: Target,
    /// `None`: PostgreSQL's own `data_directory`, else the one directory
    /// under `/var/lib/postgresql` named after a major version.
    pub pg_data: Option<String>,
    pub pg_port: u16,
    pub pg_user: String,
    pub pg_socket_dir: String,
    pub postgresql_service: String,
    pub synapse_service: String,
    pub synapse_url: String,
}

/// The limits of the live findings (`[live]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    pub max_lag_bytes: u64,
    pub max_lag_seconds: f64,
    pub max_slot_retained_bytes: u64,
    pub min_free_percent: f64,
}

/// Everything `status --live` needs besides the cluster.
#[derive(Clone, Debug)]
pub struct Settings {
    /// One per member, in the cluster's member order.
    pub hosts: Vec<HostSettings>,
    pub thresholds: Thresholds,
    pub ssh: SshOptions,
}

impl Settings {
    /// Resolve every member's settings; exit 2 for a member without a
    /// usable target, or a `[live]` file that does not exist.
    pub fn resolve(cluster: &Cluster) -> Result<Settings> {
        let loaded = &cluster.config;
        let live = &loaded.config.live;
        let hosts = cluster
            .members
            .iter()
            .map(|m| host_settings(loaded, m))
            .collect::<Result<Vec<_>>>()?;
        let file = |value: &Option<toml::Spanned<String>>, key: &str| -> Result<Option<PathBuf>> {
            let Some(value) = value else { return Ok(None) };
            let path = cluster.root.join(value.get_ref());
            if path.is_file() {
                Ok(Some(path))
            } else {
                Err(loaded
                    .error(
                        value.span(),
                        format!("live.{key}: {} does not exist", path.display()),
                        "no such file",
                        "paths are relative to the flake root (the directory holding flake.nix)",
                    )
                    .into())
            }
        };
        Ok(Settings {
            hosts,
            thresholds: Thresholds {
                max_lag_bytes: live.max_lag_bytes,
                max_lag_seconds: *live.max_lag_seconds.get_ref(),
                max_slot_retained_bytes: live.max_slot_retained_bytes,
                min_free_percent: *live.min_free_percent.get_ref(),
            },
            ssh: SshOptions {
                known_hosts: file(&live.known_hosts, "known_hosts")?,
                identity_file: file(&live.identity_file, "identity_file")?,
                connect_timeout: *live.connect_timeout.get_ref(),
                command_timeout: Duration::from_secs(*live.command_timeout.get_ref()),
                ..SshOptions::default()
            },
        })
    }
}

fn host_settings(loaded: &Loaded, member: &Member) -> Result<HostSettings> {
    let text = match (&member.target, &member.address) {
        (Some(target), _) => target.clone(),
        (None, Some(address)) => format!("root@{address}"),
        (None, None) => {
            return Err(Error::usage(
                format!(
                    "the address of {} is not known, so nixflip cannot reach it",
                    member.name
                ),
                format!(
                "set it in nixflip.toml: [hosts.\"{}\"] target = \"root@…\" (or address = \"…\")",
                member.name
            ),
            ))
        }
    };
    let target = Target::parse(&text).map_err(|why| {
        Error::usage(
            format!("{}: unusable ssh target: {why}", member.name),
            format!(
                "fix [hosts.\"{}\"] target (or address) in nixflip.toml",
                member.name
            ),
        )
    })?;
    let live = loaded
        .config
        .hosts
        .get(&member.name)
        .map(|h| h.live.clone())
        .unwrap_or_default();
    let text_or = |value: Option<toml::Spanned<String>>, default: &str| {
        value.map_or_else(|| default.to_string(), toml::Spanned::into_inner)
    };
    Ok(HostSettings {
        host: member.name.clone(),
        target,
        pg_data: live.pg_data.map(toml::Spanned::into_inner),
        pg_port: live
            .pg_port
            .map_or(DEFAULT_PG_PORT, toml::Spanned::into_inner),
        pg_user: text_or(live.pg_user, DEFAULT_PG_USER),
        pg_socket_dir: text_or(live.pg_socket_dir, DEFAULT_PG_SOCKET_DIR),
        postgresql_service: text_or(live.postgresql_service, DEFAULT_POSTGRESQL_SERVICE),
        synapse_service: text_or(live.synapse_service, DEFAULT_SYNAPSE_SERVICE),
        synapse_url: text_or(live.synapse_url, DEFAULT_SYNAPSE_URL),
    })
}
