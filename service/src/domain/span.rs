//! When a webinar may be. Its start and end are written into every payload
//! as `YYYY-MM-DDTHH:MM:SS.mmmZ`, which holds years 0000 to 9999 only: an
//! end after 9999 came out as `+10000-01-01T00:00:00.000Z`, which no
//! receiver parses. So both instants must lie between the Unix epoch and
//! ten years after now (far inside what the format holds, and further ahead
//! than anyone plans a webinar), the end after the start, and a webinar
//! lasts at most 31 days (longer is a mistake, such as a year typed wrong).

use chrono::{DateTime, Months, Utc};

/// How far ahead of now a webinar's instants may be.
pub const AHEAD: Months = Months::new(120);
/// The longest a webinar may last.
pub const LONGEST: chrono::Duration = chrono::Duration::days(31);

/// Why a webinar's times are refused: the field to blame and why.
#[derive(Debug, PartialEq)]
pub struct BadSpan {
    pub field: &'static str,
    pub message: String,
}

/// Checks a webinar's start and end as of `now`. `end_derived` says the
/// end was not given but kept the duration of a moved start, so the
/// message can say so.
pub fn check(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    end_derived: bool,
) -> Result<(), BadSpan> {
    let latest = now
        .checked_add_months(AHEAD)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let bad = |field, message: String| Err(BadSpan { field, message });
    let window = |field: &'static str, t: DateTime<Utc>| -> Result<(), BadSpan> {
        if t < DateTime::UNIX_EPOCH || t > latest {
            let kept = if end_derived && field == "toTime" {
                " (it keeps the webinar's duration after the moved fromTime)"
            } else {
                ""
            };
            return bad(
                field,
                format!("{field}{kept} must be between 1970-01-01 and ten years from now"),
            );
        }
        Ok(())
    };
    window("fromTime", from)?;
    window("toTime", to)?;
    if to <= from {
        return bad("toTime", "toTime must be after fromTime".into());
    }
    if to - from > LONGEST {
        return bad("toTime", "a webinar lasts at most 31 days".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn instants_stay_between_the_epoch_and_ten_years_ahead() {
        let now = t("2026-12-01T00:00:00Z");
        let field = |from, to, derived| check(from, to, now, derived).map_err(|e| e.field);
        let h = Duration::hours(1);
        assert_eq!(field(now, now + h, false), Ok(()));
        let epoch = DateTime::UNIX_EPOCH;
        assert_eq!(field(epoch, epoch + LONGEST, false), Ok(()));
        assert_eq!(field(epoch - h, epoch, false), Err("fromTime"));
        let edge = t("2036-12-01T00:00:00Z");
        assert_eq!(field(edge - h, edge, false), Ok(()));
        assert_eq!(field(edge, edge + h, false), Err("toTime"));
        assert_eq!(field(edge + h, edge + h + h, false), Err("fromTime"));
        let end = t("9999-12-31T23:59:59Z");
        assert_eq!(field(now, end, false), Err("toTime"));
        assert_eq!(field(now, now, false), Err("toTime"));
        assert_eq!(field(now, now + LONGEST + h, false), Err("toTime"));
        let derived = check(edge - h, edge + h, now, true).unwrap_err();
        assert!(derived.message.contains("duration"), "{}", derived.message);
    }
}
