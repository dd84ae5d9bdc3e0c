//! Dashboard accounts: e-mail addresses, passwords (argon2id), session tokens and roles.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// Shortest password accepted (NIST SP 800-63B asks for at least 8).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted: argon2 hashes it all, so it is bounded.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Longest e-mail address, in bytes (RFC 5321's limit on a path).
pub const MAX_EMAIL_BYTES: usize = 254;

/// A user's e-mail address, trimmed and lower-cased: the login name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().to_lowercase();
        let valid = s.len() <= MAX_EMAIL_BYTES
            && s.split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if valid && !s.contains(char::is_whitespace) {
            Ok(Self(s))
        } else {
            Err(format!("'{s}' is not an e-mail address (name@example.com)"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the policy, hashed with argon2id (the crate's defaults: 19 MiB,
/// 2 passes, OWASP's recommendation).
pub fn hash_password(password: &str) -> Result<String, String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!(
            "the password is too long: use at most {MAX_PASSWORD_CHARS} characters"
        ));
    }
    let salt =
        SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| format!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

/// Whether `password` matches a stored argon2 hash. Constant-time in the hash comparison.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A random secret of `n` alphanumerics (62^n possibilities).
pub fn random_token(n: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// The session cookie's value (256 bits). Only its SHA-256 is stored.
#[derive(Clone)]
pub struct SessionToken(String);

impl SessionToken {
    pub fn generate() -> Self {
        Self(random_token(43))
    }

    pub fn from_cookie(s: &str) -> Self {
        Self(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

/// What a member may do in a project. Each role includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything in the project.
    Viewer,
    /// Also manages keys (and, later, categories, channels and rules).
    Developer,
    /// Also manages members.
    Admin,
    /// Also makes and removes owners.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Developer => "developer",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "developer" => Ok(Self::Developer),
            "admin" => Ok(Self::Admin),
            "owner" => Ok(Self::Owner),
            other => Err(format!(
                "unknown role '{other}': use owner, admin, developer or viewer"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(hash_password("short").unwrap_err().contains("at least 10"));
    }

    #[test]
    fn roles_are_ordered_and_emails_normalised() {
        assert!(Role::Owner > Role::Admin && Role::Developer > Role::Viewer);
        assert_eq!(Email::parse(" A@B.io ").unwrap().as_str(), "a@b.io");
        assert!(Email::parse("nope").is_err());
    }
}
