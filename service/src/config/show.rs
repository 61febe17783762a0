//! The configuration written out as TOML: the commented default file
//! (`tminus config default`: every setting, its whole help, its default;
//! it parses back to the defaults), and the effective one (`tminus config
//! check`: each value and where it came from, secrets redacted). Both are
//! made from the settings' flags, so neither can miss a setting.

use super::layers::{innermost, is_list, settings_args, Loaded, Origin};
use clap::{Arg, ArgAction};
use std::fmt::Write;

/// Settings whose values are never shown.
const SECRET: &[&str] = &[
    "admin_token",
    "secret_key",
    "secret_key_previous",
    "operational_webhook_secret",
];

/// What stands for a secret's value.
pub const REDACTED: &str = "<redacted>";

/// The commented default file: each setting with its whole help (the
/// caveats are in its later sentences) and its default; a setting with
/// none is commented out.
pub fn default_file() -> String {
    let mut out = String::from(
        "# tminus settings (TOML). Each key is a flag of `tminus serve` with `_`\n\
         # for `-`; a TMINUS_* variable or a flag overrides it. Durations as the\n\
         # flags take them (\"30s\", \"24h\"); lists as arrays (or as one\n\
         # comma-separated string, as the flags take them).\n",
    );
    for arg in settings_args() {
        let id = arg.get_id().as_str();
        let defaults = default_values(&arg);
        out.push('\n');
        for line in wrap(&help(&arg), 76) {
            let _ = writeln!(out, "# {line}");
        }
        let _ = match (defaults.first(), is_list(&arg)) {
            (None, true) => writeln!(out, "{id} = []"),
            (None, false) => writeln!(out, "# {id} =  (not set by default)"),
            (Some(_), _) => writeln!(out, "{id} = {}", value(&arg, &defaults)),
        };
    }
    out
}

/// The effective configuration of the subcommand `loaded` ran, each value
/// followed by its origin; secrets and the database URL's password
/// redacted.
pub fn effective(loaded: &Loaded) -> String {
    let m = innermost(&loaded.matches);
    let mut out = String::new();
    for arg in settings_args() {
        let id = arg.get_id().as_str();
        let raw: Vec<String> = m
            .get_raw(id)
            .map(|r| r.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let origin = match loaded.origin(id) {
            Some(Origin::Default) => "default",
            Some(Origin::File) => "file",
            Some(Origin::Environment) => "environment",
            Some(Origin::Flag) => "flag",
            None if is_list(&arg) => {
                let _ = writeln!(out, "{id} = []  # default");
                continue;
            }
            None => {
                let _ = writeln!(out, "# {id} = (unset)");
                continue;
            }
        };
        let shown: Vec<String> = match id {
            _ if SECRET.contains(&id) => raw.iter().map(|_| REDACTED.to_owned()).collect(),
            "database" => raw.iter().map(|v| super::redact_url(v)).collect(),
            _ => raw,
        };
        let _ = writeln!(out, "{id} = {}  # {origin}", value(&arg, &shown));
    }
    out
}

/// A setting's default values; `false` for a switch.
fn default_values(arg: &Arg) -> Vec<String> {
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return vec!["false".into()];
    }
    arg.get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect()
}

/// A setting's values as TOML: an array for a list, a boolean for a
/// switch, an integer for digits, else a string.
fn value(arg: &Arg, values: &[String]) -> String {
    let one = |v: &str| {
        let switch = matches!(arg.get_action(), ArgAction::SetTrue);
        if (switch && (v == "true" || v == "false")) || is_integer(v) {
            v.to_owned()
        } else {
            toml::Value::String(v.to_owned()).to_string()
        }
    };
    if is_list(arg) {
        // A list clap reads whole is one value: its items are the commas'.
        let items: Vec<String> = values
            .iter()
            .flat_map(|v| v.split(','))
            .map(|v| one(v.trim()))
            .collect();
        format!("[{}]", items.join(", "))
    } else {
        values.first().map(|v| one(v)).unwrap_or_default()
    }
}

fn is_integer(v: &str) -> bool {
    !v.is_empty() && v.len() < 19 && v.bytes().all(|b| b.is_ascii_digit())
}

/// A setting's whole help, on one line, as `--help` gives it, ending with
/// a full stop (clap drops the last one of a one-paragraph help).
pub fn help(arg: &Arg) -> String {
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    if !flat.is_empty() && !flat.ends_with('.') {
        flat.push('.');
    }
    flat
}

/// `text` cut into lines of at most about `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}
