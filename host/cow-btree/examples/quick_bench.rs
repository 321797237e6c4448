//! Quick side-by-side against redb 4.5 (same machine, same data, same
//! durability): single durable commit latency, random reads, range scan,
//! batch inserts. Prints each figure and the ratio ours/redb.
//!
//! `cargo run --release -p orbit-cow-btree --example quick_bench`
//! Sizes: `QB_KEYS` (default 200000), `QB_COMMITS` (default 300).

use std::hint::black_box;
use std::ops::Bound;
use std::time::{Duration, Instant};

use orbit_cow_btree::{Db, Options, WriteBatch};
use redb::{ReadableDatabase, TableDefinition};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn key(i: u64) -> [u8; 16] {
    // Random-looking but reproducible key order.
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&x.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn value(i: u64) -> Vec<u8> {
    let mut v = vec![0u8; 100];
    let mut s = i.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    for b in v.iter_mut() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        *b = s as u8;
    }
    v
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

struct Figures {
    p50: Duration,
    p99: Duration,
    batch_per_s: f64,
    reads_per_s: f64,
    scan_per_s: f64,
}

fn bench_ours(dir: &std::path::Path, keys: u64, commits: usize) -> Figures {
    let db = Db::open(dir, Options::default()).unwrap();
    // Batch inserts: batches of 1000 random keys, each one durable commit.
    let t = Instant::now();
    for chunk in 0..keys / 1000 {
        let mut b = WriteBatch::new();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            b.put(key(i).to_vec(), value(i));
        }
        db.write(b).unwrap();
    }
    let batch_per_s = keys as f64 / t.elapsed().as_secs_f64();
    // Single durable commits of one key.
    let mut lat = Vec::with_capacity(commits);
    for c in 0..commits as u64 {
        let mut b = WriteBatch::new();
        b.put(key(keys + c).to_vec(), value(c));
        let t = Instant::now();
        db.write(b).unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    // Random point reads.
    let n = keys.min(200_000);
    let t = Instant::now();
    for i in 0..n {
        let k = key((i.wrapping_mul(7919)) % keys);
        black_box(db.get(&k).unwrap().unwrap());
    }
    let reads_per_s = n as f64 / t.elapsed().as_secs_f64();
    let snap = db.snapshot();
    let t = Instant::now();
    for i in 0..n {
        let k = key((i.wrapping_mul(7919)) % keys);
        black_box(snap.get(&k).unwrap().unwrap());
    }
    println!(
        "ours: random reads through one snapshot: {:.1} k/s",
        n as f64 / t.elapsed().as_secs_f64() / 1e3
    );
    drop(snap);
    // Full range scans.
    let t = Instant::now();
    let mut seen = 0u64;
    for _ in 0..3 {
        for kv in db.range(Bound::Unbounded, Bound::Unbounded) {
            black_box(kv.unwrap());
            seen += 1;
        }
    }
    let scan_per_s = seen as f64 / t.elapsed().as_secs_f64();
    println!("ours: {:?}", db.stats());
    Figures {
        p50: pct(&lat, 0.5),
        p99: pct(&lat, 0.99),
        batch_per_s,
        reads_per_s,
        scan_per_s,
    }
}

fn bench_redb(dir: &std::path::Path, keys: u64, commits: usize) -> Figures {
    let db = redb::Database::create(dir.join("redb.db")).unwrap();
    let t = Instant::now();
    for chunk in 0..keys / 1000 {
        let tx = db.begin_write().unwrap();
        {
            let mut table = tx.open_table(TABLE).unwrap();
            for i in chunk * 1000..(chunk + 1) * 1000 {
                table
                    .insert(key(i).as_slice(), value(i).as_slice())
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let batch_per_s = keys as f64 / t.elapsed().as_secs_f64();
    let mut lat = Vec::with_capacity(commits);
    for c in 0..commits as u64 {
        let t = Instant::now();
        let tx = db.begin_write().unwrap();
        {
            let mut table = tx.open_table(TABLE).unwrap();
            table
                .insert(key(keys + c).as_slice(), value(c).as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    let n = keys.min(200_000);
    let rtx = db.begin_read().unwrap();
    let table = rtx.open_table(TABLE).unwrap();
    let t = Instant::now();
    for i in 0..n {
        let k = key((i.wrapping_mul(7919)) % keys);
        black_box(table.get(k.as_slice()).unwrap().unwrap().value().to_vec());
    }
    let reads_per_s = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut seen = 0u64;
    for _ in 0..3 {
        for kv in table.range::<&[u8]>(..).unwrap() {
            let (k, v) = kv.unwrap();
            black_box((k.value().to_vec(), v.value().to_vec()));
            seen += 1;
        }
    }
    let scan_per_s = seen as f64 / t.elapsed().as_secs_f64();
    Figures {
        p50: pct(&lat, 0.5),
        p99: pct(&lat, 0.99),
        batch_per_s,
        reads_per_s,
        scan_per_s,
    }
}

fn main() {
    let keys = env("QB_KEYS", 200_000) as u64;
    let commits = env("QB_COMMITS", 300);
    let base = std::env::var("QB_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let d1 = tempfile::tempdir_in(&base).unwrap();
    let d2 = tempfile::tempdir_in(&base).unwrap();
    println!(
        "{keys} keys (16-byte random keys, 100-byte values), {commits} single-key durable commits"
    );
    let ours = bench_ours(d1.path(), keys, commits);
    let theirs = bench_redb(d2.path(), keys, commits);
    println!(
        "{:<34} {:>14} {:>14} {:>8}",
        "metric", "cow-btree", "redb 4.5", "ratio"
    );
    let row = |name: &str, a: f64, b: f64, unit: &str| {
        println!(
            "{name:<34} {:>11.1} {unit:<2} {:>11.1} {unit:<2} {:>8.2}",
            a,
            b,
            a / b
        );
    };
    row(
        "durable commit p50 (lower=better)",
        ours.p50.as_secs_f64() * 1e3,
        theirs.p50.as_secs_f64() * 1e3,
        "ms",
    );
    row(
        "durable commit p99 (lower=better)",
        ours.p99.as_secs_f64() * 1e3,
        theirs.p99.as_secs_f64() * 1e3,
        "ms",
    );
    row(
        "batch inserts /s",
        ours.batch_per_s / 1e3,
        theirs.batch_per_s / 1e3,
        "k",
    );
    row(
        "random reads /s",
        ours.reads_per_s / 1e3,
        theirs.reads_per_s / 1e3,
        "k",
    );
    row(
        "range scan entries /s",
        ours.scan_per_s / 1e3,
        theirs.scan_per_s / 1e3,
        "k",
    );
}
