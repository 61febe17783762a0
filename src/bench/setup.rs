//! What a benchmark run sets up through the API before it fires: a
//! creator and an API key, `--webinars` webinars two hours ahead, each with
//! `--participants` participants (the bulk API) and `--subscriptions`
//! subscriptions of its own to distinct receiver paths
//! (`/hook/{webinar}/{subscription}`); then it moves every webinar so their
//! reminders all fall due at one instant.

use super::BenchArgs;
use anyhow::{bail, Context};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// How long before the webinars start their one reminder falls due (the
/// offset the benchmark arms, and how long its fan-out has before what is
/// still unsent expires): `--lead`, or else 60 s plus a second per 10 000
/// deliveries the run makes, so that even a slow fan-out of the largest
/// runs ends before its webinar starts.
pub fn lead_s(args: &BenchArgs) -> i64 {
    args.lead.unwrap_or_else(|| {
        let deliveries = args.participants * args.webinars * args.subscriptions;
        60 + (deliveries / 10_000) as i64
    })
}

/// Calls made at once while setting up many webinars.
const AT_ONCE: usize = 16;

/// The admin and integration APIs of the first service.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub admin: String,
}

impl Api {
    /// A platform call with the admin token; an error unless 2xx.
    pub async fn admin(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/platform{path}", self.base);
        let req = self
            .http
            .request(method.parse()?, url)
            .bearer_auth(&self.admin);
        answer(
            if body.is_null() { req } else { req.json(&body) },
            method,
            path,
        )
        .await
    }

    /// An integration call with the API key; an error unless 2xx.
    pub async fn integrator(&self, key: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/integration/webhook/webhook{path}", self.base);
        answer(
            self.http.post(url).header("x-api-key", key).json(&body),
            "POST",
            path,
        )
        .await
    }
}

async fn answer(req: reqwest::RequestBuilder, method: &str, path: &str) -> anyhow::Result<Value> {
    let r = req.send().await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{method} {path}: {status} {v}");
    }
    Ok(v)
}

/// Runs `f` over `items`, [`AT_ONCE`] at a time, in order.
async fn each<'a, T, F, Fut, R>(items: &'a [T], f: F) -> anyhow::Result<Vec<R>>
where
    F: Fn(usize, &'a T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<R>>,
{
    use futures_util::{stream, StreamExt, TryStreamExt};
    stream::iter(items.iter().enumerate().map(|(i, t)| f(i, t)))
        .buffered(AT_ONCE)
        .try_collect()
        .await
}

/// What was set up: the creator's API key and the webinars' ids.
pub struct Platform {
    pub key: String,
    pub webinars: Vec<String>,
}

/// A creator, an API key for them, and `--webinars` webinars two hours
/// ahead.
pub async fn set_up(api: &Api, args: &BenchArgs) -> anyhow::Result<Platform> {
    let creator = json!({"name": "Bench", "timezone": "Asia/Kolkata"});
    let cid = api.admin("POST", "/creators", creator).await?["id"]
        .as_str()
        .context("creator")?
        .to_owned();
    let key = api
        .admin("POST", &format!("/creators/{cid}/api-keys"), json!({}))
        .await?["key"]
        .as_str()
        .context("key")?
        .to_owned();
    let far = Utc::now() + Duration::hours(2);
    let slots = vec![(); args.webinars];
    let webinars = each(&slots, |_, _| async {
        let body = json!({"creatorId": cid, "title": "Introduction to Digital Marketing",
            "link": "https://meet.google.com/abc-defg-hij", "fromTime": iso(far),
            "toTime": iso(far + Duration::hours(1))});
        let w = api.admin("POST", "/webinars", body).await?;
        Ok(w["id"].as_str().context("webinar")?.to_owned())
    })
    .await?;
    Ok(Platform { key, webinars })
}

/// Registers `--participants` participants in every webinar through the
/// bulk API, 100 000 a call.
pub async fn register(api: &Api, p: &Platform, people: usize) -> anyhow::Result<()> {
    each(&p.webinars, |_, wid| async move {
        let mut done = 0;
        while done < people {
            let n = (people - done).min(100_000);
            let body: Vec<Value> = (done..done + n)
                .map(|i| json!({"name": format!("Participant {i}"), "email": format!("p{i}@example.com"), "phone": "1234567890", "timezone": "+05:30"}))
                .collect();
            let path = format!("/webinars/{wid}/participants/bulk");
            api.admin("POST", &path, Value::Array(body)).await?;
            done += n;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// Subscribes one receiver path per base URL to each webinar: subscription
/// `i` of webinar `w` posts to `{bases[i]}/hook/{w}/{i}`.
pub async fn subscribe(
    api: &Api,
    p: &Platform,
    bases: &[&str],
    args: &BenchArgs,
) -> anyhow::Result<()> {
    each(&p.webinars, |w, wid| async move {
        for (i, base) in bases.iter().enumerate() {
            let mut body = json!({"hookUrl": format!("{base}/hook/{w}/{i}"),
                "event": "webinar.reminder.all", "webinar": wid, "maxConcurrency": args.concurrency});
            if args.batch > 1 {
                body["batchSize"] = json!(args.batch);
            }
            api.integrator(&p.key, "", body).await?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// Moves every webinar so its one reminder falls due at one instant, on a
/// whole millisecond (the API's precision), far enough ahead for every move
/// to be made first: lateness counts from the instant the service was
/// given. Returns that instant.
pub async fn fire(api: &Api, p: &Platform, lead_s: i64) -> anyhow::Result<DateTime<Utc>> {
    let lead = 1500 + 5 * p.webinars.len() as i64;
    let due = Utc::now() + Duration::milliseconds(lead);
    let due = DateTime::from_timestamp_millis(due.timestamp_millis()).unwrap_or(due);
    let from = due + Duration::seconds(lead_s);
    let t0 = std::time::Instant::now();
    each(&p.webinars, |_, wid| async move {
        let path = format!("/webinars/{wid}/reschedule");
        api.admin("POST", &path, json!({"fromTime": iso(from)}))
            .await
    })
    .await?;
    println!(
        "moved {} webinars in {:.2} s; due {} ms after the first move",
        p.webinars.len(),
        t0.elapsed().as_secs_f64(),
        lead
    );
    if Utc::now() >= due {
        bail!(
            "moving {} webinars took longer than {lead} ms",
            p.webinars.len()
        );
    }
    Ok(due)
}

fn iso(t: DateTime<Utc>) -> String {
    tminus::domain::payload::iso_millis(t)
}
