//! Helpers shared by the `secrets_*` integration tests: the genuine sops fixtures are used in
//! place from the shared directory (`$NIXFLIP_SHARED_DIR`, else `../shared` beside the crate).

#![allow(dead_code)]

use std::path::PathBuf;

pub fn shared_dir() -> PathBuf {
    match std::env::var_os("NIXFLIP_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")),
    }
}

pub fn sops_fixture(rel: &str) -> PathBuf {
    shared_dir().join("fixtures/sops").join(rel)
}

pub fn read_fixture(rel: &str) -> String {
    let path = sops_fixture(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
