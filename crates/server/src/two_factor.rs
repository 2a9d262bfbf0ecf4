//! Two-factor sign-in: TOTP codes (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of clock
//! skew either way) and one-time recovery codes. The TOTP secret must be readable to check a
//! code, so it is stored encrypted (ChaCha20-Poly1305) with a key kept in the data folder
//! (`two_factor_key`, owner-only); recovery codes are stored as SHA-256 hashes only.

use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::Rng;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Secret, Totp};

/// How many recovery codes a user gets when turning two-factor sign-in on.
pub const RECOVERY_CODES: usize = 10;
const ISSUER: &str = "GuruRMM";

/// Encrypts and decrypts TOTP secrets at rest.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl SecretBox {
    /// The key in `data_dir/two_factor_key`, generated (mode 0600) on first use. Back it up
    /// with the database: without it, enrolled users need a recovery code to sign in.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<SecretBox> {
        let path = data_dir.join("two_factor_key");
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => hex::decode(text.trim())
                .ok()
                .filter(|k| k.len() == 32)
                .ok_or_else(|| anyhow::anyhow!("{} is not a 32-byte hex key", path.display()))?,
            Err(_) => {
                std::fs::create_dir_all(data_dir)?;
                let key = ChaCha20Poly1305::generate_key(&mut OsRng).to_vec();
                crate::auth::write_private(&path, hex::encode(&key).as_bytes())?;
                key
            }
        };
        Ok(SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    /// `nonce || ciphertext`, base64.
    pub fn seal(&self, plain: &[u8]) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plain)
            .expect("ChaCha20-Poly1305 encryption does not fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, data) = bytes.split_at(12);
        self.cipher.decrypt(Nonce::from_slice(nonce), data).ok()
    }
}

/// A new random secret (160 bits, as RFC 4226 recommends).
pub fn new_secret() -> Vec<u8> {
    Secret::generate().as_bytes().to_vec()
}

fn totp(secret: &[u8], account: &str) -> Option<Totp> {
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .ok()
}

/// The `otpauth://` URI an authenticator app reads (shown as a QR code), and the secret in
/// base32 for typing by hand.
pub fn enrolment(secret: &[u8], account: &str) -> Option<(String, String)> {
    let t = totp(secret, account)?;
    Some((t.to_url().ok()?, t.secret().to_base32()))
}

/// The time step a code is valid for, if it is valid now (within one step either way).
pub fn check_code(secret: &[u8], code: &str) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = totp(secret, "user")?.check_current(&code)?;
    i64::try_from(step).ok()
}

/// Ten new recovery codes (`xxxxx-xxxxx`, 50 bits each) and their hashes.
pub fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let mut s: String = (0..10)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect();
            s.insert(5, '-');
            s
        })
        .collect();
    let hashes = codes.iter().map(|c| recovery_hash(c)).collect();
    (codes, hashes)
}

/// The stored form of a recovery code: case, spaces and dashes do not matter when typed.
pub fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretBox::load_or_create(dir.path()).unwrap();
        let sealed = a.seal(b"secret");
        assert_ne!(sealed, "secret");
        assert_eq!(a.open(&sealed).unwrap(), b"secret");
        let again = SecretBox::load_or_create(dir.path()).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"secret", "the key is kept");
        let other = SecretBox::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.open(&sealed).is_none());
    }

    #[test]
    fn codes_from_the_secret_are_accepted_and_others_not() {
        let secret = new_secret();
        let code = totp(&secret, "a@example.com")
            .unwrap()
            .generate_current()
            .to_string();
        assert!(check_code(&secret, &code).is_some());
        assert!(check_code(&secret, "12345").is_none());
        let (uri, base32) = enrolment(&secret, "a@example.com").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/GuruRMM:a%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={base32}")), "{uri}");
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_hashed_forgivingly() {
        let (codes, hashes) = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        assert_eq!(
            hashes[0],
            recovery_hash(&codes[0].to_uppercase().replace('-', " "))
        );
    }
}
