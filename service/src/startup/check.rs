//! The checks a start makes before it serves: the settings on their own
//! (`Config::check`), then what each component makes of them: the keys that
//! seal secrets, the target guard's ranges, the certificate files, and the
//! operational webhook's URL and secret. Errors refuse the start; warnings
//! are logged. `tminus config --check` prints the same.

use crate::config::Config;
use crate::delivery::guard::{self, Policy};
use crate::secrets::SecretKeys;

/// Problems worth refusing to start for, and ones worth a warning.
pub fn check(config: &Config) -> (Vec<String>, Vec<String>) {
    let (mut errors, mut warnings) = config.check();
    if let Err(e) = SecretKeys::configured(config) {
        errors.push(format!("secret key: {e}"));
    }
    match Policy::configured(config) {
        Err(e) => errors.push(e),
        Ok(p) if p.allow_private && !p.allow.is_empty() => warnings.push(
            "--allow-targets has no effect: --allow-private-targets turns the target guard off"
                .into(),
        ),
        Ok(p) => {
            for net in &p.allow {
                let meta = guard::ranges::METADATA;
                if let Some(m) = meta.iter().find(|m| net.contains(*m)) {
                    warnings.push(format!(
                        "allow-targets {net} contains the cloud metadata address {m}, which stays refused"
                    ));
                }
            }
        }
    }
    for (name, file) in [
        ("database-ca", &config.database_ca),
        ("target-ca", &config.target_ca),
    ] {
        if let Some(Err(e)) = file.as_deref().map(crate::certs::pem_certificates) {
            errors.push(format!("{name}: {e:#}"));
        }
    }
    errors.extend(operational_errors(config));
    (errors, warnings)
}

/// What is wrong with the operational webhooks' URL (as a hook URL would be
/// refused) and secret.
fn operational_errors(config: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    let given = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    if let Some(url) = given(&config.operational_webhook_url) {
        let checked = crate::domain::hook_url::HookUrl::parse(&url, config.allow_http)
            .map_err(|e| e.to_string())
            .and_then(|u| match Policy::configured(config) {
                Ok(p) => p.check_url(u.url()),
                Err(_) => Ok(()),
            });
        if let Err(e) = checked {
            errors.push(format!("operational-webhook-url: {e}"));
        }
    }
    if let Some(s) = given(&config.operational_webhook_secret) {
        let prefixed = s.trim().starts_with(crate::signing::SECRET_PREFIX);
        if !prefixed || crate::signing::Signer::new(s.trim()).is_err() {
            errors.push("operational-webhook-secret: expected whsec_ followed by base64".into());
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn allow_targets_is_checked_at_start() {
        let mut c = Config::defaults();
        c.allow_targets = vec!["10.0.0.0/8".into(), "nonsense".into()];
        let (errors, _) = super::check(&c);
        assert!(errors.iter().any(|e| e.contains("nonsense")), "{errors:?}");
        c.allow_targets = vec!["169.254.0.0/16".into()];
        let (errors, warnings) = super::check(&c);
        assert!(
            !errors.iter().any(|e| e.contains("allow-targets")),
            "{errors:?}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("169.254.169.254")),
            "{warnings:?}"
        );
    }

    #[test]
    fn the_operational_webhook_settings_are_checked_at_start() {
        let errors = |url: &str, secret: Option<&str>, http: bool| {
            let mut c = Config::defaults();
            c.operational_webhook_url = Some(url.into());
            c.operational_webhook_secret = secret.map(Into::into);
            c.allow_http = http;
            super::check(&c).0
        };
        assert!(errors("https://platform.example/ops", None, false).is_empty());
        let good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert!(errors("https://platform.example/ops", Some(good), false).is_empty());
        let refused = [
            errors("http://platform.example/ops", None, false),
            errors("ops", None, false),
            // The target guard, as for a hook URL.
            errors("https://127.0.0.1/ops", None, false),
            errors(
                "https://platform.example/ops",
                Some("MfKQ9r8GKYqrTwjUPD8I"),
                false,
            ),
            errors(
                "https://platform.example/ops",
                Some("whsec_not base64!"),
                false,
            ),
        ];
        for (i, e) in refused.iter().enumerate() {
            assert_eq!(e.len(), 1, "case {i}: {e:?}");
            assert!(e[0].starts_with("operational-webhook-"), "case {i}: {e:?}");
        }
    }
}
