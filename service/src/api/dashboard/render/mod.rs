//! The dashboard's HTML, written with maud: every value is escaped by the
//! template, the page links one embedded stylesheet and one small script
//! (`assets`), and nothing comes from elsewhere (the Content-Security-Policy
//! says so). Pure: each function turns what the handlers gathered into a
//! page.

use super::site::{Base, Viewer};
use crate::api::error::ApiError;
use crate::delivery::forecast::Outlook;
use crate::domain::payload::iso_millis;
use crate::store::{
    Delivery, DueFanout, FanoutReminder, FanoutTally, Paged, Subscription, SubscriptionStatus,
    Trouble,
};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup, DOCTYPE};

/// What the pages may load: their own stylesheet and script, nothing else.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A whole page: HTML that is never cached nor framed.
pub struct Page(Markup);

impl Page {
    /// The HTML, for a response built by hand.
    pub fn into_string(self) -> String {
        self.0.into_string()
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut r = (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.0.into_string(),
        )
            .into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        r
    }
}

fn site(base: Base) -> &'static str {
    match base {
        Base::Dashboard => "Operator dashboard",
        Base::Portal => "Creator portal",
    }
}

/// The frame around every page; `v` adds the logout button.
fn layout(base: Base, title: &str, v: Option<&Viewer>, body: Markup) -> Page {
    Page(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tminus" }
                link rel="stylesheet" href="/dashboard/assets/style.css";
            }
            body {
                header {
                    a.brand href=(base.path()) { "tminus" }
                    span.site { (site(base)) }
                    @if let Some(v) = v {
                        form.logout method="post" action={ (base.path()) "/logout" } {
                            input type="hidden" name="csrf" value=(v.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
                script src="/dashboard/assets/live.js" defer {}
            }
        }
    })
}

/// The login form, with why the last try failed, and its token.
pub fn login(base: Base, error: Option<&str>, csrf: &str) -> Page {
    let label = match base {
        Base::Dashboard => "Admin token",
        Base::Portal => "API key (x-api-key)",
    };
    layout(
        base,
        "Log in",
        None,
        html! {
            h1 { "Log in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form #login method="post" action={ (base.path()) "/login" } {
                input type="hidden" name="csrf" value=(csrf);
                label for="credential" { (label) }
                input #credential type="password" name="credential" autocomplete="off" required;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// The page a portal link answers: it moves on to the portal by itself.
pub fn entering() -> Page {
    Page(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="0; url=/portal";
                title { "Opening the portal · tminus" }
            }
            body { p { a href="/portal" { "Open the portal" } } }
        }
    })
}

/// An error as a page, with the API error's status.
pub fn failure(e: ApiError) -> Response {
    let status = match &e {
        ApiError::Client { status, .. } => *status,
        ApiError::Internal(cause) => {
            tracing::error!(error = %crate::telemetry::causes(cause), "dashboard page failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let page = layout(
        Base::Dashboard,
        "Error",
        None,
        html! { h1 { (status.as_u16()) } p.error { (reason(&e)) } },
    );
    (status, page).into_response()
}

/// What to tell the viewer about an error.
pub fn reason(e: &ApiError) -> String {
    match e {
        ApiError::Client { message, .. } => message.clone(),
        ApiError::Internal(_) => "Something went wrong on our side.".into(),
    }
}

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

fn secs(d: Duration) -> String {
    format!("{:+.3} s", d.num_milliseconds() as f64 / 1000.0)
}

fn at(t: Option<DateTime<Utc>>) -> String {
    t.map(iso_millis).unwrap_or_default()
}

/// A fan-out's first two cells: its webinar (title and id) and reminder.
fn reminder_cells(r: &FanoutReminder) -> Markup {
    html! {
        td { span.title { (r.webinar_title) } br; code.id { (r.webinar_id.as_str()) } }
        td { (r.label) }
    }
}

/// The overview page: its five panels.
pub fn overview(v: &Viewer, o: &Overview) -> Page {
    let body = html! {
        h1 { (site(v.base)) }
        @if let Some(id) = &o.operational {
            p #operational { "Operational webhooks to the platform are on: "
                a href={ (v.base.path()) "/subscriptions/" (id.as_str()) } { "their deliveries" } "." }
        }
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
                            (super::outlook::cells(o.outlooks.get(&f.reminder.reminder_id)))
                        }
                    }
                    @if o.next.is_empty() { tr { td colspan="10" { "Nothing due." } } }
                }
            }
        }
        section #running data-live={ (v.base.path()) "/running" } { (running_table(&o.running, o.now)) }
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
                            td.n.delivered { (f.delivered) } td.n.failed { (f.failed) } td.n.expired { (f.expired) }
                            td.n.missed { (f.missed) } td.n.cancelled { (f.cancelled) } td.n.remaining { (f.remaining()) }
                        }
                    }
                    @if o.last.is_empty() { tr { td colspan="11" { "No fan-out yet." } } }
                }
            }
        }
        section #troubled {
            h2 { "Failing and disabled subscriptions" }
            table {
                thead { tr { th { "Subscription" } th { "Status" } th { "Since" }
                    th { "Last error" } th { "Response" } } }
                tbody {
                    @for t in &o.troubled { (trouble(v, t)) }
                    @if o.troubled.is_empty() { tr { td colspan="5" { "Every endpoint answers." } } }
                }
            }
        }
        section #subscriptions {
            h2 { "Subscriptions" }
            table {
                thead { tr { th { "Subscription" } th { "Event" } th { "Status" } th { "Failing since" } } }
                tbody {
                    @for s in &o.subscriptions {
                        tr.subscription data-subscription=(s.id) {
                            td { a href={ (v.base.path()) "/subscriptions/" (s.id) } { (s.hook_url) }
                                 br; code.id { (s.id) } }
                            td { (s.event) }
                            td { span class={ "status " (s.status) } { (s.status) } }
                            td { (at(s.failing_since)) }
                        }
                    }
                    @if o.subscriptions.is_empty() { tr { td colspan="4" { "No subscriptions." } } }
                }
            }
        }
    };
    layout(v.base, site(v.base), Some(v), body)
}

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
                        td { progress max=(f.total.max(1)) value=(f.total - f.remaining()) {} }
                        td.n.sent { (f.delivered) } td.n.failed { (f.failed + f.expired) }
                        td.n.remaining { (f.remaining()) } td.n { (format!("{:.1}", f.rate(now))) }
                    }
                }
                @if list.is_empty() { tr { td colspan="7" { "None running." } } }
            }
        }
    }
}

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
                    Some(n) => { (n) " of " (s.max_concurrency) " (adapting to the endpoint)" }
                    None => { "at most " (s.max_concurrency) " (no delivery running now)" }
                }
            }
            dt { "Lateness budget" } dd { (s.late_budget_ms / 1000) " s" }
            dt { "Early start allowed" } dd { (s.send_early_ms / 1000) " s" }
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
