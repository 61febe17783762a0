//! The pages' handlers: the overview and its live panel, a subscription's
//! deliveries, and the replay forms. Each asks the store for one viewer's
//! share (everything, or one creator's: `Viewer::creator`), hands it to
//! `render`, and refuses a subscription outside the viewer's sight as not
//! found, before reading or replaying anything of it.

use super::render::{self, Overview, SubscriptionPage};
use super::site::Viewer;
use super::viewer::Seen;
use crate::api::error::ApiError;
use crate::api::extract::ApiPath;
use crate::api::load::DeliveryPath;
use crate::api::replay::{self, ReplayStatus};
use crate::api::AppState;
use crate::delivery::forecast::{self, Outlook};
use crate::domain::ids::ReminderId;
use crate::domain::status::{DeliveryStatus, Status};
use crate::store::{Listing, PageRequest, PlanScope, Subscription, SubscriptionPatch};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Duration;
use serde::Deserialize;
use std::collections::HashMap;

/// Rows per panel on the overview.
const PANEL: i64 = 20;
/// Deliveries per page of a subscription.
const PER_PAGE: u32 = 50;

/// A page that could not be made: a plain page with the reason.
pub struct Failed(Response);

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        self.0
    }
}

impl From<ApiError> for Failed {
    fn from(e: ApiError) -> Self {
        Failed(render::failure(e))
    }
}

impl From<crate::store::StoreError> for Failed {
    fn from(e: crate::store::StoreError) -> Self {
        Failed(render::failure(e.into()))
    }
}

/// The overview: every panel, for the viewer's share.
pub async fn overview(v: Viewer, State(s): State<AppState>) -> Result<Response, Failed> {
    let store = &s.ctx.catalog;
    let c = v.creator();
    let next = store.next_fanouts(c, PANEL).await?;
    let outlooks = outlooks(&s, c, next.last().map(|f| f.reminder.due_at)).await?;
    let o = Overview {
        next,
        outlooks,
        running: store.running_fanouts(c, PANEL).await?,
        last: store.last_fanouts(c, PANEL).await?,
        troubled: store.troubled_subscriptions(c, PANEL * 5).await?,
        subscriptions: store
            .list_subscriptions(c, None, &PageRequest::first(PANEL as u32 * 5))
            .await?
            .items,
        operational: s.ctx.operational.clone().filter(|_| c.is_none()),
        now: s.ctx.clock.now(),
    };
    Ok(render::overview(&v, &o).into_response())
}

/// The capacity plans of the pending fan-outs due by `until` (the last of
/// the "next fan-outs" panel), summed up per reminder.
async fn outlooks(
    s: &AppState,
    creator: Option<&crate::store::CreatorId>,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<HashMap<ReminderId, Outlook>, Failed> {
    let Some(until) = until else {
        return Ok(HashMap::new());
    };
    let scope = PlanScope {
        webinar: None,
        creator,
        reminder: None,
        until,
        limit: 10_000,
        early_only: false,
    };
    let mut out: HashMap<ReminderId, Outlook> = HashMap::new();
    for f in s.ctx.catalog.pending_fanouts(&scope).await? {
        let p = forecast::of(&f, s.ctx.config.assumed_latency);
        out.entry(f.reminder_id)
            .and_modify(|o| *o = o.with(&p))
            .or_insert_with(|| Outlook::of(&p));
    }
    Ok(out)
}

/// The running fan-outs' panel alone, which the overview's script fetches
/// every second.
pub async fn running(v: Viewer, State(s): State<AppState>) -> Result<Response, Failed> {
    let running = s.ctx.catalog.running_fanouts(v.creator(), PANEL).await?;
    Ok(render::running(&running, s.ctx.clock.now()).into_response())
}

#[derive(Deserialize, Default)]
pub struct Paging {
    after: Option<String>,
    /// How many the last bulk replay took, to say so.
    replayed: Option<u64>,
    /// Set after one delivery was replayed, to say so.
    retried: Option<String>,
}

/// A subscription's page: its deliveries, a page at a time, and the
/// replay forms; a notice after a replay.
pub async fn subscription(
    Seen { viewer: v, sub }: Seen,
    State(s): State<AppState>,
    Query(q): Query<Paging>,
) -> Result<Response, Failed> {
    let notice = match (q.replayed, q.retried.is_some()) {
        (Some(n), _) => Some(format!("{n} deliveries are due again.")),
        (None, true) => Some("The delivery is due again.".to_owned()),
        _ => None,
    };
    let page = page(&s, sub, q.after, notice, None).await?;
    Ok(render::subscription(&v, &page).into_response())
}

/// A subscription's page of deliveries, with a notice or an error.
async fn page(
    s: &AppState,
    sub: Subscription,
    after: Option<String>,
    notice: Option<String>,
    error: Option<String>,
) -> Result<SubscriptionPage, Failed> {
    let req = crate::api::paging::request(after, Some(PER_PAGE))?;
    let deliveries = s
        .ctx
        .catalog
        .list_deliveries(Listing::of(&sub.id, None, &req));
    let deliveries = deliveries.await?;
    let now = s.ctx.clock.now();
    Ok(SubscriptionPage {
        concurrency: s.dispatcher.limit(&sub.id),
        sub,
        deliveries,
        notice,
        error,
        since: now - Duration::days(1),
        until: now + Duration::minutes(1),
    })
}

#[derive(Deserialize)]
pub struct ReplayForm {
    #[serde(default)]
    csrf: String,
    since: String,
    until: String,
    status: String,
}

/// The bulk replay form: every delivery with one status in a window.
pub async fn replay(
    Seen { viewer: v, sub }: Seen,
    State(s): State<AppState>,
    Form(f): Form<ReplayForm>,
) -> Result<Response, Failed> {
    if !v.checks(&f.csrf) {
        return Err(stale());
    }
    let checked = (|| {
        let window = replay::check(f.since.trim(), f.until.trim())?;
        let status = DeliveryStatus::parse(&f.status)
            .and_then(ReplayStatus::of)
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_value",
                    "status",
                    "status must be failed, expired or missed",
                )
            })?;
        crate::api::hook_checks::active(&sub)?;
        Ok::<_, ApiError>((window, status))
    })();
    let (window, status) = match checked {
        Ok(x) => x,
        Err(e) => {
            let page = page(&s, sub, None, None, Some(render::reason(&e))).await?;
            let body = render::subscription(&v, &page);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response());
        }
    };
    let now = s.ctx.clock.now();
    let n = replay::replay(&s.ctx.catalog, &sub.id, status, window, now).await?;
    s.dispatcher.wake(&sub.id);
    Ok(back(&v, &sub, &format!("?replayed={n}")))
}

/// A form that carries only the session's token (absent: refused as a
/// wrong one).
#[derive(Deserialize)]
pub struct RetryForm {
    #[serde(default)]
    pub csrf: String,
}

/// One delivery's replay button.
pub async fn retry(
    Seen { viewer: v, sub }: Seen,
    State(s): State<AppState>,
    path: Result<ApiPath<DeliveryPath>, ApiError>,
    Form(f): Form<RetryForm>,
) -> Result<Response, Failed> {
    // The session's token first: a forged form learns nothing, not even
    // whether the delivery's id is well formed.
    if !v.checks(&f.csrf) {
        return Err(stale());
    }
    let ApiPath(p) = path?;
    crate::api::integration::retry_of(&s, &sub, &p.did).await?;
    Ok(back(&v, &sub, "?retried=1"))
}

/// Enables a disabled subscription again (as `PATCH …/{id}`
/// `{"enabled": true}` does), so that its deliveries can be replayed.
pub async fn enable(
    Seen { viewer: v, sub }: Seen,
    State(s): State<AppState>,
    Form(f): Form<RetryForm>,
) -> Result<Response, Failed> {
    if !v.checks(&f.csrf) {
        return Err(stale());
    }
    let patch = SubscriptionPatch {
        enable: true,
        ..SubscriptionPatch::default()
    };
    let sub = s.ctx.catalog.update_subscription(&sub.id, &patch).await?;
    s.dispatcher.wake(&sub.id);
    Ok(back(&v, &sub, ""))
}

/// Back to the subscription's page after a form, `query` saying what it did.
fn back(v: &Viewer, sub: &Subscription, query: &str) -> Response {
    let to = format!("{}/subscriptions/{}{query}", v.base.path(), sub.id);
    Redirect::to(&to).into_response()
}

/// A form without this session's token: from another page, or an old one.
pub fn stale() -> Failed {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_csrf",
        "this form is from another session; reload the page and try again",
    )
    .into()
}
