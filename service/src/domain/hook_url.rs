//! The receiver's URL, checked once when a subscription is made: absolute,
//! `https://` (or `http://` where the operator allows it), with a host and no
//! credentials. Whether its address is private is the delivery guard's
//! business: the API asks it about IP literals and `localhost` names at
//! subscribe time, and it judges every resolved address at send time,
//! because DNS can change after subscribing.

use url::Url;

/// A hook URL that passed the subscription-time checks.
#[derive(Clone, Debug, PartialEq)]
pub struct HookUrl(Url);

/// Why a hook URL was refused; the message is shown to the integrator.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BadHookUrl {
    #[error("hookUrl is not an absolute URL")]
    NotAbsolute,
    #[error("hookUrl must use https (http is not allowed by this server)")]
    SchemeNotAllowed,
    #[error("hookUrl must not carry user name or password")]
    HasCredentials,
    #[error("hookUrl is longer than 2048 characters")]
    TooLong,
}

impl HookUrl {
    /// Checks `raw`; `allow_http` is the operator's `--allow-http`.
    pub fn parse(raw: &str, allow_http: bool) -> Result<Self, BadHookUrl> {
        if raw.len() > 2048 {
            return Err(BadHookUrl::TooLong);
        }
        let url = Url::parse(raw.trim()).map_err(|_| BadHookUrl::NotAbsolute)?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            "http" => return Err(BadHookUrl::SchemeNotAllowed),
            _ => return Err(BadHookUrl::NotAbsolute),
        }
        if url.host().is_none() {
            return Err(BadHookUrl::NotAbsolute);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BadHookUrl::HasCredentials);
        }
        Ok(Self(url))
    }

    /// The parsed URL (its IPv4 host in canonical form, whatever spelling
    /// was given: `0x7f.1` is `127.0.0.1`).
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The URL as stored and shown.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_scheme_and_shape() {
        assert!(HookUrl::parse("https://example.com/hook", false).is_ok());
        assert_eq!(
            HookUrl::parse("http://example.com/hook", false),
            Err(BadHookUrl::SchemeNotAllowed)
        );
        assert!(HookUrl::parse("http://example.com/hook", true).is_ok());
        assert_eq!(HookUrl::parse("/hook", true), Err(BadHookUrl::NotAbsolute));
        assert_eq!(
            HookUrl::parse("ftp://x.com/", true),
            Err(BadHookUrl::NotAbsolute)
        );
        assert_eq!(
            HookUrl::parse("https://u:p@example.com/", false),
            Err(BadHookUrl::HasCredentials)
        );
        assert_eq!(
            HookUrl::parse("<your webhook url>", false),
            Err(BadHookUrl::NotAbsolute)
        );
    }
}
