//! The operational subscription at start, brought in line with the
//! settings: made on the first start with `--operational-webhook-url`
//! (with `--operational-webhook-secret`, or a generated secret shown once,
//! in a file), pointed at a changed URL, re-keyed when another secret is
//! given (the old one signs on for `--secret-grace`, as after a rotation),
//! enabled again if it was disabled, and disabled when the URL is taken
//! away. The secret is kept as every signing secret is: in the store,
//! sealed under `--secret-key`; never in the log.

use crate::config::Config;
use crate::domain::hook_url::HookUrl;
use crate::domain::ids::Id;
use crate::secrets::SecretKeys;
use crate::store::{
    Catalog, NewSubscription, SubscriptionId, SubscriptionStatus, OPERATIONAL_CREATOR,
    OPERATIONAL_EVENT,
};
use anyhow::Context;

/// The file a generated secret is shown in.
pub const SECRET_FILE: &str = "tminus-operational-webhook-secret";

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Makes or updates the operational subscription as `config` says;
/// answers its id when operational webhooks are on.
pub async fn install(
    config: &Config,
    store: &dyn Catalog,
    keys: &SecretKeys,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Option<SubscriptionId>> {
    let existing = store.operational_subscription().await?;
    let Some(url) = given(&config.operational_webhook_url) else {
        if let Some(s) = existing.filter(|s| s.status == SubscriptionStatus::Active) {
            store.point_operational(&s.id, None).await?;
            tracing::info!("no --operational-webhook-url: operational webhooks turned off");
        }
        return Ok(None);
    };
    let url = HookUrl::parse(url, config.allow_http)?.as_str().to_owned();
    let secret = given(&config.operational_webhook_secret);
    let sub = match existing {
        Some(s) => s,
        None => {
            let fresh = secret.map_or_else(crate::signing::new_secret, str::to_owned);
            let n = NewSubscription {
                creator_id: Id::trusted(OPERATIONAL_CREATOR.to_owned()),
                hook_url: url.clone(),
                event: OPERATIONAL_EVENT.into(),
                webinar_id: None,
                mango_id: None,
                secret: keys.seal(&fresh),
                tuning: crate::store::Tuning {
                    max_concurrency: config.default_max_concurrency,
                    rate_per_second: None,
                    batch_size: 1,
                    late_budget_ms: crate::delivery::forecast::DEFAULT_LATE_BUDGET_MS,
                    send_early_ms: 0,
                },
            };
            let (s, made) = store.make_operational(&n).await?;
            if made && secret.is_none() {
                show(config, &fresh)?;
            }
            s
        }
    };
    if sub.hook_url != url || sub.status != SubscriptionStatus::Active {
        store.point_operational(&sub.id, Some(&url)).await?;
    }
    if let Some(secret) = secret {
        let kept = keys
            .open(&sub.secret)
            .context("the operational webhooks' secret")?;
        if kept != secret {
            let grace = chrono::Duration::from_std(config.secret_grace).unwrap_or_default();
            let until = now + grace;
            store
                .rotate_secret(&sub.id, &keys.seal(secret), until)
                .await?;
            tracing::info!(
                "operational webhooks: signing with the --operational-webhook-secret given; the old secret signs too until the grace ends"
            );
        }
    }
    tracing::info!(subscription = %sub.id, url = %url, "operational webhooks on (their deliveries: GET /api/v1/platform/subscriptions/{}/deliveries)", sub.id);
    Ok(Some(sub.id))
}

/// Shows a generated secret once: in a file readable by its owner only,
/// whose path (never the secret) is logged.
fn show(config: &Config, secret: &str) -> anyhow::Result<()> {
    let path = crate::startup::kept_file(&config.database, SECRET_FILE);
    crate::startup::replace_private(&path, secret).with_context(|| {
        format!(
            "writing the operational webhooks' secret to {}",
            path.display()
        )
    })?;
    tracing::warn!(file = %path.display(), "no --operational-webhook-secret: generated one for the operational webhooks; read it in the file, give it to the platform, then delete the file (it is not shown again)");
    Ok(())
}
