//! Several instances on one PostgreSQL database, as separate `tminus serve`
//! processes: one is killed with SIGKILL mid-fan-out, or the database
//! restarts mid-fan-out, and every reminder still arrives; they race for
//! the migrations, wake each other's timers, survive a deadlock and an
//! unreachable server. These tests run
//! one at a time (one restarts the shared server) and in a test binary of
//! their own, which cargo runs after the others.

mod deadlock;
#[allow(dead_code)]
mod harness;
mod migrations;
mod notify;
mod readyz;
#[allow(dead_code)]
mod receiver;
mod restart;
mod sigkill;
mod takeover;
mod terminate;
mod withdraw;

#[path = "../common/pg.rs"]
#[allow(dead_code)]
mod pg;

/// Held by each test: they share the server and the machine's two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
