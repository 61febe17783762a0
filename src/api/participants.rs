//! Platform routes for a webinar's participants: register one, register in
//! bulk (a JSON array or NDJSON, all or nothing), page through them,
//! unregister. Admin token required.

use super::extract::{
    body_bytes_within, parse_json, read_deadline, Admin, ApiJson, ApiPath, ApiQuery,
};
use super::views::{self, id, text, zone};
use super::webinars::load;
use super::{AppState, BULK_BODY_LIMIT, BULK_MIN_RATE};
use crate::error::{ApiError, ApiResult};
use crate::store::NewParticipant;
use axum::extract::{DefaultBodyLimit, Request, State};
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
        .route(
            "/webinars/{id}/participants/bulk",
            post(register_bulk).layer(DefaultBodyLimit::max(BULK_BODY_LIMIT)),
        )
        .route("/webinars/{id}/participants/{pid}", delete(unregister))
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
    ApiPath(wid): ApiPath<String>,
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
    ApiPath(wid): ApiPath<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    load(&s, &wid).await?;
    let ndjson = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("ndjson") || v.contains("jsonlines"));
    // Up to 64 MiB: the body timeout, plus time at the minimum rate.
    let deadline = read_deadline(&req, &s).with_min_rate(BULK_MIN_RATE);
    let bytes = body_bytes_within(req, &s, deadline).await?;
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
    ApiPath(wid): ApiPath<String>,
    ApiQuery(q): ApiQuery<Page>,
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
    ApiPath((wid, pid)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    load(&s, &wid).await?;
    id("participant", &pid)?;
    s.ctx
        .store
        .unregister_participant(&wid, &pid)
        .await
        .map_err(|_| ApiError::not_found("participant"))?;
    s.dispatcher.withdraw();
    Ok(StatusCode::NO_CONTENT)
}
