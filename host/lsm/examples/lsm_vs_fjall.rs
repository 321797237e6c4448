//! Quick comparison: fillrandom, readrandom, 16-writer durable inserts and space amplification
//! after a full overwrite, for orbit-lsm and (as a pure-Rust peer) fjall 3.1.
//!
//! `cargo run --release -p orbit-lsm --example lsm_vs_fjall -- [N] [DIR]`
//! (N defaults to 1,000,000 records of 16-byte keys and 100-byte values; DIR to a temp dir.)
//! `BENCH_ENGINES=orbit` skips fjall. The official RocksDB comparison is the bench harness's.

use orbit_lsm::{Db, Options, SyncMode, WriteBatch};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const VALUE_LEN: usize = 100;
const DURABLE_WRITERS: usize = 16;
const DURABLE_SECS: u64 = 5;

fn key(i: u64) -> [u8; 16] {
    // A bijective mix so "random" order covers every key exactly once.
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ 0x5555_5555;
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&x.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn value(i: u64, round: u64) -> [u8; VALUE_LEN] {
    let mut v = [0u8; VALUE_LEN];
    let mut x = i ^ (round << 48) ^ 0x1234_5678;
    for chunk in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    v
}

fn order(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

/// CPU time used by the whole process so far (all threads, user + system).
fn cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value, and getrusage only fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

thread_local! {
    static CPU_START: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

fn start() -> Instant {
    CPU_START.with(|c| c.set(cpu()));
    Instant::now()
}

/// Wall-clock rate, plus process CPU microseconds per operation (less sensitive to other
/// load on a shared machine; includes background flush/compaction work).
fn rate(n: u64, d: Duration) -> String {
    let used = cpu() - CPU_START.with(|c| c.get());
    format!(
        "{:>10.0} ops/s ({:.2}s, {:.2} cpu-us/op)",
        n as f64 / d.as_secs_f64(),
        d.as_secs_f64(),
        used.as_secs_f64() * 1e6 / n as f64
    )
}

trait Engine: Send + Sync {
    fn put(&self, k: &[u8], v: &[u8], durable: bool);
    fn get(&self, k: &[u8]) -> Option<Vec<u8>>;
    fn settle(&self);
    fn disk_bytes(&self) -> u64;
}

struct Orbit(Db);
impl Engine for Orbit {
    fn put(&self, k: &[u8], v: &[u8], durable: bool) {
        let mut b = WriteBatch::new();
        b.put(k, v);
        self.0.write(b).expect("write");
        let _ = durable; // durability chosen by the instance's SyncMode
    }
    fn get(&self, k: &[u8]) -> Option<Vec<u8>> {
        self.0.get(k).expect("get")
    }
    fn settle(&self) {
        self.0.flush().expect("flush");
    }
    fn disk_bytes(&self) -> u64 {
        self.0.stats().disk_bytes
    }
}

struct Fjall(fjall::Database, fjall::Keyspace, std::path::PathBuf);
impl Engine for Fjall {
    fn put(&self, k: &[u8], v: &[u8], durable: bool) {
        let mut b = self.0.batch();
        if durable {
            b = b.durability(Some(fjall::PersistMode::SyncData));
        }
        b.insert(&self.1, k.to_vec(), v.to_vec());
        b.commit().expect("commit");
    }
    fn get(&self, k: &[u8]) -> Option<Vec<u8>> {
        self.1.get(k).expect("get").map(|v| v.to_vec())
    }
    fn settle(&self) {
        self.0.persist(fjall::PersistMode::Buffer).expect("persist");
    }
    fn disk_bytes(&self) -> u64 {
        dir_size(&self.2)
    }
}

fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e
                .metadata()
                .map(|m| (m.is_dir(), m.len()))
                .unwrap_or((false, 0));
            n += if m.0 { dir_size(&e.path()) } else { m.1 };
        }
    }
    n
}

fn open(name: &str, dir: &Path, durable: bool) -> Arc<dyn Engine> {
    match name {
        "orbit" => {
            let opts = Options {
                sync: if durable {
                    SyncMode::PerCommit
                } else {
                    SyncMode::None
                },
                ..Options::default()
            };
            Arc::new(Orbit(Db::open(dir, opts).expect("open orbit-lsm")))
        }
        _ => {
            let db = fjall::Database::builder(dir).open().expect("open fjall");
            let ks = db
                .keyspace("bench", fjall::KeyspaceCreateOptions::default)
                .expect("keyspace");
            Arc::new(Fjall(db, ks, dir.to_path_buf()))
        }
    }
}

fn bench(name: &str, n: u64, root: &Path) {
    println!("== {name}");
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let e = open(name, &dir, false);
    let ord = order(n, 42);
    let t = start();
    for &i in &ord {
        e.put(&key(i), &value(i, 0), false);
    }
    println!("fillrandom        {}", rate(n, t.elapsed()));
    e.settle();
    let reads = order(n, 7);
    let t = start();
    let mut found = 0u64;
    for &i in &reads {
        found += e.get(&key(i)).is_some() as u64;
    }
    println!(
        "readrandom        {} found {found}/{n}",
        rate(n, t.elapsed())
    );
    assert_eq!(found, n, "{name}: readrandom lost keys");
    if std::env::var("BENCH_READ_ONLY").is_ok() {
        let t = start();
        for _ in 0..5 {
            for &i in &reads {
                found += e.get(&key(i)).is_some() as u64;
            }
        }
        assert_eq!(found, 6 * n);
        println!("readrandom x5     {}", rate(5 * n, t.elapsed()));
        return;
    }
    let t = start();
    for &i in &order(n, 99) {
        e.put(&key(i), &value(i, 1), false);
    }
    println!("overwrite         {}", rate(n, t.elapsed()));
    e.settle();
    std::thread::sleep(Duration::from_secs(2));
    let logical = n * (16 + VALUE_LEN as u64);
    let disk = e.disk_bytes();
    println!(
        "space after overwrite: {disk} bytes on disk for {logical} logical = {:.3}x",
        disk as f64 / logical as f64
    );
    drop(e);
    if name == "orbit" {
        let db = Db::open(
            &dir,
            Options {
                sync: SyncMode::None,
                ..Options::default()
            },
        )
        .expect("reopen");
        db.compact_all().expect("compact");
        let disk = db.stats().disk_bytes;
        println!(
            "space after compact_all: {disk} bytes = {:.3}x; stats {:?}",
            disk as f64 / logical as f64,
            db.stats()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    if std::env::var("BENCH_SKIP_DURABLE").is_ok() {
        return;
    }
    let dir = root.join(format!("{name}-durable"));
    let _ = std::fs::remove_dir_all(&dir);
    let e = open(name, &dir, true);
    let stop = Instant::now() + Duration::from_secs(DURABLE_SECS);
    let t = start();
    let threads: Vec<_> = (0..DURABLE_WRITERS as u64)
        .map(|w| {
            let e = e.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while Instant::now() < stop {
                    let id = (w << 40) | i;
                    e.put(&key(id), &value(id, 0), true);
                    i += 1;
                }
                i
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().expect("writer")).sum();
    println!(
        "durable {DURABLE_WRITERS} writers  {}",
        rate(total, t.elapsed())
    );
    drop(e);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let tmp;
    let root = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    let engines = std::env::var("BENCH_ENGINES").unwrap_or_else(|_| "orbit,fjall".into());
    for name in engines.split(',') {
        bench(name.trim(), n, &root);
    }
}
