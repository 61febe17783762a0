//! Where the log goes (stderr), in which format (text or JSON, one object a
//! line) and what it may say. The level comes from `tminus serve`'s `log`
//! setting (`TMINUS_LOG`), and for the other commands from `TMINUS_LOG`. Whatever it says, no dependency's debug or trace
//! output is written: some carry what tminus must never log (tokio_postgres
//! writes every query's parameters at debug: signing secrets, API key
//! hashes, participants' data), and a dependency added later would not be
//! vetted. Below INFO, only tminus's own events pass, and those never hold a
//! secret at any level.

use crate::config::LogFormat;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// An error and every cause under it on one line (`db error: ERROR:
/// deadlock detected …`), for logs: a database error's own message is its
/// cause, and `Debug` or plain `Display` would log only `db error`. Works
/// for `anyhow::Error` and for `StoreError`, which hands the alternate
/// flag to the `anyhow::Error` it carries.
pub fn causes(e: &impl std::fmt::Display) -> String {
    format!("{e:#}")
}

/// The crates whose events may be written below INFO: tminus's own, the
/// service and the command line's tools.
const OURS: [&str; 2] = ["tminus", "tminus_cli"];

/// Whether an event or span may be written at all: anything at INFO and
/// above, and below that only tminus's own.
pub fn allowed(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    *meta.level() <= Level::INFO
        || OURS.iter().any(|ours| {
            target == *ours
                || target
                    .strip_prefix(ours)
                    .is_some_and(|t| t.starts_with("::"))
        })
}

/// Installs the process's subscriber: `filter` (directives as `TMINUS_LOG`
/// takes them; `warn` when they do not parse), written in `format`.
pub fn init(filter: &str, format: LogFormat) {
    let env = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn"));
    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = match format {
        LogFormat::Text => fmt
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(env)
            .with_filter(filter_fn(allowed))
            .boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(env)
            .with_filter(filter_fn(allowed))
            .boxed(),
    };
    tracing_subscriber::registry().with(layer).init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::callsite::Identifier;
    use tracing::metadata::Kind;

    struct Site;
    impl tracing::Callsite for Site {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            unreachable!()
        }
    }
    static SITE: Site = Site;

    fn meta(target: &'static str, level: Level) -> Metadata<'static> {
        let fields = tracing::field::FieldSet::new(&[], Identifier(&SITE));
        Metadata::new("e", target, level, None, None, None, fields, Kind::EVENT)
    }

    #[test]
    fn below_info_only_tminus_s_own_events_pass() {
        for level in [Level::DEBUG, Level::TRACE] {
            for t in ["tminus", "tminus::api::trace", "tminus::delivery::lane"] {
                assert!(allowed(&meta(t, level)), "{t} at {level}");
            }
            for t in [
                "tokio_postgres::query",
                "postgres_protocol",
                "deadpool_postgres",
                "rusqlite",
                "hyper",
                "hyper_util::client::legacy::pool",
                "reqwest::connect",
                "rustls::client::hs",
                "tminusx",
                "h2",
            ] {
                assert!(!allowed(&meta(t, level)), "{t} at {level}");
            }
        }
        for level in [Level::INFO, Level::WARN, Level::ERROR] {
            assert!(allowed(&meta("tokio_postgres::connection", level)));
        }
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
