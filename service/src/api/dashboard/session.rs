//! Dashboard sessions and portal links: values signed with HMAC-SHA256
//! under a key derived from the admin token, so every instance sharing the
//! token accepts them and changing the token ends them all. A session says
//! who it is for (the operator, or one creator), until when, and carries a
//! random nonce, made here at login, never taken from the client: its hash
//! is the session's id in the store (where logout and key revocation end
//! it, `viewer`), and the forms' CSRF token is derived from it. A portal
//! link says which creator and until when; the login form's token is
//! derived from a random value its own cookie holds. None holds a
//! credential. Pure: the caller gives the instant.

use crate::domain::ids::Id;
use crate::store::{CreatorId, SessionId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Whose views a session opens.
#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    /// Everything: the dashboard, opened with the admin token.
    Operator,
    /// One creator's subscriptions and deliveries: the portal, opened
    /// with an API key or a portal link.
    Creator(CreatorId),
}

/// A signed-in browser.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub scope: Scope,
    pub expires: DateTime<Utc>,
    /// Random, per session: the CSRF token is derived from it.
    pub nonce: String,
}

impl Session {
    /// The session's id in the store: a hash of its nonce, so the store
    /// holds nothing a cookie could be made from.
    pub fn id(&self) -> SessionId {
        let mut h = Sha256::new();
        h.update(b"tminus session id\0");
        h.update(self.nonce.as_bytes());
        SessionId::trusted(hex::encode(h.finalize()))
    }
}

/// 16 random bytes, as cookie-safe text.
fn random() -> String {
    let mut bytes = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    B64.encode(bytes)
}

/// A fresh value for the login form's cookie (see [`Signer::login_token`]).
pub fn login_nonce() -> String {
    random()
}

/// The signing key.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl Signer {
    /// The key for this admin token (a hash of it under a label of its
    /// own, so it signs nothing else).
    pub fn new(admin_token: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"tminus dashboard sessions\0");
        h.update(admin_token.as_bytes());
        Self {
            key: h.finalize().into(),
        }
    }

    fn mac(&self, purpose: &str, body: &str) -> String {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("any key length");
        m.update(purpose.as_bytes());
        m.update(b"\0");
        m.update(body.as_bytes());
        B64.encode(m.finalize().into_bytes())
    }

    /// `body.mac`, if the mac is right for `purpose`.
    fn verified<'a>(&self, purpose: &str, value: &'a str) -> Option<&'a str> {
        let (body, mac) = value.rsplit_once('.')?;
        let want = self.mac(purpose, body);
        // Compare digests so the timing says nothing about the mac.
        (Sha256::digest(want.as_bytes()) == Sha256::digest(mac.as_bytes())).then_some(body)
    }

    /// A new session for `scope` until `expires`, as its cookie value.
    pub fn start(&self, scope: Scope, expires: DateTime<Utc>) -> (Session, String) {
        // Whole milliseconds, as the cookie carries it.
        let expires =
            DateTime::from_timestamp_millis(expires.timestamp_millis()).unwrap_or(expires);
        let s = Session {
            scope,
            expires,
            nonce: random(),
        };
        let who = match &s.scope {
            Scope::Operator => "op".to_owned(),
            Scope::Creator(c) => format!("c-{}", c.as_str()),
        };
        let body = format!("{who}.{}.{}", expires.timestamp_millis(), s.nonce);
        let value = format!("{body}.{}", self.mac("session", &body));
        (s, value)
    }

    /// The session a cookie value stands for, if it is signed and not
    /// expired at `now`.
    pub fn open(&self, value: &str, now: DateTime<Utc>) -> Option<Session> {
        let body = self.verified("session", value)?;
        let mut parts = body.split('.');
        let (who, ms, nonce) = (parts.next()?, parts.next()?, parts.next()?);
        let expires = DateTime::from_timestamp_millis(ms.parse().ok()?)?;
        if parts.next().is_some() || expires <= now {
            return None;
        }
        let scope = match who {
            "op" => Scope::Operator,
            _ => Scope::Creator(who.strip_prefix("c-")?.parse().ok()?),
        };
        Some(Session {
            scope,
            expires,
            nonce: nonce.to_owned(),
        })
    }

    /// The token a session's forms carry (SameSite=Strict is the first
    /// guard; this is the second).
    pub fn csrf(&self, s: &Session) -> String {
        self.mac("csrf", &s.nonce)
    }

    /// The token the login form carries for the login cookie `nonce`: a
    /// page of another site can neither read the form nor send the
    /// `SameSite=Strict` cookie, so it cannot post a login of its own.
    pub fn login_token(&self, nonce: &str) -> String {
        self.mac("login", nonce)
    }

    /// Whether a login form's `token` is the one for the cookie `nonce`.
    pub fn login_checks(&self, nonce: &str, token: &str) -> bool {
        let want = self.login_token(nonce);
        !nonce.is_empty() && Sha256::digest(want.as_bytes()) == Sha256::digest(token.as_bytes())
    }

    /// A portal link's token: creator `c`, until `expires`.
    pub fn link(&self, c: &CreatorId, expires: DateTime<Utc>) -> String {
        let body = format!("{}.{}", c.as_str(), expires.timestamp_millis());
        format!("{body}.{}", self.mac("portal-link", &body))
    }

    /// The creator a portal link opens, if it is signed and not expired.
    pub fn open_link(&self, token: &str, now: DateTime<Utc>) -> Option<CreatorId> {
        let body = self.verified("portal-link", token)?;
        let (c, ms) = body.split_once('.')?;
        let expires = DateTime::from_timestamp_millis(ms.parse().ok()?)?;
        (expires > now).then(|| c.parse().ok()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn creator() -> CreatorId {
        "0123456789abcdef01234567".parse().unwrap()
    }

    #[test]
    fn a_session_opens_until_it_expires_and_only_under_its_key() {
        let (signer, now) = (Signer::new("admin"), at());
        let (s, v) = signer.start(Scope::Creator(creator()), now + Duration::hours(1));
        assert!(!v.contains("admin"));
        assert_eq!(signer.open(&v, now), Some(s.clone()));
        assert_eq!(signer.open(&v, now + Duration::hours(2)), None);
        assert_eq!(Signer::new("other").open(&v, now), None);
        let forged = v.replacen("c-", "op.", 1);
        assert_eq!(signer.open(&forged, now), None);
        let (op, v2) = signer.start(Scope::Operator, now + Duration::hours(1));
        assert_eq!(
            signer.open(&v2, now).map(|s| s.scope),
            Some(Scope::Operator)
        );
        assert_ne!(signer.csrf(&s), signer.csrf(&op));
        // Each session its own id, none of them its cookie.
        assert_ne!(s.id(), op.id());
        assert!(!v.contains(s.id().as_str()));
    }

    #[test]
    fn a_login_token_fits_its_cookie_only() {
        let signer = Signer::new("admin");
        let (a, b) = (login_nonce(), login_nonce());
        assert_ne!(a, b);
        let t = signer.login_token(&a);
        assert!(signer.login_checks(&a, &t));
        assert!(!signer.login_checks(&b, &t));
        assert!(!signer.login_checks(&a, ""));
        assert!(!signer.login_checks("", &signer.login_token("")));
        assert!(!Signer::new("other").login_checks(&a, &t));
    }

    #[test]
    fn a_portal_link_names_its_creator_until_it_expires() {
        let (signer, now) = (Signer::new("admin"), at());
        let t = signer.link(&creator(), now + Duration::minutes(15));
        assert_eq!(signer.open_link(&t, now), Some(creator()));
        assert_eq!(signer.open_link(&t, now + Duration::minutes(16)), None);
        // A session value is not a link, nor the other way round.
        let (_, v) = signer.start(Scope::Creator(creator()), now + Duration::hours(1));
        assert_eq!(signer.open_link(&v, now), None);
        assert_eq!(signer.open(&t, now), None);
    }
}
