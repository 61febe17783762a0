//! Platform routes for a webinar's participants: register one, register in
//! bulk (a JSON array or NDJSON, all or nothing), page through them,
//! unregister. Admin token required.

use super::bulk::{self, Format, Limits};
use super::extract::{read_deadline, Admin, ApiJson, ApiPath, ApiQuery};
use super::views::{self, id, text, zone};
use super::webinars::load;
use super::{AppState, BULK_BODY_LIMIT, BULK_MIN_RATE};
use crate::error::{ApiError, ApiResult};
use crate::store::{NewParticipant, PackedParticipant};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/webinars/{id}/participants",
            get(participants).post(register),
        )
        .route("/webinars/{id}/participants/bulk", post(register_bulk))
        .route("/webinars/{id}/participants/{pid}", delete(unregister))
}

/// A participant as the platform sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ParticipantIn {
    name: String,
    email: String,
    #[serde(default)]
    phone: Option<String>,
    timezone: Option<String>,
}

/// Validates one participant; a bulk caller prefixes the field with the
/// entry's index only when there is an error.
pub(super) fn participant(p: ParticipantIn) -> Result<NewParticipant, ApiError> {
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
    ApiPath(wid): ApiPath<String>,
    ApiJson(b): ApiJson<ParticipantIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    load(&s, &wid).await?;
    let p = participant(b)?;
    let (rec, new) = s.ctx.store.register_participant(&wid, p).await?;
    Ok((views::created(new), Json(json!(rec))))
}

/// What one bulk request may hold: 200 000 participants, in at most 64 MiB.
const BULK: Limits = Limits {
    bytes: BULK_BODY_LIMIT,
    entries: 200_000,
    what: "participants",
};

/// A JSON array of participants, or NDJSON (one object per line) when the
/// content type says so, read as it arrives (`bulk`). Any invalid entry
/// refuses the whole request.
async fn register_bulk(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(wid): ApiPath<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    load(&s, &wid).await?;
    let ndjson = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("ndjson") || v.contains("jsonlines"));
    let format = if ndjson { Format::Lines } else { Format::Array };
    // Up to 64 MiB: the body timeout, plus time at the minimum rate.
    let deadline = read_deadline(&req, &s).with_min_rate(BULK_MIN_RATE);
    let people = bulk::read(req, deadline, format, BULK, |p| {
        participant(p).map(|p| PackedParticipant::from(&p))
    })
    .await?;
    let sum = s
        .ctx
        .store
        .register_participants(&wid, people.into())
        .await?;
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
    ApiPath(wid): ApiPath<String>,
    ApiQuery(q): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    load(&s, &wid).await?;
    let after = views::query_id("after", q.after.as_deref())?;
    let limit = views::limit(q.limit);
    let rows = s.ctx.store.list_participants(&wid, after, limit).await?;
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|p| p.id.clone()))
        .flatten();
    Ok(Json(json!({"data": rows, "next": next})))
}

async fn unregister(
    _: Admin,
    State(s): State<AppState>,
    ApiPath((wid, pid)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    load(&s, &wid).await?;
    id("participant", &pid)?;
    s.ctx
        .store
        .unregister_participant(&wid, &pid)
        .await
        .map_err(ApiError::lookup("participant"))?;
    s.dispatcher.withdraw();
    Ok(StatusCode::NO_CONTENT)
}
