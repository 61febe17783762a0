//! Platform routes for webinars: create, update, reschedule, cancel and
//! delete them, re-arming reminders through the pure planner, and show their
//! schedule. Admin token required.

use super::answer::{Created, Page};
use super::extract::{Admin, ApiJson, ApiQuery};
use super::load::{self, AdminWebinar};
use super::openapi::{doc, BAD_PAGE};
use super::paging::paged_query;
use super::platform::CREATOR_OR_PAGE;
use super::reminders;
use super::validate::{instant, query_id, text, zone, Findings};
use super::views::{self, Sorted};
use super::AppState;
use crate::api::error::{ApiError, ApiResult};
use crate::domain::span;
use crate::domain::status::WebinarStatus;
use crate::schedule::plan;
use crate::store::{CreatorId, MangoId, PageRequest, Webinar, WebinarFields};
use aide::axum::routing::{get_with, post_with};
use aide::axum::ApiRouter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::NoContent;
use axum::Json;
use schemars::JsonSchema;
use serde::Deserialize;

/// What the routes that change a webinar can refuse.
const NOT_FOUND: (u16, &str) = (404, "No such webinar (`not_found`).");
const CANCELLED: (u16, &str) = (409, "The webinar is cancelled (`webinar_cancelled`).");

pub fn routes() -> ApiRouter<AppState> {
    const NO_CREATOR: (u16, &str) = (404, "No such creator (`not_found`).");
    let arms = "Arms its reminders (1 day, 30 and 15 minutes before by default).";
    let keeps = "Absent fields keep their value; moving the start re-plans the reminders.";
    ApiRouter::new()
        .api_route(
            "/webinars",
            get_with(
                list,
                doc(
                    "List a creator's webinars, by start time",
                    "",
                    &[CREATOR_OR_PAGE],
                ),
            )
            .post_with(create, doc("Schedule a webinar", arms, &[NO_CREATOR])),
        )
        .api_route(
            "/webinars/{id}",
            get_with(show, doc("Show a webinar", "", &[NOT_FOUND]))
                .patch_with(
                    update,
                    doc("Change a webinar", keeps, &[NOT_FOUND, CANCELLED]),
                )
                .delete_with(
                    remove,
                    doc(
                        "Delete a webinar",
                        "Nothing more is sent for it.",
                        &[NOT_FOUND],
                    ),
                ),
        )
        .api_route(
            "/webinars/{id}/reschedule",
            post_with(
                reschedule,
                doc("Move a webinar", "", &[NOT_FOUND, CANCELLED]),
            ),
        )
        .api_route(
            "/webinars/{id}/cancel",
            post_with(
                cancel,
                doc(
                    "Cancel a webinar",
                    "Its pending reminders are not sent.",
                    &[NOT_FOUND],
                ),
            ),
        )
        .api_route(
            "/webinars/{id}/reminders",
            get_with(
                reminders::list,
                doc(
                    "Show a webinar's reminders, by due time",
                    "",
                    &[NOT_FOUND, BAD_PAGE],
                ),
            ),
        )
        .with_path_items(|p| p.tag("platform"))
}

/// A webinar to schedule.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct NewWebinar {
    creator_id: CreatorId,
    /// 1 to 500 characters.
    #[schemars(length(min = 1, max = 500))]
    title: String,
    /// An absolute http(s) URL.
    #[schemars(url, length(max = 2048))]
    link: String,
    /// An ISO 8601 instant, e.g. `2024-03-15T10:00:00.000Z`.
    #[schemars(extend("format" = "date-time"))]
    from_time: String,
    /// An ISO 8601 instant after `fromTime`, at most 31 days later.
    #[schemars(extend("format" = "date-time"))]
    to_time: String,
    /// `±HH:MM` or an IANA zone; the creator's when not given.
    timezone: Option<String>,
    /// Ids of the creator's mangoes the webinar belongs to.
    #[serde(default)]
    mangoes: Vec<String>,
}

/// Changes to a webinar; absent fields keep their value.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WebinarPatch {
    title: Option<String>,
    link: Option<String>,
    from_time: Option<String>,
    to_time: Option<String>,
    timezone: Option<String>,
    mangoes: Option<Vec<String>>,
}

fn link(v: &str) -> Result<String, ApiError> {
    let l = text("link", v, 2048)?;
    match url::Url::parse(&l) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(l),
        _ => Err(ApiError::invalid(
            "invalid_link",
            "link",
            "link must be an absolute http(s) URL",
        )),
    }
}

/// A new webinar's fields, checked as far as they can be without the store;
/// the handler fills in the creator's zone by default and checks that the
/// mangoes are the creator's.
/// The mango ids come back as given, apart: `validate` checks them against
/// the creator's.
pub(super) fn fields(b: NewWebinar) -> ApiResult<(WebinarFields, Vec<String>)> {
    let mut f = Findings::default();
    let timezone = f.check(zone("timezone", b.timezone.as_deref()));
    let title = f.check(text("title", &b.title, 500));
    let link = f.check(link(&b.link));
    let from_time = f.check(instant("fromTime", &b.from_time));
    let to_time = f.check(instant("toTime", &b.to_time));
    f.done()?;
    let (Some(timezone), Some(title), Some(link), Some(from_time), Some(to_time)) =
        (timezone, title, link, from_time, to_time)
    else {
        unreachable!("every refusal was answered by done()");
    };
    let fields = WebinarFields {
        title,
        link,
        from_time,
        to_time,
        timezone,
        mango_ids: Vec::new(),
    };
    Ok((fields, b.mangoes))
}

/// The reminders to arm for a start at `from`, as of now.
fn arm(s: &AppState, from: chrono::DateTime<chrono::Utc>) -> Vec<crate::store::PlannedReminder> {
    plan::plan(from, &s.ctx.config.reminder_offsets, s.ctx.clock.now())
}

/// Checks the fields and the mangoes (which must be the creator's own).
/// The times must be ones the payload can write, as of the service's
/// clock (`domain::span`); `end_derived`: the end was kept from a move.
async fn validate(
    s: &AppState,
    creator: &CreatorId,
    mut f: WebinarFields,
    mangoes: &[String],
    end_derived: bool,
) -> ApiResult<WebinarFields> {
    span::check(f.from_time, f.to_time, s.ctx.clock.now(), end_derived)
        .map_err(|e| ApiError::invalid("invalid_time", e.field, e.message))?;
    // Every mango of the creator's, not a page: this is a check, not a list.
    let owned = s
        .ctx
        .catalog
        .list_mangoes(creator, &PageRequest::all())
        .await?;
    f.mango_ids = Vec::with_capacity(mangoes.len());
    for (i, m) in mangoes.iter().enumerate() {
        let id = m.parse::<MangoId>().ok();
        let Some(o) = owned.items.iter().find(|o| Some(&o.id) == id.as_ref()) else {
            return Err(ApiError::invalid(
                "unknown_mango",
                &format!("mangoes[{i}]"),
                format!("mango {m} does not exist for this creator"),
            ));
        };
        f.mango_ids.push(o.id.clone());
    }
    Ok(f)
}

async fn create(
    _: Admin,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<NewWebinar>,
) -> ApiResult<Created<views::Webinar>> {
    let creator = load::creator(&s, &b.creator_id).await?;
    let (mut fields, mangoes) = fields(b)?;
    if fields.timezone.is_none() {
        fields.timezone = creator.timezone.clone();
    }
    let fields = validate(&s, &creator.id, fields, &mangoes, false).await?;
    let reminders = arm(&s, fields.from_time);
    let w = s
        .ctx
        .catalog
        .create_webinar(&creator.id, &fields, &reminders)
        .await?;
    s.scheduler.notify_one();
    Ok(Created(w.try_into()?))
}

paged_query! {
    /// Whose webinars, and which page of them.
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct ByCreator {
        creator_id: String,
    }
}

async fn list(
    _: Admin,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ByCreator>,
) -> ApiResult<Json<Page<Sorted<views::Webinar>>>> {
    let creator: CreatorId = query_id("creatorId", Some(&q.creator_id))?
        .ok_or_else(|| ApiError::invalid("invalid_value", "creatorId", "creatorId is required"))?;
    let page = q.request()?;
    let found = s.ctx.catalog.list_webinars(&creator, &page).await?;
    Ok(Json(Page::of(found, |w| w.try_into().map(Sorted))?))
}

async fn show(AdminWebinar(w): AdminWebinar) -> ApiResult<Json<views::Webinar>> {
    Ok(Json(w.try_into()?))
}

/// Applies a patch; when the start moves, reminders are re-planned.
async fn apply(s: &AppState, w: Webinar, p: WebinarPatch) -> ApiResult<Webinar> {
    let wid = w.id.clone();
    if w.status != WebinarStatus::Scheduled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "webinar_cancelled",
            "a cancelled webinar cannot be changed",
        ));
    }
    let from = p
        .from_time
        .as_deref()
        .map(|v| instant("fromTime", v))
        .transpose()?
        .unwrap_or(w.from_time);
    // Moving the start without an end keeps the duration.
    let end_derived = p.to_time.is_none() && from != w.from_time;
    let to = match p.to_time.as_deref() {
        Some(v) => instant("toTime", v)?,
        None => w.to_time + (from - w.from_time),
    };
    let fields = WebinarFields {
        title: p
            .title
            .as_deref()
            .map(|t| text("title", t, 500))
            .transpose()?
            .unwrap_or(w.title),
        link: p.link.as_deref().map(link).transpose()?.unwrap_or(w.link),
        from_time: from,
        to_time: to,
        timezone: match p.timezone.as_deref() {
            Some(z) => zone("timezone", Some(z))?,
            None => w.timezone,
        },
        mango_ids: Vec::new(),
    };
    let mangoes = p
        .mangoes
        .unwrap_or_else(|| w.mangoes.iter().map(ToString::to_string).collect());
    let fields = validate(s, &w.creator_id, fields, &mangoes, end_derived).await?;
    let moved = fields.from_time != w.from_time;
    let plan = moved.then(|| arm(s, fields.from_time));
    let out = s
        .ctx
        .catalog
        .update_webinar(&wid, &fields, plan.as_deref())
        .await?;
    if moved {
        s.dispatcher.withdraw();
    }
    s.scheduler.notify_one();
    Ok(out)
}

async fn update(
    AdminWebinar(w): AdminWebinar,
    State(s): State<AppState>,
    ApiJson(p): ApiJson<WebinarPatch>,
) -> ApiResult<Json<views::Webinar>> {
    Ok(Json(apply(&s, w, p).await?.try_into()?))
}

/// A new start; without `toTime` the duration is kept.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Reschedule {
    from_time: String,
    to_time: Option<String>,
}

async fn reschedule(
    AdminWebinar(w): AdminWebinar,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<Reschedule>,
) -> ApiResult<Json<views::Webinar>> {
    let p = WebinarPatch {
        from_time: Some(b.from_time),
        to_time: b.to_time,
        ..Default::default()
    };
    Ok(Json(apply(&s, w, p).await?.try_into()?))
}

/// Cancels or deletes a webinar, and withdraws what lanes hold of it.
async fn end(s: &AppState, w: Webinar, deleted: bool) -> ApiResult<Webinar> {
    let w = s.ctx.catalog.end_webinar(&w.id, deleted).await?;
    s.dispatcher.withdraw();
    Ok(w)
}

async fn cancel(
    AdminWebinar(w): AdminWebinar,
    State(s): State<AppState>,
) -> ApiResult<Json<views::Webinar>> {
    Ok(Json(end(&s, w, false).await?.try_into()?))
}

async fn remove(AdminWebinar(w): AdminWebinar, State(s): State<AppState>) -> ApiResult<NoContent> {
    end(&s, w, true).await?;
    Ok(NoContent)
}
