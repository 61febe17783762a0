//! Where reminders go once acknowledged: appended to a JSONL file (what has
//! queued up meanwhile in one write), piped to a command, or POSTed on to a
//! URL. One task drains the queue in order. An
//! output that fails is retried with a growing pause (1 s to 30 s) until it
//! works or the receiver stops: meanwhile the queue fills, and once it is
//! full the receiver answers 503, so tminus keeps the rest and retries.

use anyhow::{bail, Context};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One output, chosen on the command line.
#[derive(Clone, Debug)]
pub enum Output {
    /// Append one line per reminder.
    Jsonl(PathBuf),
    /// Run `sh -c CMD` once per reminder, the JSON on its standard input.
    Exec(String),
    /// POST the JSON to this URL.
    Forward(String),
}

/// Most queued requests handed on together: a fan-out arrives by the
/// thousand a second, and one write of many lines costs about what one
/// line did.
const BATCH: usize = 512;

/// Hands every queued reminder to `output`, in order, until the queue is
/// closed and empty, or `abort` is cancelled while an output is failing.
/// What has queued up meanwhile is taken together: a JSONL file gets it in
/// one write.
pub async fn drain(
    output: Output,
    mut queue: mpsc::Receiver<Vec<Value>>,
    abort: CancellationToken,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut taken = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut taken, BATCH).await > 0 {
        let reminders: Vec<Value> = taken.drain(..).flatten().collect();
        let units: Vec<&[Value]> = match output {
            Output::Jsonl(_) => vec![&reminders[..]],
            _ => reminders.chunks(1).collect(),
        };
        for unit in units {
            let mut pause = Duration::from_secs(1);
            while let Err(e) = hand(&output, &http, unit).await {
                tracing::warn!(error = %format!("{e:#}"), ?pause, "output failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = abort.cancelled() => bail!("stopped with the output failing"),
                }
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
    }
    Ok(())
}

/// Hands `reminders` on: all of them for a JSONL file, one for the others.
async fn hand(output: &Output, http: &reqwest::Client, reminders: &[Value]) -> anyhow::Result<()> {
    let mut lines = Vec::with_capacity(reminders.len() * 512);
    for r in reminders {
        serde_json::to_writer(&mut lines, r)?;
        lines.push(b'\n');
    }
    match output {
        Output::Jsonl(path) => {
            // Opened per write: a file moved away by log rotation is
            // followed.
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            // One write of whole lines: lines from this receiver never
            // interleave with another writer's.
            file.write_all(&lines).await?;
            file.flush().await?;
        }
        Output::Exec(cmd) => {
            lines.pop();
            let mut child = tokio::process::Command::new("sh")
                .args(["-c", cmd])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .with_context(|| format!("starting {cmd}"))?;
            let mut stdin = child.stdin.take().context("the command's stdin")?;
            stdin.write_all(&lines).await?;
            drop(stdin);
            let status = child.wait().await?;
            if !status.success() {
                bail!("{cmd} exited with {status}");
            }
        }
        Output::Forward(url) => {
            lines.pop();
            http.post(url)
                .header("content-type", "application/json")
                .body(lines)
                .timeout(Duration::from_secs(30))
                .send()
                .await?
                .error_for_status()?;
        }
    }
    Ok(())
}
