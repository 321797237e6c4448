//! The memory backend's disk backup and capacity limit: snapshots restore
//! everything (versions included), damaged snapshots refuse to open, a
//! clean store does not rewrite its snapshot, a kill -9 loses nothing that
//! was flushed, and `max_entries` refuses new keys without evicting.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use orbit_memory::MemoryStorage;
use orbit_storage::{
    BatchOp, KeyRange, ListQuery, Listed, MemoryConfig, Precondition, PutOptions, Storage,
    StorageError, StorageResult, now_millis,
};
use tempfile::TempDir;

const SNAPSHOT: &str = "orbit_backup.json";

fn config(path: &Path, max_entries: u64) -> MemoryConfig {
    MemoryConfig {
        max_entries,
        disk_backup: true,
        backup_path: path.display().to_string(),
        ..MemoryConfig::defaults("/unused").expect("the memory defaults")
    }
}

fn open(path: &Path) -> MemoryStorage {
    MemoryStorage::open(&config(path, 1_000_000)).expect("open the memory backend")
}

fn temp() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join(SNAPSHOT);
    (dir, path)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a Tokio runtime")
}

async fn put(store: &MemoryStorage, key: &[u8], value: &[u8]) -> u64 {
    store
        .put(key, Bytes::copy_from_slice(value), PutOptions::default())
        .await
        .expect("put")
}

async fn all_entries(store: &MemoryStorage) -> Vec<Listed> {
    let mut entries = Vec::new();
    let mut cursor = None;
    loop {
        let query = ListQuery {
            cursor,
            ..ListQuery::new(KeyRange::Prefix(Bytes::new()), 100)
        };
        let page = store.list(&query).await.expect("list");
        entries.extend(page.entries);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return entries,
        }
    }
}

/// The `(path, reason)` of a `Corrupt` open error.
#[track_caller]
fn corrupt(result: StorageResult<MemoryStorage>) -> (String, String) {
    match result {
        Err(StorageError::Corrupt { path, reason }) => (path, reason),
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("expected Corrupt, but the snapshot opened"),
    }
}

/// Writes a small store and flushes it; returns the snapshot bytes.
async fn write_snapshot(path: &Path) -> Vec<u8> {
    let store = open(path);
    for i in 0..20 {
        put(
            &store,
            format!("key/{i:02}").as_bytes(),
            format!("value {i}").as_bytes(),
        )
        .await;
    }
    store.flush().await.expect("flush");
    std::fs::read(path).expect("read the snapshot")
}

#[tokio::test]
async fn snapshot_round_trip_restores_keys_versions_and_expiry() {
    let (_dir, path) = temp();
    let store = open(&path);
    put(&store, b"plain", b"value").await;
    put(&store, b"overwritten", b"first").await;
    put(&store, b"overwritten", b"second").await;
    put(&store, b"deleted", b"gone").await;
    assert!(
        store
            .delete(b"deleted", Precondition::None)
            .await
            .expect("delete")
    );
    let every_byte: Vec<u8> = (0..=255).collect();
    put(&store, &every_byte, &every_byte).await;
    put(&store, &[0xff, 0x00], b"").await;
    let later = now_millis() + 3_600_000;
    store
        .put(
            b"expiring",
            Bytes::from_static(b"soon"),
            PutOptions {
                precondition: Precondition::None,
                expires_at: Some(later),
            },
        )
        .await
        .expect("put with TTL");
    store
        .batch(vec![
            BatchOp::Put {
                key: Bytes::from_static(b"batch/1"),
                value: Bytes::from_static(b"1"),
                options: PutOptions::default(),
            },
            BatchOp::Put {
                key: Bytes::from_static(b"batch/2"),
                value: Bytes::from_static(b"2"),
                options: PutOptions::default(),
            },
        ])
        .await
        .expect("batch");
    let before = all_entries(&store).await;
    assert_eq!(before.len(), 7);
    store.flush().await.expect("flush");
    let file_len = std::fs::metadata(&path).expect("snapshot exists").len();
    assert_eq!(
        store.stats().await.expect("stats").disk_bytes,
        Some(file_len)
    );
    drop(store);

    let reopened = open(&path);
    let after = all_entries(&reopened).await;
    assert_eq!(
        after, before,
        "every key, value, version and expiry comes back"
    );
    assert_eq!(
        reopened.get(b"deleted").await.expect("get"),
        None,
        "a deleted key stays deleted"
    );
    let stats = reopened.stats().await.expect("stats");
    assert_eq!(stats.keys, 7);
    assert_eq!(stats.disk_bytes, Some(file_len));
    let highest = before
        .iter()
        .map(|entry| entry.version)
        .max()
        .expect("entries");
    let next = put(&reopened, b"new", b"after restart").await;
    assert!(
        next > highest,
        "version {next} after a restart must exceed every old version ({highest})"
    );
    assert!(put(&reopened, b"plain", b"x").await > next);
}

#[tokio::test]
async fn snapshot_is_a_header_line_and_a_json_body() {
    let (_dir, path) = temp();
    let file = write_snapshot(&path).await;
    let text = String::from_utf8(file).expect("the snapshot is text");
    let (header, body) = text.split_once('\n').expect("a header line");
    assert!(
        header.starts_with("ORBIT-MEMORY-SNAPSHOT v1 len="),
        "header: {header}"
    );
    assert!(
        header.contains(&format!("len={} ", body.len())),
        "header: {header}"
    );
    assert!(
        header.contains(&format!("crc32={:08x}", crc32fast::hash(body.as_bytes()))),
        "header: {header}"
    );
    let json: serde_json::Value = serde_json::from_str(body).expect("the body is JSON");
    assert_eq!(json["next_version"], 21);
    assert_eq!(json["entries"].as_array().map(Vec::len), Some(20));
    // No temporary file is left behind: the snapshot and its version
    // reservation are all there is.
    let mut names: Vec<String> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![SNAPSHOT.to_string(), format!("{SNAPSHOT}.versions")]
    );
}

#[tokio::test]
async fn restore_skips_entries_that_expired_since_the_snapshot() {
    let (_dir, path) = temp();
    let store = open(&path);
    let expires_at = now_millis() + 100;
    let short = store
        .put(
            b"short",
            Bytes::from_static(b"s"),
            PutOptions {
                precondition: Precondition::None,
                expires_at: Some(expires_at),
            },
        )
        .await
        .expect("put with TTL");
    put(&store, b"kept", b"k").await;
    store.flush().await.expect("flush");
    drop(store);
    while now_millis() <= expires_at + 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reopened = open(&path);
    assert_eq!(reopened.get(b"short").await.expect("get"), None);
    assert_eq!(
        reopened.stats().await.expect("stats").keys,
        1,
        "the expired entry is not even loaded"
    );
    assert!(
        put(&reopened, b"short", b"again").await > short,
        "versions of skipped entries are not reused"
    );
}

#[tokio::test]
async fn truncated_snapshot_fails_open_naming_the_file() {
    let (_dir, path) = temp();
    let file = write_snapshot(&path).await;
    let truncated_len = file.len() as u64 - 3;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(truncated_len)
        .expect("truncate");

    let result = MemoryStorage::open(&config(&path, 1_000_000));
    let message = match &result {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a truncated snapshot must not open"),
    };
    let (error_path, reason) = corrupt(result);
    assert_eq!(error_path, path.display().to_string());
    assert!(
        message.contains(&path.display().to_string()),
        "the message names the file: {message}"
    );
    assert!(
        reason.starts_with("truncated: expected "),
        "reason: {reason}"
    );
    let body_len = file.len() - file.iter().position(|&b| b == b'\n').expect("header") - 1;
    assert_eq!(
        reason,
        format!(
            "truncated: expected {body_len} bytes, found {}",
            body_len - 3
        )
    );
}

#[tokio::test]
async fn flipped_byte_fails_the_checksum() {
    let (_dir, path) = temp();
    let mut file = write_snapshot(&path).await;
    let last = file.len() - 10;
    file[last] ^= 0x01;
    std::fs::write(&path, &file).expect("write");
    let (_, reason) = corrupt(MemoryStorage::open(&config(&path, 1_000_000)));
    assert!(reason.starts_with("checksum mismatch"), "reason: {reason}");
}

#[tokio::test]
async fn garbage_header_fails_open() {
    let (_dir, path) = temp();
    let mut file = write_snapshot(&path).await;
    file[..7].copy_from_slice(b"GARBAGE");
    std::fs::write(&path, &file).expect("write");
    let (_, reason) = corrupt(MemoryStorage::open(&config(&path, 1_000_000)));
    assert!(reason.contains("header"), "reason: {reason}");

    // A pure JSON file (no header line) is not a snapshot either.
    std::fs::write(&path, br#"{"next_version":1,"entries":[]}"#).expect("write");
    let (_, reason) = corrupt(MemoryStorage::open(&config(&path, 1_000_000)));
    assert!(reason.contains("header"), "reason: {reason}");

    std::fs::write(&path, b"").expect("write");
    let (_, reason) = corrupt(MemoryStorage::open(&config(&path, 1_000_000)));
    assert!(reason.contains("empty"), "reason: {reason}");
}

#[tokio::test]
async fn absent_snapshot_starts_empty_and_creates_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a").join("b").join(SNAPSHOT);
    let store = open(&path);
    assert!(
        path.parent().expect("parent").is_dir(),
        "open creates the snapshot directory"
    );
    assert!(!path.exists(), "open does not write a snapshot");
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.keys, stats.disk_bytes), (0, None));
    assert_eq!(put(&store, b"first", b"1").await, 1, "versions start at 1");
}

#[test]
fn unusable_snapshot_directory_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let path = file.join("sub").join(SNAPSHOT);
    match MemoryStorage::open(&config(&path, 10)) {
        Err(e @ StorageError::Io { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains(&file.join("sub").display().to_string()),
                "message names the directory: {message}"
            );
        }
        Err(other) => panic!("expected Io, got {other}"),
        Ok(_) => panic!("open must fail when the directory cannot be created"),
    }
}

#[test]
fn disk_backup_needs_a_file_name() {
    let bad = MemoryConfig {
        max_entries: 10,
        disk_backup: true,
        backup_path: String::new(),
        ..MemoryConfig::defaults("/unused").expect("the memory defaults")
    };
    assert!(matches!(
        MemoryStorage::open(&bad),
        Err(StorageError::Invalid(_))
    ));
}

#[tokio::test]
async fn max_entries_refuses_new_keys_but_allows_overwrites() {
    let (_dir, path) = temp();
    let store = MemoryStorage::open(&config(&path, 3)).expect("open");
    for key in [b"a", b"b", b"c"] {
        put(&store, key, b"v").await;
    }
    match store
        .put(b"d", Bytes::from_static(b"v"), PutOptions::default())
        .await
    {
        Err(e @ StorageError::CapacityExceeded(_)) => {
            let message = e.to_string();
            assert!(
                message.contains("ORBIT_MEMORY_MAX_ENTRIES"),
                "names the setting: {message}"
            );
            assert!(message.contains(" 3"), "names the limit: {message}");
        }
        other => panic!("expected CapacityExceeded, got {other:?}"),
    }
    assert_eq!(
        store.get(b"d").await.expect("get"),
        None,
        "a refused put writes nothing"
    );
    put(&store, b"a", b"overwritten").await;
    assert_eq!(
        store.stats().await.expect("stats").keys,
        3,
        "nothing was evicted"
    );
    for key in [b"a", b"b", b"c"] {
        assert!(
            store.get(key).await.expect("get").is_some(),
            "nothing was evicted"
        );
    }
    assert!(
        store
            .delete(b"b", Precondition::None)
            .await
            .expect("delete")
    );
    put(&store, b"d", b"v").await;
}

#[tokio::test]
async fn expired_entries_make_room() {
    let (_dir, path) = temp();
    let store = MemoryStorage::open(&config(&path, 2)).expect("open");
    let expires_at = now_millis() + 50;
    for key in [b"t1", b"t2"] {
        store
            .put(
                key,
                Bytes::from_static(b"v"),
                PutOptions {
                    precondition: Precondition::None,
                    expires_at: Some(expires_at),
                },
            )
            .await
            .expect("put with TTL");
    }
    while now_millis() <= expires_at + 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    put(&store, b"n1", b"v").await;
    put(&store, b"n2", b"v").await;
    assert_eq!(
        store.stats().await.expect("stats").keys,
        2,
        "the expired entries were purged to make room"
    );
    assert!(matches!(
        store.put(b"n3", Bytes::new(), PutOptions::default()).await,
        Err(StorageError::CapacityExceeded(_))
    ));
}

#[tokio::test]
async fn batches_count_net_new_keys() {
    let (_dir, path) = temp();
    let store = MemoryStorage::open(&config(&path, 3)).expect("open");
    for key in [b"a", b"b", b"c"] {
        put(&store, key, b"v").await;
    }
    let key = |k: &'static [u8]| Bytes::from_static(k);
    // One delete and one new key: the count stays at 3.
    store
        .batch(vec![
            BatchOp::Put {
                key: key(b"d"),
                value: key(b"v"),
                options: PutOptions::default(),
            },
            BatchOp::Delete {
                key: key(b"a"),
                precondition: Precondition::None,
            },
            BatchOp::Put {
                key: key(b"b"),
                value: key(b"overwrite"),
                options: PutOptions::default(),
            },
        ])
        .await
        .expect("a batch with no net new key fits");
    // Two new keys, one delete: one too many.
    let result = store
        .batch(vec![
            BatchOp::Put {
                key: key(b"e"),
                value: key(b"v"),
                options: PutOptions::default(),
            },
            BatchOp::Put {
                key: key(b"f"),
                value: key(b"v"),
                options: PutOptions::default(),
            },
            BatchOp::Delete {
                key: key(b"b"),
                precondition: Precondition::None,
            },
        ])
        .await;
    assert!(
        matches!(result, Err(StorageError::CapacityExceeded(_))),
        "got {result:?}"
    );
    assert_eq!(
        store.get(b"e").await.expect("get"),
        None,
        "a refused batch applies nothing"
    );
    assert!(
        store.get(b"b").await.expect("get").is_some(),
        "a refused batch applies nothing"
    );
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("metadata").ino()
}

#[cfg(not(unix))]
fn inode(_path: &Path) -> u64 {
    0
}

#[tokio::test]
async fn flush_is_a_no_op_when_clean() {
    let (_dir, path) = temp();
    let store = open(&path);
    store.flush().await.expect("flush of a new store");
    assert!(!path.exists(), "nothing to write yet");

    let v = put(&store, b"k", b"v").await;
    store.flush().await.expect("flush");
    let modified = std::fs::metadata(&path)
        .expect("snapshot")
        .modified()
        .expect("mtime");
    let (ino, content) = (inode(&path), std::fs::read(&path).expect("read"));

    tokio::time::sleep(Duration::from_millis(30)).await;
    // Neither reads, nor failed writes, nor purges make the state dirty.
    store.get(b"k").await.expect("get");
    let stale = store.put(
        b"k",
        Bytes::new(),
        PutOptions {
            precondition: Precondition::Version(v + 100),
            expires_at: None,
        },
    );
    assert!(matches!(stale.await, Err(StorageError::Conflict { .. })));
    store
        .delete(b"missing", Precondition::None)
        .await
        .expect("delete of an absent key");
    store.purge_expired().await.expect("purge");
    store.flush().await.expect("second flush");
    let after = std::fs::metadata(&path).expect("snapshot");
    assert_eq!(
        after.modified().expect("mtime"),
        modified,
        "a clean flush does not touch the file"
    );
    assert_eq!(inode(&path), ino, "a clean flush does not replace the file");
    assert_eq!(std::fs::read(&path).expect("read"), content);

    put(&store, b"k2", b"v").await;
    store.flush().await.expect("third flush");
    assert_ne!(
        std::fs::read(&path).expect("read"),
        content,
        "a write makes the next flush write"
    );
}

#[tokio::test]
async fn flush_without_disk_backup_writes_nothing() {
    let (_dir, path) = temp();
    let config = MemoryConfig {
        disk_backup: false,
        ..config(&path, 10)
    };
    let store = MemoryStorage::open(&config).expect("open");
    put(&store, b"k", b"v").await;
    store.flush().await.expect("flush");
    assert!(!path.exists());
    assert_eq!(store.stats().await.expect("stats").disk_bytes, None);
}

#[tokio::test]
async fn failed_flush_keeps_the_state_dirty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshot_dir = dir.path().join("snapshots");
    let path = snapshot_dir.join(SNAPSHOT);
    let store = open(&path);
    put(&store, b"k", b"v").await;
    std::fs::remove_dir_all(&snapshot_dir).expect("remove the snapshot directory");
    match store.flush().await {
        Err(e @ StorageError::Io { .. }) => {
            assert!(e.to_string().contains("orbit_backup.json"), "{e}")
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
    std::fs::create_dir_all(&snapshot_dir).expect("recreate");
    store
        .flush()
        .await
        .expect("flush after the directory is back");
    drop(store);
    let reopened = open(&path);
    assert_eq!(
        reopened.get(b"k").await.expect("get").map(|e| e.value),
        Some(Bytes::from_static(b"v"))
    );
}

// ---- kill -9 -----------------------------------------------------------------
//
// The parent re-runs this test binary with only `kill9_child` selected and
// an environment variable naming the snapshot; the child writes, flushes,
// says FLUSHED and keeps writing until the parent SIGKILLs it.

const CHILD_PATH_ENV: &str = "ORBIT_STORAGE_KILL9_SNAPSHOT";
const CHILD_MODE_ENV: &str = "ORBIT_STORAGE_KILL9_MODE";
const FLUSHED_KEYS: usize = 500;
const FLUSHED_MARKER: &str = "FLUSHED";

fn kill9_key(i: usize) -> Vec<u8> {
    format!("k/{i:08}").into_bytes()
}

fn kill9_value(i: usize) -> Vec<u8> {
    format!("value of key {i} ").repeat(1 + i % 7).into_bytes()
}

/// Child mode only; a no-op in a normal test run.
#[tokio::test]
async fn kill9_child() {
    let Ok(path) = std::env::var(CHILD_PATH_ENV) else {
        return;
    };
    let keep_flushing = std::env::var(CHILD_MODE_ENV).as_deref() == Ok("flushing");
    let store = open(Path::new(&path));
    for i in 0..FLUSHED_KEYS {
        put(&store, &kill9_key(i), &kill9_value(i)).await;
    }
    store.flush().await.expect("child flush");
    let mut stdout = std::io::stdout();
    // libtest has already printed "test kill9_child ... " without a newline.
    writeln!(stdout, "\n{FLUSHED_MARKER}").expect("stdout");
    stdout.flush().expect("stdout");

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = FLUSHED_KEYS;
    while Instant::now() < deadline {
        put(&store, &kill9_key(i), &kill9_value(i)).await;
        i += 1;
        if keep_flushing && i.is_multiple_of(10) {
            store.flush().await.expect("child flush");
        } else if !keep_flushing {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Runs the child until FLUSHED, lets it write a while longer, SIGKILLs it
/// and returns the keys (in order) a reopened store holds, each checked
/// against its expected value.
fn kill9_and_reopen(path: &Path, mode: &str) -> Vec<usize> {
    let mut child = Command::new(std::env::current_exe().expect("current test binary"))
        .args(["kill9_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_PATH_ENV, path)
        .env(CHILD_MODE_ENV, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("child stdout");
    let flushed = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.trim() == FLUSHED_MARKER);
    if !flushed {
        let status = child.wait().expect("wait for the child");
        panic!("the child exited ({status}) without printing FLUSHED");
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");

    runtime().block_on(async {
        let store = MemoryStorage::open(&config(path, 1_000_000)).expect("reopen after kill -9");
        let mut present = Vec::new();
        for entry in all_entries(&store).await {
            let text = String::from_utf8_lossy(&entry.key).into_owned();
            let i: usize = text
                .strip_prefix("k/")
                .and_then(|n| n.parse().ok())
                .expect("a key the child wrote");
            assert_eq!(
                entry.value,
                Some(Bytes::from(kill9_value(i))),
                "key {i} has the value the child wrote"
            );
            present.push(i);
        }
        // The reopened store can snapshot again over whatever the kill left.
        put(&store, b"after", b"restart").await;
        store.flush().await.expect("flush after restart");
        present
    })
}

#[test]
fn kill_9_after_flush_keeps_every_flushed_key() {
    let (_dir, path) = temp();
    let present = kill9_and_reopen(&path, "idle");
    assert_eq!(
        present,
        (0..FLUSHED_KEYS).collect::<Vec<_>>(),
        "exactly the keys written before the flush survive"
    );
}

#[test]
fn kill_9_during_flushes_never_corrupts_the_snapshot() {
    let (_dir, path) = temp();
    let present = kill9_and_reopen(&path, "flushing");
    // Keys after FLUSHED_KEYS come from the flushes racing the kill.
    assert!(
        present.len() > FLUSHED_KEYS,
        "later flushes survive too ({} keys found)",
        present.len()
    );
    assert_eq!(
        present,
        (0..present.len()).collect::<Vec<_>>(),
        "the snapshot is one consistent prefix of the writes"
    );
}

/// An unwritable snapshot directory fails at open, not at the first snapshot.
#[test]
fn unwritable_snapshot_directory_fails_at_open() {
    use std::os::unix::fs::PermissionsExt;
    // root ignores directory permissions; the check is meaningless there.
    if unsafe { libc_geteuid() } == 0 {
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        // A file where the directory should be is unwritable for root too.
        let blocker = ro.join("snapshots");
        std::fs::write(&blocker, b"not a directory").unwrap();
        let config = orbit_storage::MemoryConfig {
            max_entries: 10,
            disk_backup: true,
            backup_path: blocker.join("orbit_backup.json").display().to_string(),
            ..orbit_storage::MemoryConfig::defaults("/unused").expect("the memory defaults")
        };
        let err = orbit_memory::MemoryStorage::open(&config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("snapshots"), "{err}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let config = orbit_storage::MemoryConfig {
        max_entries: 10,
        disk_backup: true,
        backup_path: dir.path().join("orbit_backup.json").display().to_string(),
        ..orbit_storage::MemoryConfig::defaults("/unused").expect("the memory defaults")
    };
    let err = orbit_memory::MemoryStorage::open(&config)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("write a file in the snapshot directory"),
        "{err}"
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
