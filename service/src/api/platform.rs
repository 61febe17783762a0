//! Platform routes for creators, their API keys and mangoes, and the
//! operator's view of every subscription. Admin token required.

use super::answer::{Created, Page};
use super::extract::{key_hash, parse_json, Admin, ApiJson, ApiPath, ApiQuery};
use super::load::{AdminCreator, ApiKeyPath, CreatorPath};
use super::openapi::{doc, errors, io, BAD_PAGE};
use super::paging::{paged_query, PageQuery};
use super::validate::{self, text, zone, Findings};
use super::views::{self, SubscriptionStatus};
use super::AppState;
use crate::api::error::{ApiError, ApiResult};
use crate::store::{CreatorId, NewApiKey};
use aide::axum::routing::{delete_with, get_with};
use aide::axum::ApiRouter;
use aide::transform::TransformOperation as Op;
use axum::extract::State;
use axum::response::NoContent;
use axum::Json;
use rand::distr::{Alphanumeric, SampleString};
use schemars::JsonSchema;
use serde::Deserialize;

/// What a list filtered by creator refuses of its query.
pub(super) const CREATOR_OR_PAGE: (u16, &str) = (
    422,
    "`creatorId` is not an id, `limit` is not between 1 and 1000, or `after` is not a \
     cursor this list gave (`invalid_value`, `field` names it).",
);

pub fn routes() -> ApiRouter<AppState> {
    const NO_CREATOR: (u16, &str) = (404, "No such creator (`not_found`).");
    const NO_KEY: (u16, &str) = (404, "No such creator or key (`not_found`).");
    let revoked = "The key stops working at once, and the portal sessions it opened end.";
    let why = "The operator's view, with why a disabled one was disabled.";
    ApiRouter::new()
        .api_route(
            "/creators",
            get_with(
                list_creators,
                doc("List creators, a page at a time", "", &[BAD_PAGE]),
            )
            .post_with(create_creator, doc("Create a creator", "", &[])),
        )
        .api_route(
            "/creators/{id}",
            get_with(get_creator, doc("Show a creator", "", &[NO_CREATOR])),
        )
        .api_route(
            "/creators/{id}/api-keys",
            get_with(
                list_keys,
                doc("List a creator's API keys", "", &[NO_CREATOR, BAD_PAGE]),
            )
            .post_with(create_key, |op: Op| {
                let op = op.summary("Create an API key").description(
                    "The key itself (`key`) is in this answer only: only its hash is kept.",
                );
                errors(io::read_by_hand::<NewKey>(op, false), &[NO_CREATOR])
            }),
        )
        .api_route(
            "/creators/{id}/api-keys/{key}",
            delete_with(revoke_key, doc("Revoke an API key", revoked, &[NO_KEY])),
        )
        .api_route(
            "/creators/{id}/mangoes",
            get_with(
                list_mangoes,
                doc("List a creator's mangoes", "", &[NO_CREATOR, BAD_PAGE]),
            )
            .post_with(
                create_mango,
                doc("Create a mango (product)", "", &[NO_CREATOR]),
            ),
        )
        .api_route(
            "/subscriptions",
            get_with(
                list_subscriptions,
                doc("List every subscription", why, &[CREATOR_OR_PAGE]),
            ),
        )
        .with_path_items(|p| p.tag("platform"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewCreator {
    /// 1 to 200 characters.
    #[schemars(length(min = 1, max = 200))]
    name: String,
    /// `±HH:MM` or an IANA zone name; the default for its webinars.
    timezone: Option<String>,
}

async fn create_creator(
    _: Admin,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<NewCreator>,
) -> ApiResult<Created<views::Creator>> {
    let mut f = Findings::default();
    let name = f.check(text("name", &b.name, 200));
    let tz = f.check(zone("timezone", b.timezone.as_deref()));
    f.done()?;
    let (Some(name), Some(tz)) = (name, tz) else {
        unreachable!("every refusal was answered by done()");
    };
    let c = s.ctx.catalog.create_creator(&name, tz.as_deref()).await?;
    Ok(Created(c.into()))
}

async fn list_creators(
    _: Admin,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<views::Creator>>> {
    let page = s.ctx.catalog.list_creators(&q.request()?).await?;
    Ok(Json(Page::all(page)))
}

async fn get_creator(AdminCreator(c): AdminCreator) -> ApiResult<Json<views::Creator>> {
    Ok(Json(c.into()))
}

/// An API key to make; the body is optional.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// A label for people, 1 to 200 characters; `default` when not given.
    #[schemars(length(min = 1, max = 200))]
    name: Option<String>,
}

async fn create_key(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(CreatorPath { id: cid }): ApiPath<CreatorPath>,
    body: axum::body::Bytes,
) -> ApiResult<Created<views::ApiKey>> {
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
        .catalog
        .create_api_key(NewApiKey {
            creator_id: &cid,
            name: &name,
            prefix: &prefix,
            hash: &key_hash(&key),
        })
        .await
        .map_err(ApiError::lookup("creator"))?;
    // Shown once: only its hash is stored.
    Ok(Created(views::ApiKey::new(rec, Some(key))))
}

async fn list_keys(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(CreatorPath { id: cid }): ApiPath<CreatorPath>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<views::ApiKey>>> {
    let page = q.request()?;
    let keys = s.ctx.catalog.list_api_keys(&cid, &page).await;
    let keys = keys.map_err(ApiError::lookup("creator"))?;
    Ok(Json(Page::all(keys.map(|k| views::ApiKey::new(k, None)))))
}

async fn revoke_key(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(ApiKeyPath { id: cid, key: kid }): ApiPath<ApiKeyPath>,
) -> ApiResult<NoContent> {
    s.ctx
        .catalog
        .revoke_api_key(&cid, &kid)
        .await
        .map_err(ApiError::lookup("api key"))?;
    Ok(NoContent)
}

/// A mango (product) to make.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewMango {
    /// 1 to 200 characters.
    #[schemars(length(min = 1, max = 200))]
    name: String,
}

async fn create_mango(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(CreatorPath { id: cid }): ApiPath<CreatorPath>,
    ApiJson(b): ApiJson<NewMango>,
) -> ApiResult<Created<views::Mango>> {
    let name = text("name", &b.name, 200)?;
    let m = s
        .ctx
        .catalog
        .create_mango(&cid, &name)
        .await
        .map_err(ApiError::lookup("creator"))?;
    Ok(Created(m.into()))
}

async fn list_mangoes(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(CreatorPath { id: cid }): ApiPath<CreatorPath>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<views::Mango>>> {
    let page = q.request()?;
    let all = s.ctx.catalog.list_mangoes(&cid, &page).await;
    Ok(Json(Page::all(all.map_err(ApiError::lookup("creator"))?)))
}

paged_query! {
    /// The operator's filters.
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct SubFilter {
        /// Only this creator's subscriptions.
        creator_id: Option<String>,
        status: Option<SubscriptionStatus>,
    }
}

/// The operator's list: every subscription, with why a disabled one was
/// disabled (the delivery workers also log each disabling).
async fn list_subscriptions(
    _: Admin,
    State(s): State<AppState>,
    ApiQuery(f): ApiQuery<SubFilter>,
) -> ApiResult<Json<Page<views::Subscription>>> {
    let creator: Option<CreatorId> = validate::query_id("creatorId", f.creator_id.as_deref())?;
    let page = f.request()?;
    let subs = s
        .ctx
        .catalog
        .list_subscriptions(creator.as_ref(), f.status, &page);
    Ok(Json(Page::of(subs.await?, |x| {
        views::Subscription::for_operator(&x).map(|v| v.live(&s.dispatcher))
    })?))
}
