//! The HTTP ceiling of METHOD.md: `wrk` run with the shared Lua script
//! against the bench's receiver, whose Requests/sec every run's rate is
//! compared with.

use super::BenchArgs;
use anyhow::Context;
use std::path::PathBuf;

/// The wrk script: `--ceiling-script`, else `../shared/bench/ceiling.lua`,
/// else `bench/ceiling.lua`.
pub fn script(args: &BenchArgs) -> anyhow::Result<PathBuf> {
    let candidates = [
        args.ceiling_script.clone(),
        Some("../shared/bench/ceiling.lua".into()),
        Some("bench/ceiling.lua".into()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .context("ceiling.lua not found: pass --ceiling-script")
}

/// Runs wrk as METHOD.md says and returns its Requests/sec.
pub fn wrk(script: &std::path::Path, url: &str, duration: &str) -> anyhow::Result<f64> {
    let out = std::process::Command::new("wrk")
        .args(["-t1", "-c64", &format!("-d{duration}"), "-s"])
        .arg(script)
        .arg(url)
        .output()
        .map_err(|_| anyhow::anyhow!("wrk is not installed: install it with `apt-get install wrk` (Debian/Ubuntu) or `brew install wrk` (macOS)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Requests/sec:")
                .map(|v| v.trim().parse::<f64>())
        })
        .context("wrk printed no Requests/sec")?
        .context("wrk's Requests/sec is not a number")
}
