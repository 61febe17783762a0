//! The OpenAPI document and the docs page: served, committed, and offline.

use crate::helpers::spawn_app;

/// The committed copy is what the code generates.
#[test]
fn the_committed_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = tminus::api::openapi::document_json();
    assert!(
        committed == generated,
        "docs/openapi.json differs from what the code generates; \
         run `cargo run -- openapi > docs/openapi.json` and commit it"
    );
}

#[tokio::test]
async fn the_document_is_served_as_generated() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body = r.text().await.unwrap();
    assert_eq!(body, tminus::api::openapi::document_json());
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["adminToken"]["scheme"], "bearer");
    assert_eq!(schemes["apiKey"]["name"], "x-api-key");
    let hook = &doc["webhooks"]["webinarReminder"]["post"];
    let headers: Vec<&str> = hook["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for h in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert!(headers.contains(&h), "{h} missing from {headers:?}");
    }
    assert!(doc["webhooks"]["webinarReminderBatch"].is_object());
    // The SSRF guard's refusal is declared where it is answered.
    let subscribe = &doc["paths"]["/api/v1/integration/webhook/webhook"]["post"];
    assert!(subscribe["responses"]["422"].is_object());
}

/// The page loads only what the binary serves: no script or style from
/// any other host, and the script it names is there.
#[tokio::test]
async fn the_docs_page_works_offline() {
    let app = spawn_app().await;
    let page = app
        .http
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let srcs: Vec<&str> = html
        .split(['<', '>'])
        .filter(|tag| tag.starts_with("script") || tag.starts_with("link"))
        .flat_map(|tag| tag.split_whitespace())
        .filter_map(|attr| {
            attr.strip_prefix("src=\"")
                .or_else(|| attr.strip_prefix("href=\""))
        })
        .map(|v| v.trim_end_matches('"'))
        .collect();
    assert!(!srcs.is_empty(), "the page loads no script: {html}");
    for src in &srcs {
        assert!(
            !src.contains("//") && src.starts_with('/'),
            "{src} is not served by tminus"
        );
        let r = app
            .http
            .get(format!("{}{src}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{src}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        assert!(r.text().await.unwrap().contains("Redoc"));
    }
}
