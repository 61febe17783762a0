//! Platform routes for a webinar's participants: register one, register in
//! bulk (a JSON array or NDJSON, all or nothing), page through them,
//! unregister. Admin token required.

use super::answer::{Page, Stored};
use super::bulk::{self, Format, Limits};
use super::extract::{read_deadline, ApiJson, ApiPath, ApiQuery};
use super::load::{AdminWebinar, ParticipantPath};
use super::openapi::{doc, errors, io, BAD_PAGE};
use super::paging::PageQuery;
use super::validate::{text, zone, Findings};
use super::views;
use super::{AppState, BULK_BODY_LIMIT, BULK_MIN_RATE};
use crate::api::error::{ApiError, ApiResult};
use crate::store::{NewParticipant, PackedParticipant};
use aide::axum::routing::{delete_with, get_with, post_with};
use aide::axum::ApiRouter;
use aide::transform::TransformOperation as Op;
use axum::extract::{Request, State};
use axum::response::NoContent;
use axum::Json;
use schemars::JsonSchema;
use serde::Deserialize;

pub fn routes() -> ApiRouter<AppState> {
    const NO_WEBINAR: (u16, &str) = (404, "No such webinar (`not_found`).");
    const ENDED: (u16, &str) = (409, "The webinar is cancelled or deleted (`conflict`).");
    const NO_ONE: (u16, &str) = (404, "No such webinar or participant (`not_found`).");
    let again = "Registering the same email again answers the existing registration (200).";
    ApiRouter::new()
        .api_route(
            "/webinars/{id}/participants",
            get_with(
                participants,
                doc(
                    "List a webinar's participants, a page at a time",
                    "",
                    &[NO_WEBINAR, BAD_PAGE],
                ),
            )
            .post_with(
                register,
                doc("Register a participant", again, &[NO_WEBINAR, ENDED]),
            ),
        )
        .api_route(
            "/webinars/{id}/participants/bulk",
            post_with(register_bulk, |op: Op| {
                errors(bulk_body(op), &[NO_WEBINAR, ENDED])
            }),
        )
        .api_route(
            "/webinars/{id}/participants/{pid}",
            delete_with(unregister, doc("Unregister a participant", "", &[NO_ONE])),
        )
        .with_path_items(|p| p.tag("platform"))
}

/// The bulk body is read by hand, as it arrives (`bulk`).
fn bulk_body(op: Op<'_>) -> Op<'_> {
    io::read_by_hand::<Vec<ParticipantIn>>(op, true)
        .summary("Register participants in bulk")
        .description(
            "Up to 200 000 participants in up to 64 MiB, as a JSON array or as NDJSON \
         (`Content-Type: application/x-ndjson`, one object a line). All or nothing: \
         the first invalid entry refuses the whole request, naming it (`[3].email`).",
        )
}

/// A participant as the platform sends it.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ParticipantIn {
    /// 1 to 200 characters.
    #[schemars(length(min = 1, max = 200))]
    name: String,
    /// The participant's email; one registration per email per webinar.
    #[schemars(email, length(max = 320))]
    email: String,
    /// Up to 40 characters.
    #[schemars(length(max = 40))]
    #[serde(default)]
    phone: Option<String>,
    /// `±HH:MM` or an IANA zone.
    timezone: Option<String>,
}

/// Validates one participant; a bulk caller prefixes the field with the
/// entry's index only when there is an error.
pub(super) fn participant(p: ParticipantIn) -> Result<NewParticipant, ApiError> {
    let mut f = Findings::default();
    let email = f.check(email(&p.email));
    let phone = f.check(phone(p.phone.unwrap_or_default()));
    let name = f.check(text("name", &p.name, 200));
    let timezone = f.check(zone("timezone", p.timezone.as_deref()));
    f.done()?;
    let (Some(email), Some(phone), Some(name), Some(timezone)) = (email, phone, name, timezone)
    else {
        unreachable!("every refusal was answered by done()");
    };
    Ok(NewParticipant {
        name,
        email,
        phone,
        timezone,
    })
}

fn email(v: &str) -> Result<String, ApiError> {
    let email = text("email", v, 320)?;
    if !email.contains('@') || email.contains(char::is_whitespace) {
        return Err(ApiError::invalid(
            "invalid_email",
            "email",
            "email is not an email address",
        ));
    }
    Ok(email)
}

fn phone(v: String) -> Result<String, ApiError> {
    if v.len() > 40 {
        return Err(ApiError::invalid(
            "invalid_value",
            "phone",
            "phone is longer than 40 characters",
        ));
    }
    Ok(v.trim().to_owned())
}

async fn register(
    AdminWebinar(w): AdminWebinar,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<ParticipantIn>,
) -> ApiResult<Stored<views::Participant>> {
    let wid = w.id;
    let p = participant(b)?;
    let (rec, new) = s.ctx.catalog.register_participant(&wid, p).await?;
    Ok(Stored {
        new,
        body: rec.into(),
    })
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
    AdminWebinar(w): AdminWebinar,
    State(s): State<AppState>,
    req: Request,
) -> ApiResult<Json<views::RegisterSummary>> {
    let wid = w.id;
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
        .catalog
        .register_participants(&wid, people.into())
        .await?;
    Ok(Json(sum.into()))
}

async fn participants(
    AdminWebinar(w): AdminWebinar,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<views::Participant>>> {
    let wid = w.id;
    let page = s.ctx.catalog.list_participants(&wid, &q.request()?).await?;
    Ok(Json(Page::all(page)))
}

async fn unregister(
    AdminWebinar(w): AdminWebinar,
    State(s): State<AppState>,
    ApiPath(p): ApiPath<ParticipantPath>,
) -> ApiResult<NoContent> {
    let wid = w.id;
    s.ctx
        .catalog
        .unregister_participant(&wid, &p.pid)
        .await
        .map_err(ApiError::lookup("participant"))?;
    s.dispatcher.withdraw();
    Ok(NoContent)
}
