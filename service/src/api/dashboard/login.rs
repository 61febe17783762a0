//! The ways in and out of both sites: the login forms (the admin token for
//! `/dashboard`, an API key for `/portal`), a portal link
//! (`/portal/enter?token=`), and logout. Every way in makes a new session
//! with a nonce of the server's (`session`), whatever cookie the browser
//! came with, and records it in the store (`store::Sessions`); logout
//! ends it there, so a copy of the cookie opens nothing afterwards, on any
//! instance.
//!
//! The login form is guarded against other sites' posts (which would log a
//! browser in to someone else's portal) as the other forms are, by a token
//! and a `SameSite=Strict` cookie: the form's page sets `tminus_login`, a
//! random value, and carries a token derived from it; a login whose token
//! is not that cookie's is refused before the credential is looked at. The
//! logout form carries the session's own token: another site cannot end
//! it either.

use super::pages::{stale, RetryForm};
use super::render;
use super::session::{login_nonce, Scope};
use super::site::{Base, Viewer};
use super::viewer::{cookies, set_cookie, signer, to_login, LOGIN_COOKIE};
use crate::api::client::ClientAddr;
use crate::api::error::ApiError;
use crate::api::extract::{failed, key_hash, not_blocked};
use crate::api::AppState;
use crate::store::{SessionRecord, StoreError};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Duration;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How long a login lasts.
const SESSION_HOURS: i64 = 12;

/// Starts a session for `scope` on `base` (opened with the API key whose
/// hash is `key`, if any), records it, and sends the browser to the site.
async fn signed_in(
    s: &AppState,
    base: Base,
    scope: Scope,
    key: Option<String>,
) -> Result<Response, Response> {
    let age = Duration::hours(SESSION_HOURS);
    let now = s.ctx.clock.now();
    let (session, value) = signer(s).start(scope, now + age);
    let record = SessionRecord {
        id: session.id(),
        creator_id: match session.scope {
            Scope::Operator => None,
            Scope::Creator(c) => Some(c),
        },
        key_hash: key,
        created_at: now,
        expires_at: session.expires,
    };
    if let Err(e) = s.ctx.catalog.start_session(&record).await {
        return Err(render::failure(e.into()));
    }
    let mut r = Redirect::to(base.path()).into_response();
    let cookie = set_cookie(base, base.cookie(), Some((&value, Some(age))));
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(r)
}

/// Whether a login cookie's value is one this service could have made
/// (22 characters of URL-safe base64), so it can be used again.
fn well_formed(v: &str) -> bool {
    v.len() == 22
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The login form of `base` with `status` and why the last try failed:
/// its token is for the browser's login cookie, which is set when it has
/// none yet (kept otherwise, so two open forms both work).
fn form(
    s: &AppState,
    base: Base,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let kept = cookies(headers, LOGIN_COOKIE).find(|v| well_formed(v));
    let nonce = kept.map_or_else(login_nonce, str::to_owned);
    let token = signer(s).login_token(&nonce);
    let mut r = (status, render::login(base, error, &token)).into_response();
    if kept.is_none() {
        let cookie = set_cookie(base, LOGIN_COOKIE, Some((&nonce, None)));
        r.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    r
}

/// The login form of the site the path names.
pub async fn login_form(State(s): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    form(&s, Base::of(uri.path()), &headers, StatusCode::OK, None)
}

/// The login form's fields: the admin token or an API key, and the form's
/// token (absent: refused like a wrong one).
#[derive(Deserialize)]
pub struct Login {
    credential: String,
    #[serde(default)]
    csrf: String,
}

/// Checks the form's token, then the admin token (dashboard) or an API
/// key (portal); failed credentials count against the client address as
/// the API's do.
pub async fn login(
    State(s): State<AppState>,
    client: ClientAddr,
    uri: Uri,
    headers: HeaderMap,
    Form(f): Form<Login>,
) -> Response {
    let base = Base::of(uri.path());
    if not_blocked(&s, client).is_err() {
        let why = "Too many failed attempts; try again later.";
        return form(&s, base, &headers, StatusCode::TOO_MANY_REQUESTS, Some(why));
    }
    let signer = signer(&s);
    if !cookies(&headers, LOGIN_COOKIE).any(|n| signer.login_checks(n, &f.csrf)) {
        let why = "This form is from another page or has expired; log in again here.";
        return form(&s, base, &headers, StatusCode::FORBIDDEN, Some(why));
    }
    let found = match base {
        Base::Dashboard => {
            let given = Sha256::digest(f.credential.as_bytes());
            let admin = Sha256::digest(s.ctx.admin_token.as_bytes());
            (given == admin).then_some((Scope::Operator, None))
        }
        Base::Portal => {
            let hash = key_hash(&f.credential);
            match s.ctx.catalog.creator_for_key(&hash).await {
                Ok(c) => Some((Scope::Creator(c), Some(hash))),
                Err(StoreError::NotFound) => None,
                Err(e) => return render::failure(e.into()),
            }
        }
    };
    match found {
        Some((scope, key)) => signed_in(&s, base, scope, key).await.unwrap_or_else(|e| e),
        None => {
            let _ = failed(&s, client, ApiError::not_found("credential"));
            let what = match base {
                Base::Dashboard => "That is not the admin token.",
                Base::Portal => "That API key is not valid or was revoked.",
            };
            form(&s, base, &headers, StatusCode::UNAUTHORIZED, Some(what))
        }
    }
}

/// Ends the session, in the store and in the browser, when the form
/// carries its token; a browser without a live session is only sent to
/// the login form.
pub async fn logout(
    State(s): State<AppState>,
    uri: Uri,
    viewer: Result<Viewer, Response>,
    Form(f): Form<RetryForm>,
) -> Response {
    let base = Base::of(uri.path());
    match viewer {
        Ok(v) if !v.checks(&f.csrf) => return stale().into_response(),
        Ok(v) => {
            let now = s.ctx.clock.now();
            if let Err(e) = s.ctx.catalog.end_session(&v.session.id(), now).await {
                return render::failure(e.into());
            }
        }
        // The store could not say: the session may still be live.
        Err(r) if r.status().is_server_error() => return r,
        Err(_) => {}
    }
    to_login(base, true)
}

#[derive(Deserialize)]
pub struct Enter {
    token: String,
}

/// Opens a portal session from a link the platform made. The answer is a
/// page that moves on by itself: a `SameSite=Strict` cookie set on a
/// navigation from another site (an e-mail, a chat) is not sent on a
/// redirect of that same navigation, but is on the page's own next one.
pub async fn enter(State(s): State<AppState>, Query(q): Query<Enter>) -> Response {
    let Some(c) = signer(&s).open_link(&q.token, s.ctx.clock.now()) else {
        let why = "This link is not valid or has expired.";
        return render::failure(ApiError::new(StatusCode::FORBIDDEN, "invalid_link", why));
    };
    let mut r = match signed_in(&s, Base::Portal, Scope::Creator(c), None).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().remove(header::LOCATION);
    *r.body_mut() = axum::body::Body::from(render::entering().into_string());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}
