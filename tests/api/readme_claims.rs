//! What the README and docs/ state that the code decides, checked against
//! it: the shapes of the `webhook-id`s a receiver gets (a delivery's, a
//! test event's; the README's headers table) against a real service, the
//! CPU a delivery costs as docs/OPERATIONS.md's Metrics section cites it
//! against docs/PERFORMANCE.md's table it comes from, and the retention the
//! soak run keeps (docs/RELIABILITY.md) against the default.

use crate::delivery::webinar_with;
use crate::receiver::TestReceiver;
use reqwest::Method;

/// A file of the repository: `README.md`, `docs/OPERATIONS.md` ….
fn doc(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The text from the line `heading` to the next heading of its level or
/// above (not counting a code block's `#` comments).
fn section(page: &str, heading: &str) -> String {
    let level = heading.split(' ').next().unwrap().len();
    let (mut out, mut inside, mut code) = (String::new(), false, false);
    for line in page.lines() {
        code ^= line.starts_with("```");
        let hashes = line.split(' ').next().unwrap_or("");
        let is_heading = !code && !hashes.is_empty() && hashes.bytes().all(|b| b == b'#');
        if line == heading {
            inside = true;
        } else if inside && is_heading && hashes.len() <= level {
            break;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(inside, "no {heading}");
    out
}

/// The N of the first "`msg_` + N hex digits" in `text` after `after`.
fn hex_digits(text: &str, after: &str) -> usize {
    let from = text
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} in {text}"));
    let rest = &text[from..];
    let at = rest.find("`msg_` + ").expect("a stated length") + "`msg_` + ".len();
    let n: String = rest[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(rest[at + n.len()..].starts_with(" hex digits"), "{rest}");
    n.parse().unwrap()
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn the_webhook_ids_have_the_shapes_the_readme_states() {
    let readme = doc("README.md");
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `webhook-id` |"))
        .expect("the webhook-id row");
    let delivery_digits = hex_digits(row, "| `webhook-id` |");
    let test_digits = hex_digits(row, "a test event");

    let rx = TestReceiver::start().await;
    let (app, key, w) = webinar_with("3s", 1, |_| {}).await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    let sid = sub["id"].as_str().unwrap();
    let (s, body) = app
        .hooks(Method::POST, &key, &format!("/{sid}/test"), None)
        .await;
    assert!(s.is_success(), "{body}");
    let test = rx.wait_for(1, 10).await[0].header("webhook-id");
    app.starts_in(&w, 4.0);
    let got = rx.wait_for(2, 10).await;
    assert_eq!(got[1].header("x-tminus-reminder"), "3s");
    let delivery = got[1].header("webhook-id");
    for (id, digits) in [(&test, test_digits), (&delivery, delivery_digits)] {
        let hex = id.strip_prefix("msg_").expect("msg_");
        assert!(is_hex(hex), "{id}");
        assert_eq!(
            hex.len(),
            digits,
            "{id}: the README says {digits} hex digits"
        );
    }
}

#[test]
fn the_cpu_a_delivery_costs_is_cited_as_the_performance_table_gives_it() {
    let metrics = section(&doc("docs/OPERATIONS.md"), "## Metrics");
    let cited = metrics
        .split("µs of CPU a delivery costs in the release benchmark")
        .next()
        .and_then(|before| before.rsplit("against the ").next())
        .filter(|c| c.len() < 20)
        .expect("the Metrics section cites the CPU a delivery costs")
        .trim()
        .to_owned();
    let performance = section(
        &doc("docs/PERFORMANCE.md"),
        "## Today's figures and how to measure them",
    );
    let header = performance
        .lines()
        .find(|l| l.starts_with("| run |") && l.contains("tminus CPU / delivery"))
        .expect("the figures' table");
    let column = header
        .split('|')
        .position(|c| c.trim() == "tminus CPU / delivery")
        .unwrap();
    let row = performance
        .lines()
        .find(|l| l.starts_with("| `--participants 100000` "))
        .expect("the 100 000 participants row");
    let figure = row.split('|').nth(column).unwrap().trim();
    assert_eq!(format!("{cited} µs"), figure, "Metrics cites {cited} µs");
}

#[test]
fn the_soak_section_states_the_retention_its_run_keeps() {
    let soak = section(&doc("docs/RELIABILITY.md"), "## Over an hour");
    assert!(!soak.contains("not pruned yet"), "{soak}");
    let default = tminus::config::Config::defaults().retain_deliveries;
    let shown = format!("`{}`", humantime::format_duration(default));
    assert!(
        soak.contains("`--retain-deliveries`") && soak.contains(&shown),
        "the soak section should name --retain-deliveries and its default {shown}: {soak}"
    );
}
