//! Lanes made ready before an instant: a moment before reminders fall due
//! together, the lanes of the subscriptions they fan out to are started,
//! and how many there are sets how long ahead their first steps are staged
//! (`fanouts::lead`: more lanes, earlier). A change heard meanwhile (a
//! webinar created or moved onto that instant) counts them again, at most
//! every [`REWARM_MS`], so a reminder that joins the instant late is staged as
//! early as the others.

use super::fanouts;
use crate::delivery::Dispatcher;
use crate::AppContext;
use chrono::{DateTime, Duration, Utc};

/// How often, at most, the lanes of an instant a change may have added to
/// are counted again before it, in milliseconds.
const REWARM_MS: i64 = 50;

fn rewarm() -> Duration {
    Duration::milliseconds(REWARM_MS)
}

/// The instant whose lanes were last made ready, and how.
pub struct Warming {
    ahead: Duration,
    /// Lanes are made ready this long before their instant, at most.
    window: Duration,
    /// Staging for many lanes starts earlier, at most this long ahead.
    most: Duration,
    /// The instant last made ready, and how long ahead of it its
    /// reminders are staged.
    warmed: Option<(DateTime<Utc>, Duration)>,
    /// A change was heard since.
    changed: bool,
    /// When the lanes were last counted.
    counted: Option<DateTime<Utc>>,
}

impl Warming {
    pub fn new(ahead: Duration, tick: Duration) -> Self {
        let most = ahead.max(tick);
        Warming {
            ahead,
            window: tick + most,
            most,
            warmed: None,
            changed: false,
            counted: None,
        }
    }

    /// How long ahead reminders are claimed: that of the instant last made
    /// ready, or `--stage-ahead`.
    pub fn lead(&self) -> Duration {
        self.warmed.map_or(self.ahead, |w| w.1)
    }

    /// A change was heard (a webinar created, moved, cancelled…).
    pub fn heard(&mut self) {
        self.changed = true;
    }

    /// Makes the lanes of `next` (the next instant a reminder is due)
    /// ready once it is within the window, and again after a change;
    /// answers how long ahead of it reminders are claimed.
    pub async fn refresh(
        &mut self,
        ctx: &AppContext,
        dispatcher: &Dispatcher,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Duration {
        if let Some(t) = self.to_count(next, now) {
            let lanes = warm_lanes(ctx, dispatcher, t, t - now).await;
            self.counted(t, lanes, now);
        }
        self.lead_for(next)
    }

    /// The instant whose lanes are to be counted now, if any: `next`, once
    /// within the window, when it was not counted yet or a change was heard
    /// at least [`REWARM_MS`] after the last count.
    fn to_count(&self, next: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let t = next.filter(|t| *t - now <= self.window)?;
        let recount = self.changed && self.counted.is_none_or(|c| now - c >= rewarm());
        (recount || self.warmed.map(|w| w.0) != Some(t)).then_some(t)
    }

    /// `lanes` subscriptions get work at `t`, counted at `now`.
    fn counted(&mut self, t: DateTime<Utc>, lanes: usize, now: DateTime<Utc>) {
        self.changed = false;
        self.counted = Some(now);
        self.warmed = Some((t, fanouts::lead(self.ahead, lanes, self.most)));
    }

    /// How long ahead of `next` its reminders are claimed.
    fn lead_for(&self, next: Option<DateTime<Utc>>) -> Duration {
        self.warmed
            .filter(|w| Some(w.0) == next)
            .map_or(self.ahead, |w| w.1)
    }

    /// When a recount put off (changes came faster than [`REWARM_MS`]) is
    /// due, if one is and `next` is within the window: then, not at the
    /// next change.
    pub fn recount_at(
        &self,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let (true, Some(c), Some(t)) = (self.changed, self.counted, next) else {
            return None;
        };
        (t - now <= self.window).then(|| (c + rewarm()).max(now))
    }
}

/// Gets the lanes of the subscriptions a reminder due at `t` (in `left`)
/// fans out to ready before it fires; they stay up a second past it.
/// Returns how many there are.
async fn warm_lanes(
    ctx: &AppContext,
    dispatcher: &Dispatcher,
    t: DateTime<Utc>,
    left: Duration,
) -> usize {
    match ctx.engine.subscriptions_due(t).await {
        Ok(subs) => {
            let until = tokio::time::Instant::now()
                + left.to_std().unwrap_or_default()
                + std::time::Duration::from_secs(1);
            for sub in &subs {
                dispatcher.warm(sub, until);
            }
            subs.len()
        }
        Err(e) => {
            tracing::warn!(error = %crate::telemetry::causes(&e), "finding the lanes of an upcoming reminder failed");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    #[test]
    fn an_instant_is_counted_again_after_a_change_at_most_every_rewarm() {
        // Staged 10 ms ahead, a tick of 1 s: the window is 2 s.
        let mut w = Warming::new(Duration::milliseconds(10), Duration::seconds(1));
        let t = Some(at(10_000));
        assert_eq!(w.to_count(t, at(7_000)), None, "outside the window");
        assert_eq!(w.to_count(t, at(8_000)), t, "first within it");
        w.counted(at(10_000), 1, at(8_000));
        let few = w.lead_for(t);
        assert_eq!(w.to_count(t, at(8_100)), None, "nothing changed");
        assert_eq!(w.recount_at(t, at(8_100)), None);

        // A webinar moved onto the instant: counted again, but not within
        // 50 ms of the last count, and then at the end of those 50 ms.
        w.counted(at(10_000), 1, at(8_100));
        w.heard();
        assert_eq!(w.to_count(t, at(8_120)), None, "too soon");
        assert_eq!(w.recount_at(t, at(8_120)), Some(at(8_150)));
        assert_eq!(w.to_count(t, at(8_150)), t);
        w.counted(at(10_000), 500, at(8_150));
        assert!(w.lead_for(t) > few, "more lanes, staged earlier");
        assert_eq!(w.to_count(t, at(8_300)), None, "the change was counted");
        assert_eq!(w.recount_at(t, at(8_300)), None);

        // Another instant is counted at once; the old one's lead is not its.
        let u = Some(at(11_000));
        assert_eq!(w.to_count(u, at(9_500)), u);
        assert_eq!(w.lead_for(u), Duration::milliseconds(10));
    }
}
