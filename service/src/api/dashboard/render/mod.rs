//! The dashboard's HTML, written with maud: every value is escaped by the
//! template, the page links one embedded stylesheet and one small script
//! (`assets`), and nothing comes from elsewhere (the Content-Security-Policy
//! says so). Pure: each function turns what the handlers gathered into a
//! page. Here the frame every page shares (`Page`, its layout), the login,
//! the portal link's page and the error page; the overview (`overview`)
//! and a subscription's page (`subscription`) have a module each.

mod overview;
mod subscription;

pub use overview::{overview, running, Overview};
pub use subscription::{subscription, SubscriptionPage};

use super::site::{Base, Viewer};
use crate::api::error::ApiError;
use crate::domain::payload::iso_millis;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

/// What the pages may load: their own stylesheet and script, nothing else.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A whole page: HTML that is never cached nor framed.
pub struct Page(Markup);

impl Page {
    /// The HTML, for a response built by hand.
    pub fn into_string(self) -> String {
        self.0.into_string()
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut r = (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.0.into_string(),
        )
            .into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        r
    }
}

fn site(base: Base) -> &'static str {
    match base {
        Base::Dashboard => "Operator dashboard",
        Base::Portal => "Creator portal",
    }
}

/// The frame around every page; `v` adds the logout button.
fn layout(base: Base, title: &str, v: Option<&Viewer>, body: Markup) -> Page {
    Page(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tminus" }
                link rel="stylesheet" href="/dashboard/assets/style.css";
            }
            body {
                header {
                    a.brand href=(base.path()) { "tminus" }
                    span.site { (site(base)) }
                    @if let Some(v) = v {
                        form.logout method="post" action={ (base.path()) "/logout" } {
                            input type="hidden" name="csrf" value=(v.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
                script src="/dashboard/assets/live.js" defer {}
            }
        }
    })
}

/// The login form, with why the last try failed, and its token.
pub fn login(base: Base, error: Option<&str>, csrf: &str) -> Page {
    let label = match base {
        Base::Dashboard => "Admin token",
        Base::Portal => "API key (x-api-key)",
    };
    layout(
        base,
        "Log in",
        None,
        html! {
            h1 { "Log in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form #login method="post" action={ (base.path()) "/login" } {
                input type="hidden" name="csrf" value=(csrf);
                label for="credential" { (label) }
                input #credential type="password" name="credential" autocomplete="off" required;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// The page a portal link answers: it moves on to the portal by itself.
pub fn entering() -> Page {
    Page(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="0; url=/portal";
                title { "Opening the portal · tminus" }
            }
            body { p { a href="/portal" { "Open the portal" } } }
        }
    })
}

/// An error as a page, with the API error's status.
pub fn failure(e: ApiError) -> Response {
    let status = match &e {
        ApiError::Client { status, .. } => *status,
        ApiError::Internal(cause) => {
            tracing::error!(error = %crate::telemetry::causes(cause), "dashboard page failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let page = layout(
        Base::Dashboard,
        "Error",
        None,
        html! { h1 { (status.as_u16()) } p.error { (reason(&e)) } },
    );
    (status, page).into_response()
}

/// What to tell the viewer about an error.
pub fn reason(e: &ApiError) -> String {
    match e {
        ApiError::Client { message, .. } => message.clone(),
        ApiError::Internal(_) => "Something went wrong on our side.".into(),
    }
}

/// An instant as the pages show it; nothing when there is none.
fn at(t: Option<DateTime<Utc>>) -> String {
    t.map(iso_millis).unwrap_or_default()
}
