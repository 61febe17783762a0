//! Reminder offsets: how long before a webinar's start a reminder fires, and
//! the label receivers see in `x-tminus-reminder` (`1day`, `30min`, `15min`,
//! or whatever the operator configured, such as `10s` for a demo).

use std::fmt;
use std::str::FromStr;

/// One reminder interval, e.g. `30min` = 1 800 s before the start.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReminderOffset {
    /// The canonical label, used in headers, event names and storage.
    label: String,
    /// Seconds before the webinar's start.
    seconds: i64,
}

/// Why an offset was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid reminder offset {0:?}: expected a positive number followed by s, min, h or day (e.g. 1day, 30min, 15min, 10s)")]
pub struct BadOffset(pub String);

impl ReminderOffset {
    /// The offset as seconds before the start.
    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    /// The canonical label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The offset as a chrono duration.
    pub fn duration(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.seconds)
    }

    /// The contract's defaults: 1 day, 30 minutes, 15 minutes.
    pub fn defaults() -> Vec<Self> {
        parse_list("1day,30min,15min").expect("defaults parse")
    }
}

impl FromStr for ReminderOffset {
    type Err = BadOffset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: i64 = num.parse().map_err(|_| BadOffset(s.into()))?;
        let (mult, canon) = match unit.trim() {
            "s" | "sec" | "secs" | "second" | "seconds" => (1, "s"),
            "m" | "min" | "mins" | "minute" | "minutes" => (60, "min"),
            "h" | "hour" | "hours" => (3600, "h"),
            "d" | "day" | "days" => (86_400, "day"),
            _ => return Err(BadOffset(s.into())),
        };
        if n <= 0 || n > 366 * 86_400 / mult {
            return Err(BadOffset(s.into()));
        }
        Ok(Self {
            label: format!("{n}{canon}"),
            seconds: n * mult,
        })
    }
}

impl fmt::Display for ReminderOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// Parses a comma-separated list, refusing duplicates and empty lists.
/// The result is ordered from the earliest reminder (largest offset) down.
pub fn parse_list(s: &str) -> Result<Vec<ReminderOffset>, BadOffset> {
    let mut out: Vec<ReminderOffset> = s.split(',').map(str::parse).collect::<Result<_, _>>()?;
    out.sort_by_key(|o| std::cmp::Reverse(o.seconds));
    let before = out.len();
    out.dedup_by_key(|o| o.seconds);
    if out.is_empty() || out.len() != before {
        return Err(BadOffset(s.into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_defaults_and_seconds() {
        let d = ReminderOffset::defaults();
        let labels: Vec<_> = d.iter().map(|o| o.label()).collect();
        assert_eq!(labels, ["1day", "30min", "15min"]);
        assert_eq!(d[0].seconds(), 86_400);
        let s: ReminderOffset = "10s".parse().unwrap();
        assert_eq!((s.label(), s.seconds()), ("10s", 10));
        assert_eq!("2 hours".parse::<ReminderOffset>().unwrap().label(), "2h");
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "0s", "-5min", "10", "min", "5 weeks", "99999day"] {
            assert!(bad.parse::<ReminderOffset>().is_err(), "{bad}");
        }
        assert!(parse_list("30min,30min").is_err());
        assert!(parse_list("30min,1800s").is_err());
    }

    use proptest::prelude::*;

    fn offset_like() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{1,8} ?(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hour|hours|d|day|days)",
            " ?[-+0-9]{0,22} ?[a-zA-Z ]{0,8}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn what_parses_prints_back_to_the_same_offset(s in offset_like()) {
            if let Ok(o) = s.parse::<ReminderOffset>() {
                prop_assert!(o.seconds() > 0 && o.seconds() <= 366 * 86_400, "{:?}", o);
                prop_assert_eq!(o.to_string(), o.label());
                prop_assert_eq!(o.label().parse::<ReminderOffset>(), Ok(o.clone()));
            }
        }

        #[test]
        fn lists_print_back_to_the_same_list(items in prop::collection::vec(offset_like(), 0..5)) {
            if let Ok(list) = parse_list(&items.join(",")) {
                prop_assert!(list.windows(2).all(|w| w[0].seconds() > w[1].seconds()));
                let shown: Vec<&str> = list.iter().map(|o| o.label()).collect();
                prop_assert_eq!(parse_list(&shown.join(",")), Ok(list.clone()));
            }
        }
    }
}
