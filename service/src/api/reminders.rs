//! A webinar's reminders, by due time, each pending one with the fan-outs
//! planned for it (`views::plan`): `GET /webinars/{id}/reminders`.

use super::answer::Page;
use super::extract::ApiQuery;
use super::load::AdminWebinar;
use super::paging::PageQuery;
use super::views;
use super::AppState;
use crate::api::error::ApiResult;
use crate::domain::status::ReminderStatus;
use axum::extract::State;
use axum::Json;

/// Most fan-outs (reminder × subscription) planned for one webinar's list.
const PLANS_LISTED: i64 = 10_000;

pub(super) async fn list(
    AdminWebinar(w): AdminWebinar,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<views::Reminder>>> {
    let wid = w.id;
    let found = s.ctx.catalog.list_reminders(&wid, &q.request()?).await?;
    let plans = if found
        .items
        .iter()
        .any(|r| r.status == ReminderStatus::Pending)
    {
        let scope = crate::store::PlanScope {
            webinar: Some(&wid),
            creator: None,
            reminder: None,
            until: s.ctx.clock.now() + chrono::Duration::days(3650),
            limit: PLANS_LISTED,
            early_only: false,
        };
        let rows = s.ctx.catalog.pending_fanouts(&scope).await?;
        views::plan::by_reminder(&rows, s.ctx.config.assumed_latency)
    } else {
        Default::default()
    };
    Ok(Json(Page::of(found, |r| {
        let pending = r.status == ReminderStatus::Pending;
        let planned = plans.get(&r.id).cloned().unwrap_or_default();
        views::Reminder::try_from(r).map(|v| if pending { v.planned(planned) } else { v })
    })?))
}
