//! Every list pages one way: `{"data", "next"}`, `?limit=` (1 to 1000) and
//! `?after=` (the `next` of the page before). A walk a few items at a time
//! reaches every item once, in the order of the whole list, and ends with
//! `next: null`; a bad limit or cursor is a JSON error naming it.

use crate::helpers::{spawn_app, Auth, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const HOOKS: &str = "/api/v1/integration/webhook/webhook";
const PLATFORM: &str = "/api/v1/platform";

/// A list, and who may read it.
struct List {
    path: String,
    key: Option<String>,
}

impl List {
    fn admin(path: String) -> Self {
        Self { path, key: None }
    }

    fn auth(&self) -> Auth<'_> {
        self.key.as_deref().map_or(Auth::Admin, Auth::Key)
    }

    /// `path` with `query` added to its own query string, if any.
    fn with(&self, query: &str) -> String {
        let join = if self.path.contains('?') { '&' } else { '?' };
        format!("{}{join}{query}", self.path)
    }

    async fn get(&self, app: &TestApp, query: &str) -> (StatusCode, Value) {
        app.call(Method::GET, &self.with(query), self.auth(), None)
            .await
    }

    /// The ids of the whole list, in one page.
    async fn whole(&self, app: &TestApp) -> Vec<String> {
        let (s, b) = self.get(app, "limit=1000").await;
        assert_eq!(s, StatusCode::OK, "{}: {b}", self.path);
        assert_eq!(b["next"], Value::Null, "{}: one page holds it", self.path);
        ids(&b)
    }

    /// The ids of the list, read `limit` at a time.
    async fn walk(&self, app: &TestApp, limit: u32) -> Vec<String> {
        let mut out = Vec::new();
        let mut query = format!("limit={limit}");
        loop {
            let (s, b) = self.get(app, &query).await;
            assert_eq!(s, StatusCode::OK, "{}: {b}", self.path);
            let page = ids(&b);
            assert!(page.len() <= limit as usize, "{}: {b}", self.path);
            out.extend(page);
            match b["next"].as_str() {
                None => return out,
                Some(next) => {
                    assert!(out.len() < 100, "{}: the walk never ends", self.path);
                    query = format!("limit={limit}&after={}", urlencoding(next));
                }
            }
        }
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Cursors are URL-safe already; this keeps the test honest if one is not.
fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One creator with several of everything a list shows: (lists, how many
/// items each holds).
async fn several_of_everything(app: &TestApp) -> Vec<(List, usize)> {
    for i in 0..4 {
        let body = json!({ "name": format!("Other {i}") });
        app.admin(Method::POST, "/creators", Some(body)).await;
    }
    let (cid, key) = app.creator().await;
    for _ in 0..4 {
        let path = format!("/creators/{cid}/api-keys");
        app.admin(Method::POST, &path, Some(json!({}))).await;
    }
    for i in 0..5 {
        let path = format!("/creators/{cid}/mangoes");
        app.admin(
            Method::POST,
            &path,
            Some(json!({ "name": format!("M {i}") })),
        )
        .await;
    }
    // Two webinars start at once: the cursor must tell them apart.
    let mut wids = Vec::new();
    for secs in [9000, 5000, 7000, 7000, 8000] {
        wids.push(app.webinar(&cid, secs * 60).await);
    }
    let wid = &wids[0];
    app.participants(wid, 7).await;
    let mut subs = Vec::new();
    for i in 0..5 {
        let url = format!("http://127.0.0.1:9/hook{i}");
        subs.push(
            app.subscribe(&key, &url, None).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let sid = &subs[0];
    for _ in 0..5 {
        let (s, d) = app
            .hooks(Method::POST, &key, &format!("/{sid}/test"), None)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{d}");
    }
    let keyed = |path: String| List {
        path,
        key: Some(key.clone()),
    };
    vec![
        (List::admin(format!("{PLATFORM}/creators")), 5),
        (
            List::admin(format!("{PLATFORM}/creators/{cid}/api-keys")),
            5,
        ),
        (List::admin(format!("{PLATFORM}/creators/{cid}/mangoes")), 5),
        (
            List::admin(format!("{PLATFORM}/webinars?creatorId={cid}")),
            5,
        ),
        (
            List::admin(format!("{PLATFORM}/webinars/{wid}/reminders")),
            3,
        ),
        (
            List::admin(format!("{PLATFORM}/webinars/{wid}/participants")),
            7,
        ),
        (List::admin(format!("{PLATFORM}/subscriptions")), 5),
        (
            List::admin(format!(
                "{PLATFORM}/subscriptions?creatorId={cid}&status=active"
            )),
            5,
        ),
        (keyed(HOOKS.to_owned()), 5),
        (keyed(format!("{HOOKS}/{sid}/deliveries")), 5),
    ]
}

#[tokio::test]
async fn every_list_walks_page_by_page_to_every_item_once() {
    let app = spawn_app().await;
    for (list, n) in several_of_everything(&app).await {
        let whole = list.whole(&app).await;
        assert_eq!(whole.len(), n, "{}", list.path);
        for limit in [1, 2, 3] {
            let walked = list.walk(&app, limit).await;
            assert_eq!(walked, whole, "{} by {limit}", list.path);
        }
        // Without a limit, a page holds up to 100.
        let (_, first) = list.get(&app, "").await;
        assert_eq!((ids(&first), &first["next"]), (whole, &Value::Null));
    }
}

#[tokio::test]
async fn webinars_page_by_start_time() {
    let app = spawn_app().await;
    let lists = several_of_everything(&app).await;
    let webinars = &lists[3].0;
    let (_, b) = webinars.get(&app, "limit=1000").await;
    let starts: Vec<&str> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["fromTime"].as_str().unwrap())
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "{b}");
}

#[tokio::test]
async fn a_bad_limit_or_cursor_is_a_json_error_naming_it() {
    let app = spawn_app().await;
    for (list, _) in several_of_everything(&app).await {
        for (query, status, code, field) in [
            ("limit=0", 422, "invalid_value", "limit"),
            ("limit=1001", 422, "invalid_value", "limit"),
            ("limit=abc", 400, "invalid_query", "limit"),
            ("limit=-1", 400, "invalid_query", "limit"),
            ("after=not-a-cursor!", 422, "invalid_value", "after"),
            ("after=AAAA", 422, "invalid_value", "after"),
        ] {
            let (s, b) = list.get(&app, query).await;
            let at = format!("{} ?{query}: {b}", list.path);
            assert_eq!(s.as_u16(), status, "{at}");
            assert_eq!(b["error"]["code"], code, "{at}");
            assert_eq!(b["error"]["field"], field, "{at}");
        }
    }
}
