//! Signing secrets at rest. With a key given at start (`--secret-key`),
//! every subscription's `whsec_` secret is stored sealed with
//! XChaCha20-Poly1305 under that key, so a copy of the database (a backup, a
//! dump, a stolen disk) does not let anyone sign webhooks. Sealing happens
//! at the edges: the API seals what it hands to the store and the lanes open
//! what they read back; the store keeps opaque text.
//!
//! A sealed value reads `sealed:v1:<key id>:<base64 of nonce and
//! ciphertext>`; anything else is a secret stored before a key was given.
//! Without a key, secrets are stored as they are (and tminus warns at
//! start). Rotating the key: the old one goes to `--secret-key-previous`,
//! and the start re-seals every secret under the new one (see `reseal`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed:v1:";

/// One key: its cipher and the short id stored beside what it sealed.
#[derive(Clone)]
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl Key {
    /// A key from its base64 text (32 bytes).
    fn parse(text: &str) -> Result<Key, String> {
        let raw = B64.decode(text.trim()).map_err(|_| {
            "a secret key is 32 bytes in base64 (head -c32 /dev/urandom | base64)".to_owned()
        })?;
        if raw.len() != 32 {
            return Err(format!(
                "a secret key is 32 bytes; this one is {}",
                raw.len()
            ));
        }
        let digest = Sha256::new()
            .chain_update(b"tminus secret key id\0")
            .chain_update(&raw)
            .finalize();
        Ok(Key {
            id: hex::encode(&digest[..4]),
            cipher: XChaCha20Poly1305::new_from_slice(&raw).expect("32 bytes"),
        })
    }
}

/// Why a stored secret could not be opened.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SealError {
    #[error("sealed with key {0}, which this process was not given (--secret-key or --secret-key-previous)")]
    UnknownKey(String),
    #[error("a sealed secret is damaged or was not sealed by its key")]
    Damaged,
}

/// The keys this process seals and opens secrets with.
#[derive(Clone, Default)]
pub struct SecretKeys {
    current: Option<Key>,
    previous: Vec<Key>,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeys")
            .field("current", &self.current.as_ref().map(|k| &k.id))
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl SecretKeys {
    /// The keys `--secret-key` and `--secret-key-previous` give.
    pub fn configured(config: &crate::config::Config) -> Result<Self, String> {
        Self::new(config.secret_key.as_deref(), &config.secret_key_previous)
    }

    /// The keys from their base64 texts: the one to seal with (if any) and
    /// earlier ones that may still have to open what they sealed.
    pub fn new(current: Option<&str>, previous: &[String]) -> Result<Self, String> {
        Ok(SecretKeys {
            current: current.map(Key::parse).transpose()?,
            previous: previous
                .iter()
                .map(|k| Key::parse(k))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether secrets are sealed at all.
    pub fn enabled(&self) -> bool {
        self.current.is_some()
    }

    /// The stored form of `secret`: sealed under the current key, or the
    /// secret itself when there is none.
    pub fn seal(&self, secret: &str) -> String {
        let Some(key) = &self.current else {
            return secret.to_owned();
        };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = key
            .cipher
            .encrypt(&nonce, secret.as_bytes())
            .expect("sealing a short secret cannot fail");
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", key.id, B64.encode(raw))
    }

    /// The secret a stored value holds.
    pub fn open(&self, stored: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, body) = rest.split_once(':').ok_or(SealError::Damaged)?;
        let key = self
            .current
            .iter()
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let raw = B64.decode(body).map_err(|_| SealError::Damaged)?;
        if raw.len() < 24 {
            return Err(SealError::Damaged);
        }
        let (nonce, sealed) = raw.split_at(24);
        let plain = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| SealError::Damaged)?;
        String::from_utf8(plain).map_err(|_| SealError::Damaged)
    }

    /// Whether `stored` is as this process would store it now: sealed under
    /// the current key, or plain when there is none.
    pub fn is_current(&self, stored: &str) -> bool {
        match (&self.current, stored.strip_prefix(PREFIX)) {
            (None, None) => true,
            (Some(k), Some(rest)) => rest.split_once(':').is_some_and(|(id, _)| id == k.id),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "HxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAB8eHRw=";

    #[test]
    fn seals_and_opens_with_the_current_or_a_previous_key() {
        let keys = SecretKeys::new(Some(K1), &[]).unwrap();
        let sealed = keys.seal("whsec_abc");
        assert!(sealed.starts_with(PREFIX), "{sealed}");
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(sealed, keys.seal("whsec_abc"), "a fresh nonce each time");
        assert_eq!(keys.open(&sealed).unwrap(), "whsec_abc");
        assert!(keys.is_current(&sealed));
        // Rotated: the old key opens, the new one seals.
        let rotated = SecretKeys::new(Some(K2), &[K1.to_owned()]).unwrap();
        assert_eq!(rotated.open(&sealed).unwrap(), "whsec_abc");
        assert!(!rotated.is_current(&sealed));
        assert!(rotated.is_current(&rotated.seal("x")));
        // Without the key it was sealed with, it cannot be opened.
        let other = SecretKeys::new(Some(K2), &[]).unwrap();
        assert!(matches!(other.open(&sealed), Err(SealError::UnknownKey(_))));
        let none = SecretKeys::default();
        assert!(matches!(none.open(&sealed), Err(SealError::UnknownKey(_))));
    }

    #[test]
    fn plain_secrets_pass_through_and_tampering_is_caught() {
        let none = SecretKeys::default();
        assert_eq!(none.seal("whsec_x"), "whsec_x");
        assert_eq!(none.open("whsec_x").unwrap(), "whsec_x");
        assert!(none.is_current("whsec_x"));
        let keys = SecretKeys::new(Some(K1), &[]).unwrap();
        assert_eq!(keys.open("whsec_x").unwrap(), "whsec_x");
        assert!(!keys.is_current("whsec_x"));
        let sealed = keys.seal("whsec_abc");
        let mut bad = sealed.clone().into_bytes();
        let n = bad.len() - 3;
        bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            keys.open(&String::from_utf8(bad).unwrap()),
            Err(SealError::Damaged)
        );
        assert!(SecretKeys::new(Some("short"), &[]).is_err());
        assert!(SecretKeys::new(Some("AAEC"), &[]).is_err());
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let keys = SecretKeys::new(Some(K1), &[K2.to_owned()]).unwrap();
        let shown = format!("{keys:?}");
        assert!(!shown.contains(K1) && !shown.contains(K2), "{shown}");
    }
}
