//! Readers, range scans and snapshots running while writers, flushes and compactions change
//! the tree underneath them: every read must see a consistent state.
//!
//! Each writer owns a counter key and writes, in one batch, `counter = n` and a pair of keys
//! `pair-a`/`pair-b` both set to the same value. Readers check that a writer's counter never
//! goes backwards, and that every snapshot and scan sees the two halves of a pair equal.

mod common;

use orbit_lsm::{Db, Options, SyncMode, WriteBatch};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const WRITERS: u64 = 2;

fn opts() -> Options {
    Options {
        sync: SyncMode::None,
        memtable_size: 16 << 10,
        compaction_threshold: 2,
        block_size: 512,
        target_file_size: 32 << 10,
        level1_size: 64 << 10,
        ..Options::default()
    }
}

#[test]
fn readers_see_consistent_states_during_flush_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), opts()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let (db, stop) = (db.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 6000 {
                n += 1;
                let mut b = WriteBatch::new();
                b.put(format!("counter-{w}"), n.to_be_bytes());
                let v = format!("{w}-{n}-{}", "p".repeat((n % 64) as usize));
                b.put(format!("pair-{w}-{:03}-a", n % 200), &v);
                b.put(format!("pair-{w}-{:03}-b", n % 200), &v);
                // Filler so memtables fill and compactions run.
                b.put(format!("fill-{w}-{n:08}"), [7u8; 40]);
                if n.is_multiple_of(5) {
                    b.delete(format!("fill-{w}-{:08}", n - 4));
                }
                db.write(b).unwrap();
            }
            stop.store(true, Ordering::Relaxed);
        }));
    }
    // Point readers: counters never go backwards.
    for w in 0..WRITERS {
        let (db, stop) = (db.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            let mut last = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(v) = db.get(format!("counter-{w}").as_bytes()).unwrap() {
                    let n = u64::from_be_bytes(v.try_into().unwrap());
                    assert!(n >= last, "counter-{w} went back from {last} to {n}");
                    last = n;
                }
            }
        }));
    }
    // Scanners: pairs are always equal within one scan and one snapshot.
    {
        let (db, stop) = (db.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            let mut scans = 0;
            while !stop.load(Ordering::Relaxed) || scans < 3 {
                scans += 1;
                let snap = db.snapshot();
                let pairs: Vec<_> = db
                    .range(Bound::Included(b"pair-"), Bound::Excluded(b"pair."))
                    .map(|r| r.unwrap())
                    .collect();
                for ch in pairs.chunks(2) {
                    assert_eq!(ch.len(), 2);
                    assert_eq!(ch[0].1, ch[1].1, "half-visible pair {:?}", ch[0].0);
                }
                // The snapshot keeps answering consistently while the tree changes.
                let from_snap: Vec<_> = snap
                    .range(Bound::Included(b"pair-"), Bound::Excluded(b"pair."))
                    .map(|r| r.unwrap())
                    .collect();
                for (k, v) in from_snap.iter().take(20) {
                    assert_eq!(snap.get(k).unwrap().as_ref(), Some(v));
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let s = db.stats();
    assert!(s.flushes > 5 && s.compactions > 0, "{s:?}");
}

/// The calls an async task makes: `try_write` applies a batch without waiting for its fsync
/// (invisible until `wait_durable`), refuses when it would have to switch memtables, and
/// `get_cached` answers from memory or says it cannot.
#[test]
fn try_write_defers_the_fsync_and_get_cached_never_reads_a_file() {
    use orbit_lsm::TryWrite;
    let dir = tempfile::tempdir().unwrap();
    let open = || Db::open(dir.path(), common::tiny(SyncMode::PerCommit)).unwrap();
    let db = open();
    let one = |k: &str, v: &str| {
        let mut b = WriteBatch::new();
        b.put(k.as_bytes(), v.as_bytes());
        b
    };
    let TryWrite::Pending(at) = db.try_write(&one("a", "1")).unwrap() else {
        panic!("a PerCommit write from try_write waits for its fsync");
    };
    assert_eq!(
        db.get(b"a").unwrap(),
        None,
        "invisible before it is durable"
    );
    assert_eq!(db.get_cached(b"a").unwrap(), Some(None));
    db.wait_durable(at).unwrap();
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get_cached(b"a").unwrap(), Some(Some(b"1".to_vec())));

    // A full memtable is switched by a blocking writer, never by try_write.
    let mut refused = false;
    for i in 0..1000 {
        match db
            .try_write(&one(&format!("k{i:04}"), &"x".repeat(64)))
            .unwrap()
        {
            TryWrite::Pending(at) => db.wait_durable(at).unwrap(),
            TryWrite::WouldBlock => {
                refused = true;
                db.write(one(&format!("k{i:04}"), "blocking")).unwrap();
                break;
            }
            TryWrite::Applied => panic!("PerCommit never answers Applied"),
        }
    }
    assert!(
        refused,
        "try_write refused once the 4 KiB memtable was full"
    );
    db.flush().unwrap();
    drop(db);

    // Reopened, the tables' blocks are not cached: get_cached declines, get reads and caches.
    let db = open();
    assert_eq!(db.get_cached(b"k0000").unwrap(), None);
    let value = db.get(b"k0000").unwrap();
    assert_eq!(value, Some("x".repeat(64).into_bytes()));
    assert_eq!(db.get_cached(b"k0000").unwrap(), Some(value));
    assert_eq!(
        db.get_cached(b"absent").unwrap(),
        Some(None),
        "the bloom filter answers"
    );
}

/// Group commit with many `PerCommit` writers (parked waiters, a leader that gathers): a write
/// is visible to its writer the moment `put` returns, and fsyncs are shared.
#[test]
fn every_durable_writer_reads_its_own_write_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            sync: SyncMode::PerCommit,
            memtable_size: 64 << 10,
            ..opts()
        },
    )
    .unwrap();
    std::thread::scope(|s| {
        for w in 0..8u32 {
            let db = &db;
            s.spawn(move || {
                for i in 0..300u32 {
                    let key = format!("w{w}-{i}");
                    db.put(key.as_bytes(), &i.to_le_bytes()).unwrap();
                    assert_eq!(
                        db.get(key.as_bytes()).unwrap(),
                        Some(i.to_le_bytes().to_vec()),
                        "{key} not visible after its put returned"
                    );
                }
            });
        }
    });
    let stats = db.stats();
    assert!(
        stats.wal_syncs < stats.writes,
        "no fsync was shared: {} fsyncs for {} writes",
        stats.wal_syncs,
        stats.writes
    );
}
