//! Write keys (public, ingest only) and secret keys (server-side read/manage).

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// Random characters after the prefix: 32 alphanumerics ≈ 190 bits.
const KEY_RANDOM_CHARS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Public: safe to ship in a browser or an app. Can only send events.
    Write,
    /// Server-side: reads data and manages the project. Never ship it to clients.
    Secret,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Secret => "secret",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "write" => Some(Self::Write),
            "secret" => Some(Self::Secret),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Write => "plw_",
            Self::Secret => "pls_",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key in plain text. It exists only between generation and being shown once.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainKey(String);

impl PlainKey {
    pub fn generate(kind: KeyKind) -> Self {
        let random: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(KEY_RANDOM_CHARS)
            .map(char::from)
            .collect();
        Self(format!("{}{random}", kind.prefix()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> KeyKind {
        if self.0.starts_with(KeyKind::Secret.prefix()) {
            KeyKind::Secret
        } else {
            KeyKind::Write
        }
    }

    /// What listings show: enough to recognise a key, not to use it.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(12).collect()
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }
}

impl fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainKey({}…)", self.display_prefix())
    }
}

/// SHA-256 of a presented key: what the database stores and looks up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    pub fn of(presented: &str) -> Self {
        Self(Sha256::digest(presented.as_bytes()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_prefixed_and_hash_stably() {
        let a = PlainKey::generate(KeyKind::Write);
        let b = PlainKey::generate(KeyKind::Write);
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("plw_"));
        assert_eq!(a.as_str().len(), 4 + KEY_RANDOM_CHARS);
        assert!(
            PlainKey::generate(KeyKind::Secret)
                .as_str()
                .starts_with("pls_")
        );
        assert_eq!(a.hash(), KeyHash::of(a.as_str()));
        assert_ne!(a.hash(), b.hash());
        assert!(!format!("{a:?}").contains(a.as_str()));
    }
}
