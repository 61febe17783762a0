//! Platform routes for webinars and their participants: create, update,
//! reschedule, cancel and delete webinars (re-arming reminders through the
//! pure planner), and register participants one by one or in bulk (a JSON
//! array or NDJSON). Admin token required.

use super::extract::{body_bytes, parse_json, Admin, ApiJson};
use super::views::{self, id, instant, text, zone};
use super::{AppState, BULK_BODY_LIMIT};
use crate::error::{ApiError, ApiResult};
use crate::schedule::plan;
use crate::store::{NewParticipant, Webinar, WebinarFields};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webinars", get(list).post(create))
        .route("/webinars/{id}", get(show).patch(update).delete(remove))
        .route("/webinars/{id}/reschedule", post(reschedule))
        .route("/webinars/{id}/cancel", post(cancel))
        .route("/webinars/{id}/reminders", get(reminders))
        .route(
            "/webinars/{id}/participants",
            get(participants).post(register),
        )
        .route(
            "/webinars/{id}/participants/bulk",
            post(register_bulk).layer(DefaultBodyLimit::max(BULK_BODY_LIMIT)),
        )
        .route("/webinars/{id}/participants/{pid}", delete(unregister))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewWebinar {
    creator_id: String,
    title: String,
    link: String,
    from_time: String,
    to_time: String,
    timezone: Option<String>,
    #[serde(default)]
    mangoes: Vec<String>,
}

/// Changes to a webinar; absent fields keep their value.
#[derive(Deserialize, Default)]
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

/// Checks the fields and the mangoes (which must be the creator's own).
async fn validate(s: &AppState, creator: &str, f: WebinarFields) -> ApiResult<WebinarFields> {
    if f.to_time <= f.from_time {
        return Err(ApiError::invalid(
            "invalid_time",
            "toTime",
            "toTime must be after fromTime",
        ));
    }
    let owned = s.ctx.store.list_mangoes(creator).await?;
    for (i, m) in f.mango_ids.iter().enumerate() {
        if !owned.iter().any(|o| &o.id == m) {
            return Err(ApiError::invalid(
                "unknown_mango",
                &format!("mangoes[{i}]"),
                format!("mango {m} does not exist for this creator"),
            ));
        }
    }
    Ok(f)
}

async fn create(
    _: Admin,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<NewWebinar>,
) -> ApiResult<(StatusCode, Json<Webinar>)> {
    id("creator", &b.creator_id)?;
    let creator = s
        .ctx
        .store
        .get_creator(&b.creator_id)
        .await
        .map_err(|_| ApiError::not_found("creator"))?;
    let tz = match zone("timezone", b.timezone.as_deref())? {
        Some(z) => Some(z),
        None => creator.timezone.clone(),
    };
    let fields = WebinarFields {
        title: text("title", &b.title, 500)?,
        link: link(&b.link)?,
        from_time: instant("fromTime", &b.from_time)?,
        to_time: instant("toTime", &b.to_time)?,
        timezone: tz,
        mango_ids: b.mangoes,
    };
    let fields = validate(&s, &creator.id, fields).await?;
    let reminders = plan::plan(
        fields.from_time,
        &s.ctx.config.reminder_offsets,
        s.ctx.clock.now(),
    );
    let w = s
        .ctx
        .store
        .create_webinar(&creator.id, &fields, &reminders)
        .await?;
    s.scheduler.notify_one();
    Ok((StatusCode::CREATED, Json(w)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ByCreator {
    creator_id: String,
}

async fn list(
    _: Admin,
    State(s): State<AppState>,
    Query(q): Query<ByCreator>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({"data": s.ctx.store.list_webinars(&q.creator_id).await?}),
    ))
}

async fn load(s: &AppState, wid: &str) -> ApiResult<Webinar> {
    id("webinar", wid)?;
    s.ctx.store.get_webinar(wid).await.map_err(|e| match e {
        crate::store::StoreError::NotFound => ApiError::not_found("webinar"),
        other => other.into(),
    })
}

async fn show(
    _: Admin,
    State(s): State<AppState>,
    Path(wid): Path<String>,
) -> ApiResult<Json<Webinar>> {
    Ok(Json(load(&s, &wid).await?))
}

/// Applies a patch; when the start moves, reminders are re-planned.
async fn apply(s: &AppState, wid: &str, p: WebinarPatch) -> ApiResult<Webinar> {
    let w = load(s, wid).await?;
    if w.status != "scheduled" {
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
        mango_ids: p.mangoes.unwrap_or(w.mangoes),
    };
    let fields = validate(s, &w.creator_id, fields).await?;
    let moved = fields.from_time != w.from_time;
    let plan = moved.then(|| {
        plan::plan(
            fields.from_time,
            &s.ctx.config.reminder_offsets,
            s.ctx.clock.now(),
        )
    });
    let out = s
        .ctx
        .store
        .update_webinar(wid, &fields, plan.as_deref())
        .await?;
    s.scheduler.notify_one();
    Ok(out)
}

async fn update(
    _: Admin,
    State(s): State<AppState>,
    Path(wid): Path<String>,
    ApiJson(p): ApiJson<WebinarPatch>,
) -> ApiResult<Json<Webinar>> {
    Ok(Json(apply(&s, &wid, p).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Reschedule {
    from_time: String,
    to_time: Option<String>,
}

async fn reschedule(
    _: Admin,
    State(s): State<AppState>,
    Path(wid): Path<String>,
    ApiJson(b): ApiJson<Reschedule>,
) -> ApiResult<Json<Webinar>> {
    let p = WebinarPatch {
        from_time: Some(b.from_time),
        to_time: b.to_time,
        ..Default::default()
    };
    Ok(Json(apply(&s, &wid, p).await?))
}

async fn cancel(
    _: Admin,
    State(s): State<AppState>,
    Path(wid): Path<String>,
) -> ApiResult<Json<Webinar>> {
    load(&s, &wid).await?;
    Ok(Json(s.ctx.store.end_webinar(&wid, false).await?))
}

async fn remove(
    _: Admin,
    State(s): State<AppState>,
    Path(wid): Path<String>,
) -> ApiResult<StatusCode> {
    load(&s, &wid).await?;
    s.ctx.store.end_webinar(&wid, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reminders(
    _: Admin,
    State(s): State<AppState>,
    Path(wid): Path<String>,
) -> ApiResult<Json<Value>> {
    load(&s, &wid).await?;
    Ok(Json(
        json!({"data": s.ctx.store.list_reminders(&wid).await?}),
    ))
}

/// A participant as the platform sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParticipantIn {
    name: String,
    email: String,
    #[serde(default)]
    phone: Option<String>,
    timezone: Option<String>,
}

/// Validates one participant; a bulk caller prefixes the field with the
/// entry's index only when there is an error.
fn participant(p: ParticipantIn) -> Result<NewParticipant, ApiError> {
    let email = text("email", &p.email, 320)?;
    if !email.contains('@') || email.contains(char::is_whitespace) {
        return Err(ApiError::invalid(
            "invalid_email",
            "email",
            "email is not an email address",
        ));
    }
    let phone = p.phone.unwrap_or_default();
    if phone.len() > 40 {
        return Err(ApiError::invalid(
            "invalid_value",
            "phone",
            "phone is longer than 40 characters",
        ));
    }
    Ok(NewParticipant {
        name: text("name", &p.name, 200)?,
        email,
        phone: phone.trim().to_owned(),
        timezone: zone("timezone", p.timezone.as_deref())?,
    })
}

async fn register(
    _: Admin,
    State(s): State<AppState>,
    Path(wid): Path<String>,
    ApiJson(b): ApiJson<ParticipantIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    load(&s, &wid).await?;
    let p = participant(b)?;
    let (sum, mut recs) = s.ctx.store.register_participants(&wid, vec![p]).await?;
    let rec = recs
        .pop()
        .ok_or_else(|| anyhow::anyhow!("registration returned no record"))?;
    Ok((views::created(sum.created == 1), Json(json!(rec))))
}

/// Most participants in one bulk request.
const BULK_MAX: usize = 200_000;

/// A JSON array of participants, or NDJSON (one object per line) when the
/// content type says so. Any invalid entry refuses the whole request.
async fn register_bulk(
    _: Admin,
    State(s): State<AppState>,
    Path(wid): Path<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    load(&s, &wid).await?;
    let ndjson = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("ndjson") || v.contains("jsonlines"));
    let bytes = body_bytes(req, &s).await?;
    let raw: Vec<ParticipantIn> = if ndjson {
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "body is not UTF-8",
            )
        })?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| parse_json(l.as_bytes()).map_err(|e| e.on(&format!("line {}", i + 1))))
            .collect::<Result<_, _>>()?
    } else {
        parse_json(&bytes)?
    };
    drop(bytes); // a bulk body is large: do not hold it and its parse at once
    if raw.is_empty() || raw.len() > BULK_MAX {
        return Err(ApiError::invalid(
            "invalid_batch",
            "participants",
            format!("send between 1 and {BULK_MAX} participants"),
        ));
    }
    let people = raw
        .into_iter()
        .enumerate()
        .map(|(i, p)| participant(p).map_err(|e| e.within(&format!("[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    let (sum, _) = s.ctx.store.register_participants(&wid, people).await?;
    Ok((StatusCode::OK, Json(json!(sum))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    after: Option<String>,
    limit: Option<u32>,
}

async fn participants(
    _: Admin,
    State(s): State<AppState>,
    Path(wid): Path<String>,
    Query(q): Query<Page>,
) -> ApiResult<Json<Value>> {
    load(&s, &wid).await?;
    let limit = views::limit(q.limit);
    let rows = s
        .ctx
        .store
        .list_participants(&wid, q.after.as_deref(), limit)
        .await?;
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|p| p.id.clone()))
        .flatten();
    Ok(Json(json!({"data": rows, "next": next})))
}

async fn unregister(
    _: Admin,
    State(s): State<AppState>,
    Path((wid, pid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    load(&s, &wid).await?;
    id("participant", &pid)?;
    s.ctx
        .store
        .unregister_participant(&wid, &pid)
        .await
        .map_err(|_| ApiError::not_found("participant"))?;
    Ok(StatusCode::NO_CONTENT)
}
