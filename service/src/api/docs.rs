//! The API reference for people at `/docs`: Redoc, rendering
//! `/api/openapi.json`. Everything the page loads comes from the binary
//! (the Redoc bundle `aide` embeds), so it works with no internet access.

use super::AppState;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use std::sync::OnceLock;

/// Where the page loads Redoc from.
pub const SCRIPT_PATH: &str = "/docs/redoc.standalone.js";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/docs", get(page))
        .route(SCRIPT_PATH, get(script))
}

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>tminus API reference</title>
    <style>body { margin: 0; font-family: system-ui, sans-serif; }</style>
  </head>
  <body>
    <div id="redoc"></div>
    <script src="/docs/redoc.standalone.js"></script>
    <script>
      Redoc.init("/api/openapi.json", { hideDownloadButton: false }, document.getElementById("redoc"));
    </script>
  </body>
</html>
"#;

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// The Redoc bundle `aide` embeds (1 MB, from its crate, no CDN). aide
/// only hands it out inlined in its own page, so it is cut out of that
/// page once: between the page's `<script>` and the `Redoc.init` call.
pub fn redoc_js() -> &'static str {
    static JS: OnceLock<String> = OnceLock::new();
    JS.get_or_init(|| {
        let html = aide::redoc::Redoc::new("").html();
        let start = html.find("<script>").map(|i| i + "<script>".len());
        let end = html.rfind("Redoc.init(");
        match (start, end) {
            (Some(s), Some(e)) if s < e => html[s..e].trim().to_owned(),
            _ => String::new(),
        }
    })
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        redoc_js(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bundle_is_cut_whole_from_aide() {
        let js = super::redoc_js();
        assert!(
            js.starts_with("/*! For license information"),
            "{}",
            &js[..80]
        );
        assert!(js.len() > 500_000);
        assert!(!js.contains("Redoc.init(\"\""));
    }
}
