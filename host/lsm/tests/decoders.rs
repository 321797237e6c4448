//! Garbage and mutated bytes fed to every decoder (block, index, filter, stored block, footer,
//! log, manifest, version edit) must produce errors, never panics. This is the CI-sized twin of
//! the cargo-fuzz targets in `fuzz/`.

mod common;

use common::Rng;
use orbit_lsm::{Db, Options, SyncMode, decoders};
use std::path::Path;

fn real_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let db = Db::open(
        dir,
        Options {
            sync: SyncMode::None,
            memtable_size: 64 << 10,
            block_size: 512,
            ..Options::default()
        },
    )
    .unwrap();
    for i in 0..3000u32 {
        db.put(
            format!("k{i:05}").as_bytes(),
            format!("v{i}").repeat(3).as_bytes(),
        )
        .unwrap();
        if i % 10 == 0 {
            db.delete(format!("k{:05}", i / 2).as_bytes()).unwrap();
        }
    }
    db.flush().unwrap();
    for i in 0..200u32 {
        db.put(format!("tail{i}").as_bytes(), b"in the log")
            .unwrap();
    }
    drop(db);
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn feed_all(b: &[u8], r: &mut Rng) {
    let probe = r.bytes(12);
    let _ = decoders::block(b, &probe);
    let _ = decoders::index(b);
    let _ = decoders::filter(b, &probe);
    let _ = decoders::stored_block(b);
    let _ = decoders::footer(b);
    let _ = decoders::wal(b);
    let _ = decoders::manifest(b);
    let _ = decoders::version_edit(b);
}

#[test]
fn random_bytes_never_panic() {
    let mut r = Rng::new(5);
    for _ in 0..20_000 {
        let len = r.below(300) as usize;
        let b = r.bytes(len);
        feed_all(&b, &mut r);
    }
}

#[test]
fn mutated_real_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let files = real_files(dir.path());
    let mut r = Rng::new(11);
    let mut decoded_ok = 0;
    for (name, data) in &files {
        if data.is_empty() {
            continue;
        }
        if name.ends_with(".log") {
            assert!(decoders::wal(data).unwrap() > 0, "{name}");
        }
        if name.starts_with("MANIFEST-") {
            assert!(decoders::manifest(data).unwrap() > 0, "{name}");
        }
        if name.ends_with(".sst") {
            assert!(decoders::footer(&data[data.len() - 52..]).unwrap() > 0);
        }
        for _ in 0..300 {
            let mut m = data.clone();
            for _ in 0..1 + r.below(4) {
                let i = r.below(m.len() as u64) as usize;
                m[i] = r.next() as u8;
            }
            // Random windows, so block-level decoders see block-shaped inputs.
            let a = r.below(m.len() as u64) as usize;
            let b = (a + r.below(4096) as usize).min(m.len());
            feed_all(&m[a..b], &mut r);
            if name.ends_with(".sst") {
                let tail = &m[m.len().saturating_sub(52)..];
                if decoders::footer(tail).is_ok() {
                    decoded_ok += 1;
                }
            }
            let _ = decoders::wal(&m);
            let _ = decoders::manifest(&m);
        }
    }
    assert!(decoded_ok > 0);
}

#[test]
fn mutated_tables_fail_cleanly_through_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    real_files(dir.path());
    let sst: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    let original = std::fs::read(&sst[0]).unwrap();
    let mut r = Rng::new(3);
    for _ in 0..40 {
        let mut m = original.clone();
        let i = r.below(m.len() as u64) as usize;
        m[i] ^= 1 << r.below(8);
        std::fs::write(&sst[0], &m).unwrap();
        if let Ok(db) = Db::open(dir.path(), Options::default()) {
            for kv in db.range(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded) {
                if kv.is_err() {
                    break;
                }
            }
        }
        std::fs::write(&sst[0], &original).unwrap();
    }
}
