//! Where reminders go once acknowledged: appended to a JSONL file, piped to
//! a command, or POSTed on to a URL. One task drains the queue in order. An
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

/// Hands every queued reminder to `output`, in order, until the queue is
/// closed and empty, or `abort` is cancelled while an output is failing.
pub async fn drain(
    output: Output,
    mut queue: mpsc::Receiver<Vec<Value>>,
    abort: CancellationToken,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    while let Some(reminders) = queue.recv().await {
        for reminder in reminders {
            let mut pause = Duration::from_secs(1);
            while let Err(e) = hand(&output, &http, &reminder).await {
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

async fn hand(output: &Output, http: &reqwest::Client, reminder: &Value) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(reminder)?;
    match output {
        Output::Jsonl(path) => {
            // Opened per line: a file moved away by log rotation is followed.
            line.push(b'\n');
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            // One write per line: lines from this receiver never interleave.
            file.write_all(&line).await?;
            file.flush().await?;
        }
        Output::Exec(cmd) => {
            let mut child = tokio::process::Command::new("sh")
                .args(["-c", cmd])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .with_context(|| format!("starting {cmd}"))?;
            let mut stdin = child.stdin.take().context("the command's stdin")?;
            stdin.write_all(&line).await?;
            drop(stdin);
            let status = child.wait().await?;
            if !status.success() {
                bail!("{cmd} exited with {status}");
            }
        }
        Output::Forward(url) => {
            http.post(url)
                .header("content-type", "application/json")
                .body(line)
                .timeout(Duration::from_secs(30))
                .send()
                .await?
                .error_for_status()?;
        }
    }
    Ok(())
}
