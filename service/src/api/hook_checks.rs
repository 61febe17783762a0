//! The integrators' request bodies (subscribe, change a subscription) and
//! the checks they pass without the store, each refusal naming its field
//! and every field at fault listed (`validate::Findings`); and [`active`],
//! the check before anything is sent for a subscription (a test event, a
//! replay).

use super::validate::Findings;
use crate::api::error::{ApiError, ApiResult};
use crate::domain::{ids, Event, HookUrl};
use schemars::JsonSchema;
use serde::Deserialize;

/// Declares a request body: its own fields, then the delivery settings
/// both bodies take, each optional (caps, batch size, lateness budget and
/// early start), documented once here.
macro_rules! body_with_settings {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $name {
            $($(#[$fm])* pub(super) $f: $t,)*
            /// Requests in flight to the endpoint at once, 1 to 1024.
            #[schemars(range(min = 1, max = 1024))]
            pub(super) max_concurrency: Option<u32>,
            /// Payloads per POST, 1 to 1000: more than 1 sends JSON arrays.
            #[schemars(range(min = 1, max = 1000))]
            pub(super) batch_size: Option<u32>,
            /// The lateness budget, in seconds (0 to 86400, default 60): how
            /// long after a reminder's instant its last participant may be
            /// reminded. A fan-out predicted to take longer is marked late
            /// where it is shown.
            #[schemars(range(min = 0, max = 86400))]
            pub(super) late_budget: Option<u32>,
            /// How long before a reminder's instant its fan-out may start, in
            /// seconds (0 to 600, default 0: never early), when it is
            /// predicted to miss its budget otherwise.
            #[schemars(range(min = 0, max = 600))]
            pub(super) send_early: Option<u32>,
        }
    };
}

body_with_settings! {
    /// The seed's body, plus tminus's optional extensions. Unknown fields
    /// are refused: a typo like `webinarId` must not subscribe to every
    /// webinar.
    pub struct Subscribe {
        /// Where to POST: an absolute `https://` URL (`http://` only where
        /// the operator allows it), on a public address.
        #[schemars(url)]
        hook_url: String,
        /// `webinar.reminder.all`, or one interval's event such as
        /// `webinar.reminder.1day`.
        event: String,
        /// Only this webinar of the creator's; all of them when absent or
        /// empty.
        webinar: Option<String>,
        /// Only webinars of this mango (product).
        mango: Option<String>,
        /// Requests a second at most; no cap when absent.
        #[schemars(range(min = 1))]
        rate_per_second: Option<u32>,
    }
}

/// Empty strings mean "not given", as form-based REST-hook clients send them.
fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Most payloads in one batched POST.
const MAX_BATCH: u32 = 1000;

/// Checks the delivery caps, keeping each refusal in `f`.
pub(super) fn caps(
    f: &mut Findings,
    max_concurrency: Option<u32>,
    rate: Option<u32>,
    batch: Option<u32>,
) {
    if matches!(batch, Some(0)) || batch.is_some_and(|b| b > MAX_BATCH) {
        f.refuse(ApiError::invalid(
            "invalid_value",
            "batchSize",
            format!("batchSize must be between 1 and {MAX_BATCH}"),
        ));
    }
    if matches!(max_concurrency, Some(0) | Some(1025..)) {
        f.refuse(ApiError::invalid(
            "invalid_value",
            "maxConcurrency",
            "maxConcurrency must be between 1 and 1024",
        ));
    }
    if matches!(rate, Some(0)) {
        f.refuse(ApiError::invalid(
            "invalid_value",
            "ratePerSecond",
            "ratePerSecond must be at least 1 (omit it for no cap)",
        ));
    }
}

/// Checks the lateness budget and the early start (both in seconds),
/// keeping each refusal in `f`; answers them in milliseconds, as stored.
pub(super) fn timing(
    f: &mut Findings,
    late_budget: Option<u32>,
    send_early: Option<u32>,
) -> (Option<u32>, Option<u32>) {
    use crate::delivery::forecast::{MAX_LATE_BUDGET_MS, MAX_SEND_EARLY_MS};
    let budget = late_budget.filter(|b| b.saturating_mul(1000) <= MAX_LATE_BUDGET_MS);
    if late_budget.is_some() && budget.is_none() {
        f.refuse(ApiError::invalid(
            "invalid_value",
            "lateBudget",
            format!(
                "lateBudget must be between 0 and {} (seconds)",
                MAX_LATE_BUDGET_MS / 1000
            ),
        ));
    }
    let early = send_early.filter(|e| e.saturating_mul(1000) <= MAX_SEND_EARLY_MS);
    if send_early.is_some() && early.is_none() {
        f.refuse(ApiError::invalid(
            "invalid_value",
            "sendEarly",
            format!(
                "sendEarly must be between 0 and {} (seconds)",
                MAX_SEND_EARLY_MS / 1000
            ),
        ));
    }
    (budget.map(|b| b * 1000), early.map(|e| e * 1000))
}

/// A subscribe body that passed every check that needs no store.
pub(super) struct Checked {
    pub(super) hook: HookUrl,
    pub(super) event: Event,
    pub(super) webinar: Option<ids::WebinarId>,
    pub(super) mango: Option<String>,
    /// The lateness budget and the early start, in milliseconds.
    pub(super) late_budget_ms: Option<u32>,
    pub(super) send_early_ms: Option<u32>,
}

/// The subscribe body's checks that need no store, in the order the
/// integrator's errors are reported: the hook URL (and the target guard's
/// verdict on its host), the event (one of `offsets`' intervals, or all),
/// the caps, the webinar id's shape.
pub fn check_subscribe(
    b: &Subscribe,
    cfg: &crate::config::Config,
    offsets: &[crate::domain::ReminderOffset],
    guard: &crate::delivery::guard::Policy,
) -> ApiResult<Checked> {
    let mut f = Findings::default();
    let hook = f.check(
        HookUrl::parse(&b.hook_url, cfg.allow_http)
            .map_err(|e| ApiError::invalid("invalid_hook_url", "hookUrl", e.to_string())),
    );
    // A forbidden IP literal or localhost name can never be delivered to:
    // say so now rather than with failed attempts later.
    let hook = hook.and_then(|hook| {
        f.check(
            guard
                .check_url(hook.url())
                .map(|_| hook)
                .map_err(|e| ApiError::invalid("invalid_hook_url", "hookUrl", e)),
        )
    });
    let event = f.check(Event::parse(b.event.trim(), offsets).ok_or_else(|| {
        ApiError::invalid(
            "unknown_event",
            "event",
            format!("event must be one of: {}", Event::names(offsets).join(", ")),
        )
    }));
    caps(&mut f, b.max_concurrency, b.rate_per_second, b.batch_size);
    let (late_budget_ms, send_early_ms) = timing(&mut f, b.late_budget, b.send_early);
    let webinar = given(b.webinar.clone()).map(|w| {
        w.parse::<ids::WebinarId>().map_err(|_| {
            ApiError::invalid(
                "invalid_webinar_id",
                "webinar",
                "webinar must be a webinar id (24 hex digits)",
            )
        })
    });
    let webinar = f.check(webinar.transpose());
    f.done()?;
    let (Some(hook), Some(event), Some(webinar)) = (hook, event, webinar) else {
        unreachable!("every refusal was answered by done()");
    };
    Ok(Checked {
        hook,
        event,
        webinar,
        mango: given(b.mango.clone()),
        late_budget_ms,
        send_early_ms,
    })
}

body_with_settings! {
    /// Changes to a subscription; absent fields keep their value.
    pub struct Patch {
        /// At least 1; `null` removes the cap.
        #[schemars(range(min = 1))]
        #[serde(default, deserialize_with = "explicit")]
        rate_per_second: Option<Option<u32>>,
        /// `true` enables a disabled subscription (only `true` is accepted).
        enabled: Option<bool>,
    }
}

/// Tells `"ratePerSecond": null` (remove the cap) from an absent field.
fn explicit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

/// Refuses to send for a disabled subscription.
pub(crate) fn active(sub: &crate::store::Subscription) -> ApiResult<()> {
    if sub.status == crate::domain::SubscriptionStatus::Active {
        return Ok(());
    }
    Err(ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "subscription_disabled",
        "the subscription is disabled; enable it first",
    ))
}
