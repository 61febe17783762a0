//! The webhook itself, as OpenAPI 3.1 `webhooks` entries: the reminder a
//! receiver gets (one payload, or an array of them for a subscription with
//! `batchSize` above 1), its headers, how its signature is made (Standard
//! Webhooks, `crate::signing`) and what the receiver's answer means.

use crate::domain::payload::Payload;
use aide::openapi::{OpenApi, PathItem, ReferenceOr};
use serde_json::{json, Value};

const SIGNING: &str = "Signed as [Standard Webhooks](https://www.standardwebhooks.com/) \
    specifies: `webhook-signature` is `v1,` followed by the base64 HMAC-SHA256 of \
    `{webhook-id}.{webhook-timestamp}.{body}` (the exact bytes of the body), keyed with the \
    base64-decoded part of the subscription's secret after `whsec_`. During a secret \
    rotation the header holds two signatures separated by a space (new secret, then old); \
    accept the request if any one matches, and refuse a `webhook-timestamp` far from your \
    clock to stop replays. `webhook-id` stays the same on every retry: use it as your \
    idempotency key.\n\n\
    Answer 2xx within the timeout to acknowledge. A 410 Gone disables the subscription; \
    other answers, timeouts and connection errors are retried with backoff until the \
    delivery expires.";

/// The headers every delivery carries.
fn headers(batch: bool) -> Value {
    let id = if batch {
        "`msg_b` + 32 hex digits, derived from the batch's members; the same on every retry."
    } else {
        "`msg_` + 32 hex digits: the same on every retry, after a restart and from any instance."
    };
    let header = |name: &str, description: &str, pattern: Option<&str>| {
        let mut schema = json!({"type": "string"});
        if let Some(p) = pattern {
            schema["pattern"] = json!(p);
        }
        json!({"in": "header", "name": name, "required": true, "description": description, "schema": schema})
    };
    json!([
        header("webhook-id", id, Some(if batch { "^msg_b[0-9a-f]{32}$" } else { "^msg_[0-9a-f]{32}$" })),
        header("webhook-timestamp", "Unix seconds of this attempt.", Some("^[0-9]+$")),
        header("webhook-signature", "`v1,<base64 HMAC-SHA256>`; two, space-separated, during a secret rotation.", Some("^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$")),
        header("x-tminus-event", "The subscribed event, e.g. `webinar.reminder.all`.", None),
        header("x-tminus-reminder", "The interval: `1day`, `30min`, `15min` (or a configured offset), or `test` for a test event.", None),
        header("x-tminus-attempt", "`1`, `2`, … for this delivery.", Some("^[1-9][0-9]*$")),
    ])
}

fn entry(summary: &str, batch: bool, body: Value) -> PathItem {
    serde_json::from_value(json!({
        "post": {
            "operationId": if batch { "reminderBatch" } else { "reminder" },
            "summary": summary,
            "description": SIGNING,
            "parameters": headers(batch),
            "requestBody": {"required": true, "content": {"application/json": {"schema": body}}},
            "responses": {
                "2XX": {"description": "Delivered: not sent again."},
                "410": {"description": "Gone: the subscription is disabled."},
                "default": {"description": "Anything else (and no answer): retried with backoff until the delivery expires."}
            }
        }
    }))
    .expect("a valid path item")
}

/// Adds the two webhook entries, their payload's schema into the
/// generator's definitions (extracted into `components` with the rest).
pub fn add(api: &mut OpenApi) {
    let payload = aide::generate::in_context(|ctx| ctx.schema.subschema_for::<Payload<'static>>());
    let one = payload.to_value();
    api.webhooks.insert(
        "webinarReminder".into(),
        ReferenceOr::Item(entry("A reminder for one participant", false, one.clone())),
    );
    api.webhooks.insert(
        "webinarReminderBatch".into(),
        ReferenceOr::Item(entry(
            "Reminders in a batch (a subscription with `batchSize` above 1)",
            true,
            json!({"type": "array", "minItems": 1, "maxItems": 1000, "items": one}),
        )),
    );
}
