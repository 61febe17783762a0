//! What each route of the integrators' API is for, and what its handler
//! refuses: the summaries, descriptions and error answers the OpenAPI
//! document shows for `/api/v1/integration/webhook/webhook`.

use crate::api::openapi::{errors, BAD_PAGE};
use aide::transform::TransformOperation as Op;

const NO_SUB: (u16, &str) = (404, "No such subscription of this creator's (`not_found`).");
const DISABLED: (u16, &str) = (
    409,
    "The subscription is disabled (`subscription_disabled`); enable it first.",
);
const NO_DELIVERY: (u16, &str) = (404, "No such subscription or delivery (`not_found`).");

/// What each route is for, and what its handler refuses.
pub(super) fn describe<'a>(method: &str, path: &str, op: Op<'a>) -> Op<'a> {
    match (method, path) {
        ("get", "/") => errors(op.summary("List your subscriptions"), &[BAD_PAGE]),
        ("post", "/") => errors(
            op.summary("Subscribe a URL").description(
                "The seed's call. Subscribing the same (`hookUrl`, `event`, `webinar`) again \
                 answers the existing subscription (200), secret included. A hook URL on a \
                 private, loopback or otherwise non-public address is refused (422 \
                 `invalid_hook_url`).",
            ),
            &[(
                404,
                "The webinar or mango is not this creator's (`not_found`, `field` names it).",
            )],
        ),
        ("get", "/{id}") => errors(op.summary("Show a subscription"), &[NO_SUB]),
        ("patch", "/{id}") => errors(
            op.summary("Change a subscription's caps, or enable it"),
            &[NO_SUB],
        ),
        ("delete", "/{id}") => errors(op.summary("Unsubscribe"), &[NO_SUB]),
        (_, "/{id}/rotate-secret") => errors(
            op.summary("Rotate the signing secret").description(
                "The old secret keeps signing beside the new one until `previousSecretValidUntil`.",
            ),
            &[NO_SUB],
        ),
        (_, "/{id}/test") => errors(
            op.summary("Send a test event")
                .description("The seed's example payload, labelled `test`."),
            &[NO_SUB, DISABLED],
        ),
        (_, "/{id}/deliveries") => {
            errors(
                op.summary("List a subscription's deliveries, newest first"),
                &[NO_SUB, BAD_PAGE],
            )
        }
        (_, "/{id}/deliveries/{did}") => errors(
            op.summary("Show a delivery with its attempts"),
            &[NO_DELIVERY],
        ),
        (_, "/{id}/deliveries/{did}/retry") => errors(
            op.summary("Send a delivery again now").description(
                "Whatever became of it, a delivered one included, with at least an hour to succeed.",
            ),
            &[NO_DELIVERY, DISABLED],
        ),
        (_, "/{id}/replay") => errors(
            op.summary("Send again every failed, expired or missed delivery of a time window")
                .description(
                    "Deliveries of this subscription with `status`, due at or after `since` and \
                     before `until` (at most 31 days apart), are due now again, each with at \
                     least an hour to succeed. Answers how many.",
                ),
            &[NO_SUB, DISABLED],
        ),
        _ => op,
    }
}
