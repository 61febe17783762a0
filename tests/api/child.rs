//! The real `tminus serve` binary as a child process, for what only a
//! process shows: signals, exit codes and the open-file limit. Its log goes
//! to a file, printed when an assertion about it fails.

use crate::helpers::ADMIN;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One `tminus serve` process on a SQLite file in `dir`.
pub struct Service {
    child: Child,
    pub addr: std::net::SocketAddr,
    pub base: String,
    log: PathBuf,
}

impl Service {
    /// Starts the binary with loopback receivers allowed, fast ticks and
    /// `extra` flags; under `ulimit -n nofile` when given.
    pub fn start(dir: &Path, name: &str, extra: &[&str], nofile: Option<u32>) -> Service {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let db = dir.join("tminus.db");
        let listen = addr.to_string();
        let db = db.display().to_string();
        let mut args = vec![
            "serve",
            "--listen",
            &listen,
            "--database",
            &db,
            "--admin-token",
            ADMIN,
            "--allow-http",
            "--allow-private-targets",
            "--tick",
            "200ms",
        ];
        args.extend_from_slice(extra);
        let bin = env!("CARGO_BIN_EXE_tminus");
        let mut cmd = match nofile {
            // `exec` keeps the process id, so signals reach tminus itself.
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = cmd
            .args(&args)
            .env("TMINUS_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Service {
            child,
            addr,
            base: format!("http://{addr}"),
            log,
        }
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/healthz` answers.
    pub async fn wait_healthy(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tminus exited ({status}) at start:\n{}", self.log());
            }
            let url = format!("{}/healthz", self.base);
            if let Ok(r) = http.get(url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("tminus did not start:\n{}", self.log());
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success(), "kill -TERM {pid}");
    }

    /// Waits up to `within` for the process to exit: its status, or `None`.
    pub async fn exited(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A platform call with the admin token; panics unless it succeeds.
    pub async fn admin(&self, path: &str, body: Value) -> Value {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/platform{path}", self.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
