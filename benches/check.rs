//! `check` benchmark: `nixflip check` on a generated 200-host cluster flake
//! against ONE `nix-instantiate --parse` process parsing the same `.nix`
//! files, measured in the same run.
//!
//! Target: `check` no slower than that parse (ratio <= 1.0). A miss is
//! printed, never a failure.
//!
//! Run with `cargo bench --bench check` (see benches/run.sh).

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixflip::cluster::{discover, rules, Cluster};

const HOSTS: usize = 200;
const DOMAIN: &str = "accord.tube";
const BUCKET: &str = "accord-media";

fn name(i: usize) -> String {
    format!("node-{i:03}")
}

/// Host 0 is the primary; the others are standbys. All in 198.18.0.0/15.
fn addr(i: usize) -> String {
    format!("198.18.{}.{}", i / 200, i % 200 + 10)
}

/// The non-cluster part every host has, ~25 lines.
fn common_config(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"
  networking.hostName = "{name}";
  networking.firewall = {{
    enable = true;
    allowedTCPPorts = [ 22 80 443 8448 ];
  }};
  time.timeZone = "Europe/Berlin";
  boot.loader.grub = {{ enable = true; device = "/dev/sda"; }};
  fileSystems."/" = {{ device = "/dev/disk/by-label/nixos"; fsType = "ext4"; }};
  services.openssh = {{
    enable = true;
    settings.PasswordAuthentication = false;
  }};
  services.nginx.virtualHosts."matrix.{DOMAIN}" = {{
    enableACME = true;
    forceSSL = true;
    locations."/_matrix".proxyPass = "http://127.0.0.1:8008";
  }};
  users.users.root.openssh.authorizedKeys.keys = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchKey{i:03} ops@{DOMAIN}"
  ];
  environment.systemPackages = with pkgs; [ htop git postgresql ];
  system.stateVersion = "24.05";
"#,
        name = name(i),
    );
}

fn primary(out: &mut String) {
    let allowed: String = (1..HOSTS)
        .map(|j| format!("          \"{}/32\"\n", addr(j)))
        .collect();
    let _ = write!(
        out,
        r#"# {name}: the primary.
{{ inputs, flake, self }}: {{ config, lib, pkgs, ... }}: let
  matrixDomain = "{DOMAIN}";
in {{
  imports = [ ./hardware/{name}.nix ];
  hectic = {{
    archetype.dev.enable = true;
    generic.matrix-cluster = {{
      enable         = true;
      role           = "primary";
      matrixDomain   = "{DOMAIN}";
      publicIp       = "{ip}";
      secretsFile    = "/run/secrets/matrix-secrets";
      signingKeyFile = "/run/secrets/matrix-signing-key";
      objectStorage.s3.bucket = "{BUCKET}";
      overrideEnableSynapse = null;
      acme.enable = true;
      replication = {{
        peerHost = "{peer}";
        passwordFile = "/run/secrets/postgres-replication";
        sslMode = "require";
        allowedSourceIPs = [
{allowed}        ];
      }};
    }};
  }};
"#,
        name = name(0),
        ip = addr(0),
        peer = addr(1),
    );
    common_config(out, 0);
    out.push_str("}\n");
}

/// A standby in one of five styles.
fn standby(out: &mut String, i: usize) {
    let (n, ip, p) = (name(i), addr(i), addr(0));
    match i % 5 {
        // Plain module, option set nested.
        0 => {
            let _ = write!(
                out,
                r#"# {n}: a standby (nested).
{{ config, lib, pkgs, ... }}:
{{
  hectic.generic.matrix-cluster = {{
    enable = true;
    role = "standby";
    matrixDomain = "{DOMAIN}";
    publicIp = "{ip}";
    signingKeyFile = "/run/secrets/matrix-signing-key";
    objectStorage.s3.bucket = "{BUCKET}";
    replication = {{
      peerHost = "{p}";
      passwordFile = "/run/secrets/postgres-replication";
      allowedSourceIPs = [ "{p}/32" ];
    }};
  }};
"#
            );
        }
        // Double lambda, let, aligned columns, `hectic = { generic… }`.
        1 => {
            let _ = write!(
                out,
                r#"# {n}: a standby (double lambda, aligned).
{{ inputs, flake, self }}: {{ config, lib, pkgs, ... }}: let
  bucket = "{BUCKET}";
in {{
  imports = [ self.nixosModules.matrix-cluster ];
  hectic = {{
    archetype.dev.enable = true;
    generic.matrix-cluster = {{
      enable                  = true;
      role                    = "standby";   # streams from the primary
      matrixDomain            = "{DOMAIN}";
      publicIp                = "{ip}";
      objectStorage.s3.bucket = "{BUCKET}";
      overrideEnableSynapse   = false;
      replication = {{
        peerHost         = "{p}";
        peerPort         = 5432;
        allowedSourceIPs = [ "{p}/32" ];
      }};
    }};
  }};
"#
            );
        }
        // Fully dotted, with a mkForce on the role.
        2 => {
            let _ = write!(
                out,
                r#"# {n}: a standby (dotted).
{{ config, lib, pkgs, ... }}:
{{
  hectic.generic.matrix-cluster.enable = true;
  hectic.generic.matrix-cluster.role = lib.mkForce "standby";
  hectic.generic.matrix-cluster.matrixDomain = "{DOMAIN}";
  hectic.generic.matrix-cluster.publicIp = "{ip}";
  hectic.generic.matrix-cluster.objectStorage.s3.bucket = "{BUCKET}";
  hectic.generic.matrix-cluster.replication.peerHost = "{p}";
  hectic.generic.matrix-cluster.replication.passwordFile = "/run/secrets/postgres-replication";
  hectic.generic.matrix-cluster.replication.allowedSourceIPs = [ "{p}/32" ];
"#
            );
        }
        // Quoted keys, mixed dotted-then-nested, comments between bindings.
        3 => {
            let _ = write!(
                out,
                r#"# {n}: a standby (quoted keys, mixed).
{{ config, lib, pkgs, ... }}:
{{
  hectic.generic."matrix-cluster" = {{
    # membership
    "enable" = true;
    "role" = "standby";
    matrixDomain = "{DOMAIN}";
    objectStorage = {{ s3.bucket = "{BUCKET}"; }};
    publicIp = "{ip}";
    replication.peerHost = "{p}";
    replication.sslMode = "verify-full";
    replication.allowedSourceIPs = [
      "{p}/32"
    ];
  }};
"#
            );
        }
        // mkDefault role, mkIf around unrelated config, inline attrsets.
        _ => {
            let _ = write!(
                out,
                r#"# {n}: a standby (wrappers).
{{ config, lib, pkgs, ... }}:
{{
  hectic.generic.matrix-cluster = {{
    enable = true; role = lib.mkDefault "standby";
    matrixDomain = "{DOMAIN}"; publicIp = "{ip}";
    objectStorage.s3 = {{ bucket = "{BUCKET}"; }};
    acme.enable = false;
    replication = {{ peerHost = "{p}"; allowedSourceIPs = [ "{p}/32" ]; }};
  }};
  services.prometheus.exporters.node = lib.mkIf config.services.openssh.enable {{
    enable = true;
    port = 9100;
  }};
"#
            );
        }
    }
    common_config(out, i);
    out.push_str("}\n");
}

fn generate(root: &Path) -> Vec<PathBuf> {
    let hosts = root.join("hosts");
    std::fs::create_dir_all(&hosts).expect("mkdir hosts");
    // The cluster module, as `self.nixosModules.matrix-cluster` (which a
    // fifth of the hosts import).
    let flake = "{\n  description = \"nixflip check benchmark: 200 hosts\";\n  outputs = { self }: {\n    nixosModules.matrix-cluster = import ./modules/matrix-cluster.nix;\n  };\n}\n";
    std::fs::write(root.join("flake.nix"), flake).expect("write flake.nix");
    std::fs::create_dir_all(root.join("modules")).expect("mkdir modules");
    let module = root.join("modules/matrix-cluster.nix");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("nix/matrix-cluster.nix"),
        &module,
    )
    .expect("copy the cluster module");
    let mut files = vec![root.join("flake.nix"), module];
    for i in 0..HOSTS {
        let mut text = String::new();
        if i == 0 {
            primary(&mut text);
        } else {
            standby(&mut text, i);
        }
        let file = hosts.join(format!("{}.nix", name(i)));
        std::fs::write(&file, text).expect("write host file");
        files.push(file);
    }
    files
}

fn in_process(root: &Path) -> (usize, usize, usize) {
    let loaded = nixflip::config::load(root, None).expect("config");
    let cluster = Cluster::load(root, loaded).expect("cluster");
    let findings = rules::check(&cluster);
    (
        cluster.members.len(),
        rules::error_count(&findings),
        findings.len(),
    )
}

fn main() {
    let runs = common::runs();
    let (_guard, dir) = common::temp_dir();
    let root = dir.canonicalize().expect("canonical temp dir");
    let files = generate(&root);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let lines: usize = files
        .iter()
        .map(|f| std::fs::read_to_string(f).map_or(0, |t| t.lines().count()))
        .sum();

    // Sanity: the generated cluster is valid and complete.
    let (members, errors, findings) = in_process(&root);
    assert_eq!(members, HOSTS, "every host file is a member");
    assert_eq!(findings, 0, "the generated cluster is consistent");
    assert_eq!(errors, 0);

    println!(
        "check bench: {} ({} .nix files incl. flake.nix, {bytes} bytes, {lines} lines, {members} members, {findings} findings), {runs} runs each, {} CPUs",
        root.display(),
        files.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    // The baseline and every operation are timed in interleaved rounds
    // (common::measure_rounds), so a change of machine load during the run
    // hits all of them alike.
    const IN_PROCESS: &str = "nixflip check (in-process: config+Cluster::load+rules)";
    const BINARY: &str = "nixflip --flake DIR check -q (release binary)";
    let baseline_name = format!("nix-instantiate --parse (1 process, {} files)", files.len());
    let bin = common::release_binary();
    let (root, files) = (&root, &files);
    let mut ops: Vec<common::Op> = Vec::new();
    // One process parsing every file (nix-instantiate --parse takes several).
    let parse = move || {
        let mut c = Command::new("nix-instantiate");
        c.arg("--parse").args(files);
        c
    };
    let have_nix = common::have_nix_instantiate();
    if have_nix {
        let out = common::run_checked(&mut parse());
        assert!(
            out.lines().count() >= files.len(),
            "nix-instantiate --parse printed fewer expressions than files"
        );
        ops.push((
            &baseline_name,
            Box::new(move || common::run_quiet(&mut parse())),
        ));
    } else {
        println!("note: nix-instantiate is not on PATH; no baseline, no ratios");
    }
    ops.push((
        "phase: Sources::load (find, read, parse all files)",
        Box::new(move || {
            let s = discover::Sources::load(root, &[], "matrix-cluster").expect("sources");
            assert_eq!(s.texts().count(), files.len());
        }),
    ));
    // The scan of addresses outside the cluster options (NF102, NF106,
    // NF107), which every check runs: alone, on a cluster loaded once.
    let loaded =
        Cluster::load(root, nixflip::config::load(root, None).expect("config")).expect("cluster");
    // The module's option examples are addresses too, but none a member's.
    let found = nixflip::cluster::addresses::scan(&loaded);
    let mentions = nixflip::cluster::addresses::mentions(&loaded, &found);
    assert!(
        mentions.is_empty(),
        "the generated hosts write no member address outside the options: {mentions:#?}"
    );
    let scanned = move || nixflip::cluster::addresses::scan(&loaded).len();
    ops.push((
        "phase: addresses::scan (strings outside the cluster options)",
        Box::new(move || {
            std::hint::black_box(scanned());
        }),
    ));
    ops.push((
        IN_PROCESS,
        Box::new(move || {
            let (m, e, _) = in_process(root);
            assert_eq!((m, e), (HOSTS, 0));
        }),
    ));
    let mut targets = vec![IN_PROCESS];
    match &bin {
        Some(bin) => {
            let cmd = move || {
                let mut c = Command::new(bin);
                c.arg("--flake").arg(root).args(["check", "-q"]);
                c
            };
            common::run_checked(&mut cmd());
            ops.push((BINARY, Box::new(move || common::run_quiet(&mut cmd()))));
            targets.push(BINARY);
        }
        None => println!(
            "note: target/release/nixflip is not built; run `cargo build --release` (benches/run.sh does) to time the binary"
        ),
    }

    let mut samples = common::measure_rounds(runs, ops);
    let baseline = have_nix.then(|| samples.remove(0));
    common::report(
        "check: 200-host flake",
        baseline.as_ref(),
        &samples,
        &targets,
    );
}
