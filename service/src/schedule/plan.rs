//! Pure scheduling decisions: which reminders a webinar gets, and what to do
//! with a reminder found due at instant `now`. No I/O, no clock: the loop in
//! `schedule::run` feeds these functions and acts on their answers.

use crate::config::LatePolicy;
use crate::domain::ReminderOffset;
use crate::store::{FanoutMode, PlannedReminder};
use chrono::{DateTime, Duration, Utc};

/// The reminders still ahead for a webinar starting at `from`: an interval
/// whose moment has already passed is not armed (a webinar created or moved
/// at short notice only gets what is still to come).
pub fn plan(
    from: DateTime<Utc>,
    offsets: &[ReminderOffset],
    now: DateTime<Utc>,
) -> Vec<PlannedReminder> {
    offsets
        .iter()
        .map(|o| PlannedReminder {
            label: o.label().to_owned(),
            due_at: from - o.duration(),
        })
        .filter(|r| r.due_at > now)
        .collect()
}

/// Whether a reminder found due at `now` is sent on time, sent late, or
/// recorded as missed.
pub fn decide(
    due_at: DateTime<Utc>,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    on_time_grace: Duration,
    policy: LatePolicy,
) -> FanoutMode {
    if now <= due_at + on_time_grace && now < from {
        return FanoutMode::Send { late: false };
    }
    let useful = match policy {
        LatePolicy::UntilStart => now < from,
        LatePolicy::Within(d) => {
            now < from && now - due_at <= Duration::from_std(d).unwrap_or_default()
        }
        LatePolicy::Never => false,
    };
    if useful {
        FanoutMode::Send { late: true }
    } else {
        FanoutMode::Missed
    }
}

/// When retrying a reminder becomes pointless.
pub fn expires_at(from: DateTime<Utc>, after_start: std::time::Duration) -> DateTime<Utc> {
    from + Duration::from_std(after_start).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn plan_keeps_only_intervals_ahead() {
        let from = t("2024-03-15T10:00:00Z");
        let offsets = ReminderOffset::defaults();
        let all = plan(from, &offsets, t("2024-03-01T00:00:00Z"));
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].due_at, t("2024-03-14T10:00:00Z"));
        let late = plan(from, &offsets, t("2024-03-15T09:40:00Z"));
        let labels: Vec<_> = late.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["15min"]);
        assert!(plan(from, &offsets, t("2024-03-15T09:45:00Z")).is_empty());
    }

    #[test]
    fn decide_on_time_late_and_missed() {
        let from = t("2024-03-15T10:00:00Z");
        let due = t("2024-03-15T09:30:00Z");
        let g = Duration::seconds(60);
        let at = |s| decide(due, from, t(s), g, LatePolicy::UntilStart);
        assert_eq!(at("2024-03-15T09:30:00Z"), FanoutMode::Send { late: false });
        assert_eq!(at("2024-03-15T09:31:00Z"), FanoutMode::Send { late: false });
        assert_eq!(at("2024-03-15T09:50:00Z"), FanoutMode::Send { late: true });
        assert_eq!(at("2024-03-15T10:00:00Z"), FanoutMode::Missed);
        let never = decide(due, from, t("2024-03-15T09:50:00Z"), g, LatePolicy::Never);
        assert_eq!(never, FanoutMode::Missed);
        let within = LatePolicy::Within(std::time::Duration::from_secs(600));
        assert_eq!(
            decide(due, from, t("2024-03-15T09:39:00Z"), g, within),
            FanoutMode::Send { late: true }
        );
        assert_eq!(
            decide(due, from, t("2024-03-15T09:41:00Z"), g, within),
            FanoutMode::Missed
        );
    }
}
