//! Acting on what other instances change, when the store is shared: new
//! work for a subscription wakes its lane here too (so every instance helps
//! send a large fan-out), a changed subscription makes its lane read it
//! again (a rotated secret signs everywhere at once), a changed schedule wakes the timer loop (so a
//! reminder armed elsewhere fires on time here as well), and after missed
//! changes every subscription with work is looked at again.

use crate::delivery::Dispatcher;
use crate::store::Change;
use crate::AppContext;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Runs until `shutdown`; returns at once for a store that reports nothing.
pub async fn run(
    ctx: Arc<AppContext>,
    dispatcher: Dispatcher,
    schedule: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let Some(mut changes) = ctx.engine.changes() else {
        return;
    };
    loop {
        let change = tokio::select! {
            c = changes.recv() => c,
            _ = shutdown.cancelled() => return,
        };
        match change {
            Ok(Change::Work(sub)) => dispatcher.wake(&sub),
            Ok(Change::Subscription(sub)) => dispatcher.changed(&sub),
            Ok(Change::Schedule) => schedule.notify_one(),
            Ok(Change::Resync) | Err(RecvError::Lagged(_)) => {
                schedule.notify_one();
                match ctx.engine.subscriptions_with_work().await {
                    Ok(subs) => subs.iter().for_each(|s| dispatcher.wake(s)),
                    Err(e) => {
                        tracing::warn!(error = %crate::telemetry::causes(&e), "scan for pending deliveries failed")
                    }
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}
