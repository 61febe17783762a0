//! The one integration-test binary: every test starts the real service on
//! 127.0.0.1:0 and, where deliveries matter, a real receiver on loopback.

mod bulk;
mod characters;
mod connections;
mod delivery;
mod helpers;
mod payload;
#[path = "../common/pg.rs"]
#[allow(dead_code)]
mod pg;
mod postgres_tls;
mod receiver;
mod refusals;
mod scheduling;
mod shaping;
mod staging;
mod store;
mod store_errors;
mod story;
mod times;
