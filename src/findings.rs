//! Every finding nixflip can report, in one registry: id, severity, title and
//! explanation. The README's tables and `nixflip explain` are made from it.
//!
//! A rule emits a [`Finding`] whose id must be listed here; a test keeps the
//! registry, the README and the ids used in the source equal. Nothing here
//! decides whether a finding fires: that is the rules' job.

use std::path::PathBuf;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One reported problem: which rule, where, what and how to fix it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Byte range in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<(usize, usize)>,
    pub message: String,
    pub help: String,
}

/// Which command family reports a rule; each family has its own README table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `status`, `check`, `promote`, `diff`: the cluster as the flake declares it.
    Cluster,
    /// `secrets check` and promote's secrets gate.
    Secrets,
    /// `status --live`: the cluster as it runs, held against the flake.
    Live,
}

impl Family {
    pub fn commands(self) -> &'static str {
        match self {
            Family::Cluster => "nixflip check, status, promote, add-host, diff",
            Family::Secrets => "nixflip secrets check, and the secrets gate of promote",
            Family::Live => "nixflip status --live",
        }
    }
}

/// A registered rule.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub id: &'static str,
    pub family: Family,
    pub severity: Severity,
    /// The README table's severity cell when it is not just the severity.
    pub severity_text: Option<&'static str>,
    /// One line: what is wrong.
    pub title: &'static str,
    /// Why it matters and how to fix it, for `nixflip explain`.
    pub explanation: &'static str,
}

impl Rule {
    pub fn severity_cell(&self) -> &'static str {
        self.severity_text.unwrap_or(self.severity.as_str())
    }
}

const fn rule(
    id: &'static str,
    family: Family,
    severity: Severity,
    title: &'static str,
    explanation: &'static str,
) -> Rule {
    Rule {
        id,
        family,
        severity,
        severity_text: None,
        title,
        explanation,
    }
}

use Family::{Cluster, Live, Secrets};
use Severity::{Error, Warning};

pub const RULES: &[Rule] = &[
    rule(
        "NF001",
        Cluster,
        Error,
        "not exactly one primary",
        "Exactly one member may have role = \"primary\". With none, nothing accepts writes; with \
         two, both run Synapse and accept writes on diverging databases (split brain), which no \
         replication can merge afterwards. Fix it with `nixflip promote HOST`, which makes HOST the \
         primary and every other member a standby in one consistent edit.",
    ),
    rule(
        "NF002",
        Cluster,
        Error,
        "a standby's `peerHost` is not the primary's address",
        "A standby streams WAL from `replication.peerHost`. When that is not the primary's address \
         (it points at itself, at the demoted host, or at nothing), the standby silently stops \
         replicating and falls behind. Set it to the primary's address; `nixflip promote` keeps it \
         right on every member.",
    ),
    rule(
        "NF003",
        Cluster,
        Error,
        "the primary's `allowedSourceIPs` do not cover a standby (CIDR containment)",
        "The primary gets one `hostssl replication` pg_hba line and one firewall rule per entry of \
         `replication.allowedSourceIPs`. A standby whose address no entry contains cannot connect, \
         and replication stops without an error on the primary. Add the standby's address (/32 for \
         IPv4, /128 for IPv6).",
    ),
    rule(
        "NF004",
        Cluster,
        Error,
        "Synapse effectively on for a standby, or off for the primary",
        "Synapse must run on the primary only: on a standby it would write to a read-only replica, \
         and a primary without it serves nobody. The effective value is `overrideEnableSynapse` \
         when it is set, else role == \"primary\". Remove the override, or make it match the role.",
    ),
    rule(
        "NF005",
        Cluster,
        Error,
        "Synapse runs where `secretsFile` is not set",
        "Wherever Synapse runs it needs the shared secrets in `secretsFile`; without them it does \
         not start (or starts with different secrets from the other members). Set `secretsFile` on \
         that host; `nixflip promote` copies the old primary's expression when the new primary \
         lacks one.",
    ),
    rule(
        "NF006",
        Cluster,
        Error,
        "a `shared` value differs between members",
        "Values listed in `[cluster] shared` (by default `matrixDomain` and the media bucket) must \
         be equal on every member: a promoted standby with another server name or bucket is a \
         different homeserver. Make the values equal.",
    ),
    rule(
        "NF007",
        Cluster,
        Error,
        "`role` is not `\"primary\"`/`\"standby\"`, or not a literal",
        "nixflip reads and rewrites `role` as a literal string (optionally wrapped in lib.mkForce, \
         mkDefault or mkOverride). Any other value, or an expression it cannot read (a variable, \
         an `if`), cannot be checked or flipped. Write role = \"primary\" or role = \"standby\".",
    ),
    rule(
        "NF008",
        Cluster,
        Error,
        "a member's address cannot be inferred, or `nixflip.toml` and `publicIp` disagree",
        "A member's address comes from `[hosts.X] address`, its `publicIp`, or (in a two-node \
         cluster) the other member's `peerHost`. Without an address nixflip cannot check \
         replication or plan a flip. Set `publicIp` in the host file or `address` in nixflip.toml, \
         and make the two agree when both are set.",
    ),
    rule(
        "NF009",
        Cluster,
        Error,
        "an `allowedSourceIPs` entry is not an IP address or CIDR (e.g. a DNS name)",
        "Each entry becomes a pg_hba address and a firewall source, and both need an IP address \
         or CIDR; a DNS name evaluates but admits nobody. Write the address, e.g. 198.51.100.20/32.",
    ),
    rule(
        "NF010",
        Cluster,
        Error,
        "a `.nix` file of the cluster does not parse (a finding with `--format json` or `github`; exit 2)",
        "nixflip judges no cluster it cannot read: a host file (or a file it imports) with a syntax \
         error stops `check`, `status` and `promote` with exit 2. With `check --format json` the \
         error is also a finding on stdout, and with `--format github` an annotation at the line, \
         so a tool or a CI log shows where it is. Fix the syntax; `nix-instantiate --parse FILE` \
         shows Nix's own message.",
    ),
    rule(
        "NF101",
        Cluster,
        Warning,
        "a host's `allowedSourceIPs` lists its own address",
        "A host never replicates from itself, so admitting its own address only widens pg_hba. \
         List the other members' addresses.",
    ),
    rule(
        "NF102",
        Cluster,
        Warning,
        "a URL or `ADDR:PORT` outside the cluster options points at a standby",
        "Synapse is off on a standby, so a proxy, backend or client setting that still points at \
         the demoted host's address serves nothing after a flip. Point it at the primary, or at a \
         name that follows the primary (DNS). A host's own address and CIDRs in firewall rules \
         are not findings.",
    ),
    rule(
        "NF104",
        Cluster,
        Warning,
        "a cluster option of one host is defined in several places (the winner is named)",
        "The same option defined twice (two files, or mkForce in one and a plain value in another) \
         is merged by priority: only the winning definition counts, and editing the other changes \
         nothing. nixflip edits the winner and `nix eval` proves the result; keep one definition to \
         avoid surprises.",
    ),
    rule(
        "NF105",
        Cluster,
        Warning,
        "(`--eval`) a field is written as one literal but evaluates to another: another definition wins",
        "`check --eval` compares what the files say with what Nix computes. A difference means a \
         definition nixflip cannot see statically (a mkForce in another module, a computed value) \
         wins, so editing the literal would not change the system. Find the other definition with \
         `nix eval` or remove it.",
    ),
    rule(
        "NF106",
        Cluster,
        Warning,
        "hand-written replication admission was left behind: another member's firewall rules (or pg_hba lines) outside the cluster options admit a member, but the primary's admit no standby",
        "Host files often admit their peer by address outside the cluster options (an nftables or \
         iptables rule for the PostgreSQL port, a `hostssl replication` pg_hba line). A flip that \
         rewrites only the cluster options leaves those on the old primary, which now admits the \
         new primary, while the new primary admits nobody: replication cannot connect. Give the \
         primary the same rule for each standby (`nixflip promote HOST --carry-address-rules` \
         carries them on a flip), then remove the old one if its host no longer needs it.",
    ),
    rule(
        "NF107",
        Cluster,
        Warning,
        "a firewall rule for the PostgreSQL port, or a pg_hba line, outside the cluster options admits an address that is no member",
        "An address in such a rule that no member has is usually a former member, and a network \
         admits more than the cluster. Remove what names a former member. An operator's own \
         network there is deliberate: keep it; nixflip only reports it, and never carries or \
         removes it on a flip. Loopback is local access and not reported.",
    ),
    rule(
        "NF108",
        Cluster,
        Warning,
        "a member imports `self.nixosModules.X` and nixflip cannot tell which file that is (settled by `[modules] X = \"path\"`)",
        "nixflip follows `self.nixosModules.X` (and `inputs.self.nixosModules.X`) imports to the \
         module's file, as flake.nix defines it: an attribute set of paths, or a set built from a \
         directory of modules named after their files. When it cannot tell which file X is (an \
         inline module, a name two files would give, a set it does not evaluate), the cluster \
         options that module sets are not part of the member's model, and a shared value there \
         goes unchecked. Name the file in nixflip.toml: `[modules] X = \"path/to/module.nix\"`.",
    ),
    rule(
        "NF109",
        Cluster,
        Warning,
        "no `nixosConfigurations` entry of `flake.nix` builds a member's file, or several do (settled by `[hosts.X] attr`)",
        "`rebuild` and `add-host` need the entry that builds each member: nixflip finds it by \
         following the entries (helpers, `import ./dir { … }`, `nixosSystem { modules = [ … ]; }`) \
         to the host file, else by the name `NAME` or `NAME|SYSTEM`. An entry computed in a way \
         nixflip does not follow, or two entries building the same file, leave it open. Pin it in \
         nixflip.toml: `[hosts.X] attr = \"…\"`.",
    ),
    Rule {
        severity_text: Some(
            "error (warning when the address is used as a network)",
        ),
        ..rule(
            "NF110",
            Cluster,
            Error,
            "(`diff`) the address of a member the change removes is still used (a URL or `ADDR:PORT`, a `peerHost`, an `allowedSourceIPs` entry)",
            "A change that removes a member but leaves its address in a proxy URL, a standby's \
             `peerHost` or an upstream points them at a host that is no longer part of the \
             cluster: requests and replication go nowhere (or to whoever gets the address next). \
             A network such as an `allowedSourceIPs` entry still admits that address. Point the \
             reference at a member (the primary), or at a name that follows the primary (DNS), or \
             remove it.",
        )
    },
    rule(
        "NF201",
        Secrets,
        Error,
        "a `sops.secrets` declaration's key is not in its SOPS file",
        "sops-nix fails activation when a declared secret's key (default: its name, with `/` \
         separating nested keys) is not in the SOPS file. Add the key with `sops FILE`, or fix the \
         declaration's `key`/`sopsFile`.",
    ),
    rule(
        "NF202",
        Secrets,
        Error,
        "a secret the host needs (its role's, or one its own cluster options use) is not declared on it",
        "A secret a role needs (`[profile.ROLE] secrets`, by default what `secretsFile`, \
         `signingKeyFile` and `replication.passwordFile` use) must be declared in \
         `sops.secrets` on every host that may take that role, or the promoted host starts \
         without it. Copy the declaration from the host that has it.",
    ),
    rule(
        "NF203",
        Secrets,
        Error,
        "a member is not a recipient of a SOPS file it reads",
        "A host decrypts its secrets at activation with its own age key (or its ssh host key \
         converted to age). When it is not among the file's recipients, activation fails. Add its \
         key to the `.sops.yaml` rule and run `sops updatekeys FILE`.",
    ),
    Rule {
        severity_text: Some("error (warning: no rule matches the file)"),
        ..rule(
            "NF204",
            Secrets,
            Error,
            "a SOPS file's recipients differ from the first matching `.sops.yaml` rule",
            "`.sops.yaml` says who should be able to read each file; a file whose recipients \
             differ was not re-encrypted after the rule changed (a forgotten `sops updatekeys`). \
             Run `sops updatekeys FILE`, or fix the rule.",
        )
    },
    Rule {
        severity_text: Some(
            "error (warning for a post-quantum or plugin recipient next to usable ones)",
        ),
        ..rule(
            "NF205",
            Secrets,
            Error,
            "unsupported SOPS feature: several key groups (Shamir), no age recipient (PGP or KMS only)",
            "nixflip checks recipients and decrypts with age only. Files split into Shamir key \
             groups or encrypted for PGP/KMS only cannot be checked; re-encrypt them for age \
             recipients, or accept that nixflip does not check them.",
        )
    },
    rule(
        "NF206",
        Secrets,
        Warning,
        "not checkable statically: a member's age key is unknown, a `sopsFile`/`key`/`sops.secrets` nixflip cannot resolve, a declaration whose `sops.defaultSopsFile` it cannot see",
        "nixflip reads SOPS declarations without evaluating. A value it cannot resolve (an \
         expression that does not lead to the flake root, a default set by a module it does not \
         read) or a member whose key it does not know leaves that check undone; it never refuses \
         a promote on its own. Give the key in nixflip.toml (`[hosts.X] age` or `ssh_host_key`), \
         name the flake root's other names (`[flake] root_names`), or run with `--eval`, which \
         reads every file and key from Nix's own answer.",
    ),
    rule(
        "NF207",
        Secrets,
        Error,
        "a SOPS file (or `.sops.yaml`) is missing or unreadable, or (with `--eval`) a declaration has no file in Nix's answer",
        "A declaration points at a file that does not exist or does not parse as SOPS YAML/JSON, \
         or, as Nix evaluates it, has neither `sopsFile` nor a `sops.defaultSopsFile`. Activation \
         would fail. Fix the path, or set `sops.defaultSopsFile`.",
    ),
    rule(
        "NF208",
        Secrets,
        Error,
        "(`--decrypt`) the data key does not unwrap with the identity, a value does not decrypt, or the MAC does not verify",
        "With an age identity nixflip decrypts every value and verifies the file's MAC, as sops \
         does. A failure means the identity is not a recipient, or the file was edited without \
         sops (its MAC no longer matches). Re-encrypt with `sops`, or use the right identity.",
    ),
    rule(
        "NF103",
        Live,
        Error,
        "a member's live role (PostgreSQL in recovery or not) differs from its declared role",
        "`pg_is_in_recovery()` says what a member runs: a primary (false) or a standby (true). \
         When that differs from the role the flake declares, the next `nixos-rebuild` applies \
         the declared role to a database that runs the other one: a promoted standby declared \
         standby gets `standby.signal` written into it and restarts as a standby of a primary it \
         no longer follows; a demoted primary declared primary starts Synapse on a read-only \
         replica. Make the flake say what runs (`nixflip promote HOST` for the live primary), or \
         make the cluster follow the flake, before the next rebuild.",
    ),
    rule(
        "NF301",
        Live,
        Error,
        "live split brain: more than one member's PostgreSQL is out of recovery",
        "Two members out of recovery both accept writes, on databases that diverge from the \
         moment the second was promoted; no replication can merge them afterwards. Keep one \
         primary: stop Synapse and PostgreSQL on the others before anything writes to them, then \
         make them standbys of the one you keep (the writes they took are lost to the cluster \
         unless you copy them over by hand).",
    ),
    rule(
        "NF302",
        Live,
        Error,
        "a member cannot be reached over ssh (exit 3; the others are still reported)",
        "nixflip reads each member over ssh as `[hosts.X] target` (default root@ADDRESS), with \
         BatchMode (it never prompts) and strict host key checking (it never learns a key). A \
         host that is down, a key that is not loaded, a port that is closed, or a host key that \
         is unknown or changed makes the member unreachable; the message is ssh's own. Check \
         that `ssh -o BatchMode=yes TARGET true` works from the same machine, and add a verified \
         host key to ~/.ssh/known_hosts or to `[live] known_hosts`.",
    ),
    rule(
        "NF303",
        Live,
        Error,
        "a member's PostgreSQL does not answer",
        "psql, run on the member as the PostgreSQL superuser over the Unix socket, got no answer: \
         the server is stopped, starting, or not where `[hosts.X.live] pg_port`, `pg_socket_dir` \
         and `pg_user` say. A primary that does not answer takes no writes; a standby that does \
         not answer falls behind while the primary keeps WAL for it. Read `systemctl status \
         postgresql` and PostgreSQL's log on the host.",
    ),
    rule(
        "NF304",
        Live,
        Error,
        "a standby is not streaming from the primary",
        "A declared standby must stream WAL from the primary (its WAL receiver `streaming`). One \
         that does not falls further behind with every write, and a failover to it loses what it \
         never received. When the standby itself cannot be asked, the primary's \
         `pg_stat_replication` decides: no streaming connection from the standby's address. \
         Typical causes: PostgreSQL stopped on the standby, a wrong `primary_conninfo`, a \
         replication password or pg_hba line that does not admit it, a firewall.",
    ),
    rule(
        "NF305",
        Live,
        Error,
        "a standby streams from an address that is not the declared primary's",
        "The standby's WAL receiver is connected to a host other than the one the flake declares \
         primary: it follows an old primary, or the flake names the primary at an address it does \
         not have. Either way a switchover or failover planned from the flake starts from a \
         wrong picture. Rebuild the standby so that it follows the declared primary, or fix the \
         flake.",
    ),
    rule(
        "NF306",
        Live,
        Error,
        "a standby lags behind the primary by more than `[live] max_lag_bytes` or `max_lag_seconds`",
        "Bytes: the primary's WAL position minus the standby's replay position, as the primary \
         reports it. Seconds: the larger of the primary's `replay_lag` and, while received WAL \
         waits to be replayed, the time since the standby's last replayed transaction. A standby \
         far behind would lose that much on a failover, and a switchover has to wait for it. \
         Look for paused replay (`SELECT pg_wal_replay_resume();`), long queries holding replay \
         back, a slow disk or network.",
    ),
    rule(
        "NF307",
        Live,
        Error,
        "a replication slot (active or not) retains more WAL than `[live] max_slot_retained_bytes`",
        "A replication slot keeps every WAL segment from its `restart_lsn` on, until its consumer \
         has received it. When the consumer stops (a standby that died or was removed), WAL piles \
         up on the primary until its disk is full and PostgreSQL stops: the incident this check \
         exists for. Bring the slot's standby back so that it catches up, or, if it is gone for \
         good, drop the slot: `SELECT pg_drop_replication_slot('NAME');`.",
    ),
    rule(
        "NF308",
        Live,
        Warning,
        "a replication slot is inactive: nothing consumes it, and the WAL it holds piles up",
        "An inactive slot holds WAL for a consumer that is not connected. Harmless for a short \
         restart of its standby; dangerous when the standby is gone, because the retained WAL \
         grows with every write (see NF307). Start the standby that uses it, or drop the slot.",
    ),
    rule(
        "NF309",
        Live,
        Error,
        "the filesystem of a data directory has less free space than `[live] min_free_percent`",
        "PostgreSQL stops accepting writes (and a primary stops altogether) when the filesystem \
         holding its data directory and WAL is full. The free space counted is what an \
         unprivileged user may use, as PostgreSQL runs as one. Free space, grow the filesystem, \
         or look for a replication slot retaining WAL (NF307).",
    ),
    rule(
        "NF310",
        Live,
        Error,
        "Synapse runs on a standby",
        "On a standby the database is a read-only replica: Synapse there fails its writes, and \
         two Synapses for one server name split the federation's view of the server. The \
         cluster module keeps Synapse off on standbys; one running there was started by hand or \
         by an override. Stop it (`systemctl stop matrix-synapse`).",
    ),
    rule(
        "NF311",
        Live,
        Error,
        "Synapse is not running, or not answering `/_matrix/client/versions`, on the primary",
        "The primary serves the homeserver: with its Synapse unit not active, or its listener \
         (`[hosts.X.live] synapse_url`, as the host itself reaches it) not answering 200 with a \
         `versions` list, nobody can use the server. Start it and read its log.",
    ),
];

/// The registered rule with this id (case-insensitive).
pub fn lookup(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id.eq_ignore_ascii_case(id))
}

/// The README table of one family: `| id | severity | meaning |` rows.
pub fn markdown_table(family: Family) -> String {
    let mut out = String::from("| id | severity | meaning |\n| --- | --- | --- |\n");
    for r in RULES.iter().filter(|r| r.family == family) {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            r.id,
            r.severity_cell(),
            r.title
        ));
    }
    out
}

/// `nixflip explain ID`: the rule's title, severity, who reports it and why
/// it matters, wrapped for a terminal.
pub fn explain(rule: &Rule) -> String {
    let mut out = format!("{} ({}): {}\n", rule.id, rule.severity_cell(), rule.title);
    out.push_str(&format!("reported by: {}\n\n", rule.family.commands()));
    out.push_str(&wrap(rule.explanation, 78));
    out.push('\n');
    out
}

/// Greedy word wrap; the explanations are prose without long tokens.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "{} registered twice", r.id);
            assert!(
                r.id.len() == 5 && r.id.starts_with("NF") && r.id[2..].parse::<u16>().is_ok(),
                "{} is not NFnnn",
                r.id
            );
        }
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup("nf003").map(|r| r.id), Some("NF003"));
        assert!(lookup("NF999").is_none());
    }
}
