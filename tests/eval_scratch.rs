//! The scratch flake with the real `nix`: Nix evaluates the copy with the
//! rewrite in it, the copy links files without ever writing through a link,
//! and the janitor's sweep removes scratch copies and nothing else.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nixflip::eval::{self, Flake, Scratch};
use nixflip::nixedit::AttrPath;

fn example() -> std::path::PathBuf {
    common::repo().join("examples/two-node")
}

#[test]
fn nix_evaluates_the_scratch_copy_with_the_rewrite_in_it() {
    let scratch = Scratch::copy_of(&example()).expect("scratch copy");
    // The standby is a primary in the copy only.
    let host = Path::new("nixos/system/bfs.poland.xray/bfs.poland.xray.nix");
    let text = std::fs::read_to_string(example().join(host)).expect("host file");
    let flipped: String = text
        .lines()
        .map(|l| {
            if l.contains("matrix-cluster.role") {
                l.replace("\"standby\"", "\"primary\"")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_ne!(flipped, text, "the host file sets the role");
    scratch.write(host, &flipped).expect("write");
    let option: AttrPath = "hectic.generic.matrix-cluster".parse().expect("option");
    let hosts = [
        ("hectic-lab".to_string(), None),
        ("bfs.poland.xray".to_string(), None),
    ];
    let answers = eval::start(
        Flake::Scratch(&scratch),
        &option,
        &hosts,
        &common::nix_overrides(),
    )
    .expect("start")
    .finish()
    .expect("nix eval of the scratch flake");
    let roles: Vec<(&str, &str)> = answers
        .iter()
        .map(|(host, (_, fields))| (host.as_str(), fields.role.as_str()))
        .collect();
    assert_eq!(
        roles,
        [("bfs.poland.xray", "primary"), ("hectic-lab", "primary")]
    );
}

#[test]
fn the_scratch_copy_links_files_and_never_writes_through_a_link() {
    let user = tempfile::tempdir().expect("temp dir");
    common::copy_tree(&example(), user.path());
    std::fs::write(user.path().join("flake.lock"), "{ \"version\": 7 }\n").expect("lock");
    let host = Path::new("nixos/system/hectic-lab/hectic-lab.nix");
    let before = std::fs::read(user.path().join(host)).expect("host file");

    let scratch = Scratch::copy_of(user.path()).expect("scratch copy");
    let inode = |root: &Path, rel: &str| std::fs::metadata(root.join(rel)).expect("stat").ino();
    // Same file system (both under the temp dir): unchanged files are links.
    let module = "nixos/module/matrix-cluster.nix";
    assert_eq!(inode(user.path(), module), inode(scratch.flake(), module));
    // Nix may rewrite the lock file, so it is a copy.
    assert_ne!(
        inode(user.path(), "flake.lock"),
        inode(scratch.flake(), "flake.lock")
    );
    assert_eq!(
        std::fs::read(scratch.flake().join("flake.lock")).expect("lock copy"),
        b"{ \"version\": 7 }\n"
    );

    scratch.write(host, "# rewritten\n").expect("write");
    assert_eq!(
        std::fs::read(user.path().join(host)).expect("host file"),
        before,
        "the user's file is untouched"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.flake().join(host)).expect("scratch file"),
        "# rewritten\n"
    );
    drop(scratch);
    assert_eq!(
        std::fs::read(user.path().join(host)).expect("host file"),
        before,
        "removing the scratch copy leaves the user's file"
    );
}

/// The janitor's sweep removes scratch copies and nothing else.
#[test]
fn the_sweep_removes_a_scratch_copy_and_nothing_else() {
    let scratch = Scratch::copy_of(&example()).expect("scratch copy");
    let dir = scratch.dir().to_path_buf();
    assert_eq!(eval::sweep(&dir), 0);
    assert!(!dir.exists(), "the scratch directory is gone");
    let other = tempfile::tempdir().expect("temp dir");
    assert_eq!(eval::sweep(other.path()), 2);
    assert!(other.path().is_dir());
}
