//! SOPS support: read sops-encrypted YAML/JSON files, list their plaintext key names and
//! recipients, match them against `.sops.yaml` creation rules, convert ssh keys to age
//! recipients, and (given an age identity) unwrap the data key, decrypt values and verify the MAC.
//!
//! Secret values are never printed, logged or put into error messages. Decrypted values are
//! held in [`zeroize::Zeroizing`] buffers so that their memory is zeroed when dropped.

mod error;
pub mod sops;
mod tree;

pub use error::{SopsError, Unsupported};
pub use sops::{
    AgeRecipient, EncType, EncValue, KeyGroup, NodeKind, RecipientKind, SecretKey, SopsFile,
    SopsFormat, SopsMetadata,
};
