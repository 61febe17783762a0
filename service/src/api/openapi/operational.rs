//! The operational webhooks (`crate::ops`) as OpenAPI 3.1 `webhooks`
//! entries: what the platform's `--operational-webhook-url` receives, one
//! entry per event type, each body the `{type, timestamp, data}` envelope.
//! Written by hand beside `ops::events`, which builds the bodies; the
//! tests in `tests/api/operational.rs` hold the two together.

use aide::openapi::{OpenApi, PathItem, ReferenceOr};
use serde_json::{json, Value};

const SIGNING: &str = "Sent to `--operational-webhook-url` (never to an integrator), signed as \
    the reminders are (Standard Webhooks: `webhook-signature` is `v1,` + the base64 \
    HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`), with the operational secret \
    (`--operational-webhook-secret`, or the one generated on the first start and written to \
    the file `tminus-operational-webhook-secret`). Retried like a reminder for 24 hours; \
    `webhook-id` is the same on every retry, and the same for an event that goes once \
    (`fanout.*`) whichever instance sends it. Answer 2xx to acknowledge. Its deliveries are \
    listed at `GET /api/v1/platform/subscriptions/{id}/deliveries`, `id` from \
    `GET /api/v1/platform/operational-webhook`.";

fn headers(kind: &str) -> Value {
    let header = |name: &str, description: String, pattern: Option<&str>| {
        let mut schema = json!({"type": "string"});
        if let Some(p) = pattern {
            schema["pattern"] = json!(p);
        }
        json!({"in": "header", "name": name, "required": true, "description": description, "schema": schema})
    };
    json!([
        header(
            "webhook-id",
            "`msg_` + 24 hex digits: the same on every retry.".into(),
            Some("^msg_[0-9a-f]{24}$")
        ),
        header(
            "webhook-timestamp",
            "Unix seconds of this attempt.".into(),
            Some("^[0-9]+$")
        ),
        header(
            "webhook-signature",
            "`v1,<base64 HMAC-SHA256>`; two, space-separated, while a replaced secret still signs."
                .into(),
            Some("^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$")
        ),
        header("x-tminus-event", "`tminus.operational`.".into(), None),
        header(
            "x-tminus-reminder",
            format!("The event type: `{kind}`."),
            None
        ),
        header(
            "x-tminus-attempt",
            "`1`, `2`, … for this delivery.".into(),
            Some("^[1-9][0-9]*$")
        ),
    ])
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time", "description": "UTC, with milliseconds and `Z`."})
}

fn nullable(mut v: Value) -> Value {
    v["type"] = json!([v["type"], "null"]);
    v
}

/// The subscription a `subscription.*` event is about.
fn subscription() -> Value {
    object(
        &["id", "creatorId", "hookUrl", "event", "webinar"],
        json!({
            "id": {"type": "string"},
            "creatorId": {"type": "string"},
            "hookUrl": {"type": "string", "format": "uri"},
            "event": {"type": "string", "description": "The subscribed event, e.g. `webinar.reminder.all`."},
            "webinar": {"type": ["string", "null"]}
        }),
    )
}

fn envelope(kind: &str, data: Value) -> Value {
    json!({
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "additionalProperties": false,
        "properties": {
            "type": {"const": kind},
            "timestamp": time(),
            "data": data
        }
    })
}

fn entry(id: &str, kind: &str, summary: &str, data: Value) -> PathItem {
    serde_json::from_value(json!({
        "post": {
            "operationId": id,
            "summary": summary,
            "description": SIGNING,
            "tags": ["operational"],
            "parameters": headers(kind),
            "requestBody": {"required": true, "content": {"application/json": {"schema": envelope(kind, data)}}},
            "responses": {
                "2XX": {"description": "Received: not sent again."},
                "default": {"description": "Anything else (and no answer): retried with backoff for 24 hours."}
            }
        }
    }))
    .expect("a valid path item")
}

/// The five entries: the `subscription.*` events', then the `fanout.*`
/// events'.
pub fn add(api: &mut OpenApi) {
    for e in subscription_events().into_iter().chain(fanout_events()) {
        let id = e
            .post
            .as_ref()
            .and_then(|op| op.operation_id.clone())
            .expect("an operation id");
        api.webhooks.insert(id, ReferenceOr::Item(e));
    }
}

/// The events about a subscription's endpoint: disabled, failing, recovered.
fn subscription_events() -> [PathItem; 3] {
    [
        entry(
            "subscriptionDisabled",
            "subscription.disabled",
            "A subscription was disabled: its receiver answered 410, or it failed without a success for `--disable-after`",
            object(&["subscription", "reason", "message", "failingSince"], json!({
                "subscription": subscription(),
                "reason": {"enum": ["gone", "failing_too_long"]},
                "message": {"type": ["string", "null"], "description": "The reason as the subscription shows it (`disabledReason`)."},
                "failingSince": nullable(time())
            })),
        ),
        entry(
            "subscriptionFailing",
            "subscription.failing",
            "A subscription's endpoint failed after a success (at most once an hour per subscription)",
            object(&["subscription", "failingSince", "lastAttempt"], json!({
                "subscription": subscription(),
                "failingSince": time(),
                "lastAttempt": object(&["status", "error"], json!({
                    "status": {"type": ["integer", "null"], "description": "The HTTP status, or null when no answer came."},
                    "error": {"type": ["string", "null"], "description": "Why no answer came (timeout, refused…)."}
                }))
            })),
        ),
        entry(
            "subscriptionRecovered",
            "subscription.recovered",
            "A subscription announced failing succeeded again",
            object(&["subscription", "failingSince", "recoveredAt"], json!({
                "subscription": subscription(),
                "failingSince": time(),
                "recoveredAt": time()
            })),
        ),
    ]
}

/// A fan-out event's `data`: its webinar, its reminder's label and due
/// instant, then the `more` properties (all required) of `properties`.
fn fanout(more: &[&str], properties: Value) -> Value {
    let required = [&["webinar", "reminder", "dueAt"], more].concat();
    let mut o = object(&required, properties);
    let label = "The reminder's label: `1day`, `30min`, `15min` or a configured offset.";
    o["properties"]["webinar"] = json!({"type": "string"});
    o["properties"]["reminder"] = json!({"type": "string", "description": label});
    o["properties"]["dueAt"] = time();
    o
}

/// The events about a fan-out (a reminder × a subscription): predicted
/// late, finished.
fn fanout_events() -> [PathItem; 2] {
    let ms = |d: &str| json!({"type": "integer", "description": d});
    [
        entry(
            "fanoutPredictedLate",
            "fanout.predicted_late",
            "A fan-out (a reminder × a subscription) is predicted to miss its lateness budget (once per fan-out)",
            fanout(&["subscription", "predictedDurationMs", "predictedLastAt", "predictedLatenessMs", "lateBudgetMs"], json!({
                "subscription": {"type": "string"},
                "predictedDurationMs": ms("How long the fan-out is predicted to take."),
                "predictedLastAt": time(),
                "predictedLatenessMs": ms("`predictedLastAt` − `dueAt`."),
                "lateBudgetMs": ms("The subscription's lateness budget.")
            })),
        ),
        entry(
            "fanoutFinished",
            "fanout.finished",
            "A fan-out is over: every participant's delivery had its first attempt (once per reminder)",
            fanout(&["reminderId", "firedAt", "firstLatenessMs", "lastLatenessMs", "deliveries"], json!({
                "reminderId": {"type": "string"},
                "firedAt": nullable(time()),
                "firstLatenessMs": {"type": ["integer", "null"], "description": "First acknowledgement − `dueAt`; null when none."},
                "lastLatenessMs": {"type": ["integer", "null"], "description": "Last acknowledgement − `dueAt`; null when none."},
                "deliveries": object(&["total", "delivered", "failed", "expired", "missed", "cancelled", "retrying"], json!({
                    "total": {"type": "integer"},
                    "delivered": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "expired": {"type": "integer"},
                    "missed": {"type": "integer"},
                    "cancelled": {"type": "integer"},
                    "retrying": ms("Not settled yet: to be retried.")
                }))
            })),
        ),
    ]
}
