//! Tenant isolation: a walk of every integration route with creator B's key
//! on creator A's ids (subscription, delivery, webinar and mango in a
//! subscribe body). Each answers 404 `not_found`, as if A's things did not
//! exist, and afterwards nothing of A's has changed: the subscription, its
//! deliveries, and its secret (which alone still signs).
//!
//! The walk is one table, [`WALK`]. So that a new route cannot be missed,
//! [`the_walk_covers_every_integration_route`] reads the routes from the
//! source of `service/src/api/integration.rs` (its `routes()`, the one place they
//! are declared) and compares them with the table both ways; it also fails
//! if that function stops being a plain list of `.route(…)` calls (a
//! `.merge` or `.nest` would bring routes the scan cannot see), or if
//! `service/src/api/mod.rs` mounts anything else under the integration prefix.
//! axum cannot list a router's routes, so the source is the honest place to
//! look. The walk also checks at run time that every method the table does
//! not list for a path is answered 405, so the router agrees with the scan.

use crate::helpers::*;
use crate::receiver::TestReceiver;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// What B's call must get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 404 `not_found`.
    NotFound,
    /// 200 with B's own subscriptions only.
    OwnList,
    /// 201: B's own new subscription, not A's with the same body.
    OwnNew,
}

/// One call of the walk: the route (as declared in `routes()`), the path
/// and body with `{sa}` `{sb}` `{da}` `{wa}` `{ma}` `{url}` to fill in.
struct Probe {
    method: &'static str,
    route: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    expect: Expect,
}

const fn probe(
    method: &'static str,
    route: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    expect: Expect,
) -> Probe {
    Probe {
        method,
        route,
        path,
        body,
        expect,
    }
}

use Expect::*;

/// Every integration route, each called at least once with B's key.
const WALK: &[Probe] = &[
    probe(
        "POST",
        "/",
        "",
        Some(r#"{"hookUrl": "{url}", "event": "webinar.reminder.all", "webinar": "{wa}"}"#),
        NotFound,
    ),
    probe(
        "POST",
        "/",
        "",
        Some(r#"{"hookUrl": "{url}", "event": "webinar.reminder.all", "mango": "{ma}"}"#),
        NotFound,
    ),
    probe(
        "POST",
        "/",
        "",
        Some(r#"{"hookUrl": "{url}", "event": "webinar.reminder.all"}"#),
        OwnNew,
    ),
    probe("GET", "/", "", None, OwnList),
    probe("GET", "/{id}", "/{sa}", None, NotFound),
    probe(
        "PATCH",
        "/{id}",
        "/{sa}",
        Some(r#"{"maxConcurrency": 1, "batchSize": 5, "enabled": true}"#),
        NotFound,
    ),
    probe("DELETE", "/{id}", "/{sa}", None, NotFound),
    probe(
        "POST",
        "/{id}/rotate-secret",
        "/{sa}/rotate-secret",
        None,
        NotFound,
    ),
    probe("POST", "/{id}/test", "/{sa}/test", None, NotFound),
    probe(
        "GET",
        "/{id}/deliveries",
        "/{sa}/deliveries",
        None,
        NotFound,
    ),
    probe(
        "GET",
        "/{id}/deliveries",
        "/{sa}/deliveries?status=delivered&limit=5",
        None,
        NotFound,
    ),
    probe(
        "GET",
        "/{id}/deliveries/{did}",
        "/{sa}/deliveries/{da}",
        None,
        NotFound,
    ),
    // A's delivery under B's own subscription.
    probe(
        "GET",
        "/{id}/deliveries/{did}",
        "/{sb}/deliveries/{da}",
        None,
        NotFound,
    ),
    probe(
        "POST",
        "/{id}/deliveries/{did}/retry",
        "/{sa}/deliveries/{da}/retry",
        None,
        NotFound,
    ),
    probe(
        "POST",
        "/{id}/deliveries/{did}/retry",
        "/{sb}/deliveries/{da}/retry",
        None,
        NotFound,
    ),
    probe(
        "POST",
        "/{id}/replay",
        "/{sa}/replay",
        Some(
            r#"{"since": "2000-01-01T00:00:00Z", "until": "2000-01-31T00:00:00Z", "status": "failed"}"#,
        ),
        NotFound,
    ),
];

const INTEGRATION_SRC: &str = include_str!("../../service/src/api/integration.rs");
const API_SRC: &str = include_str!("../../service/src/api/mod.rs");

/// The (method, route) pairs declared in `routes()` of integration.rs.
fn declared_routes() -> BTreeSet<(String, String)> {
    let start = INTEGRATION_SRC
        .find("pub fn routes()")
        .expect("integration.rs declares routes()");
    let body = &INTEGRATION_SRC[start..];
    let body = &body[..body.find("\n}\n").expect("routes() ends")];
    for hidden in [
        ".merge(",
        ".nest(",
        ".nest_service(",
        ".route_service(",
        ".fallback",
    ] {
        assert!(
            !body.contains(hidden),
            "routes() uses {hidden}: extend this scan so the walk still sees every route"
        );
    }
    let mut out = BTreeSet::new();
    for call in body.split(".route(").skip(1) {
        let path = call.split('"').nth(1).expect("a route's path literal");
        // The method router: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = call
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .expect("a closed .route(")
            .0;
        let methods = &call[..end];
        let mut found = false;
        for m in [
            "get", "post", "put", "patch", "delete", "head", "options", "any",
        ] {
            let mut rest = methods;
            while let Some(i) = rest.find(&format!("{m}(")) {
                let before = rest[..i].chars().last();
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    out.insert((m.to_uppercase(), path.to_owned()));
                    found = true;
                }
                rest = &rest[i + m.len()..];
            }
        }
        assert!(found, "no method found for route {path}: {methods}");
    }
    out
}

#[test]
fn the_walk_covers_every_integration_route() {
    let declared = declared_routes();
    let walked: BTreeSet<(String, String)> = WALK
        .iter()
        .map(|p| (p.method.to_owned(), p.route.to_owned()))
        .collect();
    assert!(declared.len() >= 10, "the scan found too few: {declared:?}");
    let missing: Vec<_> = declared.difference(&walked).collect();
    assert!(
        missing.is_empty(),
        "routes the walk does not call: {missing:?}"
    );
    let stale: Vec<_> = walked.difference(&declared).collect();
    assert!(
        stale.is_empty(),
        "walked routes that do not exist: {stale:?}"
    );
    // Nothing else is mounted under the integration prefix.
    assert_eq!(API_SRC.matches("/api/v1/integration").count(), 1);
    assert!(
        API_SRC.contains(r#".nest("/api/v1/integration/webhook/webhook", integration::routes())"#)
    );
}

fn fill(s: &str, ids: &[(&str, &str)]) -> String {
    ids.iter().fold(s.to_owned(), |acc, (k, v)| {
        acc.replace(&format!("{{{k}}}"), v)
    })
}

#[tokio::test]
async fn tenant_isolation_walk_of_every_integration_route() {
    let rx = TestReceiver::start().await;
    let app = spawn_app().await;

    // Creator A: a webinar, a mango, a subscription with a delivery.
    let (ca, key_a) = app.creator().await;
    let wa = app.webinar(&ca, 3600).await;
    let (s, mango) = app
        .admin(
            Method::POST,
            &format!("/creators/{ca}/mangoes"),
            Some(json!({"name": "A's product"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{mango}");
    let ma = mango["id"].as_str().unwrap().to_owned();
    let sub_a = app.subscribe(&key_a, &rx.url, None).await;
    let sa = sub_a["id"].as_str().unwrap().to_owned();
    let secret_a = sub_a["secret"].as_str().unwrap().to_owned();
    app.hooks(Method::POST, &key_a, &format!("/{sa}/test"), None)
        .await;
    let delivered = |d: &[Value]| {
        d.len() == 1
            && d[0]["status"] == "delivered"
            && d[0]["attemptLog"].as_array().is_some_and(|l| l.len() == 1)
    };
    let d = app.wait_deliveries(&key_a, &sa, 10, delivered).await;
    let da = d[0]["id"].as_str().unwrap().to_owned();

    // Creator B, with a subscription of its own.
    let (_, key_b) = app.creator().await;
    let sub_b = app.subscribe(&key_b, &format!("{}?b", rx.url), None).await;
    let sb = sub_b["id"].as_str().unwrap().to_owned();
    let (s, _) = app
        .hooks(Method::GET, &key_b, &format!("/{sb}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "B's key works on B's own subscription");

    let a_state = |key: String| {
        let (app, sa, da) = (&app, sa.clone(), da.clone());
        async move {
            let one = app.hooks(Method::GET, &key, &format!("/{sa}"), None).await;
            let list = app.hooks(Method::GET, &key, "", None).await;
            let deliveries = app.deliveries(&key, &sa).await;
            let delivery = app
                .hooks(Method::GET, &key, &format!("/{sa}/deliveries/{da}"), None)
                .await;
            (one, list, deliveries, delivery)
        }
    };
    let before = a_state(key_a.clone()).await;
    assert_eq!(before.0 .0, StatusCode::OK);

    let url = rx.url.clone();
    let ids = [
        ("sa", sa.as_str()),
        ("sb", sb.as_str()),
        ("da", da.as_str()),
        ("wa", wa.as_str()),
        ("ma", ma.as_str()),
        ("url", url.as_str()),
    ];
    for p in WALK {
        let method = Method::from_bytes(p.method.as_bytes()).unwrap();
        let path = fill(p.path, &ids);
        let body = p
            .body
            .map(|b| serde_json::from_str(&fill(b, &ids)).unwrap());
        let (s, v) = app.hooks(method, &key_b, &path, body).await;
        let at = format!("{} {path} ({:?})", p.method, p.body);
        match p.expect {
            NotFound => {
                assert_eq!(s, StatusCode::NOT_FOUND, "{at}: {v}");
                assert_eq!(v["error"]["code"], "not_found", "{at}: {v}");
                // From the handler (which names what it did not find), not
                // from a router that had no such route.
                let msg = v["error"]["message"].as_str().unwrap_or_default();
                assert!(!msg.starts_with("route"), "{at}: {v}");
            }
            OwnList => {
                assert_eq!(s, StatusCode::OK, "{at}: {v}");
                let text = v.to_string();
                assert!(
                    !text.contains(&sa) && !text.contains(&secret_a),
                    "{at}: {v}"
                );
            }
            OwnNew => {
                assert_eq!(s, StatusCode::CREATED, "{at}: {v}");
                assert_ne!(v["id"], json!(sa), "{at}");
                assert_ne!(v["secret"], json!(secret_a), "{at}");
            }
        }
    }

    // The router agrees with the table: any other method on a walked path
    // reaches no handler (405, or for the collection, which axum nests as
    // a bare prefix, the router's own 404), so none hides behind a method
    // the table skips.
    let routes: BTreeSet<&str> = WALK.iter().map(|p| p.route).collect();
    for route in routes {
        let path = fill(
            &route.replace("{id}", "{sa}").replace("{did}", "{da}"),
            &ids,
        );
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if WALK.iter().any(|p| p.route == route && p.method == m) {
                continue;
            }
            let method = Method::from_bytes(m.as_bytes()).unwrap();
            let (s, v) = app.hooks(method, &key_b, &path, None).await;
            let by_router = s == StatusCode::METHOD_NOT_ALLOWED
                || (s == StatusCode::NOT_FOUND
                    && (v.is_null() || v["error"]["message"] == "route not found"));
            assert!(by_router, "{m} {route}: {s} {v}");
        }
    }

    // Nothing of A's changed: the subscription, the list, the deliveries.
    let after = a_state(key_a.clone()).await;
    assert_eq!(after, before);
    assert_eq!(rx.received().len(), 1, "B's calls sent nothing");

    // A's secret is still the only one signing: no rotation happened.
    app.hooks(Method::POST, &key_a, &format!("/{sa}/test"), None)
        .await;
    let got = rx.wait_for(2, 10).await;
    let last = got.last().unwrap();
    assert_eq!(last.path, "/hook");
    assert_eq!(last.header("webhook-signature").split(' ').count(), 1);
    standardwebhooks::Webhook::new(&secret_a)
        .unwrap()
        .verify(&last.body, &last.headers)
        .unwrap();
    assert_eq!(rx.received().len(), 2);
}
