//! Release signatures, shared by the server (which signs and publishes builds) and the agent
//! (which checks a build before it replaces itself).
//!
//! A release key is an Ed25519 key pair. A build's signature is the Ed25519 signature of the
//! build's 32-byte SHA-256 digest; keys and signatures travel as standard base64 (a public key
//! is 32 bytes, a signature 64). The agent checks the SHA-256 of what it downloaded against the
//! `update`'s checksum and the signature against the release public key it trusts, so a server
//! (or anyone in between) without the private key cannot make it run another build.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// The SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lowercase hex of a digest (the `checksum` of an `update`).
pub fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a hex SHA-256 (as in an `update`'s `checksum`).
pub fn parse_hex_digest(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a SHA-256 checksum is 64 hex digits".into());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Reads a base64 release public key.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| format!("the release public key is not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "a release public key is 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// Reads a base64 release private key (the 32-byte seed).
pub fn parse_private_key(text: &str) -> Result<SigningKey, String> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| format!("the release key is not base64: {e}"))?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "a release key is 32 bytes".to_string())?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A new release key pair from the operating system's randomness: (private, public), base64.
pub fn generate_key_pair() -> Result<(String, String), String> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((
        BASE64.encode(key.to_bytes()),
        BASE64.encode(key.verifying_key().to_bytes()),
    ))
}

/// The public key of a private key, base64.
pub fn public_key_of(key: &SigningKey) -> String {
    BASE64.encode(key.verifying_key().to_bytes())
}

/// Signs a build's digest; the signature, base64.
pub fn sign(key: &SigningKey, digest: &[u8; 32]) -> String {
    BASE64.encode(key.sign(digest).to_bytes())
}

/// Checks that `signature` (base64) is the release key's signature of `digest`.
pub fn verify(public_key: &VerifyingKey, digest: &[u8; 32], signature: &str) -> Result<(), String> {
    let bytes = BASE64
        .decode(signature.trim())
        .map_err(|e| format!("the signature is not base64: {e}"))?;
    let signature =
        Signature::from_slice(&bytes).map_err(|e| format!("not an Ed25519 signature: {e}"))?;
    public_key
        .verify(digest, &signature)
        .map_err(|_| "the signature does not match the release key".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_key_and_its_digest() {
        let (private, public) = generate_key_pair().unwrap();
        let key = parse_private_key(&private).unwrap();
        assert_eq!(public_key_of(&key), public);
        let public = parse_public_key(&public).unwrap();
        let d = digest(b"build one");
        let signature = sign(&key, &d);
        assert!(verify(&public, &d, &signature).is_ok());
        assert!(verify(&public, &digest(b"build two"), &signature).is_err());
        let (_, other) = generate_key_pair().unwrap();
        let other = parse_public_key(&other).unwrap();
        assert!(verify(&other, &d, &signature).is_err());
        assert!(verify(&public, &d, "not base64!").is_err());
    }

    #[test]
    fn hex_digests_round_trip_and_bad_ones_are_refused() {
        let d = digest(b"x");
        assert_eq!(parse_hex_digest(&hex(&d)).unwrap(), d);
        assert!(parse_hex_digest("abc").is_err());
        assert!(parse_hex_digest(&"g".repeat(64)).is_err());
        assert!(parse_public_key("AAAA").is_err());
    }
}
