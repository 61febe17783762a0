//! Standard Webhooks signing: `v1,` + base64 HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}` with the subscription's
//! `whsec_` secret. Owns secret generation and verification (used by the demo
//! and by receivers written in Rust); knows nothing about HTTP or storage.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix every signing secret carries, as Standard Webhooks requires.
pub const SECRET_PREFIX: &str = "whsec_";

/// Makes a fresh signing secret: `whsec_` + base64 of 24 random bytes.
pub fn new_secret() -> String {
    let mut raw = [0u8; 24];
    rand::rng().fill_bytes(&mut raw);
    format!("{SECRET_PREFIX}{}", B64.encode(raw))
}

/// A secret decoded once and ready to sign many messages: the HMAC key state
/// is prepared here, not per delivery.
#[derive(Clone)]
pub struct Signer {
    mac: HmacSha256,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

/// Why a secret could not be used.
#[derive(Debug, thiserror::Error)]
#[error("signing secret is not whsec_ followed by base64")]
pub struct BadSecret;

impl Signer {
    /// Decodes a `whsec_` secret.
    pub fn new(secret: &str) -> Result<Self, BadSecret> {
        let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        let key = B64.decode(b64).map_err(|_| BadSecret)?;
        let mac = HmacSha256::new_from_slice(&key).map_err(|_| BadSecret)?;
        Ok(Self { mac })
    }

    /// The `v1,<base64>` signature of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value: one `v1,` entry per secret, space
/// separated, so receivers keep verifying during a secret rotation.
pub fn signature_header<S: std::borrow::Borrow<Signer>>(
    signers: &[S],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    signers
        .iter()
        .map(|s| s.borrow().sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a `webhook-signature` header against one secret, as a receiver
/// would. Timestamp tolerance is the caller's business.
pub fn verify(secret: &str, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Ok(signer) = Signer::new(secret) else {
        return false;
    };
    let expected = signer.sign(id, timestamp, body);
    header.split(' ').any(|candidate| {
        // Constant-time comparison: no early exit on the first differing byte.
        candidate.len() == expected.len()
            && candidate
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The vector published in the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let sig = Signer::new(secret).unwrap().sign(id, 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            secret,
            id,
            1614265330,
            body,
            &format!("v1,bogus {sig}")
        ));
        assert!(!verify(secret, id, 1614265331, body, &sig));
    }

    #[test]
    fn new_secrets_are_usable_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX));
        assert!(Signer::new(&a).is_ok());
    }

    use proptest::prelude::*;

    fn secret() -> impl Strategy<Value = String> {
        prop::collection::vec(any::<u8>(), 1..64)
            .prop_map(|k| format!("{SECRET_PREFIX}{}", B64.encode(k)))
    }

    /// An id that can travel in a header (visible ASCII), as ours do.
    const HEADER_ID: &str = "[!-~]{1,40}";

    proptest! {
        #[test]
        fn what_is_signed_verifies(
            secret in secret(),
            id in any::<String>(),
            ts in any::<i64>(),
            body in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            let sig = Signer::new(&secret).unwrap().sign(&id, ts, &body);
            prop_assert!(verify(&secret, &id, ts, &body, &sig));
            prop_assert!(!verify(&secret, &id, ts.wrapping_add(1), &body, &sig));
        }

        #[test]
        fn any_single_byte_change_of_the_body_fails(
            secret in secret(),
            id in HEADER_ID,
            ts in any::<i64>(),
            body in prop::collection::vec(any::<u8>(), 1..512),
            at in any::<prop::sample::Index>(),
            delta in 1u8..=255,
        ) {
            let sig = Signer::new(&secret).unwrap().sign(&id, ts, &body);
            let mut changed = body.clone();
            let i = at.index(changed.len());
            changed[i] = changed[i].wrapping_add(delta);
            prop_assert!(!verify(&secret, &id, ts, &changed, &sig));
        }

        #[test]
        fn any_single_byte_change_of_the_id_fails(
            secret in secret(),
            id in HEADER_ID,
            ts in any::<i64>(),
            body in prop::collection::vec(any::<u8>(), 0..64),
            at in any::<prop::sample::Index>(),
            to in 0x21u8..=0x7e,
        ) {
            let sig = Signer::new(&secret).unwrap().sign(&id, ts, &body);
            let mut changed = id.clone().into_bytes();
            let i = at.index(changed.len());
            prop_assume!(changed[i] != to);
            changed[i] = to;
            let changed = String::from_utf8(changed).unwrap();
            prop_assert!(!verify(&secret, &changed, ts, &body, &sig));
        }

        #[test]
        fn the_standardwebhooks_crate_agrees(
            secret in secret(),
            id in any::<String>(),
            ts in any::<i64>(),
            header_id in HEADER_ID,
            body in any::<String>(),
        ) {
            // Their signature of any message is ours…
            let theirs = standardwebhooks::Webhook::new(&secret).unwrap();
            let ours = Signer::new(&secret).unwrap();
            prop_assert_eq!(theirs.sign(&id, ts, body.as_bytes()).unwrap(), ours.sign(&id, ts, body.as_bytes()));
            // …and their verifier accepts our headers, as a receiver's would.
            let now = crate::clock::wall().timestamp();
            let mut h = http::HeaderMap::new();
            h.insert("webhook-id", header_id.parse().unwrap());
            h.insert("webhook-timestamp", now.into());
            let sig = signature_header(&[ours], &header_id, now, body.as_bytes());
            h.insert("webhook-signature", sig.parse().unwrap());
            prop_assert!(theirs.verify(body.as_bytes(), &h).is_ok());
        }
    }
}
