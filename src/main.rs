//! The `tminus` command: parses the command line and dispatches to the
//! library. Nothing else lives here.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// mimalloc: a fan-out allocates many small, short-lived buffers per
/// request, freed on other threads; `tminus bench` (100 000 deliveries) ran
/// at ~29 000/s with it against ~21 500/s with the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tminus::config::layers::{self, ServeArgs};
use tminus::config::LogFormat;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "tminus",
    version,
    about = "Webinar-reminder webhooks, on time and exactly once as far as receivers can tell"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: HTTP API, scheduler and delivery workers.
    Serve(Box<ServeArgs>),
    /// The settings: print the commented default file, or check one.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show the whole thing working in under a minute, on a temporary database.
    Demo,
    /// Measure fan-out against the HTTP ceiling (needs wrk).
    Bench(tminus_cli::bench::BenchArgs),
    /// The long run: a fan-out every few seconds for an hour, to good and
    /// failing endpoints, sampling memory, open files and the store's size.
    Soak(tminus_cli::soak::SoakArgs),
    /// Measure the peak memory of one bulk registration.
    BenchBulk(tminus_cli::bench::bulk::BulkArgs),
    /// Print the OpenAPI 3.1 document of both APIs and the webhook
    /// (`docs/openapi.json` is its committed copy).
    Openapi,
    /// Talk to a running tminus: creators, keys, webinars, a CSV of
    /// participants, subscriptions (failing first), deliveries and replays.
    Admin(tminus_cli::admin::AdminArgs),
    /// A reference webhook receiver: verifies, drops repeats, acknowledges
    /// at once, and appends each reminder to a file, a command or a URL.
    Receive(tminus_cli::receive::ReceiveArgs),
    /// The benchmark's receiver (started by `bench`).
    #[command(hide = true)]
    BenchReceiver(tminus_cli::bench::receiver::ReceiverArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the commented default settings file: every setting, what it
    /// means and its default.
    Default,
    /// Check a configuration (the file, the TMINUS_* variables and the
    /// flags) and print the effective one, secrets redacted; exits non-zero
    /// when it is invalid.
    Check(Box<ServeArgs>),
}

/// Runs the command. An error is the command's answer, not a crash: it is
/// printed as one line (its causes after colons) and the exit status is 1.
/// Returning it from `main` would print it with `Debug`, which is where
/// anyhow puts the backtrace it captures when `RUST_BACKTRACE` is set; a
/// backtrace is for a panic, which still prints one.
#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let loaded = layers::load(Cli::command(), std::env::args_os().collect())?;
    let cli = Cli::from_arg_matches(&loaded.matches).unwrap_or_else(|e| e.exit());
    // The demo prints its own story; the service logs at its `log` setting.
    let quiet = || std::env::var("TMINUS_LOG").unwrap_or_else(|_| "warn".into());
    let (filter, format) = match &cli.command {
        Command::Demo
        | Command::Bench(_)
        | Command::BenchBulk(_)
        | Command::Soak(_)
        | Command::Openapi
        | Command::BenchReceiver(_)
        | Command::Admin(_)
        | Command::Config(_) => (quiet(), LogFormat::Text),
        Command::Serve(args) => (args.settings.log.clone(), args.settings.log_format),
        Command::Receive(_) => (
            std::env::var("TMINUS_LOG").unwrap_or_else(|_| "info,hyper=warn,reqwest=warn".into()),
            LogFormat::Text,
        ),
    };
    tminus::telemetry::init(&filter, format);
    match cli.command {
        Command::Serve(args) => {
            let config = args.settings;
            let listener = tminus::server::listen(&config.listen, tminus::server::BACKLOG).await?;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            tminus::run(config, listener, tminus::clock::Clock::system(), shutdown).await
        }
        Command::Config(ConfigCommand::Default) => {
            print!("{}", tminus::config::show::default_file());
            Ok(())
        }
        Command::Config(ConfigCommand::Check(args)) => {
            print!("{}", tminus::config::show::effective(&loaded));
            let (errors, warnings) = tminus::startup::check(&args.settings);
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            anyhow::ensure!(
                errors.is_empty(),
                "invalid configuration: {}",
                errors.join("; ")
            );
            Ok(())
        }
        Command::Demo => tminus_cli::demo::run().await,
        Command::Bench(args) => tminus_cli::bench::run(args).await,
        Command::Soak(args) => tminus_cli::soak::run(args).await,
        Command::BenchBulk(args) => tminus_cli::bench::bulk::run(args).await,
        Command::BenchReceiver(args) => tminus_cli::bench::receiver::run(args).await,
        Command::Admin(args) => tminus_cli::admin::run(args).await,
        Command::Receive(args) => {
            let listener = tminus::server::listen(&args.listen, tminus::server::BACKLOG).await?;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            tminus_cli::receive::run(args, listener, tminus::clock::Clock::system(), shutdown).await
        }
        Command::Openapi => {
            print!("{}", tminus::api::openapi::document_json());
            Ok(())
        }
    }
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        _ = term => tracing::info!("SIGTERM: shutting down"),
    }
    shutdown.cancel();
}
