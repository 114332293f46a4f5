//! `switchover`'s settings and arguments: unknown keys and bad values in `[dns]`, `[smoke]`,
//! `[switchover]` and `[hosts.X.live] public_address` are refused before anything connects
//! (exit 2, with the key and its line), and so are flags that do not fit `--resume`/`--abort`.

mod common;

use std::path::Path;
use std::process::Output;

/// A copy of the live_pair fixture with `toml` as its nixflip.toml, and key
/// files beside it.
fn flake_with(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    common::copy_tree(
        &common::repo().join("fixtures/clusters/live_pair"),
        &dir.path().join("flake"),
    );
    std::fs::write(dir.path().join("flake/nixflip.toml"), toml).expect("write nixflip.toml");
    std::fs::write(dir.path().join("flake/porkbun.key"), "pk1_x\n").expect("key");
    std::fs::write(dir.path().join("flake/porkbun.secret"), "sk1_x\n").expect("key");
    dir
}

fn switchover(dir: &Path, args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("nixflip")
        .expect("binary builds")
        .env("NO_COLOR", "1")
        .env("XDG_STATE_HOME", dir.join("state"))
        .arg("--flake")
        .arg(dir.join("flake"))
        .arg("switchover")
        .args(args)
        .output()
        .expect("runs")
}

/// A `[dns]` section that is fine, for the cases that break something else.
const DNS: &str = "[dns]\ndomain = \"example.org\"\nname = \"matrix\"\n\
    api_key_file = \"porkbun.key\"\nsecret_api_key_file = \"porkbun.secret\"\n";

/// `nixflip switchover beta --dry-run` with `toml` is exit 2, and stderr
/// names everything in `needles`.
fn refused(toml: &str, needles: &[&str]) {
    let dir = flake_with(toml);
    let out = switchover(dir.path(), &["beta", "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
}

macro_rules! refused {
    ($($name:ident: $toml:expr => [$($needle:expr),* $(,)?];)*) => {$(
        #[test]
        fn $name() {
            refused(&$toml, &[$($needle),*]);
        }
    )*};
}

refused! {
    unknown_dns_key_lists_the_valid_ones: format!("{DNS}ttl = 60\n") => [
        "unknown field `ttl`", "`domain`", "`name`", "`type`", "`max_ttl`", "`api_key_file`",
        "`secret_api_key_file`", "`api_url`", "`command`",
    ];
    unknown_smoke_key_lists_the_valid_ones: "[smoke]\nhost = \"x\"\n" => [
        "unknown field `host`", "`url`", "`federation_tester`", "`timeout`",
    ];
    unknown_switchover_key_lists_the_valid_ones: "[switchover]\nfence_timeout = 3\n" => [
        "unknown field `fence_timeout`", "`catchup_timeout`", "`promote_timeout`",
        "`service_timeout`", "`rejoin_timeout`",
    ];
    dns_type_other_than_a_or_aaaa: format!("{DNS}type = \"CNAME\"\n") => [
        "dns.type: `CNAME` is not a record type switchover changes", "nixflip.toml:6",
    ];
    dns_domain_without_a_dot: "[dns]\ndomain = \"localhost\"\ncommand = [\"x\"]\n" => [
        "dns.domain: `localhost` is not a domain", "nixflip.toml:2",
    ];
    dns_name_with_a_space: "[dns]\ndomain = \"example.org\"\nname = \"a b\"\ncommand = [\"x\"]\n" => [
        "dns.name: `a b` is not a record name",
    ];
    dns_plain_http_to_another_machine: format!("{DNS}api_url = \"http://api.porkbun.com/api/json/v3\"\n") => [
        "dns.api_url: plain http:// is accepted only for this machine",
    ];
    dns_key_file_that_does_not_exist: "[dns]\ndomain = \"example.org\"\napi_key_file = \"nope.key\"\nsecret_api_key_file = \"porkbun.secret\"\n" => [
        "dns.api_key_file:", "nope.key does not exist", "nixflip.toml:3",
    ];
    dns_with_both_keys_and_a_command: format!("{DNS}command = [\"./set-dns\"]\n") => [
        "dns.command and Porkbun's API keys are both set",
    ];
    dns_with_neither_keys_nor_a_command: "[dns]\ndomain = \"example.org\"\n" => [
        "[dns] needs Porkbun's api_key_file and secret_api_key_file, or a command",
    ];
    dns_command_starting_with_a_dash: "[dns]\ndomain = \"example.org\"\ncommand = [\"-x\"]\n" => [
        "dns.command: the first element must be the program to run",
    ];
    smoke_url_that_is_not_http: "[smoke]\nurl = \"ftp://matrix.example.org\"\n" => [
        "smoke.url: it must start with https://", "nixflip.toml:2",
    ];
    federation_tester_without_server_name: "[smoke]\nfederation_tester = \"https://tester.example.org/api/report\"\n" => [
        "smoke.federation_tester: it has no {server_name}",
    ];
    zero_catchup_timeout: "[switchover]\ncatchup_timeout = 0\n" => [
        "switchover.catchup_timeout: 0 seconds leaves no time at all", "nixflip.toml:2",
    ];
    public_address_that_is_not_an_address: "[hosts.beta.live]\npublic_address = \"-oProxyCommand=x\"\n" => [
        "hosts.\"beta\".live.public_address: `-oProxyCommand=x` is not an IP address or host name",
    ];
}

#[test]
fn resume_takes_no_host_and_no_start_flags() {
    let dir = flake_with("");
    let out = switchover(dir.path(), &["beta", "--resume"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume and --abort take no HOST"));
    let out = switchover(dir.path(), &["--resume", "--no-dns", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--no-dns applies to a new switchover; a resumed one goes on as it was started"));
}

#[test]
fn resume_and_abort_with_nothing_in_progress() {
    let dir = flake_with("");
    let out = switchover(dir.path(), &["--resume", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("there is no switchover in progress to resume"));
    let out = switchover(dir.path(), &["--abort"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("there is no switchover in progress to abort"));
    // A flake outside git keeps its journals in the state directory.
    assert!(dir.path().join("state/nixflip/live").is_dir());
}

#[test]
fn switching_over_to_the_primary_is_nothing_to_do() {
    let dir = flake_with("");
    let out = switchover(dir.path(), &["alpha", "--yes"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("alpha is already the primary; nothing to do"));
}

#[test]
fn an_unknown_host_suggests_a_member() {
    let dir = flake_with("");
    let out = switchover(dir.path(), &["betta", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`betta` is not a member") && err.contains("did you mean `beta`?"),
        "{err}"
    );
}
