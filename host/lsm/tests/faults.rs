//! Fault injection: a file system that fails the N-th write or fsync (leaving a torn write
//! behind); taking the directory lock counts as a write. The engine must return an error, refuse later writes after a failed durability
//! step, and reopen cleanly (on the real file system) with every write it acknowledged.

mod common;

use common::tiny;
use orbit_lsm::fs::{FaultFs, FaultFsHandle, FaultKind};
use orbit_lsm::{Db, Error, Options, SyncMode, WriteBatch};
use std::ops::Bound;
use std::sync::Arc;

const BATCHES: u64 = 250;

fn k(i: u64, j: u64) -> Vec<u8> {
    format!("key{:05}-{j}", i % 180).into_bytes()
}
fn v(i: u64) -> Vec<u8> {
    format!("value-{i}-{}", "v".repeat((i % 40) as usize)).into_bytes()
}

/// Runs the workload; returns (acknowledged batches, how many of them were acknowledged as
/// durable, the error that stopped it).
fn workload(dir: &std::path::Path, opts: Options) -> (Vec<u64>, usize, Option<Error>) {
    let per_commit = opts.sync == SyncMode::PerCommit;
    let db = match Db::open(dir, opts) {
        Ok(db) => db,
        Err(e) => return (Vec::new(), 0, Some(e)),
    };
    let mut acked = Vec::new();
    let mut durable = 0;
    for i in 0..BATCHES {
        let mut b = WriteBatch::new();
        b.put(k(i, 0), v(i));
        b.put(k(i, 1), v(i));
        if i % 7 == 0 {
            b.delete(k(i + 3, 0));
            b.delete(k(i + 3, 1));
        }
        match db.write(b) {
            Ok(()) => {
                acked.push(i);
                if per_commit {
                    durable = acked.len();
                }
            }
            Err(e) => {
                // After a failure the engine refuses writes (or the failure was already fatal).
                let again = db.put(b"after", b"failure");
                assert!(
                    again.is_err(),
                    "write accepted after a failed durability step: {e}"
                );
                return (acked, durable, Some(e));
            }
        }
        if i % 50 == 49 {
            match db.sync() {
                Ok(()) => durable = acked.len(),
                Err(e) => return (acked, durable, Some(e)),
            }
        }
    }
    (acked, durable, None)
}

/// The expected state after replaying acknowledged batches (batches are applied in order).
fn expected(acked: &[u64]) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = std::collections::BTreeMap::new();
    for &i in acked {
        m.insert(k(i, 0), v(i));
        m.insert(k(i, 1), v(i));
        if i % 7 == 0 {
            m.remove(&k(i + 3, 0));
            m.remove(&k(i + 3, 1));
        }
    }
    m
}

/// The recovered state must be what a prefix of the batches produces, at least as long as the
/// durably acknowledged ones (PerCommit: every acknowledged batch; None: those before the last
/// successful `sync`) and at most one longer than the acknowledged ones (the batch whose write
/// failed may have reached the disk).
fn check_recovered(
    dir: &std::path::Path,
    acked: &[u64],
    durable: usize,
    sync: SyncMode,
    ctx: &str,
) {
    let db = Db::open(dir, tiny(sync)).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
    let got: std::collections::BTreeMap<_, _> = db
        .range(Bound::Unbounded, Bound::Unbounded)
        .map(|r| r.unwrap())
        .collect();
    let matches = (durable..=acked.len() + 1).any(|n| {
        let prefix: Vec<u64> = (0..n as u64).collect();
        got == expected(&prefix)
    });
    assert!(
        matches,
        "{ctx}: recovered state ({} keys) is not a prefix of the batches covering the {durable} durable ones",
        got.len()
    );
    db.put(b"still", b"writable").unwrap();
}

fn sweep(kind: FaultKind, sync: SyncMode, points: u64) {
    // Count the operations of a clean run to spread the failure points over all of them.
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(kind, u64::MAX);
    let mut opts = tiny(sync);
    opts.fs = Arc::new(FaultFsHandle(fs.clone()));
    let (acked, _, err) = workload(dir.path(), opts);
    assert!(err.is_none() && acked.len() == BATCHES as usize);
    let total = fs.ops();
    assert!(total > 20, "workload did too little I/O ({total} ops)");
    let mut failures = 0;
    for p in 0..points {
        let fail_at = 1 + p * total / points;
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFs::new(kind, fail_at);
        let mut opts = tiny(sync);
        opts.fs = Arc::new(FaultFsHandle(fs.clone()));
        let (acked, durable, err) = workload(dir.path(), opts);
        let ctx = format!("{kind:?} failure at op {fail_at}/{total} ({sync:?})");
        if fs.tripped() {
            failures += 1;
            // Background failures may surface on a later write or not at all before the end.
            if let Some(e) = &err {
                let msg = e.to_string();
                assert!(
                    msg.contains("injected") || msg.contains("refuse") || msg.contains("stopped"),
                    "{ctx}: unexpected error {msg}"
                );
            }
        }
        check_recovered(dir.path(), &acked, durable, sync, &ctx);
    }
    assert!(
        failures > points / 2,
        "only {failures} of {points} runs hit the fault"
    );
}

#[test]
fn failed_writes_never_lose_acknowledged_data() {
    sweep(FaultKind::Write, SyncMode::None, 24);
}

#[test]
fn failed_fsyncs_never_lose_acknowledged_data() {
    sweep(FaultKind::Sync, SyncMode::PerCommit, 24);
}

#[test]
fn any_failure_never_loses_acknowledged_data() {
    sweep(FaultKind::Any, SyncMode::None, 16);
}

#[test]
fn failed_fsync_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    // Count the syncs `open` does, then fail the first log fsync after it.
    let fs = FaultFs::new(FaultKind::Sync, u64::MAX);
    let mut opts = tiny(SyncMode::PerCommit);
    opts.fs = Arc::new(FaultFsHandle(fs.clone()));
    drop(Db::open(dir.path(), opts).unwrap());
    let open_syncs = fs.ops();

    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(FaultKind::Sync, open_syncs + 2);
    let mut opts = tiny(SyncMode::PerCommit);
    opts.fs = Arc::new(FaultFsHandle(fs.clone()));
    let db = Db::open(dir.path(), opts).unwrap();
    db.put(b"a", b"1").unwrap();
    let err = db.put(b"b", b"2").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                op: "fsync log",
                ..
            }
        ),
        "{err}"
    );
    let err = db.put(b"c", b"3").unwrap_err();
    assert!(matches!(err, Error::Fatal(_)), "{err}");
    assert!(err.to_string().contains("fsync log"), "{err}");
    // Reads keep working.
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
    drop(db);
    let db = Db::open(dir.path(), tiny(SyncMode::PerCommit)).unwrap();
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get(b"c").unwrap(), None);
}

#[test]
fn failed_lock_fails_open_cleanly() {
    // Taking the directory lock is the first write-counted operation of `open`.
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(FaultKind::Write, 1);
    let mut opts = tiny(SyncMode::PerCommit);
    opts.fs = Arc::new(FaultFsHandle(fs.clone()));
    let err = Db::open(dir.path(), opts).err().expect("open must fail");
    assert!(fs.tripped());
    assert!(
        matches!(&err, Error::Io { op: "lock", path, .. } if path.ends_with("LOCK")),
        "{err}"
    );
    assert!(err.to_string().contains("injected"), "{err}");
    // Nothing was written and nothing stays locked: a clean open works.
    let db = Db::open(dir.path(), tiny(SyncMode::PerCommit)).unwrap();
    db.put(b"a", b"1").unwrap();
    drop(db);
    let db = Db::open(dir.path(), tiny(SyncMode::PerCommit)).unwrap();
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn lock_taken_through_the_fault_fs_still_excludes_a_second_open() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(FaultKind::Any, u64::MAX);
    let mut opts = tiny(SyncMode::PerCommit);
    opts.fs = Arc::new(FaultFsHandle(fs.clone()));
    let db = Db::open(dir.path(), opts).unwrap();
    let err = Db::open(dir.path(), tiny(SyncMode::PerCommit))
        .err()
        .expect("second open must fail");
    assert!(err.to_string().contains("another Db"), "{err}");
    drop(db);
    Db::open(dir.path(), tiny(SyncMode::PerCommit)).unwrap();
}

/// Group commit under a failing fsync: writers parked on the failing fsync wake to a fatal
/// engine and never try the fsync again (a retried fsync can report success for pages the
/// kernel already dropped).
#[test]
fn writers_waiting_on_a_failed_fsync_never_retry_it() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(FaultKind::Sync, u64::MAX);
    let opts = |fs: &Arc<FaultFs>| Options {
        sync: SyncMode::PerCommit,
        fs: Arc::new(FaultFsHandle(fs.clone())),
        ..Options::default()
    };
    drop(Db::open(dir.path(), opts(&fs)).unwrap());
    let open_syncs = fs.ops();

    let dir = tempfile::tempdir().unwrap();
    let fail_at = open_syncs + 20;
    let fs = FaultFs::new(FaultKind::Sync, fail_at);
    let db = Db::open(dir.path(), opts(&fs)).unwrap();
    let acked: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let db = &db;
                s.spawn(move || {
                    let mut acked = Vec::new();
                    for i in 0..200 {
                        match db.put(&k(t, i), &v(i)) {
                            Ok(()) => acked.push(i),
                            Err(_) => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(fs.tripped());
    assert_eq!(
        fs.ops(),
        fail_at,
        "an fsync ran after the failed one (the log was fsynced again)"
    );
    assert!(matches!(db.put(b"x", b"y").unwrap_err(), Error::Fatal(_)));
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for (t, acked) in acked.iter().enumerate() {
        for &i in acked {
            assert_eq!(
                db.get(&k(t as u64, i)).unwrap(),
                Some(v(i)),
                "writer {t} write {i}"
            );
        }
    }
}
