//! The admin CLI's HTTP client: the platform API at `--url`, with the admin
//! token as a bearer. Turns the API's error body into a readable error
//! (`code: message (field)`) and follows list cursors to the end.

use anyhow::{bail, Context};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A client of one running tminus.
pub struct Client {
    http: reqwest::Client,
    /// The platform API's root: `{url}/api/v1/platform`.
    root: String,
    token: String,
}

/// A refusal by the API: its status and error body.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {code}: {message}{}", field.as_deref().map(|f| format!(" ({f})")).unwrap_or_default())]
pub struct Refused {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    /// Every fault, when the API listed several (`error.errors`).
    pub all: Vec<Value>,
}

impl Client {
    pub fn new(url: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            root: format!("{}/api/v1/platform", url.trim_end_matches('/')),
            token: token.to_owned(),
        }
    }

    /// One call; an answer that is not 2xx is an error ([`Refused`] when it
    /// has the API's error shape).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.root);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.with_context(|| format!("calling {url}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let e = &value["error"];
        let Some(code) = e["code"].as_str() else {
            bail!("{url} answered {status}: {text}");
        };
        Err(Refused {
            status,
            code: code.to_owned(),
            message: e["message"].as_str().unwrap_or_default().to_owned(),
            field: e["field"].as_str().map(str::to_owned),
            all: e["errors"].as_array().cloned().unwrap_or_default(),
        }
        .into())
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Every item of a list (`query` without `limit` and `after`), page by
    /// page, stopping after `max` items when given.
    pub async fn list(
        &self,
        path: &str,
        query: &[(&str, &str)],
        max: Option<usize>,
    ) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let want = max.map_or(1000, |m| (m - items.len()).clamp(1, 1000));
            let mut q: Vec<(&str, String)> =
                query.iter().map(|(k, v)| (*k, v.to_string())).collect();
            q.push(("limit", want.to_string()));
            if let Some(a) = &after {
                q.push(("after", a.clone()));
            }
            let qs = serde_urlencoded::to_string(&q)?;
            let page = self.get(&format!("{path}?{qs}")).await?;
            items.extend(page["data"].as_array().cloned().unwrap_or_default());
            after = page["next"].as_str().map(str::to_owned);
            if after.is_none() || max.is_some_and(|m| items.len() >= m) {
                return Ok(items);
            }
        }
    }
}
