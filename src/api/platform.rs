//! Platform routes for creators, their API keys and mangoes, and the
//! operator's view of every subscription. Admin token required.

use super::extract::{key_hash, parse_json, Admin, ApiJson, ApiPath, ApiQuery};
use super::views::{self, id, text, zone};
use super::AppState;
use crate::error::{ApiError, ApiResult};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/creators", get(list_creators).post(create_creator))
        .route("/creators/{id}", get(get_creator))
        .route("/creators/{id}/api-keys", get(list_keys).post(create_key))
        .route("/creators/{id}/api-keys/{key}", delete(revoke_key))
        .route(
            "/creators/{id}/mangoes",
            get(list_mangoes).post(create_mango),
        )
        .route("/subscriptions", get(list_subscriptions))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCreator {
    name: String,
    timezone: Option<String>,
}

async fn create_creator(
    _: Admin,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<NewCreator>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = text("name", &b.name, 200)?;
    let tz = zone("timezone", b.timezone.as_deref())?;
    let c = s.ctx.store.create_creator(&name, tz.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(json!(c))))
}

async fn list_creators(_: Admin, State(s): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"data": s.ctx.store.list_creators().await?})))
}

async fn get_creator(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(cid): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    id("creator", &cid)?;
    let c = s
        .ctx
        .store
        .get_creator(&cid)
        .await
        .map_err(ApiError::lookup("creator"))?;
    Ok(Json(json!(c)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: Option<String>,
}

async fn create_key(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(cid): ApiPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    id("creator", &cid)?;
    // The body is optional here: no body means a key named "default".
    let given: NewKey = if body.is_empty() {
        NewKey::default()
    } else {
        parse_json(&body)?
    };
    let name = given.name.unwrap_or_else(|| "default".into());
    let name = text("name", &name, 200)?;
    let key = format!("tmk_{}", Alphanumeric.sample_string(&mut rand::rng(), 40));
    let prefix: String = key.chars().take(10).collect();
    let rec = s
        .ctx
        .store
        .create_api_key(&cid, &name, &prefix, &key_hash(&key))
        .await
        .map_err(ApiError::lookup("creator"))?;
    let mut v = json!(rec);
    v["key"] = json!(key); // shown once: only its hash is stored
    Ok((StatusCode::CREATED, Json(v)))
}

async fn list_keys(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(cid): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    id("creator", &cid)?;
    Ok(Json(
        json!({"data": s.ctx.store.list_api_keys(&cid).await?}),
    ))
}

async fn revoke_key(
    _: Admin,
    State(s): State<AppState>,
    ApiPath((cid, kid)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    id("creator", &cid)?;
    id("api key", &kid)?;
    s.ctx
        .store
        .revoke_api_key(&cid, &kid)
        .await
        .map_err(ApiError::lookup("api key"))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMango {
    name: String,
}

async fn create_mango(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(cid): ApiPath<String>,
    ApiJson(b): ApiJson<NewMango>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    id("creator", &cid)?;
    let name = text("name", &b.name, 200)?;
    let m = s
        .ctx
        .store
        .create_mango(&cid, &name)
        .await
        .map_err(ApiError::lookup("creator"))?;
    Ok((StatusCode::CREATED, Json(json!(m))))
}

async fn list_mangoes(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(cid): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    id("creator", &cid)?;
    Ok(Json(json!({"data": s.ctx.store.list_mangoes(&cid).await?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SubFilter {
    creator_id: Option<String>,
    status: Option<SubStatus>,
}

/// The statuses the operator's list can be filtered on.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum SubStatus {
    Active,
    Disabled,
}

impl SubStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

/// The operator's list: every subscription, with why a disabled one was
/// disabled (the delivery workers also log each disabling).
async fn list_subscriptions(
    _: Admin,
    State(s): State<AppState>,
    ApiQuery(f): ApiQuery<SubFilter>,
) -> ApiResult<Json<Value>> {
    let creator = views::query_id("creatorId", f.creator_id.as_deref())?;
    let subs = s.ctx.store.list_subscriptions(creator).await?;
    let data: Vec<Value> = subs
        .iter()
        .filter(|x| f.status.is_none_or(|st| x.status == st.as_str()))
        .map(|x| {
            let mut v = views::subscription(x, None);
            v["creatorId"] = json!(x.creator_id);
            v["failingSince"] = json!(x.failing_since.map(crate::domain::payload::iso_millis));
            v
        })
        .collect();
    Ok(Json(json!({"data": data})))
}
