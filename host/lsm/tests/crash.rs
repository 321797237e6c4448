//! Crash test: a child process (this test binary, re-executed) writes concurrently under
//! `SyncMode::PerCommit` and reports every acknowledged batch on stdout; the parent SIGKILLs it
//! at a random moment, reopens the database, and checks that every acknowledged batch is
//! present and that no batch is half-visible.
//!
//! Default: 200 kill cycles. Long mode: `ORBIT_LSM_CRASH_CYCLES=5000 cargo test -p orbit-lsm
//! --test crash`.

mod common;

use common::Rng;
use orbit_lsm::{Db, Options, SyncMode, WriteBatch};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::ops::Bound;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "ORBIT_LSM_CRASH_CHILD_DIR";
const WRITERS: u64 = 4;
const KEYS_PER_BATCH: u64 = 3;

fn options() -> Options {
    Options {
        sync: SyncMode::PerCommit,
        memtable_size: 32 << 10,
        compaction_threshold: 2,
        block_size: 1024,
        target_file_size: 64 << 10,
        level1_size: 256 << 10,
        ..Options::default()
    }
}

fn batch_key(cycle: u64, w: u64, n: u64, j: u64) -> Vec<u8> {
    format!("c{cycle:05}-w{w}-n{n:07}-{j}").into_bytes()
}

fn batch_value(cycle: u64, w: u64, n: u64) -> Vec<u8> {
    format!("value {cycle}/{w}/{n} {}", "x".repeat((n % 50) as usize)).into_bytes()
}

/// The child: runs only when re-executed by the parent.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let cycle: u64 = std::env::var("ORBIT_LSM_CRASH_CYCLE")
        .unwrap()
        .parse()
        .unwrap();
    let db = Arc::new(Db::open(&dir, options()).unwrap());
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, out) = (db.clone(), out.clone());
            std::thread::spawn(move || {
                for n in 0.. {
                    let mut b = WriteBatch::new();
                    for j in 0..KEYS_PER_BATCH {
                        b.put(batch_key(cycle, w, n, j), batch_value(cycle, w, n));
                    }
                    // Overwrite a per-writer key and delete an older batch's marker.
                    b.put(format!("last-w{w}"), format!("{cycle}/{n}"));
                    db.write(b).unwrap();
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ack {w} {n}").unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn crash_recovery_keeps_acknowledged_writes() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let cycles: u64 = std::env::var("ORBIT_LSM_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new(2026);
    // (cycle, writer) -> highest acknowledged batch number.
    let mut acked: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    let mut last_seq = 0;
    let mut total_acks = 0u64;
    let started = Instant::now();
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("ORBIT_LSM_CRASH_CYCLE", cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<(u64, u64)>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut p = line.split_whitespace();
                if p.next() == Some("ack") {
                    let w: u64 = p.next().unwrap().parse().unwrap();
                    let n: u64 = p.next().unwrap().parse().unwrap();
                    if tx.send((w, n)).is_err() {
                        break;
                    }
                }
            }
        });
        // Wait for the first acknowledgement (the child is open and writing), then kill it
        // after a random delay, sometimes immediately.
        let first = rx.recv_timeout(Duration::from_secs(30));
        assert!(
            first.is_ok(),
            "cycle {cycle}: child never acknowledged a write"
        );
        std::thread::sleep(Duration::from_micros(rng.below(60_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        for (w, n) in first.into_iter().chain(rx.try_iter()) {
            let e = acked.entry((cycle, w)).or_insert(0);
            *e = (*e).max(n);
            total_acks += 1;
        }

        let db = Db::open(dir.path(), options()).unwrap();
        let seq = db.stats().last_sequence;
        assert!(
            seq >= last_seq,
            "cycle {cycle}: sequence went back from {last_seq} to {seq}"
        );
        last_seq = seq;
        // Every acknowledged batch of this cycle is fully present.
        for w in 0..WRITERS {
            if let Some(&max) = acked.get(&(cycle, w)) {
                for n in 0..=max {
                    for j in 0..KEYS_PER_BATCH {
                        assert_eq!(
                            db.get(&batch_key(cycle, w, n, j)).unwrap(),
                            Some(batch_value(cycle, w, n)),
                            "cycle {cycle}: acknowledged batch w{w} n{n} lost"
                        );
                    }
                }
            }
        }
        // No batch is half-visible: group what this cycle left by batch.
        let lo = format!("c{cycle:05}-").into_bytes();
        let hi = format!("c{cycle:05}.").into_bytes();
        let mut per_batch: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        for kv in db.range(Bound::Included(&lo), Bound::Excluded(&hi)) {
            let (k, _) = kv.unwrap();
            let k = String::from_utf8(k).unwrap();
            let parts: Vec<&str> = k.split('-').collect();
            let w: u64 = parts[1][1..].parse().unwrap();
            let n: u64 = parts[2][1..].parse().unwrap();
            *per_batch.entry((w, n)).or_insert(0) += 1;
        }
        for ((w, n), count) in per_batch {
            assert_eq!(
                count, KEYS_PER_BATCH,
                "cycle {cycle}: batch w{w} n{n} is half-visible"
            );
        }
        // Spot-check older cycles.
        if cycle > 0 {
            let c = rng.below(cycle);
            for w in 0..WRITERS {
                if let Some(&max) = acked.get(&(c, w)) {
                    let n = rng.below(max + 1);
                    assert_eq!(
                        db.get(&batch_key(c, w, n, 0)).unwrap(),
                        Some(batch_value(c, w, n)),
                        "cycle {cycle}: batch from cycle {c} lost"
                    );
                }
            }
        }
        drop(db);
    }
    eprintln!(
        "{cycles} crash cycles, {total_acks} acknowledged batches verified in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
