//! `tminus admin`: the platform API from the command line, for a running
//! tminus at `--url` (`TMINUS_URL`) with the admin token (`--token`,
//! `TMINUS_ADMIN_TOKEN`). Creators, API keys and webinars; a CSV of
//! participants imported in chunks through the bulk API (`import`); the
//! subscriptions, failing ones first; a subscription's deliveries, and a
//! replay of one or of a time window's. Every command prints a table (`table`), or with `--json`
//! the API's own JSON (a list as one array). Nothing here decides anything
//! the API does not: it calls it (`client`) and shows the answer (`show`).

mod client;
mod import;
mod show;
mod table;

use clap::{Args, Subcommand};
use client::Client;
use serde_json::{json, Value};
use show::Answer::{List, One};
use std::io::IsTerminal;

/// `tminus admin`'s command line.
#[derive(Args)]
pub struct AdminArgs {
    /// The running tminus; `http://127.0.0.1:8080` when neither this, the
    /// variable nor the settings file's `listen` says.
    #[arg(long, env = "TMINUS_URL", global = true)]
    pub url: Option<String>,
    /// The platform API's admin token; else the settings file's `admin_token`.
    #[arg(
        long,
        env = "TMINUS_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// A settings file of `tminus serve`: its `listen` and `admin_token`,
    /// under the flags and the variables above.
    #[arg(
        long = "config",
        id = "client_config",
        env = "TMINUS_CONFIG",
        value_name = "PATH",
        global = true
    )]
    pub config: Option<std::path::PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Creators.
    #[command(subcommand)]
    Creators(Creators),
    /// A creator's API keys.
    #[command(subcommand)]
    Keys(Keys),
    /// Webinars.
    #[command(subcommand)]
    Webinars(Webinars),
    /// A webinar's participants.
    #[command(subcommand)]
    Participants(Participants),
    /// Every subscription.
    #[command(subcommand)]
    Subscriptions(Subscriptions),
    /// A subscription's deliveries.
    #[command(subcommand)]
    Deliveries(Deliveries),
}

#[derive(Subcommand)]
pub enum Creators {
    /// Create a creator.
    Create {
        #[arg(long)]
        name: String,
        /// `±HH:MM` or an IANA zone: the default for their webinars.
        #[arg(long)]
        timezone: Option<String>,
    },
    /// List creators.
    List,
}

#[derive(Subcommand)]
pub enum Keys {
    /// Create an API key; the key is shown this once.
    Create {
        #[arg(long)]
        creator: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List a creator's keys (never the keys themselves).
    List {
        #[arg(long)]
        creator: String,
    },
}

#[derive(Subcommand)]
pub enum Webinars {
    /// Create a webinar.
    Create {
        #[arg(long)]
        creator: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        link: String,
        /// Start, RFC 3339 (`2030-03-15T10:00:00Z`).
        #[arg(long)]
        from: String,
        /// End, RFC 3339.
        #[arg(long)]
        to: String,
        /// The creator's zone for it; the creator's own when not given.
        #[arg(long)]
        timezone: Option<String>,
        /// A mango id; repeat for several.
        #[arg(long)]
        mango: Vec<String>,
    },
    /// List a creator's webinars, by start time.
    List {
        #[arg(long)]
        creator: String,
    },
    /// A webinar's reminders, by due time, each pending one with the
    /// capacity plan of its fan-out to each subscription: deliveries,
    /// predicted duration, last delivery, start (early or not), and a mark
    /// when it is predicted to miss the subscription's lateness budget.
    Reminders {
        #[arg(long)]
        webinar: String,
    },
}

#[derive(Subcommand)]
pub enum Participants {
    /// Register a CSV file's rows (columns `name`, `email`, and optionally
    /// `phone` and `timezone`, with a header row) through the bulk API.
    Import {
        #[arg(long)]
        webinar: String,
        file: std::path::PathBuf,
        /// Rows per request (the API takes up to 200 000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
        chunk: u32,
    },
}

#[derive(Subcommand)]
pub enum Subscriptions {
    /// Every subscription, failing first: disabled, then failing, then the rest.
    List {
        /// Only this creator's.
        #[arg(long)]
        creator: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum Deliveries {
    /// A subscription's deliveries, newest first.
    List {
        #[arg(long)]
        subscription: String,
        /// `pending`, `delivered`, `batched`, `failed`, `expired`, `missed` or `cancelled`.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send one delivery again now, whatever became of it (`--delivery`);
    /// or every delivery with one status due within a time window
    /// (`--since`, `--until`, `--status`).
    Replay {
        #[arg(long)]
        subscription: String,
        /// The one delivery to send again.
        #[arg(long, required_unless_present = "since", conflicts_with_all = ["since", "until", "status"])]
        delivery: Option<String>,
        /// RFC 3339: deliveries due at or after it.
        #[arg(long, requires_all = ["until", "status"])]
        since: Option<String>,
        /// RFC 3339, at most 31 days after `--since`: deliveries due before it.
        #[arg(long, requires = "since")]
        until: Option<String>,
        /// `failed`, `expired` or `missed`.
        #[arg(long, requires = "since")]
        status: Option<String>,
    },
}

/// Runs one admin command; an error is the API's refusal or a failed call.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let (url, token) = endpoint(args.url, args.token, args.config.as_deref())?;
    let client = Client::new(&url, &token);
    let (json_out, out) = (args.json, dispatch(&client, args.command, args.json).await?);
    if json_out {
        println!("{}", serde_json::to_string_pretty(&out.json)?);
    } else {
        print!("{}", out.text);
    }
    Ok(())
}

/// The URL and the token: a flag or a variable, else the settings file,
/// else (the URL only) the service's default address.
fn endpoint(
    url: Option<String>,
    token: Option<String>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<(String, String)> {
    let from_file = match file {
        Some(path) => tminus::config::layers::ClientSettings::from_file(path)?,
        None => Default::default(),
    };
    let url = url
        .or(from_file.url)
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let token = token.or(from_file.admin_token).ok_or_else(|| {
        anyhow::anyhow!("no admin token: pass --token, set TMINUS_ADMIN_TOKEN, or name a settings file with one (--config)")
    })?;
    Ok((url, token))
}

/// What a command shows: its JSON, and the same as text.
pub struct Shown {
    json: Value,
    text: String,
}

async fn dispatch(c: &Client, command: AdminCommand, json_out: bool) -> anyhow::Result<Shown> {
    use AdminCommand as A;
    Ok(match command {
        A::Creators(Creators::Create { name, timezone }) => {
            let body = json!({"name": name, "timezone": timezone});
            show::creators(One(c.post("/creators", &body).await?))
        }
        A::Creators(Creators::List) => show::creators(List(c.list("/creators", &[], None).await?)),
        A::Keys(Keys::Create { creator, name }) => {
            let body = name.map_or(json!({}), |n| json!({"name": n}));
            let path = format!("/creators/{creator}/api-keys");
            show::keys(One(c.post(&path, &body).await?))
        }
        A::Keys(Keys::List { creator }) => {
            let path = format!("/creators/{creator}/api-keys");
            show::keys(List(c.list(&path, &[], None).await?))
        }
        A::Webinars(command) => webinars(c, command).await?,
        A::Participants(Participants::Import {
            webinar,
            file,
            chunk,
        }) => {
            let bar = !json_out && std::io::stderr().is_terminal();
            show::imported(import::run(c, &webinar, &file, chunk as usize, bar).await?)?
        }
        A::Subscriptions(Subscriptions::List { creator }) => {
            let query: Vec<_> = creator
                .as_deref()
                .map(|c| ("creatorId", c))
                .into_iter()
                .collect();
            show::subscriptions(c.list("/subscriptions", &query, None).await?)
        }
        A::Deliveries(command) => deliveries(c, command).await?,
    })
}

/// A webinar command: create one, list a creator's, or show one's reminders.
async fn webinars(c: &Client, command: Webinars) -> anyhow::Result<Shown> {
    Ok(match command {
        Webinars::Create {
            creator,
            title,
            link,
            from,
            to,
            timezone,
            mango,
        } => {
            let mut body = json!({"creatorId": creator, "title": title, "link": link, "fromTime": from, "toTime": to});
            if let Some(tz) = timezone {
                body["timezone"] = tz.into();
            }
            if !mango.is_empty() {
                body["mangoes"] = mango.into();
            }
            show::webinars(One(c.post("/webinars", &body).await?))
        }
        Webinars::List { creator } => {
            let query = [("creatorId", creator.as_str())];
            show::webinars(List(c.list("/webinars", &query, None).await?))
        }
        Webinars::Reminders { webinar } => {
            let path = format!("/webinars/{webinar}/reminders");
            show::reminders(c.list(&path, &[], None).await?)
        }
    })
}

/// A deliveries command: list a subscription's, or replay one or a window's.
async fn deliveries(c: &Client, command: Deliveries) -> anyhow::Result<Shown> {
    Ok(match command {
        Deliveries::List {
            subscription,
            status,
            limit,
        } => {
            let query: Vec<_> = status
                .as_deref()
                .map(|s| ("status", s))
                .into_iter()
                .collect();
            let path = format!("/subscriptions/{subscription}/deliveries");
            show::deliveries(List(c.list(&path, &query, Some(limit.max(1))).await?))
        }
        Deliveries::Replay {
            subscription,
            delivery: Some(delivery),
            ..
        } => {
            let path = format!("/subscriptions/{subscription}/deliveries/{delivery}/retry");
            show::deliveries(One(c.post(&path, &json!({})).await?))
        }
        Deliveries::Replay {
            subscription,
            delivery: None,
            since,
            until,
            status,
        } => {
            // clap has required all three; the API checks their values.
            let body = json!({"since": since, "until": until, "status": status});
            let path = format!("/subscriptions/{subscription}/replay");
            show::replayed(c.post(&path, &body).await?)
        }
    })
}
