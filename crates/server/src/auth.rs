//! Credentials: user passwords (Argon2id), user sessions (JWT naming a server-side session, 24 h), agent keys (`grmm_`,
//! stored as SHA-256).

use std::path::Path;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const SESSION_HOURS: i64 = 24;
pub const AGENT_KEY_PREFIX: &str = "grmm_";

pub const ROLES: [&str; 3] = ["admin", "technician", "viewer"];

/// What a user may do: viewers look, technicians also change and run things, admins also
/// manage users. Ordered by power, so `role >= Role::Technician` reads as "may write".
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Technician,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Technician => "technician",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "technician" => Ok(Role::Technician),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("role must be one of {}", ROLES.join(", "))),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Role {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the account does not exist, so a wrong email costs the same
/// time as a wrong password and does not reveal which accounts exist.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a real password").expect("argon2 works"))
}

pub fn validate_password(password: &str) -> Result<(), String> {
    if password.chars().count() < 8 {
        return Err("password must be at least 8 characters".into());
    }
    if password.len() > 1024 {
        return Err("password must be at most 1024 bytes".into());
    }
    Ok(())
}

pub fn validate_email(email: &str) -> Result<String, String> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if ok {
        Ok(email)
    } else {
        Err("email must look like name@example.com".into())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    pub role: String,
    /// The server-side session this token belongs to; it must still be live.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> JwtKeys {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A token for the user's session `sid`, and its expiry (Unix seconds).
    pub fn issue(&self, user_id: &str, role: &str, sid: &str) -> anyhow::Result<(String, i64)> {
        let now = chrono::Utc::now().timestamp();
        self.issue_at(user_id, role, sid, now, now + SESSION_HOURS * 3600)
    }

    pub fn issue_at(
        &self,
        user_id: &str,
        role: &str,
        sid: &str,
        iat: i64,
        exp: i64,
    ) -> anyhow::Result<(String, i64)> {
        let claims = Claims {
            sub: user_id.to_owned(),
            role: role.to_owned(),
            sid: sid.to_owned(),
            iat,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &self.encoding)?;
        Ok((token, exp))
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::default();
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }
}

/// The configured secret, or the one kept in the data folder (generated on first start).
pub fn load_or_create_secret(configured: &str, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if !configured.is_empty() {
        if configured.len() < 32 {
            anyhow::bail!("jwt_secret must be at least 32 characters");
        }
        return Ok(configured.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt_secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            crate::private_files::log_tightened(&path, crate::private_files::private_file(&path)?);
            return Ok(existing.as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(data_dir)?;
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    write_private(&path, secret.as_bytes())?;
    Ok(secret.into_bytes())
}

/// Writes a file only its owner can read.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(contents)
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, contents)
    }
}

/// A new agent key: `grmm_` and 32 random bytes in hex.
pub fn new_agent_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{AGENT_KEY_PREFIX}{}", hex::encode(bytes))
}

pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn jwt_expiry_is_enforced() {
        let keys = JwtKeys::new(&[7u8; 32]);
        let (t, exp) = keys.issue("u1", "admin", "s1").unwrap();
        let now = chrono::Utc::now().timestamp();
        assert!((exp - now - 24 * 3600).abs() <= 2);
        assert_eq!(keys.verify(&t).unwrap().sub, "u1");
        assert_eq!(keys.verify(&t).unwrap().sid, "s1");
        let (old, _) = keys
            .issue_at("u1", "admin", "s1", now - 100_000, now - 10)
            .unwrap();
        assert!(keys.verify(&old).is_none());
        assert!(JwtKeys::new(&[8u8; 32]).verify(&t).is_none());
    }

    #[test]
    fn secret_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_secret("", dir.path()).unwrap();
        let b = load_or_create_secret("", dir.path()).unwrap();
        assert_eq!(a, b);
        assert!(a.len() >= 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("jwt_secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(load_or_create_secret("short", dir.path()).is_err());
    }

    #[test]
    fn agent_keys_are_unique_and_prefixed() {
        let a = new_agent_key();
        assert!(a.starts_with("grmm_") && a.len() == 5 + 64);
        assert_ne!(a, new_agent_key());
        assert_eq!(key_hash(&a).len(), 64);
    }

    #[test]
    fn email_validation() {
        assert_eq!(
            validate_email(" Tech@Example.COM ").unwrap(),
            "tech@example.com"
        );
        for bad in ["", "no-at", "@example.com", "a@b", "a b@example.com"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }
}
