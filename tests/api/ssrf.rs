//! The target guard end to end (SSRF campaign). Every target used here is on
//! loopback, where a real receiver listens: if the guard let a request
//! through, the receiver would get it. Forbidden hook URLs are refused at
//! subscribe time (422); those stored before the guard was turned on are
//! refused at send time, each attempt recorded as failed with an error that
//! names the refusal. Names are resolved through a scripted lookup driving
//! the real `Sender`, so "resolves to a private address" and an answer that
//! changes between lookups (DNS rebinding) need no DNS server. The guard's
//! pure decisions, one test per address form, are in
//! `service/src/delivery/guard/tests.rs`.

use crate::helpers::*;
use crate::receiver::TestReceiver;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tminus::delivery::guard::{Lookup, Policy};
use tminus::delivery::retry::Response;
use tminus::delivery::send::{Message, Sender};

/// Subscribes each `url` while private targets are allowed, restarts with
/// the guard on (`tweak` may list `--allow-targets`), sends a test event to
/// each and returns, per URL, the stored hook URL and the first attempt's
/// error (`None`: delivered).
async fn sent_with_the_guard_on(
    urls: &[String],
    tweak: impl FnOnce(&mut tminus::config::Config),
) -> Vec<(String, Option<String>)> {
    let app = spawn_app().await;
    let (_, key) = app.creator().await;
    let mut subs = Vec::new();
    for u in urls {
        let (s, sub) = app
            .hooks(
                Method::POST,
                &key,
                "",
                Some(json!({"hookUrl": u, "event": "webinar.reminder.all"})),
            )
            .await;
        assert!(s.is_success(), "{u}: {sub}");
        let stored = sub["hookUrl"].as_str().unwrap().to_owned();
        subs.push((sub["id"].as_str().unwrap().to_owned(), stored));
    }
    let app = app
        .restart_with(|c| {
            c.allow_private_targets = false;
            tweak(c);
        })
        .await;
    let mut out = Vec::new();
    for (sid, stored) in subs {
        let (s, _) = app
            .hooks(Method::POST, &key, &format!("/{sid}/test"), None)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let d = app
            .wait_deliveries(&key, &sid, 10, |d| {
                d.first().is_some_and(|x| x["attempts"].as_u64() >= Some(1))
            })
            .await;
        let first = &d[0]["attemptLog"][0];
        out.push((stored, first["error"].as_str().map(str::to_owned)));
    }
    out
}

/// Asserts each URL, stored before the guard was on, is refused at send
/// time with a reason containing `why`, and nothing reached the receiver.
async fn refused_at_send(rx: &TestReceiver, urls: &[String], why: &str) {
    let sent = sent_with_the_guard_on(urls, |_| {}).await;
    for (u, (_, e)) in urls.iter().zip(sent) {
        let e = e.unwrap_or_else(|| panic!("{u} was delivered"));
        assert!(e.contains("refused by the target guard"), "{u}: {e}");
        assert!(e.contains(why), "{u}: {e}");
    }
    assert!(rx.received().is_empty(), "a request reached the receiver");
}

/// The receiver's URL with its host replaced.
fn at(rx: &TestReceiver, host: &str) -> String {
    rx.url.replace("127.0.0.1", host)
}

#[tokio::test]
async fn ssrf_forbidden_hook_urls_are_refused_at_subscribe() {
    let rx = TestReceiver::start().await;
    let app = spawn_with(|c| c.allow_private_targets = false).await;
    let (_, key) = app.creator().await;
    let forms = [
        "127.0.0.1",
        "[::1]",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.1.1",
        "[fe80::1]",
        "100.64.0.1",
        "224.0.0.1",
        "[ff02::1]",
        "0.0.0.0",
        "[::]",
        "169.254.169.254",
        "100.100.100.200",
        "[fd00:ec2::254]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "2130706433",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "127.1",
        "localhost",
        "LOCALHOST",
        "localhost.",
        "foo.localhost",
    ];
    for host in forms {
        let (s, e) = app
            .hooks(
                Method::POST,
                &key,
                "",
                Some(json!({"hookUrl": at(&rx, host), "event": "webinar.reminder.all"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{host}: {e}");
        assert_eq!(e["error"]["code"], "invalid_hook_url", "{host}");
        assert_eq!(e["error"]["field"], "hookUrl", "{host}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains("refused by the target guard"), "{host}: {msg}");
    }
    let (_, list) = app.hooks(Method::GET, &key, "", None).await;
    assert_eq!(list["data"], json!([]), "a refused subscribe wrote nothing");
    // A public name is accepted (what it resolves to is judged at send time).
    app.subscribe(&key, "https://hooks.example.com/tminus", None)
        .await;
    assert!(rx.received().is_empty());
}

#[tokio::test]
async fn ssrf_send_refuses_loopback() {
    let rx = TestReceiver::start().await;
    refused_at_send(&rx, &[rx.url.clone(), at(&rx, "[::1]")], "loopback").await;
}

#[tokio::test]
async fn ssrf_send_refuses_ipv4_mapped_ipv6() {
    let rx = TestReceiver::start().await;
    let urls = [at(&rx, "[::ffff:127.0.0.1]"), at(&rx, "[::ffff:7f00:1]")];
    refused_at_send(&rx, &urls, "reaches 127.0.0.1, loopback").await;
}

#[tokio::test]
async fn ssrf_send_refuses_ipv4_compatible_nat64_and_6to4() {
    let rx = TestReceiver::start().await;
    refused_at_send(&rx, &[at(&rx, "[::127.0.0.1]")], "IPv4-compatible").await;
    let urls = [at(&rx, "[64:ff9b::7f00:1]"), at(&rx, "[2002:7f00:1::]")];
    refused_at_send(&rx, &urls, "reaches 127.0.0.1, loopback").await;
}

#[tokio::test]
async fn ssrf_send_refuses_decimal_octal_and_hex_spellings() {
    let rx = TestReceiver::start().await;
    let urls = ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1"].map(|h| at(&rx, h));
    let sent = sent_with_the_guard_on(&urls, |_| {}).await;
    for (u, (stored, e)) in urls.iter().zip(sent) {
        // Stored in canonical form: the sender never sees the odd spelling.
        assert_eq!(stored, rx.url, "{u}");
        let e = e.unwrap_or_else(|| panic!("{u} was delivered"));
        assert!(
            e.contains("refused by the target guard: loopback"),
            "{u}: {e}"
        );
    }
    assert!(rx.received().is_empty(), "a request reached the receiver");
}

#[tokio::test]
async fn ssrf_send_refuses_localhost_names() {
    let rx = TestReceiver::start().await;
    let urls = ["localhost", "LOCALHOST", "localhost.", "foo.localhost"].map(|h| at(&rx, h));
    refused_at_send(&rx, &urls, "localhost name").await;
}

#[tokio::test]
async fn ssrf_allow_targets_lets_a_listed_range_through_and_nothing_else() {
    let rx = TestReceiver::start().await;
    let urls = [rx.url.clone(), at(&rx, "[::1]")];
    let sent =
        sent_with_the_guard_on(&urls, |c| c.allow_targets = vec!["127.0.0.0/8".into()]).await;
    assert_eq!(sent[0].1, None, "127.0.0.1 is listed");
    let refused = sent[1].1.as_deref().expect("[::1] is not listed");
    assert!(refused.contains("refused by the target guard"), "{refused}");
    assert_eq!(rx.received().len(), 1);

    // At subscribe time too: the listed range is accepted, nothing else.
    let app = spawn_with(|c| {
        c.allow_private_targets = false;
        c.allow_targets = vec!["127.0.0.0/8".into()];
    })
    .await;
    let (_, key) = app.creator().await;
    app.subscribe(&key, &at(&rx, "127.0.0.5"), None).await;
    for host in ["[::1]", "10.0.0.1", "localhost"] {
        let body = json!({"hookUrl": at(&rx, host), "event": "webinar.reminder.all"});
        let (s, e) = app.hooks(Method::POST, &key, "", Some(body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{host}: {e}");
    }
}

#[tokio::test]
async fn ssrf_a_bad_allow_list_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = test_config();
    c.database = dir.path().join("t.db").display().to_string();
    c.allow_targets = vec!["10.1.2.3/8".into()];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let clock = tminus::clock::Clock::system();
    let err = tminus::run(c, listener, clock, shutdown).await.unwrap_err();
    assert!(err.to_string().contains("did you mean 10.0.0.0/8"), "{err}");
}

/// A lookup answering from a script, one answer per call (the last one
/// repeats); returns how many lookups were made.
fn scripted(answers: Vec<Vec<IpAddr>>) -> (Lookup, Arc<Mutex<usize>>) {
    let calls = Arc::new(Mutex::new(0));
    let seen = calls.clone();
    let lookup: Lookup = Arc::new(move |_host: String| {
        let mut n = seen.lock().unwrap();
        let answer = answers[(*n).min(answers.len() - 1)].clone();
        *n += 1;
        Box::pin(async move { Ok(answer) })
    });
    (lookup, calls)
}

/// One attempt through `sender` to `url`, on `conn` (a fresh connection
/// when it is `None`): the error, or the status answered.
async fn attempt(
    sender: &Sender,
    url: &str,
    conn: &mut Option<tminus::delivery::send::Conn>,
) -> Result<u16, String> {
    let url = url::Url::parse(url).unwrap();
    let m = Message {
        url: &url,
        webhook_id: "msg_ssrf",
        timestamp: 1,
        signature: "v1,x".into(),
        event: "webinar.reminder.all",
        reminder: "test",
        attempt: 1,
        late: false,
        body: bytes::Bytes::from_static(b"{}"),
    };
    let (a, r) = sender.send(m, chrono::Utc::now(), conn).await;
    match r {
        Response::Status { code, .. } => Ok(code),
        Response::Failed => Err(a.error.unwrap_or_default()),
    }
}

#[tokio::test]
async fn ssrf_send_refuses_a_name_resolving_to_a_private_address() {
    let rx = TestReceiver::start().await;
    let (lookup, calls) = scripted(vec![vec!["127.0.0.1".parse().unwrap()]]);
    let sender =
        Sender::with_lookup(Duration::from_secs(5), Policy::on(vec![]), None, lookup).unwrap();
    let url = at(&rx, "hooks.example.test");
    let err = attempt(&sender, &url, &mut None).await.unwrap_err();
    assert!(
        err.contains("hooks.example.test is refused by the target guard"),
        "{err}"
    );
    assert!(err.contains("127.0.0.1, loopback"), "{err}");
    assert_eq!(*calls.lock().unwrap(), 1);
    assert!(rx.received().is_empty());
}

#[tokio::test]
async fn ssrf_dns_rebinding_between_check_and_connect_is_refused() {
    // Two receivers on one port: 127.0.0.2 stands for the public address
    // the name first resolves to (listed, so the guard lets it through),
    // 127.0.0.1 for the internal service a rebinding answer points at.
    let public = TestReceiver::start_on("127.0.0.2:0".parse().unwrap()).await;
    let port = url::Url::parse(&public.url).unwrap().port().unwrap();
    let internal = TestReceiver::start_on(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let (lookup, calls) = scripted(vec![
        vec![ip("127.0.0.2")],
        vec![ip("127.0.0.1")],
        vec![ip("127.0.0.1"), ip("127.0.0.2")],
    ]);
    let policy = Policy::on(vec!["127.0.0.2/32".parse().unwrap()]);
    let sender = Sender::with_lookup(Duration::from_secs(5), policy, None, lookup).unwrap();
    let url = format!("http://rebind.example.test:{port}/hook");

    // The first answer passes the guard: delivered where it was checked.
    let mut kept = None;
    assert_eq!(attempt(&sender, &url, &mut kept).await, Ok(200));
    // The name now answers the internal address: a new connection is
    // refused, because the address checked is the address connected to.
    let err = attempt(&sender, &url, &mut None).await.unwrap_err();
    assert!(err.contains("127.0.0.1, loopback"), "{err}");
    // A mixed answer: only the allowed address is ever tried.
    assert_eq!(attempt(&sender, &url, &mut None).await, Ok(200));
    // A kept connection stays with the address it was opened to; no lookup.
    assert_eq!(attempt(&sender, &url, &mut kept).await, Ok(200));

    // One lookup per new connection, none behind the guard's back.
    assert_eq!(*calls.lock().unwrap(), 3);
    assert_eq!(public.received().len(), 3);
    assert!(
        internal.received().is_empty(),
        "the internal service was reached"
    );
}
