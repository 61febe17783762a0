//! The one integration-test binary: every test starts the real service on
//! 127.0.0.1:0 and, where deliveries matter, a real receiver on loopback.

mod admin;
mod admin_import;
mod auth_limits;
mod batching;
mod browser;
mod bulk;
mod characters;
mod child;
mod connections;
mod dashboard;
mod dashboard_replay;
mod delivery;
mod fairness;
mod fault_matrix;
mod faults;
mod field_errors;
mod helpers;
mod https;
mod idempotency;
mod isolation;
mod metrics;
mod metrics_docs;
mod midflight;
mod offsets_change;
mod openapi;
mod operator_replay;
mod overview;
mod paging;
mod payload;
#[path = "../common/pg.rs"]
#[allow(dead_code)]
mod pg;
mod platform;
mod policies;
mod postgres_tls;
mod proxy;
mod queries;
mod receive;
mod receiver;
mod refusals;
mod replay;
mod retention;
mod scheduling;
mod secrets;
mod seed_copies;
mod shaping;
mod shutdown;
mod slow_clients;
mod ssrf;
mod staging;
mod store;
mod store_errors;
mod story;
mod times;
mod timing;
