//! What each admin command prints: the API's JSON for `--json`, and a table
//! of the columns a person looks at first. Lists of subscriptions come
//! failing first (`failing_first`), a pure ordering tested on its own.

use super::import::Imported;
use super::table::{cell, render};
use super::Shown;
use serde::Deserialize;
use serde_json::Value;
use tminus::domain::status::SubscriptionStatus;

/// Rows of `items`, one cell per key.
fn rows(items: &[Value], keys: &[&str]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|i| keys.iter().map(|k| cell(&i[*k])).collect())
        .collect()
}

/// The API's answer: one object (what a create or a replay answers), or a
/// list's items.
pub enum Answer {
    One(Value),
    List(Vec<Value>),
}

/// The answer as JSON (an object, or the items as one array) and as a table.
fn shown(answer: Answer, headers: &[&str], keys: &[&str]) -> Shown {
    let (json, items) = match answer {
        Answer::One(v) => (v.clone(), vec![v]),
        Answer::List(items) => (Value::Array(items.clone()), items),
    };
    let text = render(headers, &rows(&items, keys));
    Shown { json, text }
}

pub fn creators(a: Answer) -> Shown {
    shown(a, &["ID", "TIMEZONE", "NAME"], &["id", "timezone", "name"])
}

pub fn keys(a: Answer) -> Shown {
    let headers = ["ID", "PREFIX", "REVOKED", "NAME", "KEY"];
    shown(a, &headers, &["id", "prefix", "revokedAt", "name", "key"])
}

pub fn webinars(a: Answer) -> Shown {
    let headers = ["ID", "FROM", "STATUS", "TITLE"];
    shown(a, &headers, &["id", "fromTime", "status", "title"])
}

/// A webinar's reminders, a row per fan-out (reminder × subscription) of
/// a pending one, with its plan; a fired reminder, or one no subscription
/// matches, on a row of its own.
pub fn reminders(items: Vec<Value>) -> Shown {
    let headers = [
        "REMINDER",
        "DUE",
        "STATUS",
        "FIRED",
        "SUBSCRIPTION",
        "DELIVERIES",
        "PREDICTED",
        "START",
        "LAST AT",
        "BUDGET",
    ];
    let mut rows = Vec::new();
    for r in &items {
        let base = |sub: &Value| {
            vec![
                cell(&r["label"]),
                cell(&r["dueAt"]),
                cell(&r["status"]),
                cell(&r["firedAt"]),
                cell(sub),
            ]
        };
        let fanouts = r["fanouts"].as_array().cloned().unwrap_or_default();
        if fanouts.is_empty() {
            let mut row = base(&Value::Null);
            row.extend(["-", "-", "-", "-", "-"].map(String::from));
            rows.push(row);
        }
        for f in &fanouts {
            let mut row = base(&f["subscriptionId"]);
            let ms = f["predictedDurationMs"].as_i64().unwrap_or_default();
            let verdict = if f["predictedLate"] == true {
                format!("LATE (over {} s)", cell(&f["lateBudget"]))
            } else {
                format!("within {} s", cell(&f["lateBudget"]))
            };
            row.extend([
                cell(&f["deliveries"]),
                format!("{:.1} s", ms as f64 / 1000.0),
                cell(&f["startAt"]),
                cell(&f["predictedLastAt"]),
                verdict,
            ]);
            rows.push(row);
        }
    }
    Shown {
        text: render(&headers, &rows),
        json: Value::Array(items),
    }
}

/// Disabled first, then failing (oldest failure first), then the rest, each
/// group in the API's order (by id: by creation).
pub fn failing_first(mut items: Vec<Value>) -> Vec<Value> {
    let rank = |s: &Value| {
        if SubscriptionStatus::deserialize(&s["status"]).ok() == Some(SubscriptionStatus::Disabled)
        {
            (0, String::new())
        } else if let Some(since) = s["failingSince"].as_str() {
            (1, since.to_owned())
        } else {
            (2, String::new())
        }
    };
    items.sort_by_cached_key(rank);
    items
}

pub fn subscriptions(items: Vec<Value>) -> Shown {
    let items = failing_first(items);
    let headers = [
        "ID",
        "STATUS",
        "FAILING SINCE",
        "CREATOR",
        "HOOK URL",
        "DISABLED BECAUSE",
    ];
    let keys = [
        "id",
        "status",
        "failingSince",
        "creatorId",
        "hookUrl",
        "disabledReason",
    ];
    shown(Answer::List(items), &headers, &keys)
}

pub fn deliveries(a: Answer) -> Shown {
    let headers = [
        "ID",
        "STATUS",
        "REMINDER",
        "ATTEMPTS",
        "LAST STATUS",
        "DUE",
        "LAST ERROR",
    ];
    let keys = [
        "id",
        "status",
        "reminder",
        "attempts",
        "lastStatus",
        "dueAt",
        "lastError",
    ];
    shown(a, &headers, &keys)
}

/// A bulk replay's answer: how many deliveries are due again.
pub fn replayed(answer: Value) -> Shown {
    let n = answer["replayed"].as_u64().unwrap_or_default();
    Shown {
        text: format!("{n} deliveries are due again\n"),
        json: answer,
    }
}

pub fn imported(done: Imported) -> anyhow::Result<Shown> {
    let mut text = format!(
        "{} registered ({} new, {} already), {} refused\n",
        done.created + done.existing,
        done.created,
        done.existing,
        done.refused.len()
    );
    if !done.refused.is_empty() {
        let rows: Vec<Vec<String>> = done
            .refused
            .iter()
            .map(|r| {
                vec![
                    r.line.to_string(),
                    r.field.clone().unwrap_or("-".into()),
                    r.code.clone(),
                    r.message.clone(),
                ]
            })
            .collect();
        text.push_str(&render(&["LINE", "FIELD", "CODE", "MESSAGE"], &rows));
    }
    Ok(Shown {
        json: serde_json::to_value(done)?,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn disabled_come_first_then_failing_oldest_first_then_the_rest() {
        let items = vec![
            json!({"id": "a", "status": "active", "failingSince": null}),
            json!({"id": "b", "status": "active", "failingSince": "2030-01-02T00:00:00.000Z"}),
            json!({"id": "c", "status": "disabled", "failingSince": "2030-01-01T00:00:00.000Z"}),
            json!({"id": "d", "status": "active", "failingSince": "2030-01-01T00:00:00.000Z"}),
            json!({"id": "e", "status": "active", "failingSince": null}),
        ];
        let ids: Vec<Value> = failing_first(items)
            .into_iter()
            .map(|s| s["id"].clone())
            .collect();
        assert_eq!(ids, ["c", "d", "b", "a", "e"]);
    }

    #[test]
    fn a_reminder_shows_a_row_per_fanout_with_its_verdict() {
        let items = vec![
            json!({"label": "15min", "dueAt": "D", "status": "pending", "firedAt": null,
                   "fanouts": [
                       {"subscriptionId": "s1", "deliveries": 2000, "predictedDurationMs": 25000,
                        "startAt": "D", "predictedLastAt": "L1", "lateBudget": 60, "predictedLate": false},
                       {"subscriptionId": "s2", "deliveries": 2000, "predictedDurationMs": 250000,
                        "startAt": "D", "predictedLastAt": "L2", "lateBudget": 60, "predictedLate": true}]}),
            json!({"label": "1day", "dueAt": "E", "status": "sent", "firedAt": "E"}),
        ];
        let text = reminders(items).text;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[1].contains("s1") && lines[1].ends_with("within 60 s"),
            "{text}"
        );
        assert!(
            lines[2].contains("250.0 s") && lines[2].ends_with("LATE (over 60 s)"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("1day") && lines[3].contains("sent"),
            "{text}"
        );
    }
}
