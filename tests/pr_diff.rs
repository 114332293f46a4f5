//! `nixflip diff` end to end: a git repository built in the test (the example
//! flake, then a promote, a broken flip, a new standby and an unrelated
//! change, each its own commit), compared through git objects by the real
//! binary; text, Markdown and JSON snapshotted for each pair.

mod common;
mod review_support;

use review_support::{git, scrub, Fixture, BFS, HECTIC};

/// Run `nixflip diff` and return (exit code, stdout, stderr).
fn diff(f: &Fixture, args: &[&str]) -> (i32, String, String) {
    let out = f
        .nixflip()
        .arg("diff")
        .args(args)
        .output()
        .expect("nixflip runs");
    (
        out.status.code().unwrap_or(-1),
        scrub(f, &String::from_utf8_lossy(&out.stdout)),
        scrub(f, &String::from_utf8_lossy(&out.stderr)),
    )
}

/// Snapshot the three formats of `base` → `head` and return the exit code.
fn snapshot_pair(f: &Fixture, base: &str, head: &str) -> i32 {
    let mut codes = Vec::new();
    for format in ["text", "markdown", "json"] {
        let (code, out, err) = diff(f, &["--base", base, "--head", head, "--format", format]);
        assert!(err.is_empty(), "stderr of {base}..{head}/{format}: {err}");
        insta::assert_snapshot!(format!("diff_{base}_{head}_{format}"), out);
        codes.push(code);
    }
    assert!(codes.windows(2).all(|w| w[0] == w[1]), "{codes:?}");
    codes[0]
}

#[test]
fn every_pair_of_the_standard_history() {
    let f = Fixture::standard("");
    assert_eq!(snapshot_pair(&f, "base", "promote"), 0, "a clean flip");
    assert_eq!(snapshot_pair(&f, "base", "broken"), 1, "two primaries");
    assert_eq!(snapshot_pair(&f, "base", "standby"), 0, "a new standby");
    assert_eq!(snapshot_pair(&f, "base", "unrelated"), 0, "nothing to say");
    // Fixing the broken flip: its findings are resolved.
    assert_eq!(snapshot_pair(&f, "broken", "promote"), 0, "fixed");
    // Sibling commits: undoing the flip and adding a member, in one summary.
    assert_eq!(
        snapshot_pair(&f, "promote", "standby"),
        0,
        "two things at once"
    );
}

#[test]
fn promote_then_back_is_a_flip_the_other_way() {
    let f = Fixture::standard("");
    let (code, out, _) = diff(&f, &["--base", "promote", "--head", "base"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("promotes hectic-lab; bfs.poland.xray becomes standby"),
        "{out}"
    );
}

#[test]
fn broken_flip_marks_its_findings_new_and_fixing_it_resolves_them() {
    let f = Fixture::standard("");
    let json = |base: &str, head: &str| -> serde_json::Value {
        let (_, out, _) = diff(&f, &["--base", base, "--head", head, "--format", "json"]);
        serde_json::from_str(&out).expect("JSON")
    };
    let broken = json("base", "broken");
    let ids: Vec<(&str, &str)> = broken["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or_default(),
                f["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(ids.contains(&("NF001", "new")), "{ids:?}");
    assert!(ids.iter().all(|(_, s)| *s == "new"), "{ids:?}");
    // From the broken state to the clean flip: NF001 is resolved.
    let fixed = json("broken", "promote");
    assert_eq!(fixed["errors"], 0);
    let resolved: Vec<&str> = fixed["resolved"]
        .as_array()
        .expect("resolved")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(resolved.contains(&"NF001"), "{resolved:?}");
}

#[test]
fn work_tree_is_the_default_head() {
    let f = Fixture::standard("");
    f.edit_promote();
    let (code, worktree, _) = diff(&f, &["--base", "base", "--format", "markdown"]);
    assert_eq!(code, 0);
    let (_, committed, _) = diff(
        &f,
        &[
            "--base", "base", "--head", "promote", "--format", "markdown",
        ],
    );
    // Same comparison, only the head's name differs.
    assert_eq!(
        worktree.replace("`work tree`", "`promote`"),
        committed,
        "work tree:\n{worktree}"
    );
    // An untracked new file in the work tree counts too.
    f.write("notes.txt", "remember the DNS\n");
    let (_, out, _) = diff(&f, &["--base", "base", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let paths: Vec<&str> = json["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(paths, [BFS, HECTIC, "notes.txt"]);
}

#[test]
fn flake_in_a_subdirectory_of_the_repository() {
    let f = Fixture::standard("infra/cluster");
    let (code, out, err) = diff(
        &f,
        &["--base", "base", "--head", "broken", "--format", "markdown"],
    );
    assert_eq!(code, 1, "{err}");
    // Paths are shown from the repository root, as the PR shows them.
    assert!(
        out.contains("`infra/cluster/nixos/system/bfs.poland.xray/bfs.poland.xray.nix:"),
        "{out}"
    );
    assert!(
        out.contains("+++ b/infra/cluster/nixos/system/bfs.poland.xray/"),
        "{out}"
    );
    // A change outside the flake directory is not part of its diff.
    f.reset_to("promote");
    std::fs::write(f.repo.join("TOP.md"), "outside\n").expect("write");
    git(&f.repo, &["add", "-A"]);
    git(&f.repo, &["commit", "-qm", "outside"]);
    let (code, out, _) = diff(&f, &["--base", "promote", "--head", "HEAD"]);
    assert_eq!(code, 0);
    assert!(out.contains("touches no cluster member"), "{out}");
    assert!(!out.contains("TOP.md"), "{out}");
}

#[test]
fn unknown_revision_is_bad_input() {
    let f = Fixture::standard("");
    for args in [
        &["--base", "no-such-branch"][..],
        &["--base", "base", "--head", "no-such-branch"],
        &["--base=--output=x"],
    ] {
        let (code, out, err) = diff(&f, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty());
        assert!(err.contains("unknown revision"), "{err}");
    }
    let (_, _, err) = diff(&f, &["--base", "no-such-branch"]);
    insta::assert_snapshot!("diff_unknown_revision", err);
}

#[test]
fn outside_a_git_repository_is_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flake = dir.path().join("flake");
    std::fs::create_dir_all(&flake).expect("mkdir");
    std::fs::copy(
        common::repo().join("examples/two-node/flake.nix"),
        flake.join("flake.nix"),
    )
    .expect("copy");
    let out = assert_cmd::Command::cargo_bin("nixflip")
        .expect("binary")
        .current_dir(&flake)
        .env("NO_COLOR", "1")
        .env("GIT_CEILING_DIRECTORIES", dir.path())
        .args(["diff", "--base", "main"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not inside a git repository"));
}

#[test]
fn nixflip_toml_of_each_revision_applies() {
    let f = Fixture::standard("");
    // The head pins bfs's address differently: the diff shows the address
    // change and the findings it causes come from the head's config.
    f.reset_to("promote");
    f.write(
        "nixflip.toml",
        "[hosts.\"bfs.poland.xray\"]\naddress = \"91.198.166.99\"\n",
    );
    f.commit("pinned", "pin an address");
    let (code, out, _) = diff(
        &f,
        &["--base", "promote", "--head", "pinned", "--format", "json"],
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let bfs = &json["hosts"][0];
    assert_eq!(bfs["host"], "bfs.poland.xray");
    assert_eq!(bfs["address"]["before"], "91.198.166.181");
    assert_eq!(bfs["address"]["after"], "91.198.166.99");
    assert_eq!(code, 1, "hectic-lab's peerHost no longer names the primary");
    // A broken config at a revision names that revision.
    f.write("nixflip.toml", "[cluster]\nnope = 1\n");
    f.commit("badconfig", "bad config");
    let (code, _, err) = diff(&f, &["--base", "promote", "--head", "badconfig"]);
    assert_eq!(code, 2);
    assert!(err.contains("revision `badconfig`"), "{err}");
    assert!(err.contains("badconfig:nixflip.toml"), "{err}");
}

#[test]
fn a_very_large_diff_is_cut_below_the_comment_limit() {
    let f = Fixture::standard("");
    f.reset_to("promote");
    // A generated module and a data file, each far larger than a comment.
    let mut big = String::from("{ ... }: {\n");
    for i in 0..6000 {
        big.push_str(&format!(
            "  services.generated.item{i} = \"value number {i}\";\n"
        ));
    }
    big.push_str("}\n");
    f.write("nixos/module/generated.nix", &big);
    f.write("data/hosts.txt", &"one line of data\n".repeat(9000));
    for i in 0..40 {
        f.write(&format!("docs/page{i:02}.md"), &format!("page {i}\n"));
    }
    f.commit("huge", "huge");
    let (code, out, _) = diff(
        &f,
        &["--base", "base", "--head", "huge", "--format", "markdown"],
    );
    assert_eq!(code, 0);
    assert!(
        out.chars().count() < 65_536,
        "{} chars",
        out.chars().count()
    );
    assert!(out.starts_with("<!-- nixflip:diff -->\n"));
    assert!(out.contains("### nixflip: promotes bfs.poland.xray; hectic-lab becomes standby"));
    // The members' diffs come first and are kept whole.
    assert!(out
        .contains("+  hectic.generic.matrix-cluster.role                         = \"primary\";"));
    assert!(out.contains("GitHub's 65,536-character limit"), "{out}");
    assert!(out.contains("is cut short"), "{}", &out[out.len() - 2000..]);
    assert!(out.contains("are left out"), "{}", &out[out.len() - 2000..]);
    // Every opened block is closed.
    assert_eq!(
        out.matches("<details>").count(),
        out.matches("</details>").count()
    );
    let tail = &out[out.rfind("</details>").unwrap_or(0)..];
    insta::assert_snapshot!("diff_huge_markdown_tail", tail);
}

#[test]
fn editing_a_member_file_outside_the_cluster_options_is_said() {
    let f = Fixture::standard("");
    f.replace(
        HECTIC,
        "allowedTCPPorts = [ 22 80 443 8448 ];",
        "allowedTCPPorts = [ 22 80 443 ];",
    );
    let (code, out, _) = diff(&f, &["--base", "base", "--format", "json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        json["summary"],
        "edits the files of hectic-lab without changing a cluster option"
    );
    assert_eq!(json["touchesCluster"], true);
    assert_eq!(json["hosts"][1]["status"], "edited");
    assert_eq!(json["hosts"][1]["files"][0], HECTIC);
}
