//! Time zones of creators and participants: either a fixed `±HH:MM` offset or
//! an IANA name. The payload carries offsets, computed at the webinar's start
//! instant so daylight saving is right for the session being announced.

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

/// A zone as given by the platform.
#[derive(Clone, Debug, PartialEq)]
pub enum Zone {
    /// A fixed offset, in seconds east of UTC.
    Fixed(i32),
    /// A named zone whose offset depends on the date.
    Named(Tz),
}

/// Why a zone was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid time zone {0:?}: expected an offset such as +05:30 or an IANA name such as Asia/Kolkata")]
pub struct BadZone(pub String);

impl FromStr for Zone {
    type Err = BadZone;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadZone(s.into());
        if let Some(sign) = s.chars().next().filter(|c| *c == '+' || *c == '-') {
            let rest = &s[1..];
            let (h, m) = rest.split_once(':').ok_or_else(bad)?;
            // Digits only: `i32::from_str` alone would take `+-1:00` or
            // `+05:-1` (a sign of its own in either part).
            let two_digits = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
            if !two_digits(h) || !two_digits(m) {
                return Err(bad());
            }
            let h: i32 = h.parse().map_err(|_| bad())?;
            let m: i32 = m.parse().map_err(|_| bad())?;
            if h > 14 || m > 59 {
                return Err(bad());
            }
            let secs = (h * 3600 + m * 60) * if sign == '-' { -1 } else { 1 };
            return Ok(Zone::Fixed(secs));
        }
        s.parse::<Tz>().map(Zone::Named).map_err(|_| bad())
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Fixed(secs) => f.write_str(&format_offset(*secs)),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

impl Zone {
    /// Seconds east of UTC in force at `at`.
    pub fn offset_at(&self, at: DateTime<Utc>) -> i32 {
        match self {
            Zone::Fixed(secs) => *secs,
            Zone::Named(tz) => tz
                .offset_from_utc_datetime(&at.naive_utc())
                .fix()
                .local_minus_utc(),
        }
    }
}

/// `±HH:MM` for an offset in seconds, as the payload writes it.
pub fn format_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", abs / 60, abs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn parses_offsets_and_names() {
        assert_eq!("+05:30".parse(), Ok(Zone::Fixed(19_800)));
        assert_eq!("-03:00".parse(), Ok(Zone::Fixed(-10_800)));
        assert_eq!("+00:00".parse::<Zone>().unwrap().to_string(), "+00:00");
        assert_eq!(
            "Asia/Kolkata".parse::<Zone>().unwrap().to_string(),
            "Asia/Kolkata"
        );
        for bad in [
            "05:30",
            "+5:30",
            "+15:00",
            "+05:60",
            "Mars/Olympus",
            "",
            // Found by the property below: signs inside the parts.
            "+-1:00",
            "-+0:+0",
            "+05:-1",
            "++1:30",
        ] {
            assert!(bad.parse::<Zone>().is_err(), "{bad}");
        }
    }

    #[test]
    fn named_zones_follow_daylight_saving() {
        let berlin: Zone = "Europe/Berlin".parse().unwrap();
        // Summer time ends on 2024-10-27 at 01:00 UTC.
        assert_eq!(
            format_offset(berlin.offset_at(at("2024-10-27T00:59:00Z"))),
            "+02:00"
        );
        assert_eq!(
            format_offset(berlin.offset_at(at("2024-10-27T01:00:00Z"))),
            "+01:00"
        );
        let ny: Zone = "America/New_York".parse().unwrap();
        assert_eq!(
            format_offset(ny.offset_at(at("2024-07-01T12:00:00Z"))),
            "-04:00"
        );
        assert_eq!(format_offset(-(9 * 3600 + 30 * 60)), "-09:30");
    }

    use proptest::prelude::*;

    /// Strings near the two grammars, and anything at all.
    fn zone_like() -> impl Strategy<Value = String> {
        let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()).collect();
        prop_oneof![
            "[+-][0-9]{2}:[0-9]{2}",
            "[+-][-+0-9 ]{2}:[-+0-9 ]{2}",
            "[+-]?[-+0-9 ]{0,3}:?[-+0-9 ]{0,3}",
            prop::sample::select(names).prop_map(str::to_owned),
            (
                prop::sample::select(vec!["Asia/Kolkata", "Europe/Berlin", "UTC"]),
                any::<char>()
            )
                .prop_map(|(n, c)| format!("{n}{c}")),
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn what_parses_prints_back_to_the_same_zone(s in zone_like()) {
            if let Ok(z) = s.parse::<Zone>() {
                let shown = z.to_string();
                prop_assert_eq!(shown.parse::<Zone>(), Ok(z.clone()), "{:?} shown as {}", s, shown);
                if let Zone::Fixed(secs) = z {
                    // Only the documented grammar: a sign, then HH:MM in digits.
                    let b = s.as_bytes();
                    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
                    prop_assert!(
                        b.len() == 6 && b[3] == b':' && digits(1..3) && digits(4..6),
                        "{:?} was accepted as {}", s, shown
                    );
                    prop_assert!(secs.abs() < 15 * 3600);
                }
            }
        }

        #[test]
        fn offsets_in_force_print_as_offsets_that_parse(
            s in zone_like(),
            at in -2_208_988_800i64..253_402_300_799,
        ) {
            if let Ok(z) = s.parse::<Zone>() {
                let t = DateTime::from_timestamp(at, 0).unwrap();
                let shown = format_offset(z.offset_at(t));
                prop_assert!(shown.parse::<Zone>().is_ok(), "{}", shown);
            }
        }
    }
}
