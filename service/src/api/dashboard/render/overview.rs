//! The overview page: the fan-outs due next with their capacity plans,
//! those running (a panel `live.js` refreshes every second, `running`),
//! the last ones with their lateness and outcomes, the failing and
//! disabled subscriptions, and the first subscriptions.

use super::{at, layout, site, Page};
use crate::api::dashboard::outlook;
use crate::api::dashboard::site::Viewer;
use crate::delivery::forecast::Outlook;
use crate::domain::payload::iso_millis;
use crate::store::{DueFanout, FanoutReminder, FanoutTally, Subscription, Trouble};
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};

/// What the overview shows.
pub struct Overview {
    pub next: Vec<DueFanout>,
    /// The next fan-outs' capacity plans, by reminder.
    pub outlooks: std::collections::HashMap<crate::domain::ids::ReminderId, Outlook>,
    pub running: Vec<FanoutTally>,
    pub last: Vec<FanoutTally>,
    pub troubled: Vec<Trouble>,
    /// The first subscriptions, by id.
    pub subscriptions: Vec<Subscription>,
    /// The operational webhooks' subscription (the operator's dashboard,
    /// when they are on): its page lists their deliveries.
    pub operational: Option<crate::store::SubscriptionId>,
    pub now: DateTime<Utc>,
}

/// The overview page: its five panels.
pub fn overview(v: &Viewer, o: &Overview) -> Page {
    let body = html! {
        h1 { (site(v.base)) }
        @if let Some(id) = &o.operational {
            p #operational { "Operational webhooks to the platform are on: "
                a href={ (v.base.path()) "/subscriptions/" (id.as_str()) } { "their deliveries" } "." }
        }
        (next_fanouts(o))
        section #running data-live={ (v.base.path()) "/running" } { (running_table(&o.running, o.now)) }
        (last_fanouts(o))
        (troubled(v, &o.troubled))
        (subscriptions(v, &o.subscriptions))
    };
    layout(v.base, site(v.base), Some(v), body)
}

/// The panel of the next fan-outs due, each with its capacity plan.
fn next_fanouts(o: &Overview) -> Markup {
    html! {
        section #next {
            h2 { "Next fan-outs due" }
            table {
                thead { tr { th { "Webinar" } th { "Reminder" } th { "Due" } th { "In" }
                    th.n { "Participants" } th.n { "Subscriptions" } th.n { "Deliveries" }
                    th.n title="The slowest fan-out's predicted duration at its endpoint" { "Predicted" }
                    th title="When its last delivery is predicted to be acknowledged" { "Last at" }
                    th { "Budget" } } }
                tbody {
                    @for f in &o.next {
                        tr.due data-webinar=(f.reminder.webinar_id.as_str()) {
                            (reminder_cells(&f.reminder)) td.t { (iso_millis(f.reminder.due_at)) }
                            td.t { (secs(f.reminder.due_at - o.now)) }
                            td.n.participants { (f.participants) } td.n.subscriptions { (f.subscriptions) }
                            td.n.deliveries { (f.deliveries()) }
                            (outlook::cells(o.outlooks.get(&f.reminder.reminder_id)))
                        }
                    }
                    @if o.next.is_empty() { tr { td colspan="10" { "Nothing due." } } }
                }
            }
        }
    }
}

/// The panel of the last fan-outs: their lateness and outcomes.
fn last_fanouts(o: &Overview) -> Markup {
    html! {
        section #last {
            h2 { "Last fan-outs" }
            table {
                thead { tr { th { "Webinar" } th { "Reminder" } th { "Due" }
                    th.n { "First late by" } th.n { "Last late by" } th.n { "Delivered" }
                    th.n { "Failed" } th.n { "Expired" } th.n { "Missed" } th.n { "Cancelled" }
                    th.n { "Remaining" } } }
                tbody {
                    @for f in &o.last {
                        tr.done data-webinar=(f.reminder.webinar_id.as_str()) {
                            (reminder_cells(&f.reminder)) td.t { (iso_millis(f.reminder.due_at)) }
                            td.n.first-late { (f.first_lateness().map(secs).unwrap_or_default()) }
                            td.n.last-late { (f.last_lateness().map(secs).unwrap_or_default()) }
                            td.n.delivered { (f.counts.delivered) } td.n.failed { (f.counts.failed) } td.n.expired { (f.counts.expired) }
                            td.n.missed { (f.counts.missed) } td.n.cancelled { (f.counts.cancelled) } td.n.remaining { (f.remaining()) }
                        }
                    }
                    @if o.last.is_empty() { tr { td colspan="11" { "No fan-out yet." } } }
                }
            }
        }
    }
}

/// The panel of the failing and disabled subscriptions.
fn troubled(v: &Viewer, troubled: &[Trouble]) -> Markup {
    html! {
        section #troubled {
            h2 { "Failing and disabled subscriptions" }
            table {
                thead { tr { th { "Subscription" } th { "Status" } th { "Since" }
                    th { "Last error" } th { "Response" } } }
                tbody {
                    @for t in troubled { (trouble(v, t)) }
                    @if troubled.is_empty() { tr { td colspan="5" { "Every endpoint answers." } } }
                }
            }
        }
    }
}

/// The panel of the first subscriptions, by id.
fn subscriptions(v: &Viewer, subscriptions: &[Subscription]) -> Markup {
    html! {
        section #subscriptions {
            h2 { "Subscriptions" }
            table {
                thead { tr { th { "Subscription" } th { "Event" } th { "Status" } th { "Failing since" } } }
                tbody {
                    @for s in subscriptions {
                        tr.subscription data-subscription=(s.id) {
                            td { a href={ (v.base.path()) "/subscriptions/" (s.id) } { (s.hook_url) }
                                 br; code.id { (s.id) } }
                            td { (s.event) }
                            td { span class={ "status " (s.status) } { (s.status) } }
                            td { (at(s.failing_since)) }
                        }
                    }
                    @if subscriptions.is_empty() { tr { td colspan="4" { "No subscriptions." } } }
                }
            }
        }
    }
}

/// A failing or disabled subscription's row: its status, since when, and
/// its last error and answer.
fn trouble(v: &Viewer, t: &Trouble) -> Markup {
    let s = &t.subscription;
    let href = format!("{}/subscriptions/{}", v.base.path(), s.id);
    html! {
        tr.trouble data-subscription=(s.id) {
            td { a href=(href) { (s.hook_url) } br; code.id { (s.id) } }
            td { span class={ "status " (s.status) } { (s.status) }
                 @if let Some(r) = &s.disabled_reason { br; small { (r) } } }
            td { (at(s.failing_since)) }
            td.last-error { @if let Some(c) = t.status_code { "HTTP " (c) " " } (t.error.as_deref().unwrap_or_default())
                 br; small { (at(t.at)) } }
            td.response { @if let Some(r) = &t.response { pre { (r) } } }
        }
    }
}

/// The running fan-outs' panel (refreshed every second by `live.js`).
pub fn running(list: &[FanoutTally], now: DateTime<Utc>) -> Page {
    Page(running_table(list, now))
}

fn running_table(list: &[FanoutTally], now: DateTime<Utc>) -> Markup {
    html! {
        h2 { "Running fan-outs" }
        table {
            thead { tr { th { "Webinar" } th { "Reminder" } th { "Progress" } th.n { "Sent" }
                th.n { "Failed" } th.n { "Remaining" } th.n { "Rate /s" } } }
            tbody {
                @for f in list {
                    tr.fanout data-webinar=(f.reminder.webinar_id.as_str()) {
                        (reminder_cells(&f.reminder))
                        td { progress max=(f.counts.total.max(1)) value=(f.counts.total - f.remaining()) {} }
                        td.n.sent { (f.counts.delivered) } td.n.failed { (f.counts.failed + f.counts.expired) }
                        td.n.remaining { (f.remaining()) } td.n { (format!("{:.1}", f.rate(now))) }
                    }
                }
                @if list.is_empty() { tr { td colspan="7" { "None running." } } }
            }
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:+.3} s", d.num_milliseconds() as f64 / 1000.0)
}

/// A fan-out's first two cells: its webinar (title and id) and reminder.
fn reminder_cells(r: &FanoutReminder) -> Markup {
    html! {
        td { span.title { (r.webinar_title) } br; code.id { (r.webinar_id.as_str()) } }
        td { (r.label) }
    }
}
