//! Running `nixos-rebuild` on cluster members in a safe order.
//!
//! The pieces, in the order a caller uses them:
//! - [`order`]: which hosts, in which order (new primary, old primary, the
//!   other standbys alphabetically);
//! - [`plan`]: one [`Step`] per host (flake attribute and ssh target), every
//!   name and target validated before anything runs;
//! - [`command`]: the argv of one `nixos-rebuild` call (no shell, ever);
//! - [`run`]: run the steps one by one, stop at the first failure, and return
//!   a [`RebuildReport`]; [`resume_command`] gives the invocation that
//!   continues from the failed host.
//!
//! [`RebuildOptions::resolve`] decides each setting: the command line, then
//! `[rebuild]` in nixflip.toml, then nixos-rebuild's defaults.

use crate::names::{is_valid_host_name, validate_attr, validate_target};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::cluster::{Cluster, Member};
use crate::error::{Error, Result};

/// The program nixflip runs; found on `PATH`.
pub const NIXOS_REBUILD: &str = "nixos-rebuild";

/// The `nixos-rebuild` actions nixflip accepts.
pub const ACTIONS: &[&str] = &["switch", "boot", "test", "dry-activate"];

/// One host to rebuild.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub host: String,
    /// `ROOT#ATTR`.
    pub flake_ref: String,
    /// ssh target: `user@host` or `host`.
    pub target: String,
}

/// How every `nixos-rebuild` call is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebuildOptions {
    /// `switch` (default), `boot`, `test` or `dry-activate`.
    pub action: String,
    pub build_host: Option<String>,
    pub use_remote_sudo: bool,
    pub sudo: bool,
    /// Appended to every call, after nixflip's own arguments.
    pub extra_args: Vec<String>,
    /// Print the commands, run nothing.
    pub dry_run: bool,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        RebuildOptions {
            action: "switch".into(),
            build_host: None,
            use_remote_sudo: false,
            sudo: false,
            extra_args: Vec::new(),
            dry_run: false,
        }
    }
}

/// The rebuild settings as given on the command line: unset ones come from
/// `[rebuild]` in nixflip.toml, then nixos-rebuild's defaults.
#[derive(Clone, Debug, Default)]
pub struct RebuildFlags {
    pub action: Option<String>,
    pub build_host: Option<String>,
    pub use_remote_sudo: bool,
    pub sudo: bool,
    /// Replaces `[rebuild] extra_args` when not empty.
    pub extra_args: Vec<String>,
    pub dry_run: bool,
}

impl RebuildOptions {
    /// Flags over `[rebuild]` in nixflip.toml over nixos-rebuild's defaults.
    pub fn resolve(flags: &RebuildFlags, config: &crate::config::RebuildConfig) -> RebuildOptions {
        RebuildOptions {
            action: flags
                .action
                .clone()
                .or_else(|| config.action.clone())
                .unwrap_or_else(|| "switch".into()),
            build_host: flags
                .build_host
                .clone()
                .or_else(|| config.build_host.clone()),
            // --sudo on the command line replaces use_remote_sudo from the config.
            use_remote_sudo: flags.use_remote_sudo || (config.use_remote_sudo && !flags.sudo),
            sudo: flags.sudo,
            extra_args: if flags.extra_args.is_empty() {
                config.extra_args.clone()
            } else {
                flags.extra_args.clone()
            },
            dry_run: flags.dry_run,
        }
    }

    /// Check the action and the build host (before anything runs).
    pub fn validate(&self) -> Result<()> {
        if !ACTIONS.contains(&self.action.as_str()) {
            return Err(Error::usage(
                format!(
                    "`{}` is not a nixos-rebuild action nixflip runs",
                    self.action
                ),
                format!("use one of: {}", ACTIONS.join(", ")),
            ));
        }
        if let Some(host) = &self.build_host {
            validate_target(host).map_err(|why| {
                Error::usage(
                    format!("build host: {why}"),
                    "write user@host or host for --build-host / [rebuild] build_host",
                )
            })?;
        }
        if self.sudo && self.use_remote_sudo {
            return Err(Error::usage(
                "--sudo and --use-remote-sudo are two spellings of the same thing",
                "pass one: --sudo for newer nixos-rebuild, --use-remote-sudo for older",
            ));
        }
        Ok(())
    }
}

/// What [`run`] reports while it works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// About to run `command` for `host`.
    Started { host: String, command: Vec<String> },
    /// A line `nixos-rebuild` wrote (stdout and stderr merged), without its newline.
    Output { host: String, line: String },
    /// The call ended; `code` is `None` when it was killed by a signal.
    Finished {
        host: String,
        ok: bool,
        code: Option<i32>,
    },
}

/// The host whose rebuild failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub host: String,
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub command: Vec<String>,
}

/// What [`run`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub done: Vec<String>,
    pub failed: Option<Failure>,
    pub not_run: Vec<String>,
}

impl RebuildReport {
    pub fn ok(&self) -> bool {
        self.failed.is_none()
    }

    /// The hosts still to rebuild: the failed one, then the ones not run.
    pub fn remaining(&self) -> Vec<String> {
        self.failed
            .iter()
            .map(|f| f.host.clone())
            .chain(self.not_run.iter().cloned())
            .collect()
    }
}

/// The hosts to rebuild, in order: `new_primary` first, then `old_primary`,
/// then every other host alphabetically. `new_primary = None` means the
/// cluster's current primary (when there is exactly one) goes first: that is
/// the plain `nixflip rebuild` order. `selected` restricts the hosts (in any
/// order; names that are not members are dropped, see [`check_hosts`]); empty
/// means every member.
pub fn order(
    cluster: &Cluster,
    new_primary: Option<&str>,
    old_primary: Option<&str>,
    selected: &[String],
) -> Vec<String> {
    let first = new_primary.or_else(|| cluster.primary().map(|m| m.name.as_str()));
    let wanted = |name: &str| selected.is_empty() || selected.iter().any(|s| s == name);
    let mut names: Vec<&str> = cluster
        .members
        .iter()
        .map(|m| m.name.as_str())
        .filter(|n| wanted(n))
        .collect();
    names.sort_unstable();
    names.dedup();
    let rank = |name: &str| {
        if Some(name) == first {
            0
        } else if Some(name) == old_primary {
            1
        } else {
            2
        }
    };
    // Stable sort keeps the alphabetical order within a rank.
    names.sort_by_key(|n| rank(n));
    names.into_iter().map(str::to_string).collect()
}

/// Every name in `hosts` must be a member: otherwise a usage error listing the
/// members and suggesting the closest name.
pub fn check_hosts(cluster: &Cluster, hosts: &[String]) -> Result<()> {
    let names: Vec<&str> = cluster.members.iter().map(|m| m.name.as_str()).collect();
    for host in hosts {
        if names.contains(&host.as_str()) {
            continue;
        }
        let closest = names
            .iter()
            .map(|n| (strsim::jaro_winkler(host, n), *n))
            .filter(|(score, _)| *score > 0.7)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| n);
        let members = if names.is_empty() {
            "the cluster has no members".to_string()
        } else {
            format!("members: {}", names.join(", "))
        };
        let help = match closest {
            Some(n) => format!("did you mean `{n}`? {members}"),
            None => members,
        };
        return Err(Error::usage(
            format!("`{host}` is not a member of the cluster"),
            help,
        ));
    }
    Ok(())
}

/// The ssh target of `member`: `[hosts.X] target`, else `root@ADDRESS`.
pub fn target(member: &Member) -> Result<String> {
    let target = match (&member.target, &member.address) {
        (Some(t), _) => t.clone(),
        (None, Some(address)) => format!("root@{address}"),
        (None, None) => {
            return Err(Error::usage(
                format!(
                    "the address of {} is not known, so neither is its ssh target",
                    member.name
                ),
                format!(
                "set it in nixflip.toml: [hosts.\"{}\"] target = \"root@…\" (or address = \"…\")",
                member.name
            ),
            ))
        }
    };
    let parsed = crate::names::Target::parse(&target).map_err(|why| {
        Error::refused(
            format!("{}: unsafe ssh target: {why}", member.name),
            format!(
                "fix [hosts.\"{}\"] target (or address) in nixflip.toml",
                member.name
            ),
        )
    })?;
    // nixos-rebuild's --target-host takes `user@host` only; a port would
    // have to travel in NIX_SSHOPTS, which nixflip does not set.
    if parsed.port.is_some() {
        return Err(Error::usage(
            format!(
                "{}: the target {target} has a port, which nixos-rebuild's --target-host cannot take",
                member.name
            ),
            "give the host a `Host` entry with its `Port` in ~/.ssh/config and use that name \
             as the target, or run nixos-rebuild yourself with NIX_SSHOPTS=\"-p PORT\"",
        ));
    }
    if target.starts_with("ssh://") {
        Ok(parsed.user_host())
    } else {
        Ok(target)
    }
}

/// One validated [`Step`] per host, in the given order. A host's flake
/// attribute is the one discovery found (pinned in nixflip.toml, or the
/// flake model's entry for its file).
pub fn plan(cluster: &Cluster, hosts: &[String]) -> Result<Vec<Step>> {
    let attrs = flake_attrs(cluster, hosts)?;
    let mut steps = Vec::new();
    for (host, attr) in hosts.iter().zip(attrs) {
        let Some(member) = cluster.member(host) else {
            continue; // flake_attrs rejected unknown names
        };
        let target = target(member)?;
        steps.push(Step {
            host: member.name.clone(),
            flake_ref: format!("{}#{attr}", cluster.root.display()),
            target,
        });
    }
    Ok(steps)
}

/// Each host's validated `nixosConfigurations` attribute, in the order
/// given: the one discovery found (pinned, or the flake model's entry).
pub fn flake_attrs(cluster: &Cluster, hosts: &[String]) -> Result<Vec<String>> {
    check_hosts(cluster, hosts)?;
    let mut attrs = Vec::new();
    for host in hosts {
        let Some(member) = cluster.member(host) else {
            continue; // check_hosts rejected unknown names
        };
        if !is_valid_host_name(&member.name) {
            return Err(Error::refused(
                format!("`{}` is not a safe host name", member.name),
                "host names may contain letters, digits, '.', '-' and '_', and must not start with '-'",
            ));
        }
        let attr = match &member.attr {
            Some(attr) => attr.clone(),
            None => return Err(cluster.no_entry_error(member)),
        };
        validate_attr(&attr).map_err(|why| {
            Error::refused(
                format!("{}: unusable flake attribute: {why}", member.name),
                format!("fix [hosts.\"{}\"] attr in nixflip.toml", member.name),
            )
        })?;
        attrs.push(attr);
    }
    Ok(attrs)
}

/// The argv of one call: `nixos-rebuild ACTION --flake ROOT#ATTR --target-host
/// `--build-host` and the sudo flag: nixos-rebuild and `nixflip rebuild`
/// spell them the same, so the rebuild command and the resume command share this.
fn push_host_flags(argv: &mut Vec<String>, opts: &RebuildOptions) {
    if let Some(host) = &opts.build_host {
        argv.push("--build-host".into());
        argv.push(host.clone());
    }
    if opts.use_remote_sudo {
        argv.push("--use-remote-sudo".into());
    } else if opts.sudo {
        argv.push("--sudo".into());
    }
}

/// TARGET [--build-host H] [--use-remote-sudo | --sudo] [EXTRA…]`.
pub fn command(step: &Step, opts: &RebuildOptions) -> Vec<String> {
    let mut argv = vec![
        NIXOS_REBUILD.to_string(),
        opts.action.clone(),
        "--flake".into(),
        step.flake_ref.clone(),
        "--target-host".into(),
        step.target.clone(),
    ];
    push_host_flags(&mut argv, opts);
    argv.extend(opts.extra_args.iter().cloned());
    argv
}

/// Find `program` on `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn missing_nixos_rebuild() -> Error {
    Error::external(
        format!("`{NIXOS_REBUILD}` is not on PATH"),
        "run nixflip from a NixOS machine (it ships nixos-rebuild), or get it with \
         `nix shell nixpkgs#nixos-rebuild` (one-off: `nix run nixpkgs#nixos-rebuild -- …`)",
    )
}

/// Fail early (exit 3) when `nixos-rebuild` cannot be found.
pub fn require_nixos_rebuild() -> Result<PathBuf> {
    find_program(NIXOS_REBUILD).ok_or_else(missing_nixos_rebuild)
}

/// Run the steps in order, stopping at the first failure. Nothing runs with
/// `opts.dry_run` (every host is reported as not run). `nixos-rebuild`'s
/// output (stdout and stderr merged) arrives line by line as
/// [`Event::Output`]; its stdin is inherited (sudo may ask for a password).
/// Errors only when `nixos-rebuild` cannot be started at all (exit 3).
pub fn run(
    steps: &[Step],
    opts: &RebuildOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<RebuildReport> {
    if opts.dry_run {
        return Ok(RebuildReport {
            not_run: steps.iter().map(|s| s.host.clone()).collect(),
            ..RebuildReport::default()
        });
    }
    let invocations: Vec<Invocation> = steps
        .iter()
        .map(|step| Invocation {
            host: step.host.clone(),
            argv: command(step, opts),
            env: Vec::new(),
            dir: None,
        })
        .collect();
    run_invocations(&invocations, progress)
}

/// One `nixos-rebuild` call as it runs: its argv (`nixos-rebuild` first),
/// variables added to its environment (`NIX_SSHOPTS`), and the directory it
/// runs in (`nixos-rebuild build` leaves its `result` link there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub host: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dir: Option<PathBuf>,
}

/// The argv that builds a host's configuration without activating it:
/// `nixos-rebuild build --flake REF [--build-host H] [EXTRA…]`.
pub fn build_command(flake_ref: &str, opts: &RebuildOptions) -> Vec<String> {
    let mut argv = vec![
        NIXOS_REBUILD.to_string(),
        "build".into(),
        "--flake".into(),
        flake_ref.to_string(),
    ];
    if let Some(host) = &opts.build_host {
        argv.push("--build-host".into());
        argv.push(host.clone());
    }
    argv.extend(opts.extra_args.iter().cloned());
    argv
}

/// Run the calls in order, stopping at the first failure (see [`run`]).
pub fn run_invocations(
    invocations: &[Invocation],
    progress: &mut dyn FnMut(Event),
) -> Result<RebuildReport> {
    let mut report = RebuildReport::default();
    let program = require_nixos_rebuild()?;
    for (index, call) in invocations.iter().enumerate() {
        progress(Event::Started {
            host: call.host.clone(),
            command: call.argv.clone(),
        });
        let code = run_one(&program, call, progress)?;
        let ok = code == Some(0);
        progress(Event::Finished {
            host: call.host.clone(),
            ok,
            code,
        });
        if ok {
            report.done.push(call.host.clone());
        } else {
            report.failed = Some(Failure {
                host: call.host.clone(),
                code,
                command: call.argv.clone(),
            });
            report.not_run = invocations[index + 1..]
                .iter()
                .map(|s| s.host.clone())
                .collect();
            break;
        }
    }
    Ok(report)
}

/// Run one call and forward its output; the exit code (`None`: a signal).
fn run_one(
    program: &Path,
    call: &Invocation,
    progress: &mut dyn FnMut(Event),
) -> Result<Option<i32>> {
    let host = call.host.as_str();
    let mut expression = duct::cmd(program, call.argv.iter().skip(1))
        .stderr_to_stdout()
        .unchecked();
    for (name, value) in &call.env {
        expression = expression.env(name, value);
    }
    if let Some(dir) = &call.dir {
        expression = expression.dir(dir);
    }
    let started = expression.reader();
    let reader = match started {
        Ok(reader) => reader,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing_nixos_rebuild()),
        Err(e) => {
            return Err(Error::external(
                format!("cannot start {}: {e}", program.display()),
                "check that nixos-rebuild is executable",
            ))
        }
    };
    let mut lines = std::io::BufReader::new(&reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match lines.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                progress(Event::Output {
                    host: host.to_string(),
                    line: line.trim_end_matches(['\n', '\r']).to_string(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    drop(lines);
    match reader.try_wait() {
        Ok(Some(output)) => Ok(output.status.code()),
        // Reading failed before the end: do not leave it running unseen.
        _ => {
            let _ = reader.kill();
            Ok(None)
        }
    }
}

/// Where the resume command comes from: the global flags to repeat.
#[derive(Clone, Debug, Default)]
pub struct ResumeContext {
    pub flake: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

/// The exact `nixflip rebuild HOST…` invocation that continues from the failed
/// host, with the same options (every option spelled out, so that it means
/// the same whatever nixflip.toml says). `None` when nothing is left to do.
/// `--yes` is never added: the operator confirms again.
pub fn resume_command(
    report: &RebuildReport,
    opts: &RebuildOptions,
    context: &ResumeContext,
) -> Option<Vec<String>> {
    let hosts = report.remaining();
    if hosts.is_empty() {
        return None;
    }
    let mut argv = vec!["nixflip".to_string()];
    if let Some(flake) = &context.flake {
        argv.push("--flake".into());
        argv.push(flake.display().to_string());
    }
    if let Some(config) = &context.config {
        argv.push("--config".into());
        argv.push(config.display().to_string());
    }
    argv.push("rebuild".into());
    argv.extend(hosts);
    argv.push("--action".into());
    argv.push(opts.action.clone());
    push_host_flags(&mut argv, opts);
    for arg in &opts.extra_args {
        // `=` so that an argument starting with '-' is not read as a flag.
        argv.push(format!("--nixos-rebuild-arg={arg}"));
    }
    Some(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::display_command;

    fn step(host: &str, attr: &str, target: &str) -> Step {
        Step {
            host: host.into(),
            flake_ref: format!("/flake#{attr}"),
            target: target.into(),
        }
    }

    #[test]
    fn flags_win_over_the_config_which_wins_over_the_defaults() {
        let config = crate::config::RebuildConfig {
            action: Some("boot".into()),
            build_host: Some("builder".into()),
            use_remote_sudo: true,
            extra_args: vec!["--show-trace".into()],
        };
        let from_config = RebuildOptions::resolve(&RebuildFlags::default(), &config);
        assert_eq!(from_config.action, "boot");
        assert_eq!(from_config.build_host.as_deref(), Some("builder"));
        assert!(from_config.use_remote_sudo && !from_config.sudo);
        assert_eq!(from_config.extra_args, ["--show-trace"]);
        let flags = RebuildFlags {
            action: Some("test".into()),
            sudo: true,
            extra_args: vec!["-L".into()],
            ..RebuildFlags::default()
        };
        let from_flags = RebuildOptions::resolve(&flags, &config);
        assert_eq!(from_flags.action, "test");
        // --sudo replaces the config's use_remote_sudo rather than adding to it.
        assert!(from_flags.sudo && !from_flags.use_remote_sudo);
        assert_eq!(from_flags.extra_args, ["-L"]);
        let defaults = RebuildOptions::resolve(
            &RebuildFlags::default(),
            &crate::config::RebuildConfig::default(),
        );
        assert_eq!(defaults.action, "switch");
        assert_eq!(defaults.build_host, None);
    }

    #[test]
    fn command_default_is_switch() {
        let argv = command(
            &step(
                "hectic-lab",
                "hectic-lab|x86_64-linux",
                "root@128.140.75.58",
            ),
            &RebuildOptions::default(),
        );
        assert_eq!(
            argv,
            [
                "nixos-rebuild",
                "switch",
                "--flake",
                "/flake#hectic-lab|x86_64-linux",
                "--target-host",
                "root@128.140.75.58"
            ]
        );
    }

    #[test]
    fn command_with_every_option() {
        let opts = RebuildOptions {
            action: "boot".into(),
            build_host: Some("builder@10.0.0.1".into()),
            use_remote_sudo: true,
            sudo: false,
            extra_args: vec!["--show-trace".into(), "--option".into(), "x y".into()],
            dry_run: false,
        };
        let argv = command(&step("a", "a", "deploy@a.example"), &opts);
        assert_eq!(
            display_command(&argv),
            "nixos-rebuild boot --flake '/flake#a' --target-host deploy@a.example \
             --build-host builder@10.0.0.1 --use-remote-sudo --show-trace --option 'x y'"
        );
        let sudo = RebuildOptions {
            use_remote_sudo: false,
            sudo: true,
            ..opts
        };
        assert!(command(&step("a", "a", "a"), &sudo).contains(&"--sudo".to_string()));
    }

    #[test]
    fn resume_from_the_failed_host() {
        let report = RebuildReport {
            done: vec!["alpha".into()],
            failed: Some(Failure {
                host: "beta".into(),
                code: Some(1),
                command: vec![],
            }),
            not_run: vec!["gamma".into()],
        };
        let opts = RebuildOptions {
            build_host: Some("b".into()),
            sudo: true,
            extra_args: vec!["--show-trace".into()],
            ..RebuildOptions::default()
        };
        let context = ResumeContext {
            flake: Some("/my flake".into()),
            config: None,
        };
        let argv = resume_command(&report, &opts, &context).unwrap_or_default();
        assert_eq!(
            display_command(&argv),
            "nixflip --flake '/my flake' rebuild beta gamma --action switch --build-host b \
             --sudo '--nixos-rebuild-arg=--show-trace'"
        );
        let done = RebuildReport {
            done: vec!["alpha".into()],
            ..RebuildReport::default()
        };
        assert_eq!(resume_command(&done, &opts, &context), None);
    }

    #[test]
    fn targets() {
        assert!(validate_target("root@128.140.75.58").is_ok());
        assert!(validate_target("root@[2001:db8::1]").is_ok());
        assert!(validate_target("-oProxyCommand=x").is_err());
        assert!(validate_target("root@a;b").is_err());
        assert!(validate_target("a b").is_err());
        assert!(validate_attr("hectic-lab|x86_64-linux").is_ok());
        assert!(validate_attr("a#b").is_err());
    }

    fn cluster(files: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        std::fs::write(dir.path().join("flake.nix"), "{ outputs = _: { }; }")
            .unwrap_or_else(|e| panic!("write: {e}"));
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("write: {e}"));
        }
        let loaded = crate::config::Loaded::default();
        Cluster::load(dir.path(), loaded).unwrap_or_else(|e| panic!("load: {e}"))
    }

    fn host(role: &str, ip: &str) -> String {
        format!(
            "{{ ... }}: {{ hectic.generic.matrix-cluster = {{ enable = true; role = \"{role}\"; publicIp = \"{ip}\"; }}; }}"
        )
    }

    #[test]
    fn order_of_hosts() {
        let c = cluster(&[
            ("delta.nix", &host("standby", "10.0.0.4")),
            ("beta.nix", &host("standby", "10.0.0.2")),
            ("gamma.nix", &host("primary", "10.0.0.3")),
            ("alpha.nix", &host("standby", "10.0.0.1")),
        ]);
        let all = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Plain rebuild: the current primary, then the standbys alphabetically.
        assert_eq!(
            order(&c, None, None, &[]),
            all(&["gamma", "alpha", "beta", "delta"])
        );
        // After promoting delta: delta, the old primary gamma, then the rest.
        assert_eq!(
            order(&c, Some("delta"), Some("gamma"), &[]),
            all(&["delta", "gamma", "alpha", "beta"])
        );
        // A selection keeps the order, not the order it was given in.
        assert_eq!(
            order(&c, Some("delta"), Some("gamma"), &all(&["beta", "gamma"])),
            all(&["gamma", "beta"])
        );
        assert_eq!(
            order(&c, None, None, &all(&["delta", "alpha"])),
            all(&["alpha", "delta"])
        );
    }

    #[test]
    fn unknown_host_suggests() {
        let c = cluster(&[
            ("alpha.nix", &host("primary", "10.0.0.1")),
            ("beta.nix", &host("standby", "10.0.0.2")),
        ]);
        let err = check_hosts(&c, &["alhpa".to_string()]).err();
        let help = match err {
            Some(Error::Usage { help, .. }) => help,
            other => panic!("expected a usage error, got {other:?}"),
        };
        assert_eq!(help, "did you mean `alpha`? members: alpha, beta");
    }
}
