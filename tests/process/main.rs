//! `tminus serve` as a real process, for what only a process shows: every
//! line it logs at the most verbose level and in the default text format,
//! and what it leaves on disk.

#[path = "../cluster/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../common/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../cluster/receiver.rs"]
#[allow(dead_code)]
mod receiver;

mod backlog;
mod config;
mod secrets;
mod text_log;
