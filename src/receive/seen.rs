//! The receiver's memory of recent `webhook-id`s, to drop repeats: a
//! bounded set that forgets the oldest id first. tminus repeats a delivery
//! only while retrying it (within hours), so the last [`CAPACITY`] ids cover
//! any fan-out a single receiver takes. Each id is kept twice (the set and
//! the order), about 175 bytes in all, so the memory stays under 20 MB.

use std::collections::{HashSet, VecDeque};

/// How many ids are remembered.
pub const CAPACITY: usize = 100_000;

/// Recent ids, oldest first.
pub struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Seen {
    pub fn new(capacity: usize) -> Self {
        Self {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Remembers `id`, forgetting the oldest one when full.
    pub fn insert(&mut self, id: String) {
        if !self.ids.insert(id.clone()) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_ids_and_forgets_the_oldest() {
        let mut seen = Seen::new(2);
        seen.insert("a".into());
        seen.insert("b".into());
        seen.insert("a".into());
        assert!(seen.contains("a") && seen.contains("b"));
        seen.insert("c".into());
        assert!(!seen.contains("a"), "the oldest is forgotten first");
        assert!(seen.contains("b") && seen.contains("c"));
    }

    #[test]
    fn the_receiver_s_memory_holds_the_last_hundred_thousand() {
        let mut seen = Seen::new(CAPACITY);
        let id = |i: usize| format!("msg_{i:032x}");
        for i in 0..CAPACITY {
            seen.insert(id(i));
        }
        assert!(seen.contains(&id(0)) && seen.contains(&id(CAPACITY - 1)));
        seen.insert(id(CAPACITY));
        assert!(!seen.contains(&id(0)), "the 100 001st forgets the first");
        assert!((1..=CAPACITY).all(|i| seen.contains(&id(i))));
    }
}
