//! The policies for reminders that cannot be sent on time, as the flags
//! spell them: a reminder whose moment passed while no instance ran
//! (`--late-policy`), and a fan-out's delivery that would first leave after
//! its webinar started (`--after-start`). Parsing only; the scheduler and
//! the lanes apply them.

use std::time::Duration;

/// What to do with a reminder whose moment passed while no instance ran.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LatePolicy {
    /// Send it late as long as the webinar has not started (the default).
    UntilStart,
    /// Send it late only within this long after its due instant.
    Within(Duration),
    /// Never send late: record it as missed.
    Never,
}

impl std::str::FromStr for LatePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "until-start" => Ok(Self::UntilStart),
            "never" => Ok(Self::Never),
            other => humantime::parse_duration(other)
                .map(Self::Within)
                .map_err(|_| format!("late policy {other:?}: expected until-start, never or a duration such as 10m")),
        }
    }
}

/// What becomes of a fan-out's delivery that would first leave after its
/// webinar has started (the endpoint was too slow for the fan-out, or it
/// began late): a reminder is worth little once the webinar has begun.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterStart {
    /// Not sent: recorded as expired, with the reason (the default).
    Expire,
    /// Sent all the same, with `x-tminus-late: true`, and recorded as late.
    SendLate,
}

impl std::str::FromStr for AfterStart {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "expire" => Ok(Self::Expire),
            "send-late" => Ok(Self::SendLate),
            other => Err(format!(
                "after-start policy {other:?}: expected expire or send-late"
            )),
        }
    }
}
