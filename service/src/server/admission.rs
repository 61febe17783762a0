//! Which client connections stay open when there are too many: the pure
//! bookkeeping behind the server's connection cap, apart from any socket.
//!
//! A connection is *waiting* while it serves no request: from its accept
//! until its first request's headers are complete, and again while it idles
//! between two requests. At the cap, a new connection is admitted by closing
//! the one that has waited longest. A normal client completes its headers
//! microseconds after connecting, so under a slowloris attack (many
//! connections that trickle their headers or send none) the attacker's
//! connections are always the oldest waiting ones, and the newcomer, a
//! health check or a real client from the same address alike, gets in.
//! Connections busy with a request are never closed to make room; the
//! header and body deadlines bound how long they can stay busy.

use std::collections::{BTreeMap, HashMap};

/// A connection's number, unique for the life of the server.
pub type ConnId = u64;

/// The open connections and which of them are waiting, oldest first.
#[derive(Debug)]
pub struct Admission {
    cap: usize,
    /// Every admitted connection: `Some(rank)` while waiting, `None` while
    /// busy with a request.
    conns: HashMap<ConnId, Option<u64>>,
    /// The waiting connections by rank: the lower, the longer it has waited.
    waiting: BTreeMap<u64, ConnId>,
    /// The next id and rank (one counter serves both; only order matters).
    next: u64,
}

impl Admission {
    /// No connections yet, at most `cap` (at least one) open at once.
    pub fn new(cap: usize) -> Self {
        Admission {
            cap: cap.max(1),
            conns: HashMap::new(),
            waiting: BTreeMap::new(),
            next: 0,
        }
    }

    /// Connections admitted and not yet closed or evicted.
    pub fn open(&self) -> usize {
        self.conns.len()
    }

    /// Whether a new connection would be admitted now: there is room, or a
    /// waiting connection to close for it.
    pub fn can_admit(&self) -> bool {
        self.conns.len() < self.cap || !self.waiting.is_empty()
    }

    /// Admits a new connection, waiting from now. Returns its id and, at the
    /// cap, the connection to close for it (the one waiting longest); `None`
    /// when every open connection is busy and the cap is reached.
    pub fn admit(&mut self) -> Option<(ConnId, Option<ConnId>)> {
        let evict = if self.conns.len() >= self.cap {
            let (_, oldest) = self.waiting.pop_first()?;
            self.conns.remove(&oldest);
            Some(oldest)
        } else {
            None
        };
        let id = self.bump();
        let rank = self.bump();
        self.conns.insert(id, Some(rank));
        self.waiting.insert(rank, id);
        Some((id, evict))
    }

    /// The connection started serving a request: it may not be evicted.
    pub fn busy(&mut self, id: ConnId) {
        if let Some(state) = self.conns.get_mut(&id) {
            if let Some(rank) = state.take() {
                self.waiting.remove(&rank);
            }
        }
    }

    /// The connection finished a request and waits for the next one, from
    /// now: the newest of the waiting.
    pub fn idle(&mut self, id: ConnId) {
        let rank = self.bump();
        if let Some(state) = self.conns.get_mut(&id) {
            if let Some(old) = state.replace(rank) {
                self.waiting.remove(&old);
            }
            self.waiting.insert(rank, id);
        }
    }

    /// The connection is gone (closed by either side, or evicted earlier).
    pub fn closed(&mut self, id: ConnId) {
        if let Some(Some(rank)) = self.conns.remove(&id) {
            self.waiting.remove(&rank);
        }
    }

    fn bump(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::Admission;

    #[test]
    fn below_the_cap_nothing_is_evicted() {
        let mut a = Admission::new(3);
        for _ in 0..3 {
            let (_, evict) = a.admit().unwrap();
            assert_eq!(evict, None);
        }
        assert_eq!(a.open(), 3);
    }

    #[test]
    fn at_the_cap_the_longest_waiting_connection_makes_room() {
        let mut a = Admission::new(3);
        let (slow1, _) = a.admit().unwrap();
        let (slow2, _) = a.admit().unwrap();
        let (normal, _) = a.admit().unwrap();
        // The normal client sends its headers at once: busy.
        a.busy(normal);
        let (_, evict) = a.admit().unwrap();
        assert_eq!(evict, Some(slow1));
        let (_, evict) = a.admit().unwrap();
        assert_eq!(evict, Some(slow2));
        assert_eq!(a.open(), 3);
        // The evicted connection's own close changes nothing more.
        a.closed(slow1);
        assert_eq!(a.open(), 3);
    }

    #[test]
    fn a_busy_connection_is_never_evicted_and_a_full_server_says_so() {
        let mut a = Admission::new(2);
        let (x, _) = a.admit().unwrap();
        let (y, _) = a.admit().unwrap();
        a.busy(x);
        a.busy(y);
        assert!(!a.can_admit());
        assert_eq!(a.admit(), None);
        a.closed(x);
        assert!(a.can_admit());
        assert_eq!(a.admit().map(|(_, e)| e), Some(None));
    }

    #[test]
    fn an_idle_keep_alive_connection_waits_from_its_last_answer() {
        let mut a = Admission::new(2);
        let (keep_alive, _) = a.admit().unwrap();
        let (slow, _) = a.admit().unwrap();
        a.busy(keep_alive);
        a.idle(keep_alive);
        // The slow one has waited longer than the one just answered.
        let (_, evict) = a.admit().unwrap();
        assert_eq!(evict, Some(slow));
        let (_, evict) = a.admit().unwrap();
        assert_eq!(evict, Some(keep_alive));
    }

    #[test]
    fn a_closed_connection_frees_its_slot() {
        let mut a = Admission::new(1);
        let (x, _) = a.admit().unwrap();
        a.busy(x);
        a.closed(x);
        assert_eq!(a.open(), 0);
        assert_eq!(a.admit().map(|(_, e)| e), Some(None));
    }
}
