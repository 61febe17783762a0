//! Where the log goes (stderr) and what it may say. The level comes from `TMINUS_LOG`
//! (default: the command's own); whatever it says, the debug and trace
//! output of the database drivers is never let through, because it carries
//! query parameters: signing secrets, API key hashes and participants' data.
//! tminus's own events never hold a secret at any level.

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Dependencies whose output below INFO may carry secrets.
const CHATTY: &[&str] = &["tokio_postgres", "postgres_protocol", "deadpool_postgres"];

/// Whether an event may be written at all.
pub fn allowed(meta: &Metadata<'_>) -> bool {
    *meta.level() <= Level::INFO
        || !CHATTY
            .iter()
            .any(|t| meta.target() == *t || meta.target().starts_with(&format!("{t}::")))
}

/// Installs the process's subscriber: `TMINUS_LOG`, or `default_filter`.
pub fn init(default_filter: &str) {
    let env = EnvFilter::try_from_env("TMINUS_LOG").unwrap_or_else(|_| default_filter.into());
    use std::io::IsTerminal;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(env)
        .with_filter(filter_fn(allowed));
    tracing_subscriber::registry().with(layer).init();
}
