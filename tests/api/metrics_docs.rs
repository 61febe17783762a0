//! docs/OPERATIONS.md's Prometheus examples against a real scrape: the scrape
//! configuration and the alert rules are taken from its "Metrics" section's
//! YAML blocks, and every `tminus_*` series a rule's expression names must
//! be one the service serves, with every label value it matches on (a
//! histogram's `le` bucket included) one the service writes. When
//! `promtool` is installed (Debian's `prometheus` package; `scripts/test`
//! installs it), it checks the configuration, the rules and the scrape too;
//! without it that part is skipped with a note, the name checks still run.

use crate::delivery::webinar_with;
use crate::helpers::*;
use crate::receiver::TestReceiver;
use std::collections::BTreeSet;

/// The `yaml` code blocks of docs/OPERATIONS.md's "Metrics" section, in order.
fn metrics_yaml() -> Vec<String> {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/OPERATIONS.md"))
        .unwrap();
    let start = page.find("\n## Metrics\n").expect("a Metrics section");
    let section = &page[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |e| e + 1)];
    let mut blocks = Vec::new();
    let mut open: Option<String> = None;
    for line in section.lines() {
        match open.as_mut() {
            None if line.trim_start() == "```yaml" => open = Some(String::new()),
            None => {}
            Some(block) if line.trim_start() == "```" => {
                blocks.push(std::mem::take(block));
                open = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(open.is_none(), "a yaml block is never closed");
    blocks
}

/// Each rule's `expr`, as written: a one-line value, or the lines of a
/// block scalar (`|` or `>`), those indented deeper than the key.
fn expressions(rules: &str) -> Vec<String> {
    let lines: Vec<&str> = rules.lines().collect();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            exprs.push(body.join(" ").trim().to_owned());
        } else {
            exprs.push(value.to_owned());
        }
    }
    exprs
}

/// A series a PromQL expression selects: its metric name and the
/// `label="value"` matchers in its braces.
#[derive(Debug)]
struct Selector {
    name: String,
    equal: Vec<(String, String)>,
}

/// The `tminus_*` selectors in `expr`.
fn selectors(expr: &str) -> Vec<Selector> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("tminus_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_owned();
        let mut equal = Vec::new();
        if let Some(braces) = tail[end..].strip_prefix('{') {
            let inner = &braces[..braces.find('}').expect("a closed matcher list")];
            for m in inner.split(',').filter(|m| !m.trim().is_empty()) {
                let (k, v) = m.split_once('=').expect("label=\"value\"");
                if k.ends_with('!') || v.starts_with('~') {
                    continue; // Only equality matchers name a value.
                }
                equal.push((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()));
            }
        }
        found.push(Selector { name, equal });
        rest = &tail[end..];
    }
    found
}

/// The series a scrape holds: each sample line's name and its labels.
fn samples(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let end = l.find(['{', ' ']).unwrap_or(l.len());
            let labels = l[end..]
                .strip_prefix('{')
                .and_then(|r| r.split_once('}'))
                .map_or("", |(inside, _)| inside);
            (l[..end].to_owned(), labels.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_documented_alert_rules_name_only_served_series_and_buckets() {
    let blocks = metrics_yaml();
    assert_eq!(blocks.len(), 2, "a scrape configuration and alert rules");
    let (scrape_config, rules) = (&blocks[0], &blocks[1]);
    assert!(scrape_config.contains("scrape_configs:"), "{scrape_config}");
    assert!(
        scrape_config.contains("metrics_path: /metrics") && scrape_config.contains("Bearer"),
        "the scrape sends the admin token to /metrics: {scrape_config}"
    );
    assert!(rules.contains("groups:"), "{rules}");
    let exprs = expressions(rules);
    assert!(exprs.len() >= 4, "{exprs:?}");

    // A fan-out, so every histogram has its buckets in the scrape.
    let rx = TestReceiver::start().await;
    let (app, key, w) = webinar_with("2s", 1, |_| {}).await;
    app.subscribe(&key, &rx.url, None).await;
    app.starts_in(&w, 2.5);
    let text = crate::metrics::scrape_until(
        &app,
        "tminus_fanout_last_delivery_lateness_seconds_count",
        1.0,
    )
    .await;
    let served = samples(&text);
    let names: BTreeSet<&str> = served.iter().map(|(n, _)| n.as_str()).collect();

    let mut checked = 0;
    for expr in &exprs {
        let found = selectors(expr);
        assert!(!found.is_empty(), "a rule about tminus: {expr}");
        for s in found {
            assert!(
                names.contains(s.name.as_str()),
                "{} (in `{expr}`) is not served; served: {names:?}",
                s.name
            );
            for (k, v) in &s.equal {
                let pair = format!("{k}=\"{v}\"");
                let values: Vec<&str> = served
                    .iter()
                    .filter(|(n, _)| *n == s.name)
                    .map(|(_, labels)| labels.as_str())
                    .collect();
                assert!(
                    values.iter().any(|l| l.split(',').any(|p| p == pair)),
                    "{}{{{pair}}} (in `{expr}`) is not a series the service writes: {values:?}",
                    s.name
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 5, "{checked} selectors checked");
    promtool(scrape_config, rules, &text);
}

/// `promtool check config`, `check rules` and `check metrics`, when it is
/// installed.
fn promtool(config: &str, rules: &str, scrape: &str) {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .output();
    if found.is_err() {
        // scripts/test installs it and says so: there, its absence fails.
        assert!(
            std::env::var_os("TMINUS_TEST_TOOLS").is_none(),
            "promtool is not installed, though scripts/test installs it"
        );
        eprintln!(
            "note: promtool is not installed (apt-get install prometheus): its checks are skipped"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (config_file, rules_file) = (
        dir.path().join("prometheus.yml"),
        dir.path().join("tminus.rules.yml"),
    );
    // The configuration names the token file; promtool wants it to exist.
    let token = dir.path().join("tminus-admin-token");
    std::fs::write(&token, ADMIN).unwrap();
    let config = config.replace(
        "/etc/prometheus/tminus-admin-token",
        token.to_str().unwrap(),
    );
    std::fs::write(&config_file, config).unwrap();
    std::fs::write(&rules_file, rules).unwrap();
    for (what, file) in [("config", &config_file), ("rules", &rules_file)] {
        let out = std::process::Command::new("promtool")
            .args(["check", what])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check {what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    use std::io::Write;
    let mut check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rule_expressions_and_selectors_are_read_as_written() {
    let rules = "groups:\n  - rules:\n      - alert: A\n        expr: |\n          sum(x_total{a=\"1\"})\n            - tminus_b_bucket{le=\"60\", k!=\"z\"} > 0\n        labels: {severity: page}\n      - alert: B\n        expr: max(tminus_c{status=\"disabled\"}) > 1\n";
    let e = expressions(rules);
    assert_eq!(
        e,
        [
            "sum(x_total{a=\"1\"}) - tminus_b_bucket{le=\"60\", k!=\"z\"} > 0",
            "max(tminus_c{status=\"disabled\"}) > 1"
        ]
    );
    let s = selectors(&e[0]);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].name, "tminus_b_bucket");
    assert_eq!(s[0].equal, [("le".to_owned(), "60".to_owned())]);
}
