//! The `tminus` command line's tools, beside the service (the `tminus`
//! library, in `service/`) that `tminus serve` runs:
//!
//! - `admin`: the platform API from the command line (`tminus admin`),
//!   with the CSV import of participants;
//! - `receive`: a reference receiver (`tminus receive`): verify, drop
//!   repeats, acknowledge, hand on;
//! - `bench`: the benchmark (`tminus bench`), its receiver and its fleet
//!   shapes, and `soak`, the long run (`tminus soak`);
//! - `demo`: one webinar from creation to verified reminders, in a minute.
//!
//! `main.rs` parses the command line and dispatches to these and to the
//! service. Each tool talks to the service through its HTTP API (or starts
//! one with `tminus::run`), never through its store.

#![forbid(unsafe_code)]

pub mod admin;
pub mod bench;
pub mod demo;
pub mod receive;
pub mod soak;
