//! A subscription's page: its settings and health (enabled again from
//! here when disabled), the replay of a time window's deliveries, and its
//! deliveries, newest first, each with its attempts and a replay button.

use super::{at, layout, Page};
use crate::api::dashboard::site::Viewer;
use crate::domain::payload::iso_millis;
use crate::store::{Delivery, Paged, Subscription, SubscriptionStatus};
use chrono::{DateTime, Utc};
use maud::{html, Markup};

/// What a subscription's page shows.
pub struct SubscriptionPage {
    pub sub: Subscription,
    /// Requests its lane on this instance allows in flight now, if one runs.
    pub concurrency: Option<usize>,
    pub deliveries: Paged<Delivery>,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// The replay form's window, filled in.
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// A subscription's page.
pub fn subscription(v: &Viewer, p: &SubscriptionPage) -> Page {
    let s = &p.sub;
    let base = format!("{}/subscriptions/{}", v.base.path(), s.id);
    let body = html! {
        p { a href=(v.base.path()) { "← Overview" } }
        h1 { "Subscription " code { (s.id) } }
        dl {
            dt { "Hook URL" } dd { (s.hook_url) }
            dt { "Event" } dd { (s.event) }
            dt { "Status" } dd { span class={ "status " (s.status) } { (s.status) } }
            @if let Some(r) = &s.disabled_reason { dt { "Disabled because" } dd { (r) } }
            @if s.status == SubscriptionStatus::Disabled {
                dt {} dd {
                    form #enable method="post" action={ (base) "/enable" } {
                        input type="hidden" name="csrf" value=(v.csrf);
                        button type="submit" { "Enable it again" }
                    }
                }
            }
            dt { "Failing since" } dd { (at(s.failing_since)) }
            dt { "In flight allowed" } dd.concurrency {
                @match p.concurrency {
                    Some(n) => { (n) " of " (s.tuning.max_concurrency) " (adapting to the endpoint)" }
                    None => { "at most " (s.tuning.max_concurrency) " (no delivery running now)" }
                }
            }
            dt { "Lateness budget" } dd { (s.tuning.late_budget_ms / 1000) " s" }
            dt { "Early start allowed" } dd { (s.tuning.send_early_ms / 1000) " s" }
            dt { "Observed answer time" } dd {
                @match s.answer_us {
                    Some(us) => { (format!("{:.1} ms", us as f64 / 1000.0)) }
                    None => { "not seen yet" }
                }
            }
        }
        @if let Some(n) = &p.notice { p.notice role="status" { (n) } }
        @if let Some(e) = &p.error { p.error role="alert" { (e) } }
        form #replay method="post" action={ (base) "/replay" } {
            h2 { "Replay a time window" }
            input type="hidden" name="csrf" value=(v.csrf);
            label { "Due from " input name="since" value=(iso_millis(p.since)) required; }
            label { " until " input name="until" value=(iso_millis(p.until)) required; }
            label { " with status "
                select name="status" {
                    option value="failed" { "failed" }
                    option value="expired" selected { "expired" }
                    option value="missed" { "missed" }
                }
            }
            " " button #replay-window type="submit" { "Replay every match" }
        }
        h2 { "Deliveries" }
        table #deliveries {
            thead { tr { th { "Delivery" } th { "Reminder" } th { "Status" } th { "Due" }
                th.n { "Attempts" } th { "Last answer" } th {} } }
            tbody {
                @for d in &p.deliveries.items { (delivery(v, &base, d)) }
                @if p.deliveries.items.is_empty() { tr { td colspan="7" { "No deliveries yet." } } }
            }
        }
        @if let Some(next) = &p.deliveries.next {
            p { a href={ (base) "?after=" (next) } { "Older deliveries →" } }
        }
    };
    layout(v.base, "Subscription", Some(v), body)
}

fn delivery(v: &Viewer, base: &str, d: &Delivery) -> Markup {
    html! {
        tr.delivery data-status=(d.status) {
            td { code.id { (d.id) } }
            td { (d.reminder) }
            td { span class={ "status " (d.status) } { (d.status) } }
            td.t { (iso_millis(d.due_at)) }
            td.n.attempts { (d.attempts) }
            td {
                @if let Some(c) = d.last_status { "HTTP " (c) " " }
                (d.last_error.as_deref().unwrap_or_default())
                @if let Some(log) = d.attempt_log.as_ref().filter(|l| !l.is_empty()) {
                    details {
                        summary { "Attempts" }
                        ol {
                            @for a in log {
                                li.attempt {
                                    (iso_millis(a.started_at)) " · "
                                    @if let Some(c) = a.status_code { "HTTP " (c) } @else { "no answer" }
                                    " · " (a.latency_ms) " ms"
                                    @if let Some(e) = &a.error { " · " (e) }
                                    @if let Some(r) = &a.response { pre { (r) } }
                                }
                            }
                        }
                    }
                }
            }
            td {
                form method="post" action={ (base) "/deliveries/" (d.id) "/retry" } {
                    input type="hidden" name="csrf" value=(v.csrf);
                    button type="submit" { "Replay" }
                }
            }
        }
    }
}
