//! The failed-authentication budget of each client address. Every missing
//! or invalid API key or admin token spends one unit of the address's
//! budget (`--auth-failures` a minute, and as many at once); an address
//! with nothing left is answered 429 with `Retry-After` before its
//! credentials are looked at, so guessing keys costs the store nothing.
//! Until its budget refills, a blocked address is refused even with a valid
//! key: checking the key would be the very store call the limit saves, and
//! would tell a guesser which guess was right.
//!
//! [`Budget`] is the pure decision (a token bucket); [`FailureLimit`] keeps
//! one per address. IPv6 clients are counted per /64, the block one
//! subscriber usually holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One address's budget: a bucket of `per_minute` units refilling at
/// `per_minute` a minute.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Units left; below zero when concurrent failures overspent it (the
    /// address then waits longer).
    left: f64,
    at: Instant,
}

impl Budget {
    /// A full budget.
    pub fn full(now: Instant, per_minute: u32) -> Self {
        Budget {
            left: f64::from(per_minute),
            at: now,
        }
    }

    /// Units left at `now`.
    fn level(&self, now: Instant, per_minute: u32) -> f64 {
        let rate = f64::from(per_minute) / 60.0;
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * rate;
        (self.left + refill).min(f64::from(per_minute))
    }

    /// How long the address must wait before its next attempt, if it has
    /// no unit left at `now`.
    pub fn blocked(&self, now: Instant, per_minute: u32) -> Option<Duration> {
        let left = self.level(now, per_minute);
        (left < 1.0).then(|| Duration::from_secs_f64((1.0 - left) * 60.0 / f64::from(per_minute)))
    }

    /// Spends a unit for a failure at `now`. Overspending is bounded at one
    /// budget's worth of debt.
    pub fn spend(&mut self, now: Instant, per_minute: u32) {
        let cap = f64::from(per_minute);
        self.left = (self.level(now, per_minute) - 1.0).max(-cap);
        self.at = now;
    }

    /// Whether the budget is full again at `now` (nothing worth keeping).
    fn is_full(&self, now: Instant, per_minute: u32) -> bool {
        self.level(now, per_minute) >= f64::from(per_minute)
    }
}

/// Addresses kept before full budgets are dropped from the table.
const PRUNE_AT: usize = 10_000;

/// The budgets of every address that failed recently.
pub struct FailureLimit {
    /// Failures allowed per minute (and at once); 0: no limit.
    per_minute: u32,
    budgets: Mutex<Table>,
}

struct Table {
    by_addr: HashMap<IpAddr, Budget>,
    prune_at: usize,
}

impl FailureLimit {
    /// `per_minute` failures a minute per address; 0 turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        FailureLimit {
            per_minute,
            budgets: Mutex::new(Table {
                by_addr: HashMap::new(),
                prune_at: PRUNE_AT,
            }),
        }
    }

    /// How long `addr` must wait, if it has no failure left to spend.
    pub fn blocked(&self, addr: IpAddr) -> Option<Duration> {
        if self.per_minute == 0 {
            return None;
        }
        let t = self.budgets.lock().expect("auth budget lock");
        t.by_addr
            .get(&key(addr))
            .and_then(|b| b.blocked(Instant::now(), self.per_minute))
    }

    /// Counts a failed authentication from `addr`.
    pub fn failed(&self, addr: IpAddr) {
        if self.per_minute == 0 {
            return;
        }
        let now = Instant::now();
        let mut t = self.budgets.lock().expect("auth budget lock");
        if t.by_addr.len() >= t.prune_at {
            // Full budgets carry nothing: drop them, and look again when
            // the table has doubled, so pruning stays cheap per failure.
            let per_minute = self.per_minute;
            t.by_addr.retain(|_, b| !b.is_full(now, per_minute));
            t.prune_at = (t.by_addr.len() * 2).max(PRUNE_AT);
        }
        t.by_addr
            .entry(key(addr))
            .or_insert_with(|| Budget::full(now, self.per_minute))
            .spend(now, self.per_minute);
    }
}

/// The address a budget is kept for: IPv4 as it is, IPv6 by its /64.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => {
            let mut s = v6.segments();
            s[4..].fill(0);
            IpAddr::V6(s.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_allows_its_burst_then_blocks_until_a_unit_refills() {
        let t0 = Instant::now();
        let mut b = Budget::full(t0, 10);
        for _ in 0..10 {
            assert_eq!(b.blocked(t0, 10), None);
            b.spend(t0, 10);
        }
        // Ten a minute: one unit every 6 s.
        let wait = b.blocked(t0, 10).expect("blocked");
        assert!((wait.as_secs_f64() - 6.0).abs() < 0.01, "{wait:?}");
        let later = t0 + Duration::from_secs(3);
        assert!(b
            .blocked(later, 10)
            .is_some_and(|w| w <= Duration::from_secs(3)));
        assert_eq!(b.blocked(t0 + Duration::from_secs(6), 10), None);
    }

    #[test]
    fn overspending_is_bounded() {
        let t0 = Instant::now();
        let mut b = Budget::full(t0, 2);
        for _ in 0..100 {
            b.spend(t0, 2);
        }
        // At most one budget of debt: (1 + 2) units at 2 a minute.
        let wait = b.blocked(t0, 2).unwrap();
        assert!(wait <= Duration::from_secs(90), "{wait:?}");
    }

    #[test]
    fn addresses_are_counted_apart_and_ipv6_by_its_slash_64() {
        let limit = FailureLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        limit.failed(a);
        limit.failed(a);
        assert!(limit.blocked(a).is_some());
        assert!(limit.blocked(b).is_none());
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        limit.failed(v6a);
        limit.failed(v6b);
        assert!(limit.blocked(v6a).is_some());
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limit = FailureLimit::new(0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..100 {
            limit.failed(a);
        }
        assert!(limit.blocked(a).is_none());
    }
}
