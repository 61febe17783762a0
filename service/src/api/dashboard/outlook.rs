//! How the dashboard and the portal show a next fan-out's capacity plan
//! (`schedule::forecast::Outlook`): three cells of the "Next fan-outs due"
//! row, the warning mark among them.

use crate::delivery::forecast::Outlook;
use crate::domain::payload::iso_millis;
use maud::{html, Markup};

/// A next fan-out's plan: the slowest fan-out's predicted duration and last
/// instant, and a warning mark when any is predicted to remind its last
/// participant later than its subscription's budget.
pub fn cells(o: Option<&Outlook>) -> Markup {
    html! {
        @match o {
            Some(o) => {
                td.n.predicted { (format!("{:.3} s", o.duration.num_milliseconds() as f64 / 1000.0)) }
                td.t.last-at { (iso_millis(o.last_at)) }
                @if o.late > 0 {
                    td.over-budget title="The last participant would be reminded later than the subscription's lateness budget" {
                        "⚠ over budget (" (o.late) ")"
                    }
                } @else { td.within-budget { "within" } }
            }
            None => { td.n.predicted {} td.t.last-at {} td {} }
        }
    }
}
