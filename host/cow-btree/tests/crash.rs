//! Crash test: a child process commits concurrently and reports every
//! acknowledged (durable) commit over a pipe; the parent SIGKILLs it at a
//! random moment, reopens the database and checks that every acknowledged
//! commit is present and that no commit is partially visible.
//!
//! Two modes: `PerCommit` (every commit acknowledged), and deferred
//! (`SyncMode::None`, a `sync` after every fourth commit of a thread, which
//! acknowledges it; the non-durable commits in between may be lost, but the
//! file must open to a whole commit no older than the last sync).
//!
//! Default: 200 kill cycles with `PerCommit` and 100 deferred (about 15 s in
//! release). Long mode: `ORBIT_COW_CRASH_CYCLES=5000 cargo test -p
//! orbit-cow-btree --test crash` (the deferred test runs half as many).

use std::io::{BufRead, BufReader};
use std::ops::Bound;
use std::process::{Command, Stdio};
use std::time::Duration;

use orbit_cow_btree::{Db, Options};

const THREADS: usize = 4;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn sigkill_never_loses_an_acknowledged_commit() {
    let cycles = env_or("ORBIT_COW_CRASH_CYCLES", 200) as usize;
    let seed = env_or("ORBIT_COW_CRASH_SEED", 42);
    crash_cycles(cycles, seed, "per-commit");
}

#[test]
fn sigkill_with_deferred_commits_recovers_the_last_sync() {
    let cycles = (env_or("ORBIT_COW_CRASH_CYCLES", 200) / 2).max(1) as usize;
    let seed = env_or("ORBIT_COW_CRASH_SEED", 42) + 1;
    crash_cycles(cycles, seed, "deferred");
}

fn crash_cycles(cycles: usize, seed: u64, mode: &str) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut total_acks = 0usize;
    let mut expected_keys = 0u64;
    for run in 0..cycles {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cow-crash-child"))
            .arg(dir.path())
            .arg(format!("r{run:05}"))
            .arg(THREADS.to_string())
            .arg(mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acks = vec![None::<u64>; THREADS];
            let mut ready = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == "ready" {
                    ready = true;
                    continue;
                }
                let mut it = line.split_whitespace().skip(1);
                let (Some(t), Some(n)) = (it.next(), it.next()) else {
                    continue;
                };
                let (t, n): (usize, u64) = (t.parse().unwrap(), n.parse().unwrap());
                acks[t] = Some(n);
            }
            (ready, acks)
        });
        // Kill at a random moment: sometimes during open, mostly mid-commit.
        let delay = match rng.u8(0..10) {
            0 => rng.u64(0..5),
            _ => rng.u64(5..60),
        };
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let (ready, acks) = reader.join().unwrap();
        if let Some(code) = status.code() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("child exited by itself with {code} (ready {ready}): {err}");
        }
        let db = Db::open(dir.path(), Options::default())
            .unwrap_or_else(|e| panic!("cycle {run}: reopen failed: {e}"));
        let snap = db.snapshot();
        let prefix = format!("r{run:05}/");
        let mut this_run = 0u64;
        for (t, acked) in acks.iter().enumerate() {
            let last = snap.get(format!("{prefix}{t}/last").as_bytes()).unwrap();
            let last: Option<u64> = last.map(|v| String::from_utf8(v).unwrap().parse().unwrap());
            if let Some(a) = acked {
                total_acks += 1;
                let l = last.unwrap_or_else(|| {
                    panic!("cycle {run}: thread {t} acked {a} but nothing is stored")
                });
                assert!(
                    l >= *a,
                    "cycle {run}: thread {t} acked commit {a}, stored only up to {l}"
                );
            }
            if let Some(l) = last {
                // Commits 0..=l are all there, whole; nothing after l is.
                for n in 0..=l {
                    let a = snap
                        .get(format!("{prefix}{t}/{n:08}/a").as_bytes())
                        .unwrap();
                    let b = snap
                        .get(format!("{prefix}{t}/{n:08}/b").as_bytes())
                        .unwrap();
                    let want_a = n + 3 > l;
                    assert_eq!(
                        a.is_some(),
                        want_a,
                        "cycle {run}: thread {t} commit {n} key a (last {l})"
                    );
                    let b = b
                        .unwrap_or_else(|| panic!("cycle {run}: thread {t} commit {n} lost key b"));
                    assert_eq!(b, vec![(n % 251) as u8; if n % 5 == 0 { 9000 } else { 20 }]);
                }
                let beyond = snap
                    .get(format!("{prefix}{t}/{:08}/b", l + 1).as_bytes())
                    .unwrap();
                assert!(
                    beyond.is_none(),
                    "cycle {run}: thread {t} commit {} partially visible",
                    l + 1
                );
                this_run += (l + 1) + (l + 1).min(3) + 1;
            }
        }
        expected_keys += this_run;
        // Nothing from earlier runs vanished.
        assert_eq!(snap.len(), expected_keys, "cycle {run}: key count");
        let scanned = snap.range(Bound::Unbounded, Bound::Unbounded).count() as u64;
        assert_eq!(scanned, expected_keys);
        if run % 50 == 49 {
            db.compact().unwrap();
        }
    }
    assert!(
        total_acks > cycles,
        "too few acknowledged commits ({total_acks}) for the test to mean anything"
    );
}
