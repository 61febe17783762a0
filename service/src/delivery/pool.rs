//! A lane's senders: long-lived worker tasks, started as the concurrency
//! cap calls for them, each making one attempt at a time on a keep-alive
//! connection of its own. Handing a unit to an idle worker costs a lock and
//! a wake-up on the worker's one-task slot; spawning a task per attempt cost
//! an allocation and a copy of the whole request future every time. A lane
//! warmed for a fan-out has its first workers connect before the due
//! instant.
//!
//! Connections are a service-wide budget (`--delivery-connections`): a
//! lane's first worker is always its own, so every subscription with work
//! sends at once, and each further worker holds a permit of the budget for
//! as long as it lives. A worker left idle for [`IDLE_CLOSE`] is closed
//! with its connection, so what a lane holds follows the work in flight,
//! not its cap.

use super::limit::Signal;
use super::unit::{attempt, Target, Unit};
use super::Dispatcher;
use crate::store::SliceId;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit};
use tokio::task::JoinSet;

/// How long a worker may stay idle before it is closed, its connection
/// with it.
pub const IDLE_CLOSE: Duration = Duration::from_secs(5);

/// What a worker reports when its task is done: who it is, the slices of
/// the deliveries it carried and what the answer says of the endpoint
/// (`None` after opening a connection), and when it became idle.
type Done = (usize, Option<Finished>, Instant);

/// A finished attempt: the slices of the deliveries it carried, and what
/// its result says of the endpoint's load.
pub type Finished = (Vec<SliceId>, Signal);

/// What a worker is asked to do. `Send` is every attempt and `Connect`
/// happens a few times per fan-out: boxing the unit to make them the same
/// size would cost an allocation per attempt.
#[allow(clippy::large_enum_variant)]
enum Task {
    /// Make this attempt.
    Send(Unit, Arc<Target>),
    /// Open a connection to the target, ahead of the first attempt.
    Connect(Arc<Target>),
    /// Close the connection and end.
    Close,
}

/// A worker's one-task inbox. A channel would allocate a block of 32
/// tasks per worker; a worker only ever holds one.
#[derive(Default)]
struct Slot {
    task: Mutex<Option<Task>>,
    bell: Notify,
}

impl Slot {
    fn put(&self, task: Task) {
        *self.task.lock().expect("slot lock") = Some(task);
        self.bell.notify_one();
    }
}

/// A connection of the budget, counted in the metrics while taken.
struct Borrowed {
    _permit: OwnedSemaphorePermit,
    d: Dispatcher,
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        self.d.inner.ctx.metrics.borrowed(false);
    }
}

/// A live worker, as the pool sees it.
struct Worker {
    slot: Arc<Slot>,
    /// Its part of the connection budget (none for the lane's first).
    _permit: Option<Borrowed>,
    idle_since: Instant,
}

/// The workers of one lane.
pub struct Pool {
    d: Dispatcher,
    /// By index; `None` where a worker was closed (the index is reused).
    workers: Vec<Option<Worker>>,
    /// Idle workers, the most recently used last.
    idle: Vec<usize>,
    /// Workers making an attempt.
    busy: usize,
    /// Workers opening a connection ahead of a burst: neither idle nor in
    /// flight, so an attempt never waits for a slow connect.
    connecting: usize,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    tasks: JoinSet<()>,
}

impl Pool {
    pub fn new(d: Dispatcher) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Pool {
            d,
            workers: Vec::new(),
            idle: Vec::new(),
            busy: 0,
            connecting: 0,
            done_tx,
            done_rx,
            tasks: JoinSet::new(),
        }
    }

    /// Attempts in flight.
    pub fn len(&self) -> usize {
        self.busy
    }

    pub fn is_empty(&self) -> bool {
        self.busy == 0
    }

    /// Workers alive (each holds at most one connection).
    #[cfg(test)]
    pub fn workers(&self) -> usize {
        self.workers.iter().flatten().count()
    }

    /// Whether a worker is idle, or can be started within the connection
    /// budget: then [`Pool::spawn`] hands it a unit at once.
    pub fn reserve(&mut self) -> bool {
        if !self.idle.is_empty() {
            return true;
        }
        let permit = if self.workers.iter().all(Option::is_none) {
            None
        } else {
            match self.d.inner.connections.clone().try_acquire_owned() {
                Ok(p) => {
                    self.d.inner.ctx.metrics.borrowed(true);
                    Some(Borrowed {
                        _permit: p,
                        d: self.d.clone(),
                    })
                }
                Err(_) => return false,
            }
        };
        self.start(permit);
        true
    }

    /// Hands a unit to the worker [`Pool::reserve`] made ready.
    pub fn spawn(&mut self, unit: Unit, target: Arc<Target>) {
        self.give(Task::Send(unit, target));
    }

    /// Has up to `n` workers open their connection to `target` now, within
    /// the connection budget.
    pub fn warm(&mut self, target: &Arc<Target>, n: usize) {
        for _ in 0..n {
            if !self.reserve() {
                break;
            }
            self.give(Task::Connect(target.clone()));
        }
    }

    /// Closes the workers idle for [`IDLE_CLOSE`], oldest first.
    pub fn trim(&mut self) {
        while let Some(&i) = self.idle.first() {
            let Some(w) = &self.workers[i] else { break };
            if w.idle_since.elapsed() < IDLE_CLOSE {
                break;
            }
            self.idle.remove(0);
            if let Some(w) = self.workers[i].take() {
                w.slot.put(Task::Close);
            }
        }
    }

    fn start(&mut self, permit: Option<Borrowed>) {
        let slot = Arc::new(Slot::default());
        let worker = Worker {
            slot: slot.clone(),
            _permit: permit,
            idle_since: Instant::now(),
        };
        let idx = match self.workers.iter().position(Option::is_none) {
            Some(i) => {
                self.workers[i] = Some(worker);
                i
            }
            None => {
                self.workers.push(Some(worker));
                self.workers.len() - 1
            }
        };
        self.tasks
            .spawn(run(self.d.clone(), idx, slot, self.done_tx.clone()));
        self.idle.push(idx);
    }

    fn give(&mut self, task: Task) {
        let Some(idx) = self.idle.pop() else {
            debug_assert!(false, "a task given with no worker reserved");
            return;
        };
        if matches!(task, Task::Send(..)) {
            self.busy += 1;
        } else {
            self.connecting += 1;
        }
        if let Some(w) = &self.workers[idx] {
            w.slot.put(task);
        }
    }

    /// A finished attempt, if one is ready.
    pub fn try_join_next(&mut self) -> Option<Finished> {
        loop {
            let (idx, slices, at) = self.done_rx.try_recv().ok()?;
            if let Some(s) = self.back(idx, slices, at) {
                return Some(s);
            }
        }
    }

    /// Waits for an attempt to finish; `None` when none is in flight, or
    /// when a connection opened while none was.
    pub async fn join_next(&mut self) -> Option<Finished> {
        loop {
            if self.busy == 0 && self.connecting == 0 {
                return None;
            }
            let (idx, slices, at) = self.done_rx.recv().await?;
            if let Some(s) = self.back(idx, slices, at) {
                return Some(s);
            }
            if self.busy == 0 {
                return None;
            }
        }
    }

    fn back(&mut self, idx: usize, slices: Option<Finished>, at: Instant) -> Option<Finished> {
        match slices {
            Some(_) => self.busy -= 1,
            None => self.connecting -= 1,
        }
        if let Some(w) = &mut self.workers[idx] {
            w.idle_since = at;
            self.idle.push(idx);
        }
        slices
    }

    /// Drops every attempt in flight (the shutdown deadline passed): their
    /// results are never recorded.
    pub fn abort(&mut self) {
        self.tasks.abort_all();
        self.workers.clear();
        self.idle.clear();
        self.busy = 0;
        self.connecting = 0;
    }

    /// Stops the workers once they are idle.
    pub async fn close(mut self) {
        for w in self.workers.drain(..).flatten() {
            w.slot.put(Task::Close);
        }
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn run(d: Dispatcher, idx: usize, slot: Arc<Slot>, done: mpsc::UnboundedSender<Done>) {
    // The worker's own keep-alive connection, kept between attempts.
    let mut conn = None;
    loop {
        slot.bell.notified().await;
        let Some(task) = slot.task.lock().expect("slot lock").take() else {
            continue;
        };
        let slices = match task {
            Task::Send(unit, target) => Some(attempt(&d, unit, &target, &mut conn).await),
            Task::Connect(target) => {
                d.inner.sender.warm(&target.url, &mut conn).await;
                None
            }
            Task::Close => break,
        };
        if done.send((idx, slices, Instant::now())).is_err() {
            break;
        }
    }
}
