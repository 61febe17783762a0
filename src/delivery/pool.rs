//! A lane's senders: long-lived worker tasks, started as the concurrency
//! cap calls for them, each making one attempt at a time on a keep-alive
//! connection of its own. Handing a unit to an idle worker costs a channel
//! send; spawning a task per attempt cost an allocation and a copy of the
//! whole request future every time. A lane warmed for a fan-out has its
//! first workers connect before the due instant.

use super::unit::{attempt, Target, Unit};
use super::Dispatcher;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// What a worker reports when its task is done: who it is, and the slices
/// of the deliveries it carried (`None` after opening a connection).
type Done = (usize, Option<Vec<i64>>);

/// What a worker is asked to do. `Send` is every attempt and `Connect`
/// happens a few times per fan-out: boxing the unit to make them the same
/// size would cost an allocation per attempt.
#[allow(clippy::large_enum_variant)]
enum Task {
    /// Make this attempt.
    Send(Unit, Arc<Target>),
    /// Open a connection to the target, ahead of the first attempt.
    Connect(Arc<Target>),
}

/// The workers of one lane.
pub struct Pool {
    d: Dispatcher,
    workers: Vec<mpsc::Sender<Task>>,
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

    /// Hands a unit to an idle worker, starting one if none is idle.
    pub fn spawn(&mut self, unit: Unit, target: Arc<Target>) {
        self.give(Task::Send(unit, target));
    }

    /// Starts `n` workers, each opening its connection to `target` now.
    pub fn warm(&mut self, target: &Arc<Target>, n: usize) {
        for _ in 0..n {
            self.give(Task::Connect(target.clone()));
        }
    }

    fn give(&mut self, task: Task) {
        let idx = match self.idle.pop() {
            Some(i) => i,
            None => {
                let (tx, rx) = mpsc::channel(1);
                let idx = self.workers.len();
                self.workers.push(tx);
                self.tasks
                    .spawn(worker(self.d.clone(), idx, rx, self.done_tx.clone()));
                idx
            }
        };
        let attempt = matches!(task, Task::Send(..));
        // An idle worker's one-slot queue is empty, so this cannot fail.
        if self.workers[idx].try_send(task).is_ok() {
            if attempt {
                self.busy += 1;
            } else {
                self.connecting += 1;
            }
        }
    }

    /// A finished attempt, if one is ready.
    pub fn try_join_next(&mut self) -> Option<Vec<i64>> {
        loop {
            let (idx, slices) = self.done_rx.try_recv().ok()?;
            if let Some(s) = self.back(idx, slices) {
                return Some(s);
            }
        }
    }

    /// Waits for an attempt to finish; `None` when none is in flight.
    pub async fn join_next(&mut self) -> Option<Vec<i64>> {
        loop {
            if self.busy == 0 {
                return None;
            }
            let (idx, slices) = self.done_rx.recv().await?;
            if let Some(s) = self.back(idx, slices) {
                return Some(s);
            }
        }
    }

    fn back(&mut self, idx: usize, slices: Option<Vec<i64>>) -> Option<Vec<i64>> {
        match slices {
            Some(_) => self.busy -= 1,
            None => self.connecting -= 1,
        }
        self.idle.push(idx);
        slices
    }

    /// Drops every attempt in flight (the shutdown deadline passed): their
    /// results are never recorded.
    pub fn abort(&mut self) {
        self.tasks.abort_all();
        self.busy = 0;
        self.connecting = 0;
    }

    /// Stops the workers once they are idle.
    pub async fn close(mut self) {
        self.workers.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn worker(
    d: Dispatcher,
    idx: usize,
    mut tasks: mpsc::Receiver<Task>,
    done: mpsc::UnboundedSender<Done>,
) {
    // The worker's own keep-alive connection, kept between attempts.
    let mut conn = None;
    while let Some(task) = tasks.recv().await {
        let slices = match task {
            Task::Send(unit, target) => Some(attempt(&d, unit, &target, &mut conn).await),
            Task::Connect(target) => {
                d.inner.sender.warm(&target.url, &mut conn).await;
                None
            }
        };
        if done.send((idx, slices)).is_err() {
            break;
        }
    }
}
