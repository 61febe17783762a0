//! What the benchmark reads of the services under test after a fan-out:
//! their metrics (peak lanes, failed attempts over all subscriptions), the
//! subscriptions set up (and which fleet endpoint each is), whether their
//! deliveries are all recorded, and the failed attempts of a set of
//! subscriptions (from their deliveries, as the metrics carry no
//! subscription label).

use super::fleet::hook_index;
use super::setup::Api;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use tminus::domain::status::DeliveryStatus;

/// A value of a service's `/metrics`, summed over the services; `None` if
/// unread.
async fn metric(
    http: &reqwest::Client,
    bases: &[String],
    admin: &str,
    series: &str,
) -> Option<u64> {
    let mut sum = 0;
    for base in bases {
        let req = http.get(format!("{base}/metrics")).bearer_auth(admin);
        let text = req.send().await.ok()?.text().await.ok()?;
        let line = text.lines().find(|l| l.starts_with(series))?;
        sum += line[series.len()..].trim().parse::<f64>().ok()? as u64;
    }
    Some(sum)
}

/// The most delivery lanes each service ran at once (`tminus_lanes_peak`),
/// summed over the services.
pub async fn peak_lanes(http: &reqwest::Client, bases: &[String], admin: &str) -> Option<u64> {
    metric(http, bases, admin, "tminus_lanes_peak ").await
}

/// Attempts that failed (`tminus_deliveries_total{outcome="failed"}`),
/// summed over the services.
pub async fn failed_attempts(http: &reqwest::Client, bases: &[String], admin: &str) -> Option<u64> {
    let series = "tminus_deliveries_total{outcome=\"failed\"} ";
    metric(http, bases, admin, series).await
}

/// The creator's subscriptions: each one's id and the subscription index
/// its hook URL names (`/hook/{w}/{s}`).
pub async fn subscriptions(api: &Api, key: &str) -> Vec<(String, usize)> {
    let url = format!("{}/api/v1/integration/webhook/webhook", api.base);
    pages(api, key, &url)
        .await
        .iter()
        .filter_map(|s| {
            let (_, i) = hook_index(s["hookUrl"].as_str()?)?;
            Some((s["id"].as_str()?.to_owned(), i))
        })
        .collect()
}

/// Every item of a list, page after page; what was read if a call fails.
async fn pages(api: &Api, key: &str, url: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut req = api
            .http
            .get(url)
            .header("x-api-key", key)
            .query(&[("limit", "1000")]);
        if let Some(a) = &after {
            req = req.query(&[("after", a)]);
        }
        let Ok(Ok(page)) = (match req.send().await {
            Ok(r) => Ok(r.json::<Value>().await),
            Err(e) => Err(e),
        }) else {
            return items;
        };
        items.extend(page["data"].as_array().into_iter().flatten().cloned());
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => return items,
        }
    }
}

/// Waits until tminus has recorded every outcome of `subs` (nothing
/// pending), for at most about 20 s.
pub async fn wait_recorded(api: &Api, key: &str, subs: &[String]) {
    for _ in 0..100 {
        let mut pending = 0;
        for id in subs {
            let url = format!(
                "{}/api/v1/integration/webhook/webhook/{id}/deliveries?status=pending&limit=1",
                api.base
            );
            if let Ok(r) = api.http.get(url).header("x-api-key", key).send().await {
                pending += r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["data"].as_array().map(|a| a.len()))
                    .unwrap_or(0);
            }
        }
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Failed attempts of the subscriptions `subs`, from their deliveries.
pub async fn failed_attempts_of(api: &Api, key: &str, subs: &[String]) -> u64 {
    let mut failed = 0;
    for id in subs {
        let url = format!(
            "{}/api/v1/integration/webhook/webhook/{id}/deliveries",
            api.base
        );
        failed += failed_in(&pages(api, key, &url).await);
    }
    failed
}

/// Failed attempts among deliveries: all of an undelivered one's, all but
/// the last of a delivered one's.
pub fn failed_in(deliveries: &[Value]) -> u64 {
    deliveries
        .iter()
        .map(|d| {
            let attempts = d["attempts"].as_u64().unwrap_or(0);
            let status = DeliveryStatus::deserialize(&d["status"]).ok();
            let delivered = status == Some(DeliveryStatus::Delivered);
            attempts.saturating_sub(u64::from(delivered))
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_delivered_delivery_s_last_attempt_did_not_fail() {
        let ds = [
            json!({"attempts": 1, "status": "delivered"}),
            json!({"attempts": 3, "status": "delivered"}),
            json!({"attempts": 2, "status": "pending"}),
            json!({"attempts": 4, "status": "expired"}),
            json!({"attempts": 0, "status": "pending"}),
        ];
        assert_eq!(super::failed_in(&ds), 2 + 2 + 4);
    }
}
