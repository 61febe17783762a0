//! What the binary says to the person running it: `serve --help` tells
//! where a generated admin token is kept, a port already in use is named,
//! and a user's mistake (a bad flag value, a bad settings file, a taken
//! port) is one line and exit status 1, with no backtrace even when
//! `RUST_BACKTRACE` asks for them (those are for crashes); and the release
//! profile keeps what `cargo build --release` makes small.

use crate::harness::logs_dir;
use std::process::{Command, Output};

/// `tminus` with `args` and `env`, and no other `TMINUS_*` variable.
fn tminus(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tminus"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TMINUS_")) {
        cmd.env_remove(k);
    }
    cmd.args(args).envs(env.iter().copied()).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn serve_help_says_where_a_generated_admin_token_is_kept() {
    let out = tminus(&["serve", "--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let at = help.find("--admin-token").expect("the flag is listed");
    let text = &help[at..help[at..].find("\n      --").map_or(help.len(), |e| at + e)];
    // startup.rs keeps it in this file and never prints it.
    assert!(text.contains("`tminus-admin-token`"), "{text}");
    assert!(!text.contains("printed"), "{text}");
}

#[test]
fn a_port_already_in_use_is_named() {
    let dir = logs_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = dir.path().join("t.db").display().to_string();
    let out = tminus(
        &["serve", "--listen", &addr, "--database", &db],
        &[("TMINUS_ADMIN_TOKEN", "t")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn a_users_mistake_prints_no_backtrace_even_when_asked_for() {
    let dir = logs_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = dir.path().join("t.db").display().to_string();
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "tikc = \"1s\"\n").unwrap();
    let typo = typo.display().to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["config", "check", "--fanout-batch", "0"], "fan-out batch"),
        (
            &["config", "check", "--config", &typo],
            "unknown key `tikc`",
        ),
        (&["serve", "--config", &typo], "unknown key `tikc`"),
        (&["serve", "--listen", &addr, "--database", &db], "in use"),
        (&["serve", "--tick", "fast"], "--tick"),
    ];
    let asking = [
        ("RUST_BACKTRACE", "1"),
        ("RUST_LIB_BACKTRACE", "1"),
        ("TMINUS_ADMIN_TOKEN", "t"),
    ];
    for (args, says) in cases {
        let out = tminus(args, &asking);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} fails");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !err.to_lowercase().contains("backtrace") && !err.contains("   0: "),
            "{args:?} printed a backtrace: {err}"
        );
        let lines = err.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(lines <= 4, "{args:?} printed {lines} lines: {err}");
    }
}

/// What `cargo build --release` and `cargo install` make stays small: no
/// debug info in it (line tables alone left it at 108 MB; with `debug = 1`
/// it was 132 MB), the symbol table kept so that a panic's backtrace still
/// names its functions; a build to profile has a profile of its own, with
/// full debug info.
#[test]
fn the_release_build_carries_no_debug_info_and_profiling_has_its_own_profile() {
    let manifest: toml::Table =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let profile = |name: &str| manifest["profile"][name].as_table().unwrap().clone();
    let release = profile("release");
    let text = |t: &toml::Table, k: &str| t.get(k).map(|v| v.to_string());
    assert!(
        matches!(
            text(&release, "debug").as_deref(),
            Some("false" | "0" | "\"none\"")
        ),
        "[profile.release] debug = {:?}",
        text(&release, "debug")
    );
    assert_eq!(text(&release, "strip").as_deref(), Some("\"debuginfo\""));
    let profiling = profile("profiling");
    assert_eq!(text(&profiling, "inherits").as_deref(), Some("\"release\""));
    assert_eq!(text(&profiling, "debug").as_deref(), Some("true"));
    assert_eq!(text(&profiling, "strip").as_deref(), Some("\"none\""));
}
