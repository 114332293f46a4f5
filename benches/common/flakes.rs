//! The flakes the `promote` and `scratch` benchmarks evaluate: a copy of
//! the example, a generated cluster of N hosts, and the `nix` arguments that
//! replace their inputs with the stand-ins. Never writes outside the given
//! directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::run_checked;

/// The repository.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copy a directory tree (the example flake) into `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let dst = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &dst);
        } else {
            std::fs::copy(entry.path(), &dst).expect("copy file");
        }
    }
}

/// `nix` arguments replacing the flakes' `nixpkgs` and `sops-nix` inputs
/// with the stand-ins of nix/stand-ins, as the tests do (nixpkgs' real
/// module system; the nixpkgs stand-in is in the store, so Nix does not hash
/// it again on every evaluation, as it would not a locked nixpkgs).
pub fn overrides() -> Vec<String> {
    let stand_in =
        run_checked(Command::new("bash").arg(repo().join("nix/stand-ins/nixpkgs/assemble.sh")));
    vec![
        "--override-input".into(),
        "nixpkgs".into(),
        format!("path:{}", stand_in.trim()),
        "--override-input".into(),
        "sops-nix".into(),
        format!("path:{}", repo().join("nix/stand-ins/sops-nix").display()),
    ]
}

/// A generated cluster of `n` hosts: node-00 is the primary, the others
/// stream from it; every host allows all the others (pure flips).
pub fn generate_cluster(dir: &Path, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("node-{i:02}")).collect();
    let addr = |i: usize| format!("198.51.100.{}", 10 + i);
    std::fs::create_dir_all(dir.join("hosts")).expect("hosts dir");
    std::fs::create_dir_all(dir.join("nix")).expect("nix dir");
    std::fs::copy(
        repo().join("nix/matrix-cluster.nix"),
        dir.join("nix/matrix-cluster.nix"),
    )
    .expect("copy the module");
    let mut configs = String::new();
    for (i, name) in names.iter().enumerate() {
        let others: Vec<String> = (0..n)
            .filter(|&j| j != i)
            .map(|j| format!("\"{}/32\"", addr(j)))
            .collect();
        let role = if i == 0 { "primary" } else { "standby" };
        let peer = if i == 0 { addr(1) } else { addr(0) };
        let host = format!(
            r#"{{ config, lib, ... }}:
{{
  networking.hostName = "{name}";
  hectic.generic.matrix-cluster = {{
    enable = true;
    role = "{role}";
    matrixDomain = "example.org";
    publicIp = "{ip}";
    secretsFile = "/run/secrets/matrix-secrets";
    signingKeyFile = "/run/secrets/matrix-signing-key";
    replication = {{
      peerHost = "{peer}";
      passwordFile = "/run/secrets/postgres-replication";
      allowedSourceIPs = [ {others} ];
    }};
  }};
}}
"#,
            ip = addr(i),
            others = others.join(" "),
        );
        std::fs::write(dir.join("hosts").join(format!("{name}.nix")), host).expect("host file");
        let _ = writeln!(
            configs,
            "        \"{name}|x86_64-linux\" = host ./hosts/{name}.nix;"
        );
    }
    let flake = format!(
        r#"{{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
  outputs = {{ self, nixpkgs }}:
    let
      host = file: nixpkgs.lib.nixosSystem {{
        system = "x86_64-linux";
        modules = [ self.nixosModules.matrix-cluster file ];
      }};
    in
    {{
      nixosModules.matrix-cluster = import ./nix/matrix-cluster.nix;
      nixosConfigurations = {{
{configs}      }};
    }};
}}
"#
    );
    std::fs::write(dir.join("flake.nix"), flake).expect("flake.nix");
    names
}
