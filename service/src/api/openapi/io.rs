//! What each extractor and answer type adds to an operation's document:
//! the security scheme an extractor checks and the errors it can answer
//! before the handler runs (401, 429, 400, 408, 413, 422), and the status
//! each answer type is sent with. Routes add the errors of their own
//! handlers (`super::errors`).

use crate::api::answer::{Accepted, Created, Readiness, Stored, Unready};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{Admin, ApiJson, ApiPath, ApiQuery, Integrator};
use crate::api::load::{AdminCreator, AdminWebinar, AnySubscription, OwnSubscription};
use aide::generate::{in_context, GenContext};
use aide::openapi::{Operation, ReferenceOr, Response, StatusCode};
use aide::operation::{add_parameters, parameters_from_schema, ParamLocation};
use aide::transform::TransformOperation;
use aide::{OperationInput, OperationOutput};
use axum::Json;
use schemars::JsonSchema;

/// The security scheme names of the two APIs.
pub const ADMIN_SCHEME: &str = "adminToken";
pub const KEY_SCHEME: &str = "apiKey";

/// An error answer with `description`, in the one error shape.
pub fn error_response(ctx: &mut GenContext, op: &mut Operation, description: &str) -> Response {
    let mut r = Json::<ErrorBody>::operation_response(ctx, op).unwrap_or_default();
    r.description = description.to_owned();
    r
}

/// A 429 with its `Retry-After` header.
fn rate_limited(ctx: &mut GenContext, op: &mut Operation, description: &str) -> Response {
    let mut r = error_response(ctx, op, description);
    let header = serde_json::from_value(serde_json::json!({
        "description": "Seconds to wait before trying again.",
        "required": true,
        "schema": {"type": "integer", "minimum": 1}
    }))
    .expect("a valid header object");
    r.headers
        .insert("Retry-After".into(), ReferenceOr::Item(header));
    r
}

fn secured(op: &mut Operation, scheme: &str) {
    let req: aide::openapi::SecurityRequirement = [(scheme.to_owned(), Vec::new())].into();
    if !op.security.contains(&req) {
        op.security.push(req);
    }
}

/// Authentication failures either API answers before any handler runs.
fn auth_errors(
    ctx: &mut GenContext,
    op: &mut Operation,
    missing: &str,
) -> Vec<(Option<u16>, Response)> {
    vec![
        (Some(401), error_response(ctx, op, missing)),
        (
            Some(429),
            rate_limited(
                ctx,
                op,
                "Too many requests for this API key, or too many failed \
                 authentications from this address (`rate_limited`).",
            ),
        ),
    ]
}

/// An extractor that authenticates: its security scheme, and the 401 and
/// 429 it may answer before the handler runs.
macro_rules! secured_input {
    ($who:ty, $scheme:expr, $missing:literal) => {
        impl OperationInput for $who {
            fn operation_input(_: &mut GenContext, op: &mut Operation) {
                secured(op, $scheme);
            }

            fn inferred_early_responses(
                ctx: &mut GenContext,
                op: &mut Operation,
            ) -> Vec<(Option<u16>, Response)> {
                auth_errors(ctx, op, $missing)
            }
        }
    };
}

secured_input!(
    Admin,
    ADMIN_SCHEME,
    "The admin token is missing (`missing_token`) or wrong (`invalid_token`)."
);
secured_input!(
    Integrator,
    KEY_SCHEME,
    "The `x-api-key` header is missing (`missing_api_key`), or the key is \
     unknown or revoked (`invalid_api_key`)."
);

/// The errors of reading a JSON body, before the handler's own checks.
pub fn body_errors(ctx: &mut GenContext, op: &mut Operation) -> Vec<(Option<u16>, Response)> {
    vec![
        (
            Some(400),
            error_response(
                ctx,
                op,
                "The body is not JSON (`malformed_json`), is not a JSON object (`invalid_type`), \
                 gives a key twice (`duplicate_key`), has an unknown or missing field \
                 (`unknown_field`, `missing_field`) or a value of the wrong type (`invalid_type`).",
            ),
        ),
        (
            Some(408),
            error_response(
                ctx,
                op,
                "The body did not arrive in time (`request_timeout`).",
            ),
        ),
        (
            Some(413),
            error_response(
                ctx,
                op,
                "The body is over its limit (`payload_too_large`): 64 KiB (65 536 bytes), or \
                 64 MiB for a bulk registration; the message names the limit passed.",
            ),
        ),
        (
            Some(422),
            error_response(
                ctx,
                op,
                "A value is not acceptable; `error.field` names it and `error.errors` \
                 lists every field at fault.",
            ),
        ),
    ]
}

impl<T: JsonSchema> OperationInput for ApiJson<T> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        Json::<T>::operation_input(ctx, op);
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, Response)> {
        body_errors(ctx, op)
    }
}

impl<T: JsonSchema> OperationInput for ApiQuery<T> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        let schema = ctx.schema.subschema_for::<T>();
        let params = parameters_from_schema(ctx, schema, ParamLocation::Query);
        add_parameters(ctx, op, params);
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, Response)> {
        vec![(
            Some(400),
            error_response(
                ctx,
                op,
                "A query parameter is unknown, missing or of the wrong type (`invalid_query`).",
            ),
        )]
    }
}

/// Path parameters are declared from the route's template (every one is
/// an id or a string); see `super::path_parameters`.
impl<T> OperationInput for ApiPath<T> {
    fn inferred_early_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, Response)> {
        vec![(
            Some(404),
            error_response(
                ctx,
                op,
                "Not found (`not_found`): no such id, or another creator's.",
            ),
        )]
    }
}

/// A loader (`super::super::load`): its caller's authentication, then its
/// path's 404, in the order it checks them.
macro_rules! loader_input {
    ($loader:ty, $who:ty) => {
        impl OperationInput for $loader {
            fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
                <$who>::operation_input(ctx, op);
            }

            fn inferred_early_responses(
                ctx: &mut GenContext,
                op: &mut Operation,
            ) -> Vec<(Option<u16>, Response)> {
                let mut early = <$who>::inferred_early_responses(ctx, op);
                early.extend(ApiPath::<()>::inferred_early_responses(ctx, op));
                early
            }
        }
    };
}

loader_input!(OwnSubscription, Integrator);
loader_input!(AnySubscription, Admin);
loader_input!(AdminWebinar, Admin);
loader_input!(AdminCreator, Admin);

/// Any handler may fail on our side: an opaque 500, logged with its cause.
impl OperationOutput for ApiError {
    type Inner = ErrorBody;

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, Response)> {
        vec![(
            Some(500),
            error_response(ctx, op, "Our fault (`internal`); logged with its cause."),
        )]
    }
}

impl OperationOutput for Unready {
    type Inner = Readiness;

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<u16>, Response)> {
        let r = json_response::<Readiness>(ctx, op, "The database does not answer.");
        vec![(Some(503), r)]
    }
}

/// The JSON answer for `T` with `description`.
fn json_response<T: JsonSchema>(
    ctx: &mut GenContext,
    op: &mut Operation,
    description: &str,
) -> Response {
    let mut r = Json::<T>::operation_response(ctx, op).unwrap_or_default();
    r.description = description.to_owned();
    r
}

/// A JSON answer of `T` under each of its statuses, the first of which
/// describes the operation's response.
macro_rules! json_output {
    ($answer:ident: $(($status:literal, $description:literal)),+) => {
        impl<T: JsonSchema> OperationOutput for $answer<T> {
            type Inner = T;

            fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<Response> {
                let first = [$($description),+][0];
                Some(json_response::<T>(ctx, op, first))
            }

            fn inferred_responses(
                ctx: &mut GenContext,
                op: &mut Operation,
            ) -> Vec<(Option<u16>, Response)> {
                vec![$((Some($status), json_response::<T>(ctx, op, $description))),+]
            }
        }
    };
}

json_output!(Created: (201, "Created."));
json_output!(Accepted: (202, "Queued for sending."));
json_output!(
    Stored: (201, "Created."),
    (200, "The same request was made before: the existing one.")
);

/// Declares a JSON body of `T` for a handler that reads its body by hand
/// (raw bytes or a stream), with the errors of reading one.
pub fn read_by_hand<T: JsonSchema>(
    mut op: TransformOperation<'_>,
    required: bool,
) -> TransformOperation<'_> {
    let o = op.inner_mut();
    in_context(|ctx| {
        o.request_body = None;
        Json::<T>::operation_input(ctx, o);
        if let Some(ReferenceOr::Item(b)) = o.request_body.as_mut() {
            b.required = required;
        }
        for (code, r) in body_errors(ctx, o) {
            let code = StatusCode::Code(code.unwrap_or(400));
            let responses = &mut o.responses.get_or_insert_with(Default::default).responses;
            responses.insert(code, ReferenceOr::Item(r));
        }
    });
    op
}
