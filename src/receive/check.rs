//! Is this request a genuine, fresh webhook from tminus? A pure decision
//! over the three Standard Webhooks headers, the body, the secrets and the
//! receiver's "now": no I/O, so each refusal is a unit test. The signature
//! itself is checked by the service's own code (`tminus::signing`).

use axum::http::{HeaderMap, StatusCode};

/// How far a `webhook-timestamp` may be from the receiver's clock, either
/// way, before the request counts as stale (a replay, or a badly set clock).
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// A request that passed: the id to deduplicate on.
#[derive(Debug, PartialEq)]
pub struct Genuine {
    pub id: String,
}

/// Why a request was refused, and the status it is answered with.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// A header is absent or unreadable: 400.
    #[error("missing or malformed {0} header")]
    Malformed(&'static str),
    /// The timestamp is more than [`TOLERANCE_SECS`] away from now: 400.
    #[error("webhook-timestamp is more than 5 minutes from now")]
    Stale,
    /// No signature in the header matches any secret: 401.
    #[error("no signature matches")]
    BadSignature,
}

impl Refusal {
    /// The answer's status: tminus retries either, with a fresh timestamp
    /// and signature, so a receiver whose secret is being changed catches up.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadSignature => StatusCode::UNAUTHORIZED,
            Refusal::Malformed(_) | Refusal::Stale => StatusCode::BAD_REQUEST,
        }
    }
}

/// Checks a request against every secret (several during a rotation).
pub fn check(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[String],
    now: i64,
) -> Result<Genuine, Refusal> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or(Refusal::Malformed(name))
    };
    let id = header("webhook-id")?;
    let timestamp: i64 = header("webhook-timestamp")?
        .parse()
        .map_err(|_| Refusal::Malformed("webhook-timestamp"))?;
    let signature = header("webhook-signature")?;
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(Refusal::Stale);
    }
    let signed = |secret: &String| tminus::signing::verify(secret, id, timestamp, body, signature);
    if !secrets.iter().any(signed) {
        return Err(Refusal::BadSignature);
    }
    Ok(Genuine { id: id.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tminus::signing::Signer;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW: i64 = 1_800_000_000;

    fn signed(id: &str, ts: i64, body: &[u8], secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.into());
        let sig = Signer::new(secret).unwrap().sign(id, ts, body);
        h.insert("webhook-signature", sig.parse().unwrap());
        h
    }

    #[test]
    fn a_signed_fresh_request_passes_with_any_of_the_secrets() {
        let h = signed("msg_1", NOW - 10, b"{}", SECRET);
        let secrets = vec![tminus::signing::new_secret(), SECRET.to_owned()];
        assert_eq!(
            check(&h, b"{}", &secrets, NOW),
            Ok(Genuine { id: "msg_1".into() })
        );
    }

    #[test]
    fn five_minutes_either_way_is_the_limit() {
        let secrets = [SECRET.to_owned()];
        for (ts, ok) in [
            (NOW - TOLERANCE_SECS, true),
            (NOW + TOLERANCE_SECS, true),
            (NOW - TOLERANCE_SECS - 1, false),
            (NOW + TOLERANCE_SECS + 1, false),
        ] {
            let got = check(&signed("msg_1", ts, b"{}", SECRET), b"{}", &secrets, NOW);
            assert_eq!(got.is_ok(), ok, "timestamp {ts}: {got:?}");
            if !ok {
                assert_eq!(got.unwrap_err().status(), StatusCode::BAD_REQUEST);
            }
        }
    }

    #[test]
    fn another_secret_or_another_body_is_401() {
        let h = signed("msg_1", NOW, b"{}", SECRET);
        let other = [tminus::signing::new_secret()];
        assert_eq!(check(&h, b"{}", &other, NOW), Err(Refusal::BadSignature));
        let ours = [SECRET.to_owned()];
        let refused = check(&h, b"{ }", &ours, NOW).unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_missing_or_unreadable_header_is_400_naming_it() {
        let secrets = [SECRET.to_owned()];
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let mut h = signed("msg_1", NOW, b"{}", SECRET);
            h.remove(name);
            assert_eq!(
                check(&h, b"{}", &secrets, NOW),
                Err(Refusal::Malformed(name))
            );
        }
        let mut h = signed("msg_1", NOW, b"{}", SECRET);
        h.insert("webhook-timestamp", "soon".parse().unwrap());
        let refused = check(&h, b"{}", &secrets, NOW).unwrap_err();
        assert_eq!(refused, Refusal::Malformed("webhook-timestamp"));
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    }
}
