//! A lane's senders: long-lived worker tasks, started as the concurrency
//! cap calls for them, each making one attempt at a time. Handing a unit to
//! an idle worker costs a channel send; spawning a task per attempt cost an
//! allocation and a copy of the whole request future every time.

use super::unit::{attempt, Target, Unit};
use super::Dispatcher;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// What a worker reports when its attempt is done: who it is, and the
/// slices of the deliveries it carried.
type Done = (usize, Vec<i64>);

/// The workers of one lane.
pub struct Pool {
    d: Dispatcher,
    workers: Vec<mpsc::Sender<(Unit, Arc<Target>)>>,
    idle: Vec<usize>,
    busy: usize,
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
        // An idle worker's one-slot queue is empty, so this cannot fail.
        if self.workers[idx].try_send((unit, target)).is_ok() {
            self.busy += 1;
        }
    }

    /// A finished attempt, if one is ready.
    pub fn try_join_next(&mut self) -> Option<Vec<i64>> {
        let (idx, slices) = self.done_rx.try_recv().ok()?;
        Some(self.back(idx, slices))
    }

    /// Waits for an attempt to finish; `None` when none is in flight.
    pub async fn join_next(&mut self) -> Option<Vec<i64>> {
        if self.busy == 0 {
            return None;
        }
        let (idx, slices) = self.done_rx.recv().await?;
        Some(self.back(idx, slices))
    }

    fn back(&mut self, idx: usize, slices: Vec<i64>) -> Vec<i64> {
        self.busy -= 1;
        self.idle.push(idx);
        slices
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
    mut units: mpsc::Receiver<(Unit, Arc<Target>)>,
    done: mpsc::UnboundedSender<Done>,
) {
    while let Some((unit, target)) = units.recv().await {
        let slices = attempt(&d, unit, &target).await;
        if done.send((idx, slices)).is_err() {
            break;
        }
    }
}
