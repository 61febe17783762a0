//! The settings' layers through the real binary: defaults < the TOML file
//! (`--config` or `TMINUS_CONFIG`) < `TMINUS_*` variables < flags; an
//! unknown key refused by name; `config default` parsing back to the
//! defaults; `config check` redacting secrets and refusing what is invalid;
//! and `serve` taking its settings from the file.

use crate::harness::{free_port, logs_dir, until};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OLD_KEY: &str = "HxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAB8eHRw=";

/// `tminus` with `args` and `env`, and no other `TMINUS_*` variable.
fn tminus(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tminus"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TMINUS_")) {
        cmd.env_remove(k);
    }
    cmd.args(args).envs(env.iter().copied()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `config check`'s output as key → (value, origin).
fn effective(out: &Output) -> BTreeMap<String, (String, String)> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (kv, origin) = l.rsplit_once("  # ").expect("an origin");
            let (k, v) = kv.split_once(" = ").expect("key = value");
            (k.to_owned(), (v.to_owned(), origin.to_owned()))
        })
        .collect()
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[test]
fn each_layer_overrides_the_one_below() {
    let dir = logs_dir();
    let file = write(
        dir.path(),
        "t.toml",
        "tick = \"2s\"\nlease = \"80s\"\napi_rate = 5\nallow_http = true\n\
         allow_targets = [\"10.0.0.0/8\", \"10.1.0.0/16\"]\n",
    );
    let env = [("TMINUS_LEASE", "70s"), ("TMINUS_API_RATE", "6")];
    for how in ["flag", "variable"] {
        let out = match how {
            "flag" => tminus(
                &["config", "check", "--config", &file, "--api-rate", "9"],
                &env,
            ),
            _ => {
                let mut env = env.to_vec();
                env.push(("TMINUS_CONFIG", &file));
                tminus(&["config", "check", "--api-rate", "9"], &env)
            }
        };
        let e = effective(&out);
        let got = |k: &str| (e[k].0.as_str(), e[k].1.as_str());
        assert_eq!(got("http_timeout"), ("\"30s\"", "default"), "{how}");
        assert_eq!(got("tick"), ("\"2s\"", "file"), "{how}");
        assert_eq!(got("allow_http"), ("true", "file"), "{how}");
        assert_eq!(
            got("allow_targets"),
            ("[\"10.0.0.0/8\", \"10.1.0.0/16\"]", "file")
        );
        assert_eq!(got("lease"), ("\"70s\"", "environment"), "{how}");
        assert_eq!(got("api_rate"), ("9", "flag"), "{how}");
    }
}

#[test]
fn an_unknown_key_is_refused_by_name() {
    let dir = logs_dir();
    let file = write(dir.path(), "t.toml", "tick = \"2s\"\ntikc = \"3s\"\n");
    for args in [
        vec!["config", "check", "--config", &file],
        vec!["serve", "--config", &file, "--listen", "127.0.0.1:0"],
    ] {
        let out = tminus(&args, &[]);
        assert!(!out.status.success(), "{args:?} refused");
        let err = text(&out.stderr);
        assert!(err.contains("unknown key `tikc`"), "{args:?}: {err}");
    }
    let tables = write(dir.path(), "c.toml", "[client]\nurl = \"http://x\"\n");
    let out = tminus(&["config", "check", "--config", &tables], &[]);
    assert!(text(&out.stderr).contains("unknown key `client`"));
    let bad = write(dir.path(), "b.toml", "tick = \"fast\"\n");
    let out = tminus(&["config", "check", "--config", &bad], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("key `tick`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_default_file_parses_back_to_the_defaults() {
    let dir = logs_dir();
    let out = tminus(&["config", "default"], &[]);
    assert!(out.status.success());
    let file = write(dir.path(), "default.toml", &text(&out.stdout));
    let from_file = effective(&tminus(&["config", "check", "--config", &file], &[]));
    let defaults = effective(&tminus(&["config", "check"], &[]));
    let values = |m: &BTreeMap<String, (String, String)>| {
        m.iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(values(&from_file), values(&defaults));
    // Every setting is in it: set, or commented out for want of a default.
    let check = text(&tminus(&["config", "check"], &[]).stdout);
    for line in check.lines() {
        let key = line.trim_start_matches("# ").split(' ').next().unwrap();
        let listed = text(&out.stdout)
            .lines()
            .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} =")));
        assert!(listed, "{key} is not in the default file");
    }
}

#[test]
fn check_redacts_secrets_and_refuses_what_is_invalid() {
    let dir = logs_dir();
    let file = write(
        dir.path(),
        "t.toml",
        &format!(
            "admin_token = \"tok-in-file\"\ndatabase = \"postgres://u:pw-in-url@db/t?password=pw-in-query\"\n\
             secret_key_previous = [\"{OLD_KEY}\"]\n"
        ),
    );
    let out = tminus(
        &["config", "check", "--config", &file, "--secret-key", KEY],
        &[],
    );
    let shown = text(&out.stdout) + &text(&out.stderr);
    for secret in ["tok-in-file", "pw-in-url", "pw-in-query", KEY, OLD_KEY] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    let e = effective(&out);
    assert_eq!(e["admin_token"].0, "\"<redacted>\"");
    assert_eq!(e["secret_key"], ("\"<redacted>\"".into(), "flag".into()));
    assert_eq!(e["secret_key_previous"].0, "[\"<redacted>\"]");
    assert!(
        e["database"].0.starts_with("\"postgres://u:"),
        "{:?}",
        e["database"]
    );
    let out = tminus(&["config", "check", "--fanout-batch", "0"], &[]);
    assert!(!out.status.success(), "an invalid configuration fails");
    assert!(
        text(&out.stderr).contains("fan-out batch"),
        "{}",
        text(&out.stderr)
    );
    let out = tminus(
        &["config", "check", "--target-ca", "/nonexistent/ca.pem"],
        &[],
    );
    assert!(!out.status.success(), "a CA file that cannot be read fails");
    assert!(
        text(&out.stderr).contains("target-ca"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_its_settings_from_the_file() {
    let dir = logs_dir();
    let port = free_port();
    let db = dir.path().join("t.db");
    let file = write(
        dir.path(),
        "t.toml",
        &format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"{}\"\nadmin_token = \"from-the-file\"\n",
            db.display()
        ),
    );
    let mut serve = Command::new(env!("CARGO_BIN_EXE_tminus"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TMINUS_")) {
        serve.env_remove(k);
    }
    let mut child = serve
        .args(["serve"])
        .env("TMINUS_CONFIG", &file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/v1/platform/creators");
    until(20, "the service on the file's address", async || {
        http.get(&url)
            .bearer_auth("from-the-file")
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_list_is_an_array_or_a_comma_separated_string_in_the_file() {
    let dir = logs_dir();
    let arrays = write(
        dir.path(),
        "arrays.toml",
        "reminder_offsets = [\"1day\", \"1h\"]\ntrusted_proxies = [\"10.0.0.1\", \"10.1.0.0/16\"]\n\
         allow_targets = [\"10.20.0.0/16\"]\n",
    );
    let strings = write(
        dir.path(),
        "strings.toml",
        "reminder_offsets = \"1day,1h\"\ntrusted_proxies = \"10.0.0.1,10.1.0.0/16\"\n\
         allow_targets = \"10.20.0.0/16\"\n",
    );
    for file in [&arrays, &strings] {
        let e = effective(&tminus(&["config", "check", "--config", file], &[]));
        let got = |k: &str| (e[k].0.as_str(), e[k].1.as_str());
        assert_eq!(
            got("reminder_offsets"),
            ("[\"1day\", \"1h\"]", "file"),
            "{file}"
        );
        assert_eq!(
            got("trusted_proxies"),
            ("[\"10.0.0.1\", \"10.1.0.0/16\"]", "file"),
            "{file}"
        );
        assert_eq!(
            got("allow_targets"),
            ("[\"10.20.0.0/16\"]", "file"),
            "{file}"
        );
    }
    // A list clap parses whole is still checked whole, naming the key.
    for bad in ["[\"1h\", \"60min\"]", "[]", "[\"soon\"]"] {
        let file = write(
            dir.path(),
            "bad.toml",
            &format!("reminder_offsets = {bad}\n"),
        );
        let out = tminus(&["config", "check", "--config", &file], &[]);
        assert!(!out.status.success(), "{bad} refused");
        assert!(
            text(&out.stderr).contains("key `reminder_offsets`"),
            "{bad}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn the_default_file_keeps_each_settings_whole_help() {
    let out = tminus(&["config", "default"], &[]);
    assert!(out.status.success());
    let file = text(&out.stdout);
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for arg in tminus::config::layers::settings_args() {
        let id = arg.get_id().as_str();
        // The comment lines right above the key's line.
        let lines: Vec<&str> = file.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim_start_matches("# ").starts_with(&format!("{id} =")))
            .unwrap_or_else(|| panic!("{id} is not in the default file"));
        let mut comment: Vec<&str> = lines[..at]
            .iter()
            .rev()
            .take_while(|l| l.starts_with("# "))
            .map(|l| &l[2..])
            .collect();
        comment.reverse();
        let help = arg.get_long_help().or(arg.get_help()).unwrap().to_string();
        assert_eq!(
            flat(&comment.join(" ")).trim_end_matches('.'),
            flat(&help).trim_end_matches('.'),
            "{id}"
        );
    }
    let comments: Vec<&str> = file.lines().map(|l| l.trim_start_matches("# ")).collect();
    for caveat in [
        "Without it they are stored in plain text",
        "Must exceed the HTTP timeout, or slow deliveries are sent twice",
    ] {
        assert!(flat(&comments.join(" ")).contains(caveat), "{caveat}");
    }
}
