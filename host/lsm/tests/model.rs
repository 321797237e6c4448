//! Model-based randomized test: the engine must agree with a `BTreeMap` after every kind of
//! operation (puts, deletes, batches, reopen, snapshots, range scans, compactions), with a
//! memtable small enough that flushes and multi-level compactions really happen.

mod common;

use common::{Rng, tiny};
use orbit_lsm::{Db, SyncMode, WriteBatch};
use std::collections::BTreeMap;
use std::ops::Bound;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(r: &mut Rng, space: u64) -> Vec<u8> {
    format!("key{:05}", r.below(space)).into_bytes()
}

fn bound(r: &mut Rng, space: u64) -> Bound<Vec<u8>> {
    match r.below(3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(key(r, space)),
        _ => Bound::Excluded(key(r, space)),
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(|v| v.as_slice())
}

fn valid_range(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a < b,
        _ => true,
    }
}

fn check_range(
    got: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), orbit_lsm::Error>>,
    model: &Model,
    lo: &Bound<Vec<u8>>,
    hi: &Bound<Vec<u8>>,
    ctx: &str,
) {
    let got: Vec<_> = got.map(|r| r.unwrap()).collect();
    let want: Vec<_> = if valid_range(lo, hi) {
        model
            .range::<[u8], _>((as_ref(lo), as_ref(hi)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    } else {
        Vec::new()
    };
    assert_eq!(got.len(), want.len(), "{ctx}: range {lo:?}..{hi:?} length");
    assert!(got == want, "{ctx}: range {lo:?}..{hi:?} contents differ");
}

fn run(seed: u64, steps: usize, sync: SyncMode) {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Rng::new(seed);
    let mut db = Db::open(dir.path(), tiny(sync)).unwrap();
    let mut model = Model::new();
    let mut snaps: Vec<(orbit_lsm::Snapshot, Model)> = Vec::new();
    let space = 400;
    let (mut flushes, mut compactions) = (0, 0);
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        match r.below(100) {
            0..=44 => {
                let k = key(&mut r, space);
                let len = r.below(120) as usize;
                let v = r.bytes(len);
                db.put(&k, &v).unwrap();
                model.insert(k, v);
            }
            45..=54 => {
                let k = key(&mut r, space);
                db.delete(&k).unwrap();
                model.remove(&k);
            }
            55..=64 => {
                let mut b = WriteBatch::new();
                for _ in 0..1 + r.below(8) {
                    let k = key(&mut r, space);
                    if r.below(4) == 0 {
                        b.delete(&k);
                        model.remove(&k);
                    } else {
                        let len = r.below(60) as usize;
                        let v = r.bytes(len);
                        b.put(&k, &v);
                        model.insert(k, v);
                    }
                }
                db.write(b).unwrap();
            }
            65..=79 => {
                let k = key(&mut r, space);
                assert_eq!(
                    db.get(&k).unwrap(),
                    model.get(&k).cloned(),
                    "{ctx}: get {k:?}"
                );
            }
            80..=85 => {
                let (lo, hi) = (bound(&mut r, space), bound(&mut r, space));
                check_range(db.range(as_ref(&lo), as_ref(&hi)), &model, &lo, &hi, &ctx);
            }
            86..=88 => {
                if snaps.len() < 4 {
                    snaps.push((db.snapshot(), model.clone()));
                }
            }
            89..=92 => {
                if let Some((s, m)) = snaps.first() {
                    let k = key(&mut r, space);
                    assert_eq!(
                        s.get(&k).unwrap(),
                        m.get(&k).cloned(),
                        "{ctx}: snapshot get"
                    );
                    let (lo, hi) = (bound(&mut r, space), bound(&mut r, space));
                    check_range(s.range(as_ref(&lo), as_ref(&hi)), m, &lo, &hi, &ctx);
                }
                if r.below(3) == 0 && !snaps.is_empty() {
                    snaps.remove(0);
                }
            }
            93..=95 => {
                let st = db.stats();
                flushes += st.flushes;
                compactions += st.compactions;
                drop(db);
                db = Db::open(dir.path(), tiny(sync)).unwrap();
            }
            96 => db.compact_all().unwrap(),
            _ => db.flush().unwrap(),
        }
    }
    // Full comparison at the end, before and after a reopen.
    check_range(
        db.range(Bound::Unbounded, Bound::Unbounded),
        &model,
        &Bound::Unbounded,
        &Bound::Unbounded,
        "final",
    );
    let st = db.stats();
    flushes += st.flushes;
    compactions += st.compactions;
    assert!(
        flushes > 10 && compactions > 2,
        "too little background work: {flushes} flushes, {compactions} compactions"
    );
    drop(db);
    let db = Db::open(dir.path(), tiny(sync)).unwrap();
    check_range(
        db.range(Bound::Unbounded, Bound::Unbounded),
        &model,
        &Bound::Unbounded,
        &Bound::Unbounded,
        "final after reopen",
    );
    for (k, v) in &model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
    }
}

#[test]
fn model_seeds_no_sync() {
    for seed in 1..=4 {
        run(seed, 4000, SyncMode::None);
    }
}

#[test]
fn per_write_sync_choice() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), tiny(SyncMode::None)).unwrap();
    let mut b = WriteBatch::new();
    b.put(b"fast", b"1");
    db.write_with(b, SyncMode::None).unwrap();
    let before = db.stats().wal_syncs;
    let mut b = WriteBatch::new();
    b.put(b"durable", b"2");
    db.write_with(b, SyncMode::PerCommit).unwrap();
    assert_eq!(
        db.stats().wal_syncs,
        before + 1,
        "a PerCommit write must fsync"
    );
    assert_eq!(db.get(b"fast").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get(b"durable").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn model_seed_periodic() {
    run(
        5,
        1500,
        SyncMode::Periodic(std::time::Duration::from_millis(20)),
    );
}

#[test]
fn model_seed_per_commit() {
    run(99, 800, SyncMode::PerCommit);
}

#[test]
fn compaction_reaches_deeper_levels_and_drops_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), tiny(SyncMode::None)).unwrap();
    let mut r = Rng::new(7);
    let mut model = Model::new();
    for round in 0..4 {
        for i in 0..3000u32 {
            let k = format!("k{:06}", (i * 7919 + round) % 3000).into_bytes();
            let v = r.bytes(40);
            db.put(&k, &v).unwrap();
            model.insert(k, v);
        }
    }
    for i in (0..3000u32).step_by(3) {
        let k = format!("k{i:06}").into_bytes();
        db.delete(&k).unwrap();
        model.remove(&k);
    }
    db.compact_all().unwrap();
    let s = db.stats();
    assert!(s.compactions > 0, "{s:?}");
    assert!(s.tables_per_level[0] == 0, "{s:?}");
    let live: u64 = model.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
    assert!(
        s.table_bytes < live * 2,
        "tables {} bytes for {} live bytes: {s:?}",
        s.table_bytes,
        live
    );
    let got: Vec<_> = db
        .range(Bound::Unbounded, Bound::Unbounded)
        .map(|r| r.unwrap())
        .collect();
    let want: Vec<_> = model.into_iter().collect();
    assert!(got == want);
}
