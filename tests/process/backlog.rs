//! The backlog `tminus serve` asks the kernel for when it listens: the
//! standard library's 128 made a burst of lanes connecting at once lose
//! SYNs and wait a second. Read off the `listen` system call itself (with
//! `strace`), so the check holds whatever the kernel's `somaxconn` makes
//! of the request.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
#[ignore = "needs strace: scripts/test installs it and runs it"]
fn serve_asks_the_kernel_for_a_backlog_of_4096() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("listen.trace");
    let db = dir.path().join("t.db");
    let mut strace = Command::new("strace")
        .args(["-f", "-e", "trace=listen", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_tminus"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            "backlog-test",
        ])
        .arg("--database")
        .arg(&db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace runs (apt-get install strace)");
    let deadline = Instant::now() + Duration::from_secs(30);
    let call = loop {
        let text = std::fs::read_to_string(&trace).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("listen(")) {
            break l.to_owned();
        }
        assert!(Instant::now() < deadline, "serve never listened: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // `PID listen(FD, BACKLOG) = 0`: stop the service by its pid.
    let pid = call.split_whitespace().next().unwrap();
    let _ = Command::new("kill").arg(pid).status();
    let _ = strace.wait();
    let backlog = call
        .split_once("listen(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(args, _)| args.split(',').nth(1))
        .map(str::trim)
        .unwrap_or_default();
    assert_eq!(backlog, tminus::server::BACKLOG.to_string(), "{call}");
}
