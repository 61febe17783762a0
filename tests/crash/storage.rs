//! Storage faults under a running fan-out on SQLite: the disk fills up, or
//! the file system turns read-only. The service stays up and says what is
//! wrong; what the receiver acknowledged is kept (the recorder holds it and
//! retries); once the fault clears, the fan-out finishes without a restart,
//! the store agrees with the receiver and the file is intact.
//!
//! The file lives on a small tmpfs of the test's own, which needs root: the
//! tests are `#[ignore]`d, and `scripts/test` runs them (as root, as CI
//! does).

use crate::file;
use crate::harness::*;
use crate::receiver::Receiver;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PEOPLE: usize = 4_000;

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("fs");
        std::fs::create_dir(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot mount a tmpfs here: the storage tests need root");
        Tmpfs {
            dir,
            _parent: parent,
        }
    }

    fn remount(&self, how: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {how}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Fills the file system holding `dir` until a write fails.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).and_then(|_| f.flush()).is_ok() {}
    let small = vec![0u8; 512];
    while f.write_all(&small).and_then(|_| f.sync_all()).is_ok() {}
    path
}

/// Runs a fan-out on a tmpfs, applies `fault` a quarter of the way in,
/// holds it for a few seconds, `clear`s it, and checks the outcome; the log
/// must show `symptom`.
async fn fault_mid_fan_out(fault: impl FnOnce(&Tmpfs), clear: impl FnOnce(&Tmpfs), symptom: &str) {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let fs = Tmpfs::mount("16m");
    let logs = logs_dir();
    let db = fs.dir.join("tminus.db");
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let inst = Instance::spawn(db.to_str().unwrap(), logs.path(), "serve", &[]);
    wait_healthy(&http, &inst).await;
    let f = fan_out_soon(&http, &inst, &rx, PEOPLE, Duration::from_secs(2)).await;
    until(60, "the fan-out to get going", async || {
        rx.requests() >= PEOPLE / 4
    })
    .await;
    fault(&fs);
    let at_fault = rx.requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Still up, and it says what is wrong.
    wait_healthy(&http, &inst).await;
    let log = std::fs::read_to_string(logs.path().join("serve.log")).unwrap();
    assert!(log.contains(symptom), "the log says {symptom:?}");
    eprintln!(
        "fault after {at_fault} requests; {} requests by the time it cleared",
        rx.requests()
    );
    clear(&fs);
    until(120, "every participant acknowledged", async || {
        rx.acked_people() == PEOPLE
    })
    .await;
    // A clean stop, after which the store is read as it was left.
    let mut inst = inst;
    let _ = Command::new("kill").arg(inst.pid().to_string()).status();
    assert!(inst.child.wait().unwrap().success(), "a clean stop");
    file::assert_intact(&db);
    let delivered = file::delivered(&db, &f.sub).await;
    let log = rx.log.lock().unwrap();
    let acked: std::collections::BTreeSet<String> = log.acked.keys().cloned().collect();
    assert_eq!(delivered.len(), PEOPLE, "every delivery recorded");
    assert_eq!(delivered, acked, "the store agrees with the receiver");
    assert_eq!(file::count_rows(&db, "missed"), 0);
    assert_eq!(file::count_rows(&db, "expired"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs: scripts/test runs it"]
async fn a_full_disk_mid_fan_out_loses_nothing_and_recovers_without_a_restart() {
    let filler = std::sync::Mutex::new(None);
    fault_mid_fan_out(
        |fs| *filler.lock().unwrap() = Some(fill(&fs.dir)),
        |_| std::fs::remove_file(filler.lock().unwrap().take().unwrap()).unwrap(),
        "database or disk is full",
    )
    .await;
}

/// A file system cannot be turned read-only under a process that has files
/// open for writing (the kernel refuses the remount), so this fault is met
/// at start: tminus refuses to start on a read-only file, says why and
/// changes nothing; once the file system is writable again, the next start
/// sends the fan-out that fell due meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs: scripts/test runs it"]
async fn a_read_only_file_refuses_to_start_and_the_next_start_loses_nothing() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let fs = Tmpfs::mount("16m");
    let logs = logs_dir();
    let db = fs.dir.join("tminus.db");
    let database = db.to_str().unwrap();
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let mut inst = Instance::spawn(database, logs.path(), "first", &[]);
    wait_healthy(&http, &inst).await;
    let f = fan_out_soon(&http, &inst, &rx, PEOPLE, Duration::from_secs(6)).await;
    let _ = Command::new("kill").arg(inst.pid().to_string()).status();
    assert!(inst.child.wait().unwrap().success(), "a clean stop");
    fs.remount("ro");
    let mut refused = Instance::spawn(database, logs.path(), "read-only", &[]);
    assert!(!refused.child.wait().unwrap().success(), "refuses to start");
    let log = std::fs::read_to_string(logs.path().join("read-only.log")).unwrap();
    assert!(log.contains("Read-only file system"), "says why: {log}");
    fs.remount("rw");
    file::assert_intact(&db);
    let next = Instance::spawn(database, logs.path(), "next", &[]);
    wait_healthy(&http, &next).await;
    until(120, "every participant acknowledged", async || {
        rx.acked_people() == PEOPLE
    })
    .await;
    drop(next);
    file::assert_intact(&db);
    assert_eq!(file::delivered(&db, &f.sub).await.len(), PEOPLE);
    assert_eq!(file::count_rows(&db, "missed"), 0);
}
