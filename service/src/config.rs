//! Settings of one tminus process: command-line flags, each with a `TMINUS_*`
//! environment twin and a key in the settings file ([`layers`]), validated
//! into a [`Config`] before anything starts. Secrets never appear in `Debug`
//! output, logs or `tminus config check` ([`show`]).

mod database;
pub mod layers;
mod log_format;
mod policies;
pub mod show;

pub use database::redact_url;
pub use log_format::LogFormat;
pub use policies::{AfterStart, LatePolicy};

use crate::domain::offset::{parse_list, BadOffset};
use crate::domain::ReminderOffset;
use std::time::Duration;

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))
}

/// A range of addresses (`10.0.0.0/8`), or one address (`10.1.2.3`).
fn cidr(s: &str) -> Result<ipnet::IpNet, String> {
    s.trim()
        .parse::<ipnet::IpNet>()
        .or_else(|_| s.trim().parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?}: expected an address or a CIDR range such as 10.0.0.0/8"))
}

/// A list of offsets. An alias, so clap parses it as one value, not many.
pub type OffsetList = Vec<ReminderOffset>;

fn offsets(s: &str) -> Result<OffsetList, BadOffset> {
    parse_list(s)
}

/// Everything `tminus serve` can be told.
#[derive(Clone, clap::Args)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(long, env = "TMINUS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// SQLite file path (or sqlite: URL), or a postgres:// URL that several
    /// instances may share; created and migrated on start.
    #[arg(long, env = "TMINUS_DATABASE", default_value = "tminus.db")]
    pub database: String,
    /// PEM file of the certificates that may sign the PostgreSQL server's
    /// (with `sslmode=require`); without it, the public web roots.
    #[arg(long, env = "TMINUS_DATABASE_CA")]
    pub database_ca: Option<std::path::PathBuf>,
    /// Bearer token of the platform API. When absent, one is generated on
    /// the first start and kept in the file `tminus-admin-token` (readable
    /// by its owner only) beside the SQLite file, or in the working
    /// directory for PostgreSQL; later starts use it. The log says where,
    /// never what.
    #[arg(long, env = "TMINUS_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Key (32 bytes, base64) that seals the subscriptions' signing secrets
    /// in the database. Without it they are stored in plain text.
    #[arg(long, env = "TMINUS_SECRET_KEY")]
    pub secret_key: Option<String>,
    /// Earlier keys (comma-separated) that may still have to open secrets
    /// they sealed; a start re-seals those under `--secret-key`.
    #[arg(long, env = "TMINUS_SECRET_KEY_PREVIOUS", value_delimiter = ',')]
    pub secret_key_previous: Vec<String>,
    /// Reminder offsets before each webinar's start, comma-separated. A
    /// webinar keeps the ones it was armed with: a change applies to
    /// webinars created or rescheduled after it.
    #[arg(long, env = "TMINUS_REMINDER_OFFSETS", default_value = "1day,30min,15min", value_parser = offsets)]
    pub reminder_offsets: OffsetList,
    /// Deliver to private, loopback and link-local addresses (tests, demos).
    #[arg(long, env = "TMINUS_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: bool,
    /// Ranges (CIDR, comma-separated) that may be delivered to despite the
    /// target guard, e.g. `10.20.0.0/16,fd12:3456::/48`: narrower than
    /// `--allow-private-targets`. Cloud metadata addresses stay refused.
    #[arg(long, env = "TMINUS_ALLOW_TARGETS", value_delimiter = ',')]
    pub allow_targets: Vec<String>,
    /// PEM file of certificates that may sign receivers' certificates, in
    /// addition to the public web roots (a private CA of your own).
    #[arg(long, env = "TMINUS_TARGET_CA")]
    pub target_ca: Option<std::path::PathBuf>,
    /// Accept `http://` hook URLs (tests, demos).
    #[arg(long, env = "TMINUS_ALLOW_HTTP")]
    pub allow_http: bool,
    /// How long a receiver has to answer an attempt.
    #[arg(long, env = "TMINUS_HTTP_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub http_timeout: Duration,
    /// How long a claimed reminder or delivery stays this instance's. Must
    /// exceed the HTTP timeout, or slow deliveries are sent twice.
    #[arg(long, env = "TMINUS_LEASE", default_value = "90s", value_parser = duration)]
    pub lease: Duration,
    /// Late reminders: until-start, never, or a duration.
    #[arg(long, env = "TMINUS_LATE_POLICY", default_value = "until-start")]
    pub late_policy: LatePolicy,
    /// How long after its due instant a reminder still counts as on time.
    #[arg(long, env = "TMINUS_ON_TIME_GRACE", default_value = "1m", value_parser = duration)]
    pub on_time_grace: Duration,
    /// First retry delay; doubles each attempt, with jitter.
    #[arg(long, env = "TMINUS_RETRY_BASE", default_value = "5s", value_parser = duration)]
    pub retry_base: Duration,
    /// Longest delay between two attempts.
    #[arg(long, env = "TMINUS_RETRY_MAX", default_value = "1h", value_parser = duration)]
    pub retry_max: Duration,
    /// How long after the webinar's start a reminder is still worth retrying.
    #[arg(long, env = "TMINUS_EXPIRE_AFTER_START", default_value = "0s", value_parser = duration)]
    pub expire_after_start: Duration,
    /// A fan-out's deliveries that would first leave after the webinar has
    /// started: `expire` (recorded as expired, not sent) or `send-late`
    /// (sent with `x-tminus-late: true`, recorded as late).
    #[arg(long, env = "TMINUS_AFTER_START", default_value = "expire")]
    pub after_start: AfterStart,
    /// Concurrent requests per subscription unless it sets its own.
    #[arg(long, env = "TMINUS_DEFAULT_MAX_CONCURRENCY", default_value_t = 16)]
    pub default_max_concurrency: u32,
    /// Connections to receivers open at once, over every subscription,
    /// beyond the one each subscription with work always has. Each costs
    /// its buffers (tens of KB) and a socket; a burst to many endpoints
    /// shares them, and idle ones close after 5 s.
    #[arg(long, env = "TMINUS_DELIVERY_CONNECTIONS", default_value_t = 512)]
    pub delivery_connections: u32,
    /// Requests per second per subscription unless it sets its own (0: none).
    #[arg(long, env = "TMINUS_DEFAULT_RATE", default_value_t = 0)]
    pub default_rate: u32,
    /// Disable a subscription that has failed without a success this long.
    #[arg(long, env = "TMINUS_DISABLE_AFTER", default_value = "3days", value_parser = duration)]
    pub disable_after: Duration,
    /// Integration API requests per second per API key (burst: twice that).
    #[arg(long, env = "TMINUS_API_RATE", default_value_t = 20)]
    pub api_rate: u32,
    /// How long the old secret keeps signing after a rotation (at least 1s:
    /// a lane re-reads its subscription at least once a grace while it
    /// sends).
    #[arg(long, env = "TMINUS_SECRET_GRACE", default_value = "24h", value_parser = duration)]
    pub secret_grace: Duration,
    /// Participants per fan-out slice (one transaction each).
    #[arg(long, env = "TMINUS_FANOUT_BATCH", default_value_t = 1000)]
    pub fanout_batch: u32,
    /// How long before its due instant a reminder's first participants are
    /// staged: claimed, written as a slice and leased by their lanes, which
    /// hold them until the instant. The first requests then leave on time
    /// whatever the store is doing. 0 turns staging off.
    #[arg(long, env = "TMINUS_STAGE_AHEAD", default_value = "100ms", value_parser = duration)]
    pub stage_ahead: Duration,
    /// The answer time assumed for an endpoint not yet heard from, when
    /// predicting how long a fan-out to it will take (an endpoint's own
    /// moving average replaces it once it has acknowledged an attempt).
    #[arg(long, env = "TMINUS_ASSUMED_LATENCY", default_value = "200ms", value_parser = duration)]
    pub assumed_latency: Duration,
    /// Longest sleep between two looks at the store for work; precise timers
    /// wake earlier.
    #[arg(long, env = "TMINUS_TICK", default_value = "1s", value_parser = duration)]
    pub tick: Duration,
    /// How long a client has to send a request's headers, and how long an
    /// idle keep-alive connection stays open.
    #[arg(long, env = "TMINUS_HEADER_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub header_timeout: Duration,
    /// How long a client has to send a request's body, counted from its
    /// headers' arrival (a bulk registration also gets time at a minimum
    /// rate for what it has sent).
    #[arg(long, env = "TMINUS_BODY_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub body_timeout: Duration,
    /// Most client connections open at once. By default, three quarters of
    /// the open-file limit (the rest is kept for the database, deliveries
    /// and files), at most 65 536.
    #[arg(long, env = "TMINUS_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// How long a stop (SIGTERM, Ctrl-C) waits for in-flight requests and
    /// deliveries before dropping them and handing their work back.
    #[arg(long, env = "TMINUS_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub shutdown_timeout: Duration,
    /// Failed authentications (missing or invalid key or token) a client
    /// address may make per minute, and at once, before it is answered 429
    /// without a look at its credentials. 0 turns the limit off.
    #[arg(long, env = "TMINUS_AUTH_FAILURES", default_value_t = 10)]
    pub auth_failures: u32,
    /// How long delivery history (deliveries, attempts, receipts) is kept;
    /// older history, and finished reminders whose announced start is
    /// older, is pruned in the background. 0 keeps everything.
    #[arg(long, env = "TMINUS_RETAIN_DELIVERIES", default_value = "30days", value_parser = duration)]
    pub retain_deliveries: Duration,
    /// Rows per retention step (one short transaction each): what a
    /// fan-out may wait for while history is pruned.
    #[arg(long, env = "TMINUS_PRUNE_BATCH", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub prune_batch: u32,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose
    /// X-Forwarded-For is believed: the client is then the right-most
    /// address in it that is not one of them.
    #[arg(long, env = "TMINUS_TRUSTED_PROXIES", value_delimiter = ',', value_parser = cidr)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How log lines are written: text, or json (one object a line).
    #[arg(long, env = "TMINUS_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// What is logged: a level (`info`, `debug`) or per-target directives
    /// (`info,tminus::delivery=debug`). Dependencies stay at INFO and above.
    #[arg(long, env = "TMINUS_LOG", default_value = "info")]
    pub log: String,
    /// How long a creator portal link (`POST …/portal-link`) stays valid.
    #[arg(long, env = "TMINUS_PORTAL_LINK_TTL", default_value = "15m", value_parser = duration)]
    pub portal_link_ttl: Duration,
    /// The platform's URL for operational webhooks (a subscription
    /// disabled, failing or recovered; a fan-out finished or predicted
    /// late), sent signed like the reminders, through the same retries and
    /// target guard. Unset: none are sent.
    #[arg(long, env = "TMINUS_OPERATIONAL_WEBHOOK_URL")]
    pub operational_webhook_url: Option<String>,
    /// The `whsec_` secret that signs the operational webhooks. When absent,
    /// one is generated once, kept (sealed) in the database, and written to
    /// the file `tminus-operational-webhook-secret` (readable by its owner
    /// only) beside the SQLite file, or in the working directory for
    /// PostgreSQL; the log says where, never what. Giving another one
    /// later rotates it (the old one keeps signing for --secret-grace).
    #[arg(long, env = "TMINUS_OPERATIONAL_WEBHOOK_SECRET")]
    pub operational_webhook_secret: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database", &redact_url(&self.database))
            .field("database_ca", &self.database_ca)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "secret_key_previous",
                &format!("<{} redacted>", self.secret_key_previous.len()),
            )
            .field(
                "reminder_offsets",
                &self
                    .reminder_offsets
                    .iter()
                    .map(|o| o.label())
                    .collect::<Vec<_>>(),
            )
            .field("allow_private_targets", &self.allow_private_targets)
            .field("allow_targets", &self.allow_targets)
            .field("allow_http", &self.allow_http)
            .field("target_ca", &self.target_ca)
            .field("http_timeout", &self.http_timeout)
            .field("lease", &self.lease)
            .field("late_policy", &self.late_policy)
            .field("after_start", &self.after_start)
            .field("retry_base", &self.retry_base)
            .field("stage_ahead", &self.stage_ahead)
            .field("assumed_latency", &self.assumed_latency)
            .field("default_max_concurrency", &self.default_max_concurrency)
            .field("delivery_connections", &self.delivery_connections)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_connections", &self.max_connections)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("auth_failures", &self.auth_failures)
            .field("retain_deliveries", &self.retain_deliveries)
            .field("prune_batch", &self.prune_batch)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("log_format", &self.log_format)
            .field("log", &self.log)
            .field("portal_link_ttl", &self.portal_link_ttl)
            .field("operational_webhook_url", &self.operational_webhook_url)
            .field(
                "operational_webhook_secret",
                &self
                    .operational_webhook_secret
                    .as_ref()
                    .map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The defaults, as `tminus serve` with no flags would have them.
    pub fn defaults() -> Self {
        use clap::{Args, FromArgMatches};
        let cmd = Config::augment_args(clap::Command::new("tminus"));
        let m = cmd
            .no_binary_name(true)
            .get_matches_from(Vec::<String>::new());
        Config::from_arg_matches(&m).expect("defaults are valid")
    }

    /// Problems with the settings on their own worth refusing to start for,
    /// and ones worth a warning. `startup::check` adds what the components
    /// make of them (keys, target guard, certificate files, the operational
    /// webhook).
    pub fn check(&self) -> (Vec<String>, Vec<String>) {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        if self.lease <= self.http_timeout {
            warnings.push(format!(
                "lease ({:?}) is not longer than the HTTP timeout ({:?}): a slow delivery may be claimed again and sent twice",
                self.lease, self.http_timeout
            ));
        }
        if self.default_max_concurrency == 0 {
            errors.push("default max concurrency must be at least 1".into());
        }
        if self.fanout_batch == 0 {
            errors.push("fan-out batch must be at least 1".into());
        }
        if self.secret_grace < Duration::from_secs(1) {
            // A lane signs only with a copy of the subscription the store
            // confirmed within a grace (delivery/view.rs): a shorter one
            // would hold every delivery.
            errors.push(format!(
                "secret grace ({:?}) must be at least 1s: lanes re-read a subscription at least once a grace while they send",
                self.secret_grace
            ));
        }
        if self.stage_ahead >= self.lease {
            errors.push(format!(
                "stage-ahead ({:?}) must be shorter than the lease ({:?}): a staged reminder would be taken over before it is due",
                self.stage_ahead, self.lease
            ));
        }
        if self.secret_key.is_none() {
            warnings.push(
                "no --secret-key: webhook signing secrets are stored in plain text in the database"
                    .into(),
            );
        }
        if self.tick.is_zero() {
            errors.push("tick must be positive".into());
        }
        if self.header_timeout.is_zero() {
            errors.push("header timeout must be positive".into());
        }
        if self.body_timeout.is_zero() {
            errors.push("body timeout must be positive".into());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            errors.push(format!("log {:?}: {e}", self.log));
        }
        if self.max_connections == Some(0) {
            errors.push("max connections must be at least 1".into());
        }
        (errors, warnings)
    }
}

#[cfg(test)]
mod tests;
