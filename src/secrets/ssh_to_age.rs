//! The ssh-to-age conversion: an ed25519 key is birationally mapped to X25519 so the same key
//! pair works as an age recipient/identity.
//!
//! - Public: decode the OpenSSH wire blob, decompress the Edwards point, take its Montgomery
//!   u-coordinate, and bech32-encode it with HRP `age`.
//! - Private: SHA-512 of the 32-byte ed25519 seed, first 32 bytes clamped (the ed25519 scalar),
//!   bech32-encoded with HRP `AGE-SECRET-KEY-` in upper case.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bech32::{Bech32, Hrp};
use curve25519_dalek::edwards::CompressedEdwardsY;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::error::SopsError;

fn ssh_err(reason: impl Into<String>) -> SopsError {
    SopsError::SshKey {
        reason: reason.into(),
    }
}

/// Read one SSH wire-format `string` (u32 big-endian length, then bytes).
pub(crate) fn read_ssh_string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len_bytes: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let rest = buf.get(4..)?;
    let s = rest.get(..len)?;
    *buf = rest.get(len..)?;
    Some(s)
}

/// Extract the 32-byte ed25519 public key from an OpenSSH public key line
/// (`ssh-ed25519 AAAA… [comment]`).
pub fn ssh_ed25519_public_bytes(line: &str) -> Result<[u8; 32], SopsError> {
    let mut parts = line.split_whitespace();
    let key_type = parts.next().ok_or_else(|| ssh_err("empty key"))?;
    if key_type != "ssh-ed25519" {
        return Err(ssh_err(format!("key type {key_type:?} is not ssh-ed25519")));
    }
    let b64 = parts
        .next()
        .ok_or_else(|| ssh_err("missing base64 key data"))?;
    let blob = BASE64
        .decode(b64)
        .map_err(|_| ssh_err("key data is not valid base64"))?;
    let mut cursor = blob.as_slice();
    let inner_type = read_ssh_string(&mut cursor).ok_or_else(|| ssh_err("truncated key blob"))?;
    if inner_type != b"ssh-ed25519" {
        return Err(ssh_err("key blob is not an ssh-ed25519 key"));
    }
    let pk = read_ssh_string(&mut cursor).ok_or_else(|| ssh_err("truncated key blob"))?;
    if !cursor.is_empty() {
        return Err(ssh_err("trailing data in key blob"));
    }
    pk.try_into()
        .map_err(|_| ssh_err("ed25519 public key is not 32 bytes"))
}

/// Convert an ed25519 public key (32 bytes) to an age X25519 recipient.
pub fn ed25519_public_to_age(pk: &[u8; 32]) -> Result<String, SopsError> {
    let point = CompressedEdwardsY(*pk)
        .decompress()
        .ok_or_else(|| ssh_err("not a valid ed25519 point"))?;
    let u = point.to_montgomery().to_bytes();
    let hrp = Hrp::parse("age").map_err(|e| ssh_err(e.to_string()))?;
    bech32::encode::<Bech32>(hrp, &u).map_err(|e| ssh_err(e.to_string()))
}

/// Convert an OpenSSH `ssh-ed25519 AAAA… [comment]` public key line to an age recipient
/// `age1…` (what `ssh-to-age` prints).
pub fn ssh_public_key_to_age(line: &str) -> Result<String, SopsError> {
    ed25519_public_to_age(&ssh_ed25519_public_bytes(line)?)
}

/// Convert an ed25519 seed (the first half of OpenSSH's 64-byte private key field) to an age
/// identity string `AGE-SECRET-KEY-1…` (what `ssh-to-age -private-key` prints). The result is
/// secret and zeroed on drop.
pub fn ssh_private_key_to_age_identity(seed: &[u8; 32]) -> Result<Zeroizing<String>, SopsError> {
    let digest = Sha512::digest(seed);
    let mut scalar = Zeroizing::new([0u8; 32]);
    scalar.copy_from_slice(&digest[..32]);
    let mut digest = digest;
    digest.iter_mut().for_each(|b| *b = 0);
    scalar[0] &= 248;
    scalar[31] &= 127;
    scalar[31] |= 64;
    let hrp = Hrp::parse("age-secret-key-").map_err(|e| ssh_err(e.to_string()))?;
    let encoded = Zeroizing::new(
        bech32::encode::<Bech32>(hrp, scalar.as_slice()).map_err(|e| ssh_err(e.to_string()))?,
    );
    Ok(Zeroizing::new(encoded.to_uppercase()))
}

/// Normalise a recipient string for comparison: trims, and drops the comment of ssh keys.
pub fn normalize_recipient(recipient: &str) -> String {
    let r = recipient.trim();
    if r.starts_with("ssh-") {
        let mut parts = r.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some(t), Some(k)) => format!("{t} {k}"),
            _ => r.to_string(),
        }
    } else {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_other_key_types() {
        let err = ssh_public_key_to_age("ssh-rsa AAAAB3NzaC1yc2E host").unwrap_err();
        assert!(err.to_string().contains("not ssh-ed25519"));
        assert!(ssh_public_key_to_age("ssh-ed25519 !!!").is_err());
        assert!(ssh_public_key_to_age("").is_err());
    }

    #[test]
    fn normalizes() {
        assert_eq!(
            normalize_recipient("  ssh-ed25519 AAAA user@host "),
            "ssh-ed25519 AAAA"
        );
        assert_eq!(normalize_recipient(" age1x "), "age1x");
    }
}
