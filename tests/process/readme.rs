//! The documentation's shell blocks run as they are written, against the
//! real binary: the README's quickstart, to the verified reminders `tminus
//! receive` writes (only the install step is left out, the built binary
//! being put first on the `PATH`, and the ports made free ones); and the
//! block of docs/OPERATIONS.md's admin section, each line that sets a
//! variable run in order against a `tminus serve`, every variable used set
//! before it is, and every command it names one `tminus admin` has. They need `bash`, `curl` and
//! `jq` (`./scripts/test` installs them).

use crate::harness::{free_port, logs_dir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shell block (```sh) that follows `heading` in `file` (`README.md`,
/// `docs/OPERATIONS.md`), its continued lines (`\` at the end) joined.
fn block(file: &str, heading: &str) -> Vec<String> {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let from = page
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no {heading} in {file}"));
    let rest = &page[from..];
    let start = rest.find("\n```sh\n").expect("a sh block") + "\n```sh\n".len();
    let text = &rest[start..start + rest[start..].find("\n```").expect("closed")];
    let mut lines = Vec::new();
    let mut open = String::new();
    for line in text.lines() {
        match line.strip_suffix('\\') {
            Some(head) => open.push_str(head),
            None => lines.push(std::mem::take(&mut open) + line),
        }
    }
    lines
}

fn needs_tools() {
    for tool in ["bash", "curl", "jq"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "the documentation's blocks need {tool} (./scripts/test installs it)"
        );
    }
}

/// `PATH` with the built binary's directory first.
fn path() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_tminus")).parent().unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// A process group the test started (a shell and what it left running in
/// the background), stopped when the test ends, however it ends.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// `bash` running `script` in `dir`, in a process group of its own, with
/// no `TMINUS_*` variable but `env`; its output goes to `dir/shell.log`.
fn bash(dir: &Path, script: &str, env: &[(&str, &str)]) -> Group {
    let log = std::fs::File::create(dir.join("shell.log")).unwrap();
    let mut cmd = Command::new("bash");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TMINUS_")) {
        cmd.env_remove(k);
    }
    let child = cmd
        .args(["-eu", "-o", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", path())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    Group(child)
}

fn shell_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("shell.log")).unwrap_or_default()
}

#[test]
fn the_quickstart_ends_with_verified_reminders() {
    needs_tools();
    let dir = logs_dir();
    let mut lines = block("README.md", "## Quickstart");
    assert!(
        lines[0].starts_with("cargo install --path ."),
        "{}",
        lines[0]
    );
    let last = lines.pop().unwrap();
    assert!(
        last.starts_with("tail -F reminders.jsonl"),
        "it ends watching the file: {last}"
    );
    let (api, receiver) = (free_port(), free_port());
    let script = lines
        .iter()
        .filter(|l| !l.starts_with("cargo "))
        .map(|l| {
            l.replace("127.0.0.1:8080", &format!("127.0.0.1:{api}"))
                .replace("127.0.0.1:9000", &format!("127.0.0.1:{receiver}"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut group = bash(dir.path(), &script, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = group.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the block never ended: {}",
            shell_log(dir.path())
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{}", shell_log(dir.path()));

    // What `tail -F reminders.jsonl` shows within the 30 s it promises.
    let file = dir.path().join("reminders.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    let got: Vec<Value> = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.lines().count() >= 2 {
            break text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "no reminders: {}",
            shell_log(dir.path())
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let reminders: Vec<&str> = got
        .iter()
        .map(|r| r["reminder"].as_str().unwrap())
        .collect();
    assert_eq!(reminders, ["20s", "10s"]);
    for r in &got {
        assert_eq!(r["event"], "webinar.reminder.all", "{r}");
        assert_eq!(r["payload"]["name"], "John Doe", "{r}");
        assert_eq!(
            r["payload"]["webinar"], "Introduction to Digital Marketing",
            "{r}"
        );
        assert!(r["webhookId"].as_str().unwrap().starts_with("msg_"), "{r}");
    }
}

/// `NAME=$(command)`, with a comment after it or not: (name, command).
fn assignment(line: &str) -> Option<(&str, &str)> {
    let (name, rest) = line.split_once("=$(")?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return None;
    }
    let end = rest.rfind(')')?;
    let after = rest[end + 1..].trim();
    (after.is_empty() || after.starts_with('#')).then_some((name, &rest[..end]))
}

/// The `$NAME`s a line uses.
fn used(line: &str) -> Vec<&str> {
    line.split('$')
        .skip(1)
        .map(|v| {
            v.split(|c: char| !c.is_ascii_uppercase() && c != '_')
                .next()
                .unwrap()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_admin_block_sets_each_variable_before_it_is_used() {
    needs_tools();
    let lines = block("docs/OPERATIONS.md", "## Admin CLI: `tminus admin`");
    let export = lines[0]
        .strip_prefix("export ")
        .expect("it starts with the exports");
    let mut vars: BTreeMap<String, String> = export
        .split_whitespace()
        .map(|kv| kv.split_once('=').unwrap())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let port = free_port();
    let url = vars["TMINUS_URL"].replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    vars.insert("TMINUS_URL".into(), url.clone());
    let token = vars["TMINUS_ADMIN_TOKEN"].clone();

    let dir = logs_dir();
    let db = dir.path().join("t.db").display().to_string();
    let serve = format!(
        "exec tminus serve --listen 127.0.0.1:{port} --database {db} --admin-token {token} \
         --allow-http --allow-private-targets"
    );
    let _serve = bash(dir.path(), &serve, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while curl(&["-sf", &format!("{url}/readyz")]).is_empty() {
        assert!(Instant::now() < deadline, "{}", shell_log(dir.path()));
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut set = Vec::new();
    for line in lines[1..].iter().filter(|l| !l.trim().is_empty()) {
        for v in used(line) {
            assert!(
                vars.contains_key(v),
                "${v} is used before it is set: {line}"
            );
        }
        let Some((name, command)) = assignment(line) else {
            // A command the block only shows: `tminus admin` has it.
            let words: Vec<&str> = line
                .split_whitespace()
                .skip_while(|w| *w != "admin")
                .skip(1)
                .filter(|w| !w.starts_with('-'))
                .take(2)
                .collect();
            assert_eq!(words.len(), 2, "{line}");
            let help = Command::new(env!("CARGO_BIN_EXE_tminus"))
                .args(["admin", words[0], words[1], "--help"])
                .output()
                .unwrap();
            assert!(help.status.success(), "{line}");
            continue;
        };
        if name == "SUB" {
            // The integrator's part: a subscription for the list to show.
            let body = r#"{"hookUrl": "http://127.0.0.1:9/x", "event": "webinar.reminder.all"}"#;
            let made = curl(&[
                "-s",
                "-H",
                &format!("x-api-key: {}", vars["KEY"]),
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
                &format!("{url}/api/v1/integration/webhook/webhook"),
            ]);
            assert!(made.contains("whsec_"), "{made}");
        }
        let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out = Command::new("bash")
            .args(["-eu", "-o", "pipefail", "-c", command])
            .env("PATH", path())
            .envs(env)
            .output()
            .unwrap();
        let value = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            out.status.success() && !value.is_empty() && value != "null",
            "{line}: {value:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        vars.insert(name.to_owned(), value);
        set.push(name);
    }
    assert_eq!(set, ["CREATOR", "KEY", "WEBINAR", "SUB"]);
    for id in ["CREATOR", "WEBINAR", "SUB"] {
        assert!(tminus::domain::ids::is_id(&vars[id]), "{id} = {}", vars[id]);
    }
}
