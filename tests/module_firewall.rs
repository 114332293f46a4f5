//! The cluster module's firewall rules for `replication.allowedSourceIPs`,
//! with both NixOS firewalls: evaluated with real `nix eval`, then loaded
//! into the real iptables / nftables of a fresh network namespace, where a
//! TCP connection to the PostgreSQL port from an allowed source gets
//! through and one from another address does not.
//!
//! Needs root (a network namespace), and Debian's `iptables`, `nftables`,
//! `iproute2` and `python3`; without them the tests fail saying what to
//! install.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of the IPv6 fixture whose primary also admits an IPv4 standby
/// address, with `networking.nftables.enable` as given.
fn flake(nftables: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("flake");
    common::copy_flake("fixtures/clusters/ipv6_standby", &root);
    let alpha = root.join("hosts/alpha.nix");
    let text = std::fs::read_to_string(&alpha).expect("alpha.nix");
    let edited = text
        .replace(
            "allowedSourceIPs = [ \"2001:db8::20/128\" ];",
            "allowedSourceIPs = [ \"2001:db8::20/128\" \"198.51.100.20/32\" ];",
        )
        .replace(
            "networking.hostName = \"alpha\";",
            &format!(
                "networking.hostName = \"alpha\";\n  networking.nftables.enable = {nftables};"
            ),
        );
    assert_ne!(text, edited, "the fixture's alpha.nix changed shape");
    std::fs::write(&alpha, edited).expect("write alpha.nix");
    (dir, root)
}

/// `networking.firewall.{extraCommands,extraInputRules}` of a host.
fn firewall(root: &Path, host: &str) -> (String, String) {
    let out = Command::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command flakes",
            "eval",
            "--json",
        ])
        .args(common::nix_overrides())
        .arg(format!("path:{}#nixosConfigurations", root.display()))
        .arg("--apply")
        .arg(format!(
            "cs: let f = cs.\"{host}|x86_64-linux\".config.networking.firewall; in [ f.extraCommands f.extraInputRules ]"
        ))
        .output()
        .expect("nix runs (install Debian's nix-bin)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let [commands, rules]: [String; 2] = serde_json::from_slice(&out.stdout).expect("json");
    (commands, rules)
}

/// Tries TCP connections to the PostgreSQL port of 198.51.100.10 and
/// 2001:db8::10 from allowed and other source addresses; prints one line per
/// attempt. A listener accepts on both; a filtered SYN times out.
const PROBE: &str = r#"
import socket, threading
listeners = []
for family, addr in ((socket.AF_INET, "198.51.100.10"), (socket.AF_INET6, "2001:db8::10")):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 5432))
    s.listen(8)
    listeners.append(s)
def serve(s):
    while True:
        c, _ = s.accept()
        c.close()
for s in listeners:
    threading.Thread(target=serve, args=(s,), daemon=True).start()
for family, src, dst in ((socket.AF_INET, "198.51.100.20", "198.51.100.10"),
                         (socket.AF_INET, "198.51.100.30", "198.51.100.10"),
                         (socket.AF_INET6, "2001:db8::20", "2001:db8::10"),
                         (socket.AF_INET6, "2001:db8::30", "2001:db8::10")):
    c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(1.5)
    c.bind((src, 0))
    try:
        c.connect((dst, 5432))
        print(src, "open")
    except OSError:
        print(src, "filtered")
    c.close()
"#;

/// Loopback addresses for the probe, then `firewall` (a shell script
/// loading the rules), then the probe; all in a new network namespace.
fn probe_in_namespace(firewall: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = dir.path().join("probe.py");
    std::fs::write(&probe, PROBE).expect("write probe");
    let script = format!(
        "set -eu\n\
         ip link set lo up\n\
         for a in 198.51.100.10 198.51.100.20 198.51.100.30; do ip addr add $a/32 dev lo; done\n\
         for a in 2001:db8::10 2001:db8::20 2001:db8::30; do ip -6 addr add $a/128 dev lo nodad; done\n\
         {firewall}\n\
         python3 {probe}\n",
        probe = probe.display()
    );
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .output()
        .expect("unshare runs (util-linux)");
    assert!(
        out.status.success(),
        "the probe failed (it needs root and Debian's iptables, nftables, iproute2 and python3: \
         apt-get install iptables nftables iproute2 python3):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const PROBED: &str =
    "198.51.100.20 open\n198.51.100.30 filtered\n2001:db8::20 open\n2001:db8::30 filtered\n";

#[test]
fn iptables_firewall_admits_exactly_the_allowed_sources_to_postgresql() {
    let (_dir, root) = flake(false);
    let (commands, rules) = firewall(&root, "alpha");
    assert_eq!(
        commands,
        "ip6tables -A nixos-fw -p tcp --dport 5432 -s 2001:db8::20/128 -j nixos-fw-accept\n\
         iptables -A nixos-fw -p tcp --dport 5432 -s 198.51.100.20/32 -j nixos-fw-accept\n"
    );
    assert_eq!(rules, "", "the nftables rules stay empty with iptables");
    assert_eq!(firewall(&root, "beta"), (String::new(), String::new()));

    // The chains NixOS's iptables firewall sets up around extraCommands.
    let setup = "for t in iptables ip6tables; do\n\
           $t -N nixos-fw-accept; $t -A nixos-fw-accept -j ACCEPT; $t -N nixos-fw\n\
           $t -P INPUT DROP\n\
           $t -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
           $t -A INPUT -j nixos-fw\n\
         done";
    assert_eq!(probe_in_namespace(&format!("{setup}\n{commands}")), PROBED);
}

#[test]
fn nftables_firewall_admits_exactly_the_allowed_sources_to_postgresql() {
    let (_dir, root) = flake(true);
    let (commands, rules) = firewall(&root, "alpha");
    assert_eq!(
        commands, "",
        "the nftables firewall refuses extraCommands: the module must set none"
    );
    assert_eq!(
        rules,
        "ip6 saddr 2001:db8::20/128 tcp dport 5432 accept\n\
         ip saddr 198.51.100.20/32 tcp dport 5432 accept\n"
    );
    assert_eq!(firewall(&root, "beta"), (String::new(), String::new()));

    // The shape of NixOS's nftables firewall: extraInputRules go into the
    // input-allow chain, which the input chain jumps to.
    let ruleset = format!(
        "table inet nixos-fw {{\n\
           chain input-allow {{\n{rules}  }}\n\
           chain input {{\n\
             type filter hook input priority filter; policy drop;\n\
             ct state established,related accept\n\
             jump input-allow\n\
           }}\n\
         }}\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ruleset.nft");
    std::fs::write(&file, &ruleset).expect("write ruleset");
    let check = Command::new("nft")
        .args(["-c", "-f"])
        .arg(&file)
        .output()
        .expect("nft runs (apt-get install nftables)");
    assert!(
        check.status.success(),
        "nft -c rejects the rules:\n{}\n{ruleset}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(
        probe_in_namespace(&format!("nft -f {}", file.display())),
        PROBED
    );
}
