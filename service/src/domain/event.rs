//! Event names a subscription can ask for: `webinar.reminder.all`, or one
//! interval only (`webinar.reminder.1day`, `.30min`, `.15min`, or any
//! offset label the operator configured).

use super::ReminderOffset;

/// The family prefix every reminder event shares.
pub const PREFIX: &str = "webinar.reminder.";

/// A subscribable event, validated against the configured offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Every reminder interval.
    All,
    /// One interval, by its offset label.
    Only(String),
}

impl Event {
    /// Parses an event name; `None` when it is not one tminus sends.
    pub fn parse(name: &str, offsets: &[ReminderOffset]) -> Option<Self> {
        let rest = name.strip_prefix(PREFIX)?;
        if rest == "all" {
            return Some(Event::All);
        }
        offsets
            .iter()
            .find(|o| o.label() == rest)
            .map(|o| Event::Only(o.label().to_owned()))
    }

    /// Every name accepted with these offsets, for error messages.
    pub fn names(offsets: &[ReminderOffset]) -> Vec<String> {
        std::iter::once(format!("{PREFIX}all"))
            .chain(offsets.iter().map(|o| format!("{PREFIX}{}", o.label())))
            .collect()
    }

    /// The full event name.
    pub fn name(&self) -> String {
        match self {
            Event::All => format!("{PREFIX}all"),
            Event::Only(label) => format!("{PREFIX}{label}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_all_and_configured_intervals_only() {
        let o = ReminderOffset::defaults();
        assert_eq!(Event::parse("webinar.reminder.all", &o), Some(Event::All));
        assert_eq!(
            Event::parse("webinar.reminder.30min", &o),
            Some(Event::Only("30min".into()))
        );
        assert_eq!(Event::parse("webinar.reminder.10s", &o), None);
        assert_eq!(Event::parse("webinar.created", &o), None);
        assert_eq!(Event::names(&o).len(), 4);
    }
}
