//! `tminus` as a real process, for what only a process shows: every line
//! `serve` logs at the most verbose level and in the default text format,
//! what it leaves on disk, what the command line says and exits with, and
//! the shell blocks of the README and docs/ run as written.

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
mod cli;
mod config;
mod readme;
mod secrets;
mod text_log;
