//! `POST /api/v1/platform/creators/{id}/portal-link` (admin token): a
//! short-lived signed link (`--portal-link-ttl`, 15 minutes by default)
//! that opens the creator portal for that creator only. The link holds no
//! credential: a creator id, an expiry and a signature (`session`).

use super::session::Signer;
use crate::api::answer::Created;
use crate::api::error::ApiResult;
use crate::api::load::AdminCreator;
use crate::api::openapi::{errors, Routes};
use crate::api::AppState;
use crate::domain::payload::iso_millis;
use aide::axum::routing::post;
use aide::axum::ApiRouter;
use aide::transform::TransformOperation as Op;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use schemars::JsonSchema;
use serde::Serialize;
use std::convert::Infallible;

/// The portal-link route, mounted with the platform API.
pub fn routes() -> ApiRouter<AppState> {
    Routes::new(describe)
        .route("/creators/{id}/portal-link", post(portal_link))
        .tagged("platform")
}

fn describe<'a>(_: &str, _: &str, op: Op<'a>) -> Op<'a> {
    errors(
        op.summary("Make a link to a creator's portal").description(
            "A signed link, valid for `--portal-link-ttl` (15 minutes by default), that \
             opens the creator portal (that creator's subscriptions and deliveries, with \
             replay) in a browser, without an API key.",
        ),
        &[(404, "No such creator (`not_found`).")],
    )
}

/// A link to one creator's portal.
#[derive(Serialize, JsonSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct PortalLink {
    /// Opens the portal; for this creator only, until `expiresAt`.
    #[schemars(url)]
    pub url: String,
    pub expires_at: String,
}

/// Where the caller reached this service (`Host`, and the scheme a proxy
/// says it used), for a link the creator can open the same way.
pub struct Origin(String);

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let scheme =
            match header("x-forwarded-proto").map(|p| p.split(',').next().unwrap_or("").trim()) {
                Some("https") => "https",
                _ => "http",
            };
        let host = header("host")
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        Ok(Origin(format!("{scheme}://{host}")))
    }
}

impl aide::OperationInput for Origin {}

async fn portal_link(
    AdminCreator(c): AdminCreator,
    State(s): State<AppState>,
    origin: Origin,
) -> ApiResult<Created<PortalLink>> {
    let cid = c.id;
    let ttl =
        chrono::Duration::from_std(s.ctx.config.portal_link_ttl).map_err(anyhow::Error::from)?;
    let expires = s.ctx.clock.now() + ttl;
    let token = Signer::new(&s.ctx.admin_token).link(&cid, expires);
    Ok(Created(PortalLink {
        url: format!("{}/portal/enter?token={token}", origin.0),
        expires_at: iso_millis(expires),
    }))
}
