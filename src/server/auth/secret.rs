//! Random tokens (API keys, invitation links) and their stored digests.

use rand::RngCore;
use sha2::{Digest, Sha256};

pub const API_KEY_PREFIX: &str = "mino_pk_";
/// Characters of the random part kept in clear to find the key again.
const LOOKUP_CHARS: usize = 12;

/// 32 random bytes (256 bits) as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A new API key: (full secret shown once, lookup prefix, digest to store).
pub fn new_api_key() -> (String, String, String) {
    let secret = format!("{API_KEY_PREFIX}{}", random_token());
    let prefix = secret[..API_KEY_PREFIX.len() + LOOKUP_CHARS].to_string();
    let digest = sha256_hex(&secret);
    (secret, prefix, digest)
}

/// The lookup prefix of a presented key, if it looks like one of ours.
pub fn api_key_prefix(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(API_KEY_PREFIX)?;
    if rest.len() != 64 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(&presented[..API_KEY_PREFIX.len() + LOOKUP_CHARS])
}

/// Compares digests without an early exit, so timing tells nothing.
pub fn digests_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_256_random_bits_and_parse_back() {
        let (secret, prefix, digest) = new_api_key();
        assert!(secret.starts_with("mino_pk_"));
        assert_eq!(secret.len(), 8 + 64);
        assert_eq!(api_key_prefix(&secret), Some(prefix.as_str()));
        assert!(digests_match(&sha256_hex(&secret), &digest));
        assert_eq!(api_key_prefix("mino_pk_short"), None);
        assert_eq!(api_key_prefix("Bearer x"), None);
    }
}
