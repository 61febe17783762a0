//! CPU quotas for the benchmark's instances (`--instance-cpu CORES`): each
//! `tminus serve` is moved into a control group of its own under the
//! cgroup v1 `cpu` controller, whose CFS quota holds it to that many cores
//! however many threads it runs. The group is removed when the quota is
//! dropped (after its process has exited), and it says how long the kernel
//! held the process back (`throttled_s`), which is how a run shows that the
//! instances, not the receiver or the store, were the bound.

use anyhow::{bail, Context};
use std::path::PathBuf;

/// Where the cgroup v1 `cpu` controller is mounted on this kind of machine.
const CPU_CONTROLLER: &str = "/sys/fs/cgroup/cpu";

/// The CFS period the quota is a share of, in microseconds.
const PERIOD_US: u64 = 100_000;

/// One process's control group; removed when dropped.
pub struct Quota {
    dir: PathBuf,
}

/// The quota of `cores` cores, in microseconds per [`PERIOD_US`]; `None`
/// for a figure that is not a positive number of cores (the kernel takes
/// at least 1 ms per period).
pub fn quota_us(cores: f64) -> Option<u64> {
    let us = (cores * PERIOD_US as f64).round();
    (cores.is_finite() && us >= 1_000.0).then_some(us as u64)
}

impl Quota {
    /// Holds process `pid` to `cores` cores, in a group named for the
    /// benchmark's own process and `pid`.
    pub fn hold(pid: u32, cores: f64) -> anyhow::Result<Quota> {
        let Some(quota) = quota_us(cores) else {
            bail!("--instance-cpu {cores}: give a number of cores of at least 0.01");
        };
        let root = PathBuf::from(CPU_CONTROLLER);
        if !root.join("cpu.cfs_quota_us").exists() {
            bail!("--instance-cpu needs the cgroup v1 cpu controller at {CPU_CONTROLLER}");
        }
        let dir = root.join(format!("tminus-bench-{}-{pid}", std::process::id()));
        std::fs::create_dir(&dir)
            .with_context(|| format!("creating {} (run as root)", dir.display()))?;
        let q = Quota { dir };
        q.write("cpu.cfs_period_us", &PERIOD_US.to_string())?;
        q.write("cpu.cfs_quota_us", &quota.to_string())?;
        q.write("cgroup.procs", &pid.to_string())?;
        Ok(q)
    }

    fn write(&self, file: &str, value: &str) -> anyhow::Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, value)
            .with_context(|| format!("writing {value} to {}", path.display()))
    }

    /// How long the kernel has held the group back so far, in seconds
    /// (`throttled_time` of `cpu.stat`, in nanoseconds).
    pub fn throttled_s(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        let ns: u64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("throttled_time "))?
            .trim()
            .parse()
            .ok()?;
        Some(ns as f64 / 1e9)
    }
}

impl Drop for Quota {
    fn drop(&mut self) {
        // A group can be removed once no process is in it: its process was
        // stopped before, but give the kernel a moment to let it go.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_a_share_of_the_period() {
        assert_eq!(quota_us(0.5), Some(50_000));
        assert_eq!(quota_us(0.25), Some(25_000));
        assert_eq!(quota_us(2.0), Some(200_000));
        assert_eq!(quota_us(0.01), Some(1_000));
        assert_eq!(quota_us(0.001), None);
        assert_eq!(quota_us(0.0), None);
        assert_eq!(quota_us(-1.0), None);
        assert_eq!(quota_us(f64::NAN), None);
    }
}
