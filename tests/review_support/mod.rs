//! A git repository built inside a test from a copy of `examples/two-node`,
//! with one tagged commit per kind of change the PR bot must explain.
#![allow(dead_code)]

use std::path::PathBuf;

use assert_cmd::Command;

pub const HECTIC: &str = "nixos/system/hectic-lab/hectic-lab.nix";
pub const BFS: &str = "nixos/system/bfs.poland.xray/bfs.poland.xray.nix";
pub const TOKYO: &str = "nixos/system/tokyo/tokyo.nix";

/// The example repository in a temp dir; the flake sits at `repo/<sub>`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub flake: PathBuf,
}

pub use crate::common::git;

impl Fixture {
    /// The example flake committed as `base`; `sub` is the flake's directory
    /// inside the repository ("" for the top).
    pub fn new(sub: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        let flake = if sub.is_empty() {
            repo.clone()
        } else {
            repo.join(sub)
        };
        crate::common::copy_flake("examples/two-node", &flake);
        git(&repo, &["init", "-q"]);
        let fixture = Fixture { dir, repo, flake };
        fixture.commit("base", "the example flake");
        fixture
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.flake.join(rel)).expect("read")
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.flake.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    /// Replace exactly one occurrence of `from` in `rel`.
    pub fn replace(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert_eq!(text.matches(from).count(), 1, "{from:?} in {rel}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    /// Commit everything and tag it.
    pub fn commit(&self, tag: &str, message: &str) {
        git(&self.repo, &["add", "-A"]);
        git(&self.repo, &["commit", "-qm", message]);
        git(&self.repo, &["tag", tag]);
    }

    /// Back to the base revision's files (for the next change).
    pub fn reset_to(&self, rev: &str) {
        git(&self.repo, &["checkout", "-q", "--detach", rev]);
    }

    /// The flip nixflip itself would write: bfs.poland.xray primary,
    /// hectic-lab standby (the other fields are already right).
    pub fn edit_promote(&self) {
        self.replace(
            HECTIC,
            "role           = \"primary\";",
            "role           = \"standby\";",
        );
        self.replace(
            BFS,
            "matrix-cluster.role                         = \"standby\";",
            "matrix-cluster.role                         = \"primary\";",
        );
    }

    /// A hand edit that forgets the old primary: two primaries.
    pub fn edit_broken_flip(&self) {
        self.replace(
            BFS,
            "matrix-cluster.role                         = \"standby\";",
            "matrix-cluster.role                         = \"primary\";",
        );
    }

    /// A third member, tokyo, as a standby of hectic-lab; the primary lets it
    /// replicate, and bfs gets a publicIp (with three members nixflip cannot
    /// infer a standby's address from peers).
    pub fn edit_new_standby(&self) {
        let bfs = self.read(BFS);
        let tokyo = bfs
            .replace("bfs.poland.xray: a STANDBY", "tokyo: a new STANDBY")
            .replace("\"bfs-poland-xray\"", "\"tokyo\"")
            .replace(
                "  hectic.generic.matrix-cluster.replication.allowedSourceIPs",
                "  hectic.generic.matrix-cluster.publicIp                     = \"203.0.113.7\";\n  hectic.generic.matrix-cluster.replication.allowedSourceIPs",
            );
        self.write(TOKYO, &tokyo);
        self.replace(
            BFS,
            "  hectic.generic.matrix-cluster.replication.allowedSourceIPs",
            "  hectic.generic.matrix-cluster.publicIp                     = \"91.198.166.181\";\n  hectic.generic.matrix-cluster.replication.allowedSourceIPs",
        );
        self.replace(
            HECTIC,
            "allowedSourceIPs = [ \"91.198.166.181/32\" ];",
            "allowedSourceIPs = [ \"91.198.166.181/32\" \"203.0.113.7/32\" ];",
        );
        self.replace(
            "flake.nix",
            "      };\n    };\n}",
            "        \"tokyo|x86_64-linux\" = host \"x86_64-linux\" ./nixos/system/tokyo/tokyo.nix;\n      };\n    };\n}",
        );
    }

    /// A change nixflip has nothing to say about.
    pub fn edit_unrelated(&self) {
        let readme = self.read("README.md");
        self.write("README.md", &format!("{readme}\nA line about backups.\n"));
    }

    /// Build the standard history: tags base, promote, broken, standby,
    /// unrelated, each one change on top of base.
    pub fn standard(sub: &str) -> Fixture {
        let f = Fixture::new(sub);
        type Edit = fn(&Fixture);
        let changes: [(&str, Edit); 4] = [
            ("promote", Fixture::edit_promote),
            ("broken", Fixture::edit_broken_flip),
            ("standby", Fixture::edit_new_standby),
            ("unrelated", Fixture::edit_unrelated),
        ];
        for (tag, edit) in changes {
            f.reset_to("base");
            edit(&f);
            f.commit(tag, tag);
        }
        f.reset_to("base");
        f
    }

    /// The nixflip binary, run in the flake directory, without colour and
    /// without any forge settings from the environment.
    pub fn nixflip(&self) -> Command {
        let mut cmd = Command::cargo_bin("nixflip").expect("binary builds");
        cmd.current_dir(&self.flake).env("NO_COLOR", "1");
        for var in [
            "GITHUB_TOKEN",
            "GITEA_TOKEN",
            "GITHUB_REPOSITORY",
            "GITHUB_API_URL",
            "GITEA_API_URL",
            "GITHUB_SERVER_URL",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }
}

/// Output with the temp directory replaced, so snapshots are stable.
pub fn scrub(fixture: &Fixture, text: &str) -> String {
    let tmp = fixture.dir.path().display().to_string();
    text.replace(&tmp, "TMP")
}
