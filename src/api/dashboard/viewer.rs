//! Who is looking: the session cookie read into a [`Viewer`] (a page
//! without one sends the browser to its login form), and the ways in and
//! out: the login forms (the admin token for `/dashboard`, an API key for
//! `/portal`), a portal link (`/portal/enter?token=`), and logout. The
//! cookie is `Secure`, `HttpOnly` and `SameSite=Strict`, and holds a
//! signed session (`session`), never the token or the key.

use super::render;
use super::session::{Scope, Session, Signer};
use crate::api::client::ClientAddr;
use crate::api::extract::{failed, key_hash, not_blocked};
use crate::api::AppState;
use crate::store::{CreatorId, StoreError, Subscription};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Duration;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The cookie's name.
const COOKIE: &str = "tminus_session";

/// How long a login lasts.
const SESSION_HOURS: i64 = 12;

/// Which of the two sites a page belongs to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Base {
    /// `/dashboard`: the operator's, everything.
    Dashboard,
    /// `/portal`: one creator's.
    Portal,
}

impl Base {
    /// Where the site's pages live.
    pub fn path(self) -> &'static str {
        match self {
            Base::Dashboard => "/dashboard",
            Base::Portal => "/portal",
        }
    }

    fn of(path: &str) -> Base {
        if path.starts_with("/portal") {
            Base::Portal
        } else {
            Base::Dashboard
        }
    }
}

/// A signed-in browser on one of the two sites.
pub struct Viewer {
    pub session: Session,
    pub base: Base,
    /// The token this session's forms carry.
    pub csrf: String,
}

impl Viewer {
    /// The one creator this viewer may see, or `None` for everything.
    pub fn creator(&self) -> Option<&CreatorId> {
        match &self.session.scope {
            Scope::Operator => None,
            Scope::Creator(c) => Some(c),
        }
    }

    /// Whether `sub` is within this viewer's sight.
    pub fn sees(&self, sub: &Subscription) -> bool {
        self.creator().is_none_or(|c| *c == sub.creator_id)
    }

    /// Whether a form's token is this session's.
    pub fn checks(&self, csrf: &str) -> bool {
        Sha256::digest(csrf.as_bytes()) == Sha256::digest(self.csrf.as_bytes())
    }
}

fn signer(s: &AppState) -> Signer {
    Signer::new(&s.ctx.admin_token)
}

/// The session cookie's value, if the request has one.
fn cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let base = Base::of(parts.uri.path());
        let signer = signer(s);
        let session = cookie(parts)
            .and_then(|v| signer.open(v, s.ctx.clock.now()))
            .filter(|x| matches!(x.scope, Scope::Operator) == (base == Base::Dashboard));
        match session {
            Some(session) => Ok(Viewer {
                csrf: signer.csrf(&session),
                session,
                base,
            }),
            None => Err(Redirect::to(&format!("{}/login", base.path())).into_response()),
        }
    }
}

/// The `Set-Cookie` for a session value, or one that ends it (`None`).
fn set_cookie(value: Option<(&str, Duration)>) -> HeaderValue {
    let (v, age) = value.unwrap_or(("", Duration::zero()));
    let c = format!(
        "{COOKIE}={v}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Strict",
        age.num_seconds()
    );
    HeaderValue::from_str(&c).expect("a cookie of safe characters")
}

/// Starts a session for `scope` and sends the browser to `to`.
fn signed_in(s: &AppState, scope: Scope, to: &str) -> Response {
    let age = Duration::hours(SESSION_HOURS);
    let (_, value) = signer(s).start(scope, s.ctx.clock.now() + age);
    let mut r = Redirect::to(to).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(Some((&value, age))));
    r
}

/// The login form of the site the path names.
pub async fn login_form(uri: axum::http::Uri) -> Response {
    render::login(Base::of(uri.path()), None).into_response()
}

/// The login form's one field: the admin token or an API key.
#[derive(Deserialize)]
pub struct Login {
    credential: String,
}

/// Checks the admin token (dashboard) or an API key (portal); failures
/// count against the client address as the API's do.
pub async fn login(
    State(s): State<AppState>,
    client: ClientAddr,
    uri: axum::http::Uri,
    Form(f): Form<Login>,
) -> Response {
    let base = Base::of(uri.path());
    if not_blocked(&s, client).is_err() {
        let page = render::login(base, Some("Too many failed attempts; try again later."));
        return (StatusCode::TOO_MANY_REQUESTS, page).into_response();
    }
    let scope = match base {
        Base::Dashboard => {
            let given = Sha256::digest(f.credential.as_bytes());
            (given == Sha256::digest(s.ctx.admin_token.as_bytes())).then_some(Scope::Operator)
        }
        Base::Portal => match s.ctx.store.creator_for_key(&key_hash(&f.credential)).await {
            Ok(c) => Some(Scope::Creator(c)),
            Err(StoreError::NotFound) => None,
            Err(e) => return render::failure(e.into()),
        },
    };
    match scope {
        Some(scope) => signed_in(&s, scope, base.path()),
        None => {
            let _ = failed(&s, client, crate::error::ApiError::not_found("credential"));
            let what = match base {
                Base::Dashboard => "That is not the admin token.",
                Base::Portal => "That API key is not valid or was revoked.",
            };
            (StatusCode::UNAUTHORIZED, render::login(base, Some(what))).into_response()
        }
    }
}

/// Ends the session (the cookie is replaced by an expired one).
pub async fn logout(uri: axum::http::Uri) -> Response {
    let base = Base::of(uri.path());
    let mut r = Redirect::to(&format!("{}/login", base.path())).into_response();
    r.headers_mut().insert(header::SET_COOKIE, set_cookie(None));
    r
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
    match signer(&s).open_link(&q.token, s.ctx.clock.now()) {
        Some(c) => {
            let mut r = signed_in(&s, Scope::Creator(c), "/portal");
            *r.status_mut() = StatusCode::OK;
            r.headers_mut().remove(header::LOCATION);
            *r.body_mut() = axum::body::Body::from(render::entering().into_string());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        None => {
            let page = render::login(Base::Portal, Some("This link is not valid or has expired."));
            (StatusCode::FORBIDDEN, page).into_response()
        }
    }
}
