//! Flipped bytes in tables, logs and the manifest are caught by checksums and reported as
//! `Error::Corrupt` naming the file; nothing panics and no wrong value is ever returned.

mod common;

use orbit_lsm::{Db, Error, Options, SyncMode};
use std::ops::Bound;
use std::path::{Path, PathBuf};

fn opts() -> Options {
    Options {
        sync: SyncMode::None,
        memtable_size: 1 << 20,
        block_size: 1024,
        ..Options::default()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}
fn val(i: u32) -> Vec<u8> {
    format!("value{i:06}-{}", "z".repeat(50)).into_bytes()
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(suffix))
        .collect();
    v.sort();
    v
}

fn flip(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[offset as usize] ^= 0x5a;
    std::fs::write(path, b).unwrap();
}

fn fill(dir: &Path, n: u32, flush: bool) {
    let db = Db::open(dir, opts()).unwrap();
    for i in 0..n {
        db.put(&key(i), &val(i)).unwrap();
    }
    if flush {
        db.flush().unwrap();
    }
}

#[test]
fn flipped_byte_in_table_data_block_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 3000, true);
    let sst = files(dir.path(), ".sst");
    assert_eq!(sst.len(), 1);
    let name = sst[0].file_name().unwrap().to_string_lossy().to_string();
    flip(&sst[0], 2000); // inside an early data block
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut corrupt = 0;
    for i in 0..3000 {
        match db.get(&key(i)) {
            Ok(v) => assert_eq!(v, Some(val(i)), "wrong value returned for key {i}"),
            Err(e @ Error::Corrupt { .. }) => {
                assert!(e.to_string().contains(&name), "{e}");
                assert!(e.to_string().contains("checksum"), "{e}");
                corrupt += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(corrupt > 0, "flipped byte went unnoticed");
    let scan: Vec<_> = db.range(Bound::Unbounded, Bound::Unbounded).collect();
    let err = scan
        .into_iter()
        .find_map(|r| r.err())
        .expect("scan must fail");
    assert!(err.to_string().contains(&name), "{err}");
}

#[test]
fn flipped_byte_in_table_footer_or_index_fails_open() {
    for back in [3u64, 30, 60] {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path(), 2000, true);
        let sst = files(dir.path(), ".sst");
        let len = std::fs::metadata(&sst[0]).unwrap().len();
        flip(&sst[0], len - back);
        let err = Db::open(dir.path(), opts()).err().expect("open must fail");
        let name = sst[0].file_name().unwrap().to_string_lossy().to_string();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(&name), "{err}");
    }
}

#[test]
fn flipped_byte_in_log_is_reported_with_offset() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 500, false);
    let logs = files(dir.path(), ".log");
    let log = logs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let name = log.file_name().unwrap().to_string_lossy().to_string();
    flip(log, 1000);
    let err = Db::open(dir.path(), opts()).err().expect("open must fail");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            Error::Corrupt {
                offset: Some(_),
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains(&name) && msg.contains("offset"), "{msg}");
}

#[test]
fn torn_log_tail_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 500, false);
    let logs = files(dir.path(), ".log");
    let log = logs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let len = std::fs::metadata(log).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(log).unwrap();
    f.set_len(len - 10).unwrap(); // the last record loses its end
    drop(f);
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..499 {
        assert_eq!(db.get(&key(i)).unwrap(), Some(val(i)));
    }
    assert_eq!(db.get(&key(499)).unwrap(), None);
}

#[test]
fn flipped_byte_in_manifest_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 2000, true);
    {
        // A second flush appends an edit after the snapshot record.
        let db = Db::open(dir.path(), opts()).unwrap();
        db.put(b"more", b"data").unwrap();
        db.flush().unwrap();
    }
    let m = files(dir.path(), "MANIFEST-");
    assert_eq!(m.len(), 1);
    flip(&m[0], 12);
    let err = Db::open(dir.path(), opts()).err().expect("open must fail");
    assert!(err.to_string().contains("MANIFEST-"), "{err}");
}

#[test]
fn second_open_of_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let err = Db::open(dir.path(), opts())
        .err()
        .expect("second open must fail");
    assert!(err.to_string().contains("LOCK"), "{err}");
    drop(db);
    Db::open(dir.path(), opts()).unwrap();
}
