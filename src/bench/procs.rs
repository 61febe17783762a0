//! Child processes of the benchmark (the receiver and `tminus serve`),
//! stopped when dropped, and what the benchmark reads of them.

use anyhow::Context;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// A child process, sent SIGTERM (then killed) when dropped.
pub struct Child(std::process::Child);

impl Child {
    pub fn spawn(exe: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let c = Command::new(exe)
            .args(args)
            .env(
                "TMINUS_LOG",
                std::env::var("TMINUS_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        Ok(Child(c))
    }

    /// Spawns a child whose first `n` lines of output are the ports it
    /// listens on.
    pub fn spawn_printing_ports(
        exe: &Path,
        args: &[&str],
        n: usize,
    ) -> anyhow::Result<(Self, Vec<u16>)> {
        let mut c = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let out = c.stdout.take().context("child stdout")?;
        let child = Child(c);
        let mut out = BufReader::new(out);
        let mut ports = Vec::new();
        for _ in 0..n {
            let mut line = String::new();
            out.read_line(&mut line)?;
            ports.push(
                line.trim()
                    .parse()
                    .with_context(|| format!("child printed {line:?}, not a port"))?,
            );
        }
        Ok((child, ports))
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Peak resident memory (VmHWM) of a process, in MiB.
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmHWM:")
}

/// A memory figure of `/proc/PID/status` (`VmRSS:`, `VmHWM:`…), in MiB.
pub fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// CPU time (user + system) a process has used so far, in seconds. Linux
/// reports it in clock ticks of 1/100 s (`USER_HZ`, fixed by the kernel ABI).
pub fn cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU time of a local PostgreSQL server so far, in seconds: every
/// `postgres` process's own, plus what its exited children used (the
/// postmaster reaps its backends, so a connection closed during the run
/// still counts). `None` when no such process runs here (a remote server).
pub fn postgres_cpu_s() -> Option<f64> {
    let mut ticks = 0u64;
    let mut seen = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let path = entry.path();
        if std::fs::read_to_string(path.join("comm")).map_or(true, |c| c.trim() != "postgres") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime, stime, cutime, cstime.
        ticks += (11..=14)
            .filter_map(|i| f.get(i)?.parse::<u64>().ok())
            .sum::<u64>();
        seen = true;
    }
    seen.then_some(ticks as f64 / 100.0)
}

/// Major page faults of a process so far: pages it had to wait for the
/// disk to bring back (evicted code or file pages).
pub fn major_faults(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(9)?.parse().ok()
}
