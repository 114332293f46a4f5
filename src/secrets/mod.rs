//! SOPS support: read sops-encrypted YAML/JSON files, list their plaintext key names and
//! recipients, match them against `.sops.yaml` creation rules, convert ssh keys to age
//! recipients, and (given an age identity) unwrap the data key, decrypt values and verify the MAC.
//!
//! Secret values are never printed, logged or put into error messages. Decrypted values are
//! held in [`zeroize::Zeroizing`] buffers so that their memory is zeroed when dropped.
//!
//! Layout:
//! - [`sops`]: the order-preserving file parser ([`SopsFile`]), key paths and metadata.
//! - [`ssh_to_age`]: the ssh-to-age conversion of ed25519 keys.
//! - [`sops_yaml`]: `.sops.yaml` creation rules and recipient comparison.
//! - [`identity`]: age identities (age key files, `SOPS_AGE_KEY*`, OpenSSH ed25519 keys).
//! - [`decrypt`]: data-key unwrap, value decryption and MAC verification.

pub mod decrypt;
mod error;
pub mod identity;
pub mod sops;
pub mod sops_yaml;
pub mod ssh_to_age;
mod tree;

pub use decrypt::{decrypt, DecryptReport, KeyReport, MacStatus};
pub use error::{SopsError, Unsupported};
pub use identity::AgeIdentities;
pub use sops::{
    AgeRecipient, EncType, EncValue, KeyGroup, NodeKind, RecipientKind, SecretKey, SopsFile,
    SopsFormat, SopsMetadata,
};
pub use sops_yaml::{compare_recipients, CreationRule, RecipientDiff, SopsConfig};
pub use ssh_to_age::{ssh_private_key_to_age_identity, ssh_public_key_to_age};
