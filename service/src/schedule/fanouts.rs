//! The reminders this instance is fanning out, and the order their steps
//! take. Every fan-out in hand moves one step per round, so no webinar
//! waits behind another's fan-out; in a round, those that have not had
//! their first step since their instant go first, so each webinar's first
//! requests leave before anyone's second slice is written. Pure: the loop
//! in `schedule` makes the steps.

use crate::store::DueReminder;
use chrono::{DateTime, Duration, Utc};

/// Most reminders claimed at once: more are claimed each round while the
/// set is below [`MAX_LIVE`], so instances sharing a store share a burst.
pub const CLAIM_AT_ONCE: u32 = 64;

/// Most fan-outs in hand at once.
pub const MAX_LIVE: usize = 4096;

/// Store calls a reminder costs before its instant when it is staged: its
/// first step, and its lane's look at the subscription and claim.
const STAGE_COST: Duration = Duration::milliseconds(1);

/// One fan-out in hand.
pub struct Fanout {
    pub r: DueReminder,
    /// Its first step was made ahead of the instant.
    pub staged: bool,
    /// A step was made at or after the instant.
    pub stepped: bool,
    /// Deliveries written so far.
    pub total: usize,
    pub done: bool,
}

impl Fanout {
    pub fn new(r: DueReminder) -> Self {
        Fanout {
            r,
            staged: false,
            stepped: false,
            total: 0,
            done: false,
        }
    }
}

/// The fan-outs in hand.
#[derive(Default)]
pub struct Fanouts {
    pub items: Vec<Fanout>,
}

impl Fanouts {
    /// Whether more may be claimed.
    pub fn has_room(&self) -> bool {
        self.items.len() < MAX_LIVE
    }

    /// The ones due at `now`, in the order of this round: first those not
    /// stepped since their instant (earliest due first), then the others
    /// (likewise).
    pub fn round(&self, now: DateTime<Utc>) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.items.len())
            .filter(|&i| !self.items[i].done && self.items[i].r.due_at <= now)
            .collect();
        order.sort_by_key(|&i| (self.items[i].stepped, self.items[i].r.due_at));
        order
    }

    /// The earliest instant of a fan-out not yet due.
    pub fn next_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.items
            .iter()
            .map(|f| f.r.due_at)
            .filter(|t| *t > now)
            .min()
    }

    /// Forgets the finished ones.
    pub fn drop_done(&mut self) {
        self.items.retain(|f| !f.done);
    }
}

/// How long before an instant its reminders are claimed and staged, when
/// `lanes` subscriptions get work then: `ahead` for a few, more for many,
/// so that every one is staged (and its lane holds its first slice) by the
/// instant; at most `most`. Staging turned off (`ahead` zero) stays off.
pub fn lead(ahead: Duration, lanes: usize, most: Duration) -> Duration {
    if ahead.is_zero() {
        return ahead;
    }
    let need = ahead + STAGE_COST * lanes.min(1_000_000) as i32;
    need.min(most.max(ahead))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    fn fanout(id: u8, due_ms: i64) -> Fanout {
        Fanout::new(DueReminder {
            id: format!("{id:024x}").parse().unwrap(),
            webinar_id: format!("{id:024x}").parse().unwrap(),
            label: "15min".into(),
            due_at: at(due_ms),
            from_time: at(due_ms + 900_000),
        })
    }

    #[test]
    fn a_round_takes_first_steps_before_second_ones() {
        let mut f = Fanouts::default();
        f.items.push(fanout(1, 0));
        f.items.push(fanout(2, 0));
        f.items.push(fanout(3, 10));
        f.items.push(fanout(4, 500));
        f.items[0].stepped = true;
        f.items[1].stepped = true;
        // Not yet due: left out; not stepped: first.
        assert_eq!(f.round(at(100)), vec![2, 0, 1]);
        assert_eq!(f.next_due(at(100)), Some(at(500)));
        f.items[2].done = true;
        f.drop_done();
        assert_eq!(f.items.len(), 3);
        assert_eq!(f.round(at(600)), vec![2, 0, 1]);
        assert_eq!(f.next_due(at(600)), None);
    }

    #[test]
    fn many_lanes_are_staged_earlier_within_a_bound() {
        let ahead = Duration::milliseconds(100);
        let most = Duration::seconds(1);
        assert_eq!(lead(ahead, 1, most), Duration::milliseconds(101));
        assert_eq!(lead(ahead, 400, most), Duration::milliseconds(500));
        assert_eq!(lead(ahead, 100_000, most), most);
        // Never shorter than asked for.
        assert_eq!(lead(Duration::seconds(2), 5, most), Duration::seconds(2));
        assert!(lead(Duration::zero(), 1000, most).is_zero());
    }
}
