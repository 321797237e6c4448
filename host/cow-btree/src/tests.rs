//! In-crate tests that need the private file layer: model-based randomized
//! runs against a `BTreeMap`, fault injection, corruption detection and the
//! page decoder fed with random and mutated images.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use crate::io::{FaultyFs, StdFs};
use crate::{Db, Error, Options, SyncMode, WriteBatch};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn small_opts() -> Options {
    Options {
        page_size: 1024,
        max_keys_per_node: 8,
        cache_size: 1 << 20,
        ..Options::default()
    }
}

fn rand_key(rng: &mut fastrand::Rng, space: u32) -> Vec<u8> {
    let n = rng.u32(0..space);
    let mut k = format!("k{n:06}").into_bytes();
    if rng.u8(0..20) == 0 {
        // Some long keys, occasionally longer than a page.
        k.extend(std::iter::repeat_n(b'x', rng.usize(0..1500)));
    }
    k
}

fn rand_value(rng: &mut fastrand::Rng) -> Vec<u8> {
    let len = match rng.u8(0..10) {
        0 => rng.usize(300..5000), // overflow
        1 => rng.usize(64..400),   // compressible
        _ => rng.usize(0..40),
    };
    if rng.bool() {
        vec![rng.u8(b'a'..=b'c'); len]
    } else {
        (0..len).map(|_| rng.u8(..)).collect()
    }
}

fn check_all(db_snap: &crate::Snapshot, model: &Model) {
    let got: Vec<(Vec<u8>, Vec<u8>)> = db_snap
        .range(Bound::Unbounded, Bound::Unbounded)
        .map(|r| r.unwrap())
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(got.len(), want.len(), "entry count");
    assert!(got == want, "full scan differs from the model");
    assert_eq!(db_snap.len(), model.len() as u64);
}

fn check_range(snap: &crate::Snapshot, model: &Model, rng: &mut fastrand::Rng) {
    let a = rand_key(rng, 600);
    let b = rand_key(rng, 600);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let lb = match rng.u8(0..3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(lo.as_slice()),
        _ => Bound::Excluded(lo.as_slice()),
    };
    let ub = match rng.u8(0..3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(hi.as_slice()),
        _ => Bound::Excluded(hi.as_slice()),
    };
    if let (Bound::Excluded(x), Bound::Excluded(y)) = (lb, ub)
        && x == y
    {
        return; // BTreeMap panics on this empty range
    }
    let got: Vec<_> = snap.range(lb, ub).map(|r| r.unwrap()).collect();
    // The borrowing form yields the same entries.
    let mut it = snap.range(lb, ub);
    let mut borrowed = Vec::new();
    while let Some(r) = it.next_ref() {
        let (k, v) = r.unwrap();
        borrowed.push((k.to_vec(), v.to_vec()));
    }
    assert!(borrowed == got, "next_ref differs from next");
    let want: Vec<_> = model
        .range::<[u8], _>((lb, ub))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(
        got == want,
        "range {lb:?}..{ub:?} differs: got {} want {}",
        got.len(),
        want.len()
    );
}

fn model_run(seed: u64, steps: usize, opts: Options) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut db = Db::open(dir.path(), opts.clone()).unwrap();
    let mut model = Model::new();
    // Long-lived readers: (snapshot, the model as of it).
    let mut readers: Vec<(crate::Snapshot, Model)> = Vec::new();
    for step in 0..steps {
        let mut batch = WriteBatch::new();
        let mut next = model.clone();
        for _ in 0..rng.usize(1..12) {
            let k = rand_key(&mut rng, 600);
            if rng.u8(0..4) == 0 {
                batch.delete(k.clone());
                next.remove(&k);
            } else {
                let v = rand_value(&mut rng);
                batch.put(k.clone(), v.clone());
                next.insert(k, v);
            }
        }
        if rng.u8(0..30) == 0 {
            // A big batch deleting a run of keys: exercises merges.
            let keys: Vec<Vec<u8>> = next.keys().take(rng.usize(0..200)).cloned().collect();
            for k in keys {
                batch.delete(k.clone());
                next.remove(&k);
            }
        }
        db.write(batch).unwrap();
        model = next;
        for _ in 0..3 {
            let k = rand_key(&mut rng, 600);
            assert_eq!(
                db.get(&k).unwrap(),
                model.get(&k).cloned(),
                "get {k:?} at step {step}"
            );
            // get_into replaces whatever the buffer held.
            let mut buf = b"stale".to_vec();
            let found = db.get_into(&k, &mut buf).unwrap();
            assert_eq!(found, model.contains_key(&k));
            if let Some(v) = model.get(&k) {
                assert_eq!(&buf, v);
            }
        }
        if rng.u8(0..10) == 0 {
            readers.push((db.snapshot(), model.clone()));
        }
        if rng.u8(0..15) == 0 && !readers.is_empty() {
            let i = rng.usize(0..readers.len());
            let (snap, m) = readers.swap_remove(i);
            check_all(&snap, &m);
            check_range(&snap, &m, &mut rng);
        }
        if step % 50 == 0 {
            check_range(&db.snapshot(), &model, &mut rng);
        }
        if rng.u16(0..200) == 0 {
            db.compact().unwrap();
            check_all(&db.snapshot(), &model);
        }
        if rng.u16(0..150) == 0 {
            // Readers outlive... nothing: a reopen needs them dropped first
            // only because they pin the old handle's file; check them now.
            for (snap, m) in readers.drain(..) {
                check_all(&snap, &m);
            }
            drop(db);
            db = Db::open(dir.path(), opts.clone()).unwrap();
            check_all(&db.snapshot(), &model);
        }
    }
    for (snap, m) in readers.drain(..) {
        check_all(&snap, &m);
    }
    check_all(&db.snapshot(), &model);
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    check_all(&db.snapshot(), &model);
    // Freed pages were recycled: the file is not much larger than the data.
    let st = db.stats();
    assert!(
        st.free_pages + st.reserved_pages < 4 * (st.used_bytes / st.page_size as u64).max(64),
        "{st:?}"
    );
}

#[test]
fn model_small_pages() {
    let seeds: u64 = std::env::var("ORBIT_COW_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for seed in 0..seeds {
        model_run(seed, 600, small_opts());
    }
}

#[test]
fn model_default_options_nosync() {
    let opts = Options {
        sync: SyncMode::None,
        ..Options::default()
    };
    model_run(100, 500, opts);
}

#[test]
fn model_periodic_uncompressed() {
    let opts = Options {
        sync: SyncMode::Periodic(std::time::Duration::from_millis(5)),
        compression: false,
        page_size: 2048,
        max_keys_per_node: 16,
        ..Options::default()
    };
    model_run(200, 400, opts);
}

/// Non-durable commits mixed with syncs, long-lived snapshots across both,
/// a dirty-node budget small enough that deferred nodes are also written
/// under memory pressure, and simulated crashes: the handle is leaked (no
/// final sync) and the file reopened, which must give exactly the last
/// durable commit.
fn deferred_model_run(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let opts = Options {
        sync: SyncMode::None,
        cache_size: 256 << 10,
        dirty_limit: 32 << 10,
        ..small_opts()
    };
    let mut db = Db::open(dir.path(), opts.clone()).unwrap();
    let mut model = Model::new();
    // State of each commit not yet known lost, by txn.
    let mut history: BTreeMap<u64, Model> = BTreeMap::new();
    history.insert(db.snapshot().txn(), model.clone());
    let mut readers: Vec<(crate::Snapshot, Model)> = Vec::new();
    let (mut crashes, mut spilled, mut recycled) = (0, false, false);
    for step in 0..steps {
        let mut batch = WriteBatch::new();
        let mut next = model.clone();
        for _ in 0..rng.usize(1..16) {
            let k = rand_key(&mut rng, 400);
            if rng.u8(0..4) == 0 {
                batch.delete(k.clone());
                next.remove(&k);
            } else {
                let v = rand_value(&mut rng);
                batch.put(k.clone(), v.clone());
                next.insert(k, v);
            }
        }
        db.write(batch).unwrap();
        model = next;
        history.insert(db.snapshot().txn(), model.clone());
        let k = rand_key(&mut rng, 400);
        assert_eq!(db.get(&k).unwrap(), model.get(&k).cloned(), "step {step}");
        let st = db.stats();
        spilled |= st.written_bytes > 0 && st.durable_txn < st.txn;
        recycled |= st.free_pages > 0 && st.durable_txn < st.txn;
        if rng.u8(0..8) == 0 {
            readers.push((db.snapshot(), model.clone()));
        }
        if rng.u8(0..12) == 0 && !readers.is_empty() {
            let (snap, m) = readers.swap_remove(rng.usize(0..readers.len()));
            check_all(&snap, &m);
            check_range(&snap, &m, &mut rng);
        }
        match rng.u8(0..40) {
            0..=2 => {
                db.sync().unwrap();
                let st = db.stats();
                assert_eq!(st.durable_txn, st.txn);
                assert_eq!(st.dirty_bytes, 0);
            }
            3 => {
                db.compact().unwrap();
                history.insert(db.snapshot().txn(), model.clone());
                check_all(&db.snapshot(), &model);
            }
            4 => {
                // Crash: no final sync. Readers of the old handle go first
                // (the new handle may reuse any page the old one had not
                // made durable).
                for (snap, m) in readers.drain(..) {
                    check_all(&snap, &m);
                }
                let durable = db.stats().durable_txn;
                db.simulate_crash();
                db = Db::open(dir.path(), opts.clone()).unwrap();
                let snap = db.snapshot();
                assert_eq!(snap.txn(), durable, "step {step}: recovered commit");
                model = history
                    .get(&durable)
                    .cloned()
                    .unwrap_or_else(|| panic!("no state for durable txn {durable}"));
                check_all(&snap, &model);
                history.retain(|&t, _| t <= durable);
                crashes += 1;
            }
            _ => {}
        }
        let durable = db.stats().durable_txn;
        history.retain(|&t, _| t >= durable);
    }
    for (snap, m) in readers.drain(..) {
        check_all(&snap, &m);
    }
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    check_all(&db.snapshot(), &model);
    assert!(
        crashes > 0 && spilled && recycled,
        "{crashes} {spilled} {recycled}"
    );
    let st = db.stats();
    assert!(
        st.free_pages + st.reserved_pages < 4 * (st.used_bytes / st.page_size as u64).max(64),
        "{st:?}"
    );
}

#[test]
fn model_deferred_writes_with_syncs_snapshots_and_crashes() {
    let seeds: u64 = std::env::var("ORBIT_COW_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for seed in 0..seeds {
        deferred_model_run(1000 + seed, 700);
    }
}

#[test]
fn deferred_commits_are_rewritten_in_memory_and_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        sync: SyncMode::None,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let fsyncs = db.stats().fsyncs;
    // 300 commits rewriting the same 2000 keys: every commit copies the
    // leaves it touches, but the copies replace each other in memory.
    for round in 0..300u32 {
        let mut b = WriteBatch::new();
        for i in (round % 7..2000).step_by(7) {
            b.put(
                format!("{i:08}").into_bytes(),
                vec![(round % 251) as u8; 60],
            );
        }
        db.write(b).unwrap();
    }
    let st = db.stats();
    assert_eq!(st.fsyncs, fsyncs, "no fsync before sync: {st:?}");
    assert_eq!(st.written_bytes, 0, "nothing written before sync: {st:?}");
    assert!(st.dirty_bytes > 0);
    // A snapshot taken now still reads its values after later commits and
    // after the sync that writes its nodes.
    let snap = db.snapshot();
    let mut b = WriteBatch::new();
    b.put(b"00000003".to_vec(), b"later".to_vec());
    db.write(b).unwrap();
    db.sync().unwrap();
    let st = db.stats();
    assert_eq!(st.fsyncs, fsyncs + 1);
    assert_eq!(st.dirty_bytes, 0);
    // Written once: about the size of the tree, not 300 commits' worth.
    let tree_bytes = st.used_bytes - 8192;
    assert!(
        st.written_bytes < 2 * tree_bytes + 64 * 1024,
        "wrote {} bytes for a tree of {tree_bytes}: {st:?}",
        st.written_bytes
    );
    // Key 3 was last written in round 297 (rounds with round % 7 == 3).
    assert_eq!(
        snap.get(b"00000003").unwrap(),
        Some(vec![(297 % 251) as u8; 60])
    );
    assert_eq!(db.get(b"00000003").unwrap(), Some(b"later".to_vec()));
    drop(snap);
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    assert_eq!(db.snapshot().len(), 2000);
    assert_eq!(db.get(b"00000003").unwrap(), Some(b"later".to_vec()));
    assert_eq!(db.get(b"00001999").unwrap().unwrap().len(), 60);
}

fn bench_key(i: u64) -> Vec<u8> {
    format!(
        "{:016}",
        i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1_000_000_007
    )
    .into_bytes()
}

#[test]
fn deferred_single_key_commits_force_no_sync_until_the_file_doubles() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        sync: SyncMode::None,
        page_size: 1024,
        compression: false,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let keys = 40_000u64;
    for chunk in (0..keys).collect::<Vec<_>>().chunks(1000) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.put(bench_key(i), vec![1u8; 100]);
        }
        db.write(b).unwrap();
    }
    db.sync().unwrap();
    let base = db.stats();
    assert!(base.used_bytes > 6 * 1024 * 1024, "{base:?}");
    // Single-key commits of random keys: each one replaces a leaf of the
    // durable tree, whose page must wait for the next durable point.
    let mut rng = fastrand::Rng::with_seed(7);
    let mut model: BTreeMap<u64, Option<u8>> = BTreeMap::new();
    for n in 0..20_000u32 {
        let i = rng.u64(0..keys);
        let v = (n % 250) as u8 + 2;
        let mut b = WriteBatch::new();
        b.put(bench_key(i), vec![v; 100]);
        db.write(b).unwrap();
        model.insert(i, Some(v));
        let st = db.stats();
        // No fdatasync is forced (there used to be one per 4096 freed
        // pages), and the used area stays within the durable tree plus
        // the latest one.
        assert_eq!(st.fsyncs, base.fsyncs, "after {n} commits: {st:?}");
        assert!(
            st.used_bytes < 2 * base.used_bytes + (1 << 20),
            "file grew past twice the tree: {st:?} (base {base:?})"
        );
        if n == 8000 {
            assert!(st.reserved_pages > 4096, "{st:?}");
        }
    }
    // The tree shrinks: once the freed pages of the durable tree are half
    // the used area, a durable point makes them reusable.
    let mut forced = false;
    for i in 0..keys * 3 / 4 {
        let mut b = WriteBatch::new();
        b.delete(bench_key(i));
        db.write(b).unwrap();
        model.insert(i, None);
        let st = db.stats();
        if st.fsyncs > base.fsyncs {
            assert!(i > keys / 4, "forced after {i} deletes: {st:?}");
            forced = true;
            break;
        }
    }
    assert!(forced, "{:?}", db.stats());
    let after = db.stats();
    // The durable point came before the commit that found it due.
    assert_eq!(after.durable_txn + 1, after.txn);
    // Those pages are reused: rewriting the rest does not grow the file.
    for i in keys * 3 / 4..keys {
        let mut b = WriteBatch::new();
        b.put(bench_key(i), vec![9; 100]);
        db.write(b).unwrap();
        model.insert(i, Some(9));
    }
    let end = db.stats();
    assert!(
        end.used_bytes <= after.used_bytes + (1 << 20),
        "{end:?} vs {after:?}"
    );
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    let want: Vec<(u64, Option<u8>)> = (0..keys)
        .map(|i| (i, model.get(&i).copied().unwrap_or(Some(1))))
        .collect();
    let live = want.iter().filter(|(_, v)| v.is_some()).count() as u64;
    assert_eq!(db.snapshot().len(), live);
    for (i, v) in want {
        assert_eq!(
            db.get(&bench_key(i)).unwrap(),
            v.map(|v| vec![v; 100]),
            "key {i}"
        );
    }
}

#[test]
fn memory_pressure_writes_the_oldest_dirty_nodes_and_keeps_half() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 64 << 10;
    let opts = Options {
        sync: SyncMode::None,
        page_size: 1024,
        cache_size: 4 << 20,
        dirty_limit: limit,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let keys = 20_000u64;
    for chunk in (0..keys).collect::<Vec<_>>().chunks(1000) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.put(bench_key(i), vec![1u8; 100]);
        }
        db.write(b).unwrap();
    }
    db.sync().unwrap();
    let written_before = db.stats().written_bytes;
    // Each commit rewrites one cold key (a new leaf, mostly) and one hot key.
    let mut spills = 0;
    let mut last_dirty = 0;
    for n in 0..3000u64 {
        let mut b = WriteBatch::new();
        b.put(bench_key((n * 7919) % keys), vec![2u8; 100]);
        b.put(bench_key(17), vec![(n % 250) as u8; 100]);
        db.write(b).unwrap();
        let st = db.stats();
        let (kept, written) = db.dirty_ages();
        if st.dirty_bytes < last_dirty {
            // A write-out just started: it took the oldest nodes, down to
            // half the budget, and left the newer ones in memory.
            spills += 1;
            let (kept, written) = (kept.unwrap(), written.unwrap());
            assert!(written <= kept, "wrote txn {written}, kept txn {kept}");
            assert!(
                st.dirty_bytes as usize >= limit / 2 - 1024,
                "kept only {} of {limit}: {st:?}",
                st.dirty_bytes
            );
            assert!(st.dirty_bytes as usize <= limit / 2 + 8 * 1024, "{st:?}");
        }
        last_dirty = st.dirty_bytes;
    }
    assert!(spills >= 5, "{spills} write-outs");
    // The hot key's leaf changed in every commit: never written by a
    // write-out, it is still in memory.
    let st = db.stats();
    assert!(
        ((st.written_bytes - written_before) as usize) < spills * (limit / 2 + 8 * 1024),
        "{st:?}"
    );
    assert_eq!(
        db.get(&bench_key(17)).unwrap(),
        Some(vec![(2999 % 250) as u8; 100])
    );
}

#[test]
fn snapshot_survives_many_commits_and_pages_are_reused_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let mut b = WriteBatch::new();
    for i in 0..2000u32 {
        b.put(format!("{i:08}").into_bytes(), vec![1u8; 30]);
    }
    db.write(b).unwrap();
    let snap = db.snapshot();
    for round in 0..200u32 {
        let mut b = WriteBatch::new();
        for i in (0..2000u32).step_by(97) {
            b.put(format!("{i:08}").into_bytes(), round.to_le_bytes().to_vec());
        }
        db.write(b).unwrap();
    }
    // The old snapshot still sees round-0 data everywhere.
    let n = snap
        .range(Bound::Unbounded, Bound::Unbounded)
        .map(|r| r.unwrap())
        .filter(|(_, v)| v == &vec![1u8; 30])
        .count();
    assert_eq!(n, 2000);
    let before = db.stats();
    assert!(before.reserved_pages > 0, "{before:?}");
    drop(snap);
    let mut b = WriteBatch::new();
    b.put(b"x".to_vec(), b"y".to_vec());
    db.write(b).unwrap();
    let after = db.stats();
    // Only the pages of the last commit remain reserved.
    assert!(
        after.reserved_pages * 10 < before.reserved_pages,
        "{before:?} {after:?}"
    );
    assert!(after.free_pages > 0, "{after:?}");
}

#[test]
fn compaction_shrinks_the_file_and_keeps_old_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let mut b = WriteBatch::new();
    for i in 0..20000u32 {
        b.put(
            format!("{i:08}").into_bytes(),
            vec![(i % 251) as u8; 100 + (i % 7) as usize * 300],
        );
    }
    db.write(b).unwrap();
    let mut b = WriteBatch::new();
    for i in 0..20000u32 {
        if i % 10 != 0 {
            b.delete(format!("{i:08}").into_bytes());
        }
    }
    db.write(b).unwrap();
    let old = db.snapshot();
    let big = db.stats().file_bytes;
    db.compact().unwrap();
    let small = db.stats().file_bytes;
    assert!(small * 4 < big, "compaction {big} -> {small}");
    assert_eq!(old.len(), 2000);
    assert_eq!(old.range(Bound::Unbounded, Bound::Unbounded).count(), 2000);
    let mut b = WriteBatch::new();
    b.put(b"after".to_vec(), b"compaction".to_vec());
    db.write(b).unwrap();
    drop(old);
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.snapshot().len(), 2001);
    assert_eq!(
        db.get(b"00000010").unwrap(),
        Some(vec![10u8; 100 + 3 * 300])
    );
    assert_eq!(db.get(b"after").unwrap(), Some(b"compaction".to_vec()));
}

/// What a run against a failing file layer saw.
struct FaultyOutcome {
    /// The state of every acknowledged commit, oldest first.
    history: Vec<Model>,
    /// Index in `history` of the last state known durable (a successful
    /// `sync` in the deferred modes; every commit with `PerCommit`).
    durable: usize,
    /// The state the failed batch would have produced.
    failed: Option<Model>,
    fatal: bool,
}

/// Runs commits against a file layer that fails after `fail_after`
/// counted operations. In `SyncMode::None` it calls `sync` every few
/// commits, so failures hit deferred writes, meta writes and fsyncs.
fn faulty_run(dir: &Path, fs: &FaultyFs, sync: SyncMode, seed: u64) -> FaultyOutcome {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = FaultyOutcome {
        history: vec![Model::new()],
        durable: 0,
        failed: None,
        fatal: false,
    };
    let opts = Options {
        sync,
        // Small enough that deferred commits are also written under memory
        // pressure between syncs.
        cache_size: 64 << 10,
        ..small_opts()
    };
    let db = match Db::open_with(dir, opts, Arc::new(fs.clone())) {
        Ok(db) => db,
        Err(_) => return out,
    };
    for n in 0..60 {
        let mut batch = WriteBatch::new();
        let mut next = out.history.last().cloned().unwrap_or_default();
        for _ in 0..rng.usize(1..20) {
            let k = rand_key(&mut rng, 300);
            if rng.u8(0..5) == 0 {
                batch.delete(k.clone());
                next.remove(&k);
            } else {
                let v = rand_value(&mut rng);
                batch.put(k.clone(), v.clone());
                next.insert(k, v);
            }
        }
        let mut result = db.write(batch);
        if result.is_ok() {
            out.history.push(next.clone());
            if sync == SyncMode::PerCommit {
                out.durable = out.history.len() - 1;
            } else if n % 7 == 6 {
                result = db.sync();
                if result.is_ok() {
                    out.durable = out.history.len() - 1;
                }
            }
        }
        if let Err(e) = result {
            out.fatal = matches!(e, Error::Fatal { .. });
            out.failed = Some(next);
            // A failed fsync poisons the handle, and so does any failed
            // write in the deferred modes; a failed write of a PerCommit
            // commit does not, but the disk is still failing, so later
            // writes fail too.
            let mut b = WriteBatch::new();
            b.put(b"after-failure".to_vec(), b"x".to_vec());
            let again = db.write(b);
            if sync == SyncMode::PerCommit || out.fatal {
                assert!(
                    again.is_err(),
                    "write after a failure succeeded on a failing disk"
                );
            }
            if out.fatal {
                assert!(matches!(again, Err(Error::Fatal { .. })), "{again:?}");
                assert!(matches!(db.sync(), Err(Error::Fatal { .. })));
            } else {
                assert_eq!(sync, SyncMode::PerCommit, "deferred write errors are fatal");
            }
            // Reads still work, and see the last acknowledged commit.
            if let Some(m) = out.history.last() {
                for (k, v) in m.iter().take(5) {
                    assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
                }
            }
            break;
        }
    }
    drop(db);
    out
}

#[test]
fn fault_injection_write_and_fsync_failures() {
    let mut saw_fatal = false;
    let mut saw_write_error = false;
    let mut saw_deferred_fatal = false;
    for (i, fail_after) in [0u64, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 120]
        .into_iter()
        .enumerate()
    {
        for (count_writes, count_syncs) in [(true, false), (false, true), (true, true)] {
            for sync in [SyncMode::PerCommit, SyncMode::None] {
                let dir = tempfile::tempdir().unwrap();
                let fs = FaultyFs::new(fail_after, count_writes, count_syncs);
                let run = faulty_run(dir.path(), &fs, sync, i as u64);
                saw_fatal |= run.fatal;
                saw_write_error |= run.failed.is_some() && !run.fatal;
                saw_deferred_fatal |= run.fatal && sync == SyncMode::None;
                // Reopen on a healthy disk: the state is one acknowledged
                // commit (or the failed batch, whole), never older than the
                // last durable one.
                let db = Db::open_with(dir.path(), small_opts(), Arc::new(StdFs)).unwrap();
                let got: Model = db
                    .snapshot()
                    .range(Bound::Unbounded, Bound::Unbounded)
                    .map(|r| r.unwrap())
                    .collect();
                let ok = run.history[run.durable..].contains(&got)
                    || run.failed.as_ref().is_some_and(|f| &got == f);
                assert!(
                    ok,
                    "{sync:?} fail_after {fail_after} writes {count_writes} syncs {count_syncs}: \
                     state is not an acknowledged commit at or after the last durable one \
                     ({} commits, durable {})",
                    run.history.len() - 1,
                    run.durable
                );
                if sync == SyncMode::PerCommit {
                    // Every acknowledged commit was durable.
                    assert!(
                        &got == run.history.last().unwrap()
                            || run.failed.as_ref().is_some_and(|f| &got == f)
                    );
                }
            }
        }
    }
    assert!(saw_fatal && saw_write_error && saw_deferred_fatal);
}

fn leaf_pages_with_txn(path: &Path, page_size: usize, txn: u64) -> Vec<u64> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut p = 2u64;
    loop {
        let off = 8192 + (p as usize - 2) * page_size;
        if off + page_size > bytes.len() {
            break;
        }
        let pg = &bytes[off..off + page_size];
        if pg[4] == crate::page::KIND_LEAF
            && u64::from_le_bytes(pg[16..24].try_into().unwrap()) == txn
        {
            out.push(p);
        }
        p += 1;
    }
    out
}

#[test]
fn flipped_byte_is_reported_with_file_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        cache_size: 0,
        ..Options::default()
    };
    {
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        let mut b = WriteBatch::new();
        for i in 0..3000u32 {
            b.put(
                format!("{i:08}").into_bytes(),
                format!("value-{i}").into_bytes(),
            );
        }
        db.write(b).unwrap();
        let mut b = WriteBatch::new();
        b.put(b"00000000".to_vec(), b"changed".to_vec());
        db.write(b).unwrap();
    }
    let file = dir.path().join(crate::FILE_NAME);
    // A leaf written by txn 1 and still shared by txn 2's tree.
    let leaves = leaf_pages_with_txn(&file, 4096, 1);
    let victim = leaves[leaves.len() / 2];
    let mut bytes = std::fs::read(&file).unwrap();
    let off = 8192 + (victim as usize - 2) * 4096 + 2000;
    bytes[off] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let err = Db::open(dir.path(), opts.clone()).unwrap_err();
    match &err {
        Error::Corrupt { path, page, reason } => {
            assert_eq!(path, &file);
            assert_eq!(*page, Some(victim));
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("data.cow") && msg.contains(&format!("page {victim}")),
        "{msg}"
    );
    // Restore; open; then damage the page under a running database: reads
    // of that page fail with the same clear error, others still work.
    bytes[off] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    bytes[off] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let scan: Vec<_> = db.range(Bound::Unbounded, Bound::Unbounded).collect();
    let bad = scan.iter().filter(|r| r.is_err()).count();
    assert_eq!(bad, 1, "the scan stops at the damaged page with one error");
    match scan.last().unwrap() {
        Err(Error::Corrupt { page, .. }) => assert_eq!(*page, Some(victim)),
        other => panic!("{other:?}"),
    }
    assert_eq!(db.get(b"00000000").unwrap(), Some(b"changed".to_vec()));
}

#[test]
fn both_meta_slots_damaged_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let mut b = WriteBatch::new();
        b.put(b"a".to_vec(), b"b".to_vec());
        db.write(b).unwrap();
    }
    let file = dir.path().join(crate::FILE_NAME);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[20] ^= 1;
    bytes[4096 + 20] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let err = Db::open(dir.path(), Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("neither meta slot is valid") && err.contains("data.cow"),
        "{err}"
    );
}

#[test]
fn decoder_survives_random_and_mutated_pages() {
    let mut rng = fastrand::Rng::with_seed(7);
    let iters: usize = std::env::var("ORBIT_COW_DECODER_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20000);
    let seeds = [
        crate::fuzzing::sample_leaf(1024),
        crate::fuzzing::sample_branch(1024),
    ];
    for page in &seeds {
        crate::fuzzing::decode_page(page, 1024).unwrap();
    }
    let mut rejected = 0;
    for i in 0..iters {
        let original = if i % 10 == 0 {
            (0..1024).map(|_| rng.u8(..)).collect::<Vec<u8>>()
        } else {
            seeds[i % 2].clone()
        };
        let mut page = original.clone();
        for _ in 0..rng.usize(1..8) {
            let at = rng.usize(4..page.len());
            match rng.u8(0..3) {
                0 => page[at] = rng.u8(..),
                1 => page[at] ^= 1 << rng.u8(0..8),
                _ => page[at] = [0, 0xff, 1, 0x7f][rng.usize(0..4)],
            }
        }
        // Changed bytes under the old checksum: must be rejected.
        if page != original {
            assert!(crate::fuzzing::decode_page(&page, 1024).is_err());
        }
        crate::fuzzing::fix_checksum(&mut page);
        if crate::fuzzing::decode_page(&page, 1024).is_err() {
            rejected += 1;
        }
        let _ = crate::fuzzing::decode_meta(&page);
    }
    assert!(rejected > 0);
}

#[test]
fn group_commit_shares_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), Options::default()).unwrap());
    let before = db.stats().fsyncs;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let mut b = WriteBatch::new();
                    b.put(format!("t{t}-{i}").into_bytes(), vec![t as u8; 50]);
                    db.write(b).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let st = db.stats();
    let fsyncs = st.fsyncs - before;
    assert_eq!(st.entries, 320);
    assert!(
        fsyncs < 320,
        "8 concurrent writers used {fsyncs} fsyncs for 320 batches"
    );
    assert_eq!(fsyncs, st.commits);
}

#[test]
fn large_keys_and_values_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let key = vec![b'k'; 64 * 1024];
    let val: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let mut b = WriteBatch::new();
    b.put(key.clone(), val.clone());
    b.put(b"small".to_vec(), b"v".to_vec());
    db.write(b).unwrap();
    assert_eq!(db.get(&key).unwrap(), Some(val.clone()));
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(&key).unwrap(), Some(val));
    let too_big = vec![0u8; crate::MAX_KEY_LEN + 1];
    let mut b = WriteBatch::new();
    b.put(too_big, b"x".to_vec());
    assert!(matches!(db.write(b), Err(Error::InvalidArgument(_))));
}

#[test]
fn torn_file_extension_falls_back_to_the_previous_commit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(crate::FILE_NAME);
    let len_after_first;
    {
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let mut b = WriteBatch::new();
        b.put(b"first".to_vec(), b"1".to_vec());
        db.write(b).unwrap();
        len_after_first = std::fs::metadata(&file).unwrap().len();
        let mut b = WriteBatch::new();
        for i in 0..5000u32 {
            b.put(format!("{i:08}").into_bytes(), vec![3u8; 40]);
        }
        db.write(b).unwrap();
    }
    // As if the meta of commit 2 reached the disk but the file growth did not.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len_after_first)
        .unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.snapshot().txn(), 1);
    assert_eq!(db.snapshot().len(), 1);
    assert_eq!(db.get(b"first").unwrap(), Some(b"1".to_vec()));
    // And the database keeps working from there.
    let mut b = WriteBatch::new();
    b.put(b"second".to_vec(), b"2".to_vec());
    db.write(b).unwrap();
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.snapshot().len(), 2);
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Db>();
    check::<crate::Snapshot>();
    check::<crate::RangeIter>();
    check::<WriteBatch>();
}

#[test]
fn compression_probe_separates_text_from_noise() {
    let text = br#"{"actor":"lease","node":"orbit-server-0","expires_at":1700000000,"renew_at":1699999990}"#;
    assert!(crate::write::looks_compressible(&text.repeat(2)));
    assert!(crate::write::looks_compressible(&[7u8; 100]));
    let mut rng = fastrand::Rng::with_seed(1);
    let noise: Vec<u8> = (0..100).map(|_| rng.u8(..)).collect();
    assert!(!crate::write::looks_compressible(&noise));
    // Compressed values still round-trip, and compression happens.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let mut b = WriteBatch::new();
    for i in 0..2000u32 {
        b.put(format!("{i:08}").into_bytes(), text.repeat(3));
    }
    db.write(b).unwrap();
    assert_eq!(db.get(b"00000042").unwrap(), Some(text.repeat(3)));
    let compressed_size = db.stats().used_bytes;
    drop(db);
    let dir2 = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir2.path(),
        Options {
            compression: false,
            ..Options::default()
        },
    )
    .unwrap();
    let mut b = WriteBatch::new();
    for i in 0..2000u32 {
        b.put(format!("{i:08}").into_bytes(), text.repeat(3));
    }
    db.write(b).unwrap();
    assert!(
        compressed_size * 2 < db.stats().used_bytes,
        "{compressed_size} vs {}",
        db.stats().used_bytes
    );
}

#[test]
fn key_comparison_matches_slice_order() {
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..200_000 {
        let len = |rng: &mut fastrand::Rng| match rng.u8(0..4) {
            0 => rng.usize(0..9),
            1 => rng.usize(0..24),
            2 => rng.usize(60..80),
            _ => 16,
        };
        let (la, lb) = (len(&mut rng), len(&mut rng));
        // Mostly shared prefixes, so the comparison reaches every position.
        let a: Vec<u8> = (0..la).map(|_| rng.u8(0..3)).collect();
        let mut b: Vec<u8> = a.iter().copied().take(lb).collect();
        b.resize(lb, 0);
        if rng.bool() && lb > 0 {
            let at = rng.usize(0..lb);
            b[at] = rng.u8(0..3);
        }
        assert_eq!(crate::page::cmp_keys(&a, &b), a.cmp(&b), "{a:?} {b:?}");
        assert_eq!(crate::page::cmp_keys(&b, &a), b.cmp(&a), "{b:?} {a:?}");
    }
}
