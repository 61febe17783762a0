//! The OpenAPI 3.1 document, generated with `aide` from the routes, their
//! extractors and the typed bodies (`io`), plus what no handler says: the
//! two security schemes, path parameters from the route templates, the
//! errors the URI filter answers, the webhook itself (`webhook`), and the
//! operational webhooks to the platform (`operational`).
//! Served at `/api/openapi.json`, printed by `tminus openapi`, and kept
//! in the repository as `docs/openapi.json` (a test compares them).

pub mod io;
mod operational;
mod webhook;

use aide::axum::routing::ApiMethodRouter;
use aide::axum::ApiRouter;
use aide::openapi::{
    ApiKeyLocation, Info, OpenApi, Operation, PathItem, ReferenceOr, SecurityScheme, Tag,
};
use aide::transform::{TransformOpenApi, TransformOperation};
use std::sync::OnceLock;

/// What every list refuses of its paging (`api::paging`).
pub const BAD_PAGE: (u16, &str) = (
    422,
    "`limit` is not between 1 and 1000, or `after` is not a cursor this list gave \
     (`invalid_value`, `field` names it).",
);

/// Adds the errors a handler itself answers, each with what it means
/// there; an error an extractor declared is replaced by the handler's
/// more precise description.
pub fn errors<'a>(mut op: TransformOperation<'a>, list: &[(u16, &str)]) -> TransformOperation<'a> {
    let operation = op.inner_mut();
    aide::generate::in_context(|ctx| {
        for (code, description) in list {
            let r = io::error_response(ctx, operation, description);
            operation
                .responses
                .get_or_insert_with(Default::default)
                .responses
                .insert(aide::openapi::StatusCode::Code(*code), ReferenceOr::Item(r));
        }
    });
    op
}

/// Says what an operation is for: its summary, a description (`""` for
/// none) and the errors its handler answers ([`errors`]).
pub fn doc(
    summary: &'static str,
    description: &'static str,
    list: &'static [(u16, &'static str)],
) -> impl for<'a> FnOnce(TransformOperation<'a>) -> TransformOperation<'a> {
    move |op| {
        let op = op.summary(summary);
        match description {
            "" => errors(op, list),
            d => errors(op.description(d), list),
        }
    }
}

/// Says what one operation is for and what its handler refuses, given
/// its method (`get`, `post`…) and its route.
pub type Describe = for<'a> fn(&str, &str, TransformOperation<'a>) -> TransformOperation<'a>;

/// Routes declared plainly (`.route("/x", get(a).post(b))`) and described
/// from one table (`Describe`), so a module's routes read as a list.
pub struct Routes<S> {
    router: ApiRouter<S>,
    describe: Describe,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new(describe: Describe) -> Self {
        Self {
            router: ApiRouter::new(),
            describe,
        }
    }

    /// Adds a documented route, described by the table.
    pub fn route(self, path: &str, methods: ApiMethodRouter<S>) -> Self {
        let describe = self.describe;
        let one = ApiRouter::new()
            .api_route(path, methods)
            .with_path_items(|mut item| {
                for (method, op) in operations(item.inner_mut()) {
                    let _ = describe(method, path, TransformOperation::new(op));
                }
                item
            });
        Self {
            router: self.router.merge(one),
            describe,
        }
    }

    /// The routes, every operation under `tag`.
    pub fn tagged(self, tag: &str) -> ApiRouter<S> {
        self.router.with_path_items(|p| p.tag(tag))
    }
}

/// The document, generated once per process.
pub fn document() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut api = OpenApi::default();
        let _ = super::api_routes().finish_api_with(&mut api, describe);
        api
    })
}

/// The document as served: pretty JSON with a final newline, the same
/// bytes `tminus openapi` prints and `docs/openapi.json` holds.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut s = serde_json::to_string_pretty(document()).expect("the document serialises");
        s.push('\n');
        s
    })
}

/// The title, the description, the tags and the security schemes.
fn describe(api: TransformOpenApi<'_>) -> TransformOpenApi<'_> {
    api.title("tminus")
        .version(env!("CARGO_PKG_VERSION"))
        .description(include_str!("description.md"))
        .tag(tag("platform", "The platform's admin API: creators, their API keys and mangoes, webinars, participants, and every subscription. Authenticated by the admin token."))
        .tag(tag("integration", "The integrators' REST-hook API at the seed's path: subscribe a URL, manage it, see and retry its deliveries. Authenticated by a creator's API key."))
        .tag(tag("probes", "Liveness and readiness, unauthenticated."))
        .tag(tag("operational", "Operational webhooks: what tminus POSTs to the platform's `--operational-webhook-url` about subscriptions and fan-outs."))
        .security_scheme(
            io::ADMIN_SCHEME,
            SecurityScheme::Http {
                scheme: "bearer".into(),
                bearer_format: None,
                description: Some("The platform's admin token (`--admin-token`, `TMINUS_ADMIN_TOKEN`): `Authorization: Bearer <token>`.".into()),
                extensions: Default::default(),
            },
        )
        .security_scheme(
            io::KEY_SCHEME,
            SecurityScheme::ApiKey {
                location: ApiKeyLocation::Header,
                name: "x-api-key".into(),
                description: Some("A creator's API key (`tmk_…`), made on the platform API.".into()),
                extensions: Default::default(),
            },
        )
        // Before the schemas are gathered into `components`, so the
        // webhook's payload schema is among them.
        .with(|mut t| {
            finish(t.inner_mut());
            t
        })
}

fn tag(name: &str, description: &str) -> Tag {
    Tag {
        name: name.into(),
        description: Some(description.into()),
        ..Tag::default()
    }
}

/// What the routes cannot say themselves.
fn finish(api: &mut OpenApi) {
    api.info = Info {
        summary: Some("Webinar-reminder webhooks: subscribe a URL, receive one signed POST per participant per reminder.".into()),
        ..std::mem::take(&mut api.info)
    };
    if let Some(paths) = api.paths.as_mut() {
        for (template, item) in paths.paths.iter_mut() {
            if let ReferenceOr::Item(item) = item {
                let platform = template.starts_with("/api/v1/platform/");
                for (method, op) in operations(item) {
                    path_parameters(template, op);
                    uri_errors(op);
                    duplicate_header(op);
                    if platform && method == "post" {
                        idempotency_key(op);
                    }
                }
            }
        }
    }
    webhook::add(api);
    operational::add(api);
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("post", item.post.as_mut()),
        ("patch", item.patch.as_mut()),
        ("put", item.put.as_mut()),
        ("delete", item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| Some((m, op?)))
}

/// Declares each `{name}` of the template as a required string.
fn path_parameters(template: &str, op: &mut Operation) {
    let names = template
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'));
    for (i, name) in names.enumerate() {
        let param = serde_json::from_value(serde_json::json!({
            "in": "path",
            "name": name,
            "required": true,
            "description": "An id: 24 hex digits. Any other value is not found.",
            "schema": {"type": "string"}
        }))
        .expect("a valid parameter");
        op.parameters.insert(i, ReferenceOr::Item(param));
    }
}

/// Platform `POST`s take `Idempotency-Key` (`api::idempotency`).
fn idempotency_key(op: &mut Operation) {
    let param = serde_json::from_value(serde_json::json!({
        "in": "header",
        "name": "Idempotency-Key",
        "required": false,
        "description": "Makes the request safe to repeat: a repeat with the same key within 24 h \
            gets the first answer (status and body) and changes nothing; the same key with \
            another request is refused, 422 `idempotency_key_reused`; while the first request \
            with the key is still running, another is refused, 409 `idempotency_key_in_use` with \
            `Retry-After: 1`. 1 to 255 characters.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255}
    }))
    .expect("a valid parameter");
    op.parameters.push(ReferenceOr::Item(param));
    let in_use = "A request with the same `Idempotency-Key` is still running \
                  (`idempotency_key_in_use`, with `Retry-After: 1`): send it again for its answer.";
    also_answers(op, 409, in_use);
}

/// Adds an error answer `code` that a layer before the handler gives, or,
/// where the handler documents that status already, adds `description` to
/// it.
fn also_answers(op: &mut Operation, code: u16, description: &str) {
    aide::generate::in_context(|ctx| {
        let responses = &mut op.responses.get_or_insert_with(Default::default).responses;
        let code = aide::openapi::StatusCode::Code(code);
        match responses.get_mut(&code) {
            Some(ReferenceOr::Item(r)) => {
                r.description = format!("{} Or: {description}", r.description)
            }
            _ => {
                let mut r = io::error_response(ctx, &mut Operation::default(), description);
                r.description = description.into();
                responses.insert(code, ReferenceOr::Item(r));
            }
        }
    });
}

/// Every request's path and query pass a filter that refuses control
/// characters (`invalid_characters`), before any handler; a path
/// parameter that is not valid UTF-8 is refused too.
fn uri_errors(op: &mut Operation) {
    if op.parameters.is_empty() {
        return;
    }
    aide::generate::in_context(|ctx| {
        let responses = &mut op.responses.get_or_insert_with(Default::default).responses;
        let missing = |code| !responses.contains_key(&aide::openapi::StatusCode::Code(code));
        let add: Vec<(u16, &str)> = [
            (
                400,
                "A path or query parameter cannot be read (`invalid_path`, `invalid_query`).",
            ),
            (
                422,
                "A path or query parameter holds a control character (`invalid_characters`).",
            ),
        ]
        .into_iter()
        .filter(|(code, _)| missing(*code))
        .collect();
        for (code, description) in add {
            let mut r = io::error_response(ctx, &mut Operation::default(), description);
            r.description = description.into();
            responses.insert(aide::openapi::StatusCode::Code(code), ReferenceOr::Item(r));
        }
    });
}

/// A route that reads a credential refuses one sent twice (and an
/// `Idempotency-Key` sent twice), `400 duplicate_header`, before the
/// handler: a proxy and tminus could read two copies differently.
fn duplicate_header(op: &mut Operation) {
    if op.security.is_empty() {
        return;
    }
    let twice = "A credential header (`x-api-key`, `Authorization`) or `Idempotency-Key` \
                 is sent more than once (`duplicate_header`).";
    also_answers(op, 400, twice);
}
