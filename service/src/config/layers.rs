//! The configuration's layers: built-in defaults < a TOML file (`--config`
//! or `TMINUS_CONFIG`) < `TMINUS_*` variables < flags.
//!
//! Every setting is defined once, as a flag of [`Config`] (its name, type,
//! default, environment twin and help), so a flag added there is a file key
//! at once: the key is the flag's name with `_` for `-` (`http_timeout` for
//! `--http-timeout`). clap already puts variables over defaults and flags
//! over variables; the file slips in between: each of its keys that neither
//! a variable nor a flag sets is handed to clap as a flag, after its value is
//! checked alone so that an error names the file and the key. Values are
//! written as the flags take them (`"30s"`), numbers and booleans as
//! TOML's own, lists as arrays (`["1day", "30min"]`) or as the flag's
//! comma-separated string (`"1day,30min"`). An unknown key is refused.
//! (figment or the config crate would have the settings declared a second
//! time, as a serde struct, and the two kept in step by hand.)

use super::Config;
use anyhow::{anyhow, Context};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `tminus serve`'s arguments (and `tminus config check`'s): a settings
/// file, and the settings, each of which a variable or a flag overrides.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML file of settings, under the `TMINUS_*` variables and the flags;
    /// `tminus config default` prints one with every setting.
    #[arg(long = "config", env = "TMINUS_CONFIG", value_name = "PATH")]
    pub config_file: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Config,
}

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    Environment,
    Flag,
}

/// A command line parsed with its settings file laid under it.
pub struct Loaded {
    /// The whole command line's matches, the file's settings included.
    pub matches: ArgMatches,
    /// The settings (argument ids) the file gave.
    pub from_file: BTreeSet<String>,
}

impl Loaded {
    /// Where the setting `id` of the innermost subcommand came from; `None`
    /// when nothing set it (an optional setting left out).
    pub fn origin(&self, id: &str) -> Option<Origin> {
        if self.from_file.contains(id) {
            return Some(Origin::File);
        }
        match innermost(&self.matches).value_source(id)? {
            ValueSource::DefaultValue => Some(Origin::Default),
            ValueSource::EnvVariable => Some(Origin::Environment),
            _ => Some(Origin::Flag),
        }
    }
}

/// The matches of the subcommand that was run (`serve`, `config check`).
pub fn innermost(m: &ArgMatches) -> &ArgMatches {
    match m.subcommand() {
        Some((_, sub)) => innermost(sub),
        None => m,
    }
}

/// The settings' arguments, as `tminus serve` declares them.
pub fn settings_args() -> Vec<Arg> {
    Config::augment_args(Command::new("settings"))
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .cloned()
        .collect()
}

/// Settings that take a list clap reads as one value, parsing the whole
/// list at once (`--reminder-offsets` refuses a duplicate), beside those it
/// splits on commas itself (`value_delimiter`).
const WHOLE_LISTS: &[&str] = &["reminder_offsets"];

/// Whether a setting takes a list: in the file, an array or the flag's
/// comma-separated string.
pub fn is_list(arg: &Arg) -> bool {
    arg.get_value_delimiter().is_some() || WHOLE_LISTS.contains(&arg.get_id().as_str())
}

/// Parses `argv` with `cli`, laying the settings file its subcommand names
/// (if any) under the variables and flags. clap's own errors (and
/// `--help`) end the process as usual; a bad or unknown file key is `Err`.
pub fn load(cli: Command, argv: Vec<OsString>) -> anyhow::Result<Loaded> {
    let first = match cli.clone().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => e.exit(),
    };
    let sub = innermost(&first);
    let file = sub.try_get_one::<PathBuf>("config_file").ok().flatten();
    let Some(path) = file else {
        return Ok(Loaded {
            matches: first,
            from_file: BTreeSet::new(),
        });
    };
    let table = read_file(path)?;
    let mut argv = argv;
    let mut from_file = BTreeSet::new();
    let args = settings_args();
    for (key, value) in &table {
        let arg = args
            .iter()
            .find(|a| a.get_id().as_str() == key)
            .ok_or_else(|| unknown_key(path, key, &args))?;
        let above = matches!(
            sub.value_source(key),
            Some(ValueSource::EnvVariable | ValueSource::CommandLine)
        );
        let tokens = tokens(arg, value)
            .and_then(|t| check_alone(&t).map(|()| t))
            .map_err(|e| anyhow!("{}: key `{key}`: {e}", path.display()))?;
        if !above {
            argv.extend(tokens.into_iter().map(OsString::from));
            from_file.insert(key.clone());
        }
    }
    let matches = cli.try_get_matches_from(&argv).unwrap_or_else(|e| e.exit());
    Ok(Loaded { matches, from_file })
}

/// A settings file's keys and values; an error when it cannot be read, is
/// not TOML, or holds a table (settings are top-level keys).
pub fn read_file(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("the config file {} is not valid TOML", path.display()))?;
    Ok(table)
}

/// What a client of the service (`tminus admin`) may take from the same
/// settings file: the API's address (`listen`) and the admin token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientSettings {
    /// `http://` and the `listen` address, an unspecified host made loopback.
    pub url: Option<String>,
    pub admin_token: Option<String>,
}

impl ClientSettings {
    /// Reads them from a settings file (other keys are the service's).
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let table = read_file(path)?;
        let text = |k: &str| table.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let url = text("listen").map(|l| {
            let l = l
                .replace("0.0.0.0:", "127.0.0.1:")
                .replace("[::]:", "[::1]:");
            format!("http://{l}")
        });
        Ok(Self {
            url,
            admin_token: text("admin_token"),
        })
    }
}

fn unknown_key(path: &Path, key: &str, args: &[Arg]) -> anyhow::Error {
    let known: Vec<&str> = args.iter().map(|a| a.get_id().as_str()).collect();
    anyhow!(
        "{}: unknown key `{key}`; the keys are: {}",
        path.display(),
        known.join(", ")
    )
}

/// The flags that give `arg` the file's `value`.
fn tokens(arg: &Arg, value: &toml::Value) -> Result<Vec<String>, String> {
    use toml::Value as V;
    let long = arg.get_long().ok_or("not a setting")?;
    let flag = matches!(arg.get_action(), ArgAction::SetTrue);
    let scalar = |v: &V| match v {
        V::String(s) => Ok(s.clone()),
        V::Integer(i) => Ok(i.to_string()),
        _ => Err(format!(
            "expected a string or an integer, found {}",
            v.type_str()
        )),
    };
    match value {
        V::Boolean(b) if flag => Ok(if *b {
            vec![format!("--{long}")]
        } else {
            vec![]
        }),
        _ if flag => Err(format!(
            "expected true or false, found {}",
            value.type_str()
        )),
        V::Array(items) if is_list(arg) => {
            let items = items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?;
            // An empty list of a whole-list setting goes to its parser, which
            // refuses it, rather than leave the default in its place.
            Ok(if items.is_empty() && arg.get_value_delimiter().is_some() {
                vec![]
            } else {
                vec![format!("--{long}={}", items.join(","))]
            })
        }
        V::Array(_) => Err("expected a single value, found an array".into()),
        v => Ok(vec![format!("--{long}={}", scalar(v)?)]),
    }
}

/// Checks the flags made of one file key alone, without the environment,
/// so that an error is the key's own.
fn check_alone(tokens: &[String]) -> Result<(), String> {
    Config::augment_args(Command::new("tminus"))
        .mut_args(|a| a.env(None))
        .no_binary_name(true)
        .try_get_matches_from(tokens)
        .map(drop)
        .map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(id: &str) -> Arg {
        settings_args()
            .into_iter()
            .find(|a| a.get_id() == id)
            .unwrap()
    }

    #[test]
    fn file_values_become_the_flags_that_set_them() {
        let v = |s: &str| s.parse::<toml::Table>().unwrap()["k"].clone();
        let t = |id: &str, value: &str| tokens(&arg(id), &v(&format!("k = {value}")));
        assert_eq!(t("tick", "\"50ms\""), Ok(vec!["--tick=50ms".into()]));
        assert_eq!(t("api_rate", "7"), Ok(vec!["--api-rate=7".into()]));
        assert_eq!(t("allow_http", "true"), Ok(vec!["--allow-http".into()]));
        assert_eq!(t("allow_http", "false"), Ok(vec![]));
        assert_eq!(
            t("allow_targets", "[\"10.0.0.0/8\", \"10.1.0.0/16\"]"),
            Ok(vec!["--allow-targets=10.0.0.0/8,10.1.0.0/16".into()])
        );
        assert_eq!(t("allow_targets", "[]"), Ok(vec![]));
        assert_eq!(
            t("allow_targets", "\"10.0.0.0/8,10.1.0.0/16\""),
            Ok(vec!["--allow-targets=10.0.0.0/8,10.1.0.0/16".into()])
        );
        // A list clap parses whole takes an array too, and its string.
        let offsets = |v: &str| t("reminder_offsets", v);
        assert_eq!(
            offsets("[\"1day\", \"1h\"]"),
            Ok(vec!["--reminder-offsets=1day,1h".into()])
        );
        assert_eq!(
            offsets("\"1day,1h\""),
            Ok(vec!["--reminder-offsets=1day,1h".into()])
        );
        let empty = offsets("[]").unwrap();
        assert!(check_alone(&empty).is_err(), "no offsets at all: {empty:?}");
        assert!(t("allow_http", "\"yes\"").is_err());
        assert!(t("tick", "[\"1s\"]").is_err());
        assert!(t("tick", "1.5").is_err());
        assert!(check_alone(&["--tick=50ms".into()]).is_ok());
        let bad = check_alone(&["--tick=fast".into()]).unwrap_err();
        assert!(bad.contains("--tick"), "{bad}");
    }

    #[test]
    fn a_client_reads_the_address_and_the_admin_token_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\nadmin_token = \"t\"\ntick = \"1s\"\n",
        )
        .unwrap();
        let c = ClientSettings::from_file(&path).unwrap();
        assert_eq!(c.url.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.admin_token.as_deref(), Some("t"));
        std::fs::write(&path, "tick = \"1s\"\n").unwrap();
        assert_eq!(
            ClientSettings::from_file(&path).unwrap(),
            ClientSettings::default()
        );
    }

    #[test]
    fn a_log_filter_that_does_not_parse_is_refused() {
        let mut c = Config::defaults();
        assert_eq!(c.log, "info");
        c.log = "info,tminus::delivery=debug".into();
        assert!(c.check().0.is_empty(), "{:?}", c.check().0);
        c.log = "info,tminus=loud".into();
        assert!(
            c.check().0.iter().any(|e| e.starts_with("log ")),
            "{:?}",
            c.check().0
        );
    }
}
