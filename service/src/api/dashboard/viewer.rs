//! Who is looking: the site's session cookie read into a [`Viewer`] (a page
//! without a live session sends the browser to its login form), and the
//! cookies themselves. Each site has its own: `tminus_session` with
//! `Path=/dashboard` for the operator, `tminus_portal` with `Path=/portal`
//! for a creator, so a portal opened in the operator's browser leaves the
//! operator's session alone. Every cookie is `Secure`, `HttpOnly` and
//! `SameSite=Strict`, and holds a signed session (`session`), never the
//! token or the key. A signed session opens pages only while the store
//! says it is live (`store::Sessions`): not logged out, not expired, and
//! its API key, if it was opened with one, not revoked. The ways in and
//! out are in `login`. [`Seen`] is the dashboard's loader: the viewer and
//! the subscription the path names, when the viewer may see it.

use super::render;
use super::session::{Session, Signer};
use super::site::{Base, Viewer};
use crate::api::error::ApiError;
use crate::api::load;
use crate::api::AppState;
use crate::store::Subscription;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Duration;

/// The name of the login form's cookie (one per site, by its path).
pub const LOGIN_COOKIE: &str = "tminus_login";

/// The signer for this service's admin token.
pub fn signer(s: &AppState) -> Signer {
    Signer::new(&s.ctx.admin_token)
}

/// Every value the request has for cookie `name` (a browser may send an
/// older one of the same name too, set for another path).
pub fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let base = Base::of(parts.uri.path());
        let signer = signer(s);
        let now = s.ctx.clock.now();
        // Each signed value of the site's name, most specific path first
        // as browsers send them (an older cookie of the same name may
        // follow): the first the store says is live.
        let signed: Vec<Session> = cookies(&parts.headers, base.cookie())
            .filter_map(|v| signer.open(v, now))
            .filter(|x| base.admits(&x.scope))
            .collect();
        for session in &signed {
            match s.ctx.catalog.session_live(&session.id(), now).await {
                Ok(true) => {
                    return Ok(Viewer {
                        csrf: signer.csrf(session),
                        session: session.clone(),
                        base,
                    })
                }
                Ok(false) => {}
                Err(e) => return Err(render::failure(e.into())),
            }
        }
        // Logged out, or its key revoked: the cookie goes too.
        Err(to_login(base, !signed.is_empty()))
    }
}

/// A subscription the viewer may see, named by the path's `{id}`; one the
/// viewer may not see is not found, as one that does not exist.
pub struct Seen {
    pub viewer: Viewer,
    pub sub: Subscription,
}

impl FromRequestParts<AppState> for Seen {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let viewer = Viewer::from_request_parts(parts, s).await?;
        match load::path_subscription(parts, s).await {
            Ok(sub) if viewer.sees(&sub) => Ok(Seen { viewer, sub }),
            Ok(_) => Err(render::failure(ApiError::not_found("subscription"))),
            Err(e) => Err(render::failure(e)),
        }
    }
}

/// To the site's login form; `forget` also ends the browser's cookie.
pub fn to_login(base: Base, forget: bool) -> Response {
    let mut r = Redirect::to(&format!("{}/login", base.path())).into_response();
    if forget {
        r.headers_mut()
            .insert(header::SET_COOKIE, set_cookie(base, base.cookie(), None));
    }
    r
}

/// The `Set-Cookie` for cookie `name` of site `base`: `value` for `age`
/// (`None` for as long as the browser runs), or one that ends it
/// (`value` `None`).
pub fn set_cookie(base: Base, name: &str, value: Option<(&str, Option<Duration>)>) -> HeaderValue {
    let (v, age) = value.unwrap_or(("", Some(Duration::zero())));
    let age = age.map_or(String::new(), |a| format!("; Max-Age={}", a.num_seconds()));
    let c = format!(
        "{name}={v}; Path={}{age}; Secure; HttpOnly; SameSite=Strict",
        base.path()
    );
    HeaderValue::from_str(&c).expect("a cookie of safe characters")
}
