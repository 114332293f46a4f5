//! nixflip: flip primary/standby roles in a NixOS cluster flake, losslessly.
//!
//! The binary (`src/main.rs`) is a thin layer over this library:
//! - [`nixedit`]: the generic lossless attribute editor (get/set/unset);
//! - [`cluster`]: the model, discovery, consistency rules and flip planner;
//! - [`config`]: the optional nixflip.toml;
//! - [`eval`]: validation with `nix eval` on a scratch copy;
//! - [`deploy`]: `nixos-rebuild` in a safe order;
//! - [`forge`]: posting the pull-request comment (GitHub, Gitea/Forgejo);
//! - [`secrets`]: SOPS files (recipients, keys, decryption, MAC);
//! - [`names`]: what host names, addresses, targets and attributes may be;
//! - [`git`]: running git (argv only, git's message in the error);
//! - [`live`]: the cluster as it runs (`status --live`): ssh, facts, findings;
//! - [`fsx`]: all-or-nothing multi-file writes and the run lock;
//! - [`findings`]: the registry of every finding (id, severity, explanation);
//! - [`textdiff`]: plain unified diffs of one file;
//! - [`render`]: diffs, tables and finding diagnostics;
//! - [`review`]: the role diff between two git revisions (the PR bot);
//! - [`transaction`]: prove a change of the flake, then write it all or nothing;
//! - [`error`]: the application error and its exit codes.

// Diagnostics carry their source snippet, so error values are large; they are
// built once on the failure path, where size does not matter.
#![allow(clippy::result_large_err)]

pub mod cluster;
pub mod config;
pub mod deploy;
pub mod error;
pub mod eval;
pub mod findings;
pub mod forge;
pub mod fsx;
pub mod generate;
pub mod git;
pub mod live;
pub mod names;
pub mod nixedit;
pub mod render;
pub mod review;
pub mod secrets;
pub mod textdiff;
pub mod transaction;

pub use error::{Error, Result};
