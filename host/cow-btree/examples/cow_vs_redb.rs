//! Quick side-by-side against redb 4.5 (same machine, same data, same
//! durability): single durable commit latency, random reads, range scan,
//! batch inserts. Prints each figure and the ratio ours/redb.
//!
//! `cargo run --release -p orbit-cow-btree --example cow_vs_redb`
//! Sizes: `QB_KEYS` (default 200000), `QB_COMMITS` (default 300),
//! `QB_ROUNDS` (default 3: read and scan figures are the best of this many
//! alternating rounds, which filters out noise from other processes).

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

/// CPU seconds (user + system) this thread has used, from /proc (Linux).
fn thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after ")".
    (ticks(11) + ticks(12)) / 100.0
}

fn per_sec(n: u64, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
}

trait Engine: Sync {
    fn batch(&self, range: std::ops::Range<u64>);
    fn commit_one(&self, i: u64, c: u64);
    fn reads(&self, n: u64, keys: u64);
    fn scan(&self) -> u64;
}

struct Ours(Db);
struct Redb(redb::Database);

impl Engine for Ours {
    fn batch(&self, range: std::ops::Range<u64>) {
        let mut b = WriteBatch::new();
        for i in range {
            b.put(key(i).to_vec(), value(i));
        }
        self.0.write(b).unwrap();
    }
    fn commit_one(&self, i: u64, c: u64) {
        let mut b = WriteBatch::new();
        b.put(key(i).to_vec(), value(c));
        self.0.write(b).unwrap();
    }
    fn reads(&self, n: u64, keys: u64) {
        for i in 0..n {
            let k = key((i.wrapping_mul(7919)) % keys);
            black_box(self.0.get(&k).unwrap().unwrap());
        }
    }
    fn scan(&self) -> u64 {
        let mut seen = 0;
        for kv in self.0.range(Bound::Unbounded, Bound::Unbounded) {
            black_box(kv.unwrap());
            seen += 1;
        }
        seen
    }
}

impl Engine for Redb {
    fn batch(&self, range: std::ops::Range<u64>) {
        let tx = self.0.begin_write().unwrap();
        {
            let mut table = tx.open_table(TABLE).unwrap();
            for i in range {
                table
                    .insert(key(i).as_slice(), value(i).as_slice())
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    fn commit_one(&self, i: u64, c: u64) {
        let tx = self.0.begin_write().unwrap();
        {
            let mut table = tx.open_table(TABLE).unwrap();
            table
                .insert(key(i).as_slice(), value(c).as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    fn reads(&self, n: u64, keys: u64) {
        // redb's best case: one read transaction for all lookups.
        let rtx = self.0.begin_read().unwrap();
        let table = rtx.open_table(TABLE).unwrap();
        for i in 0..n {
            let k = key((i.wrapping_mul(7919)) % keys);
            black_box(table.get(k.as_slice()).unwrap().unwrap().value().to_vec());
        }
    }
    fn scan(&self) -> u64 {
        let rtx = self.0.begin_read().unwrap();
        let table = rtx.open_table(TABLE).unwrap();
        let mut seen = 0;
        for kv in table.range::<&[u8]>(..).unwrap() {
            let (k, v) = kv.unwrap();
            black_box((k.value().to_vec(), v.value().to_vec()));
            seen += 1;
        }
        seen
    }
}

#[derive(Default, Clone, Copy)]
struct Figures {
    p50: f64,
    p99: f64,
    batch: f64,
    reads: f64,
    scan: f64,
    concurrent: f64,
    batch_cpu: f64,
}

/// 8 threads each doing single-key durable commits; commits per second.
fn concurrent(e: &dyn Engine, base: u64) -> f64 {
    const THREADS: u64 = 8;
    const EACH: u64 = 40;
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..THREADS {
            s.spawn(move || {
                for c in 0..EACH {
                    e.commit_one(base + th * EACH + c, c);
                }
            });
        }
    });
    per_sec(THREADS * EACH, t)
}

fn load(e: &dyn Engine, keys: u64, commits: usize) -> Figures {
    let t = Instant::now();
    let cpu = thread_cpu();
    for chunk in 0..keys / 1000 {
        e.batch(chunk * 1000..(chunk + 1) * 1000);
    }
    let batch = per_sec(keys, t);
    let batch_cpu = thread_cpu() - cpu;
    let mut lat = Vec::with_capacity(commits);
    for c in 0..commits as u64 {
        let t = Instant::now();
        e.commit_one(keys + c, c);
        lat.push(t.elapsed());
    }
    lat.sort();
    Figures {
        p50: pct(&lat, 0.5).as_secs_f64() * 1e3,
        p99: pct(&lat, 0.99).as_secs_f64() * 1e3,
        batch,
        batch_cpu,
        ..Figures::default()
    }
}

fn main() {
    let keys = env("QB_KEYS", 200_000) as u64;
    let commits = env("QB_COMMITS", 300);
    let rounds = env("QB_ROUNDS", 3);
    let base = std::env::var("QB_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let d1 = tempfile::tempdir_in(&base).unwrap();
    let d2 = tempfile::tempdir_in(&base).unwrap();
    println!(
        "{keys} keys (16-byte random keys, 100-byte incompressible values) in batches of 1000, \
         then {commits} single-key durable commits; reads/scans best of {rounds} rounds"
    );
    // QB_COMPRESSION=0 turns value compression off (redb has none).
    let opts = Options {
        compression: env("QB_COMPRESSION", 1) == 1,
        ..Options::default()
    };
    let ours = Ours(Db::open(d1.path(), opts).unwrap());
    let theirs = Redb(redb::Database::create(d2.path().join("redb.db")).unwrap());
    // QB_REDB_FIRST=1 loads redb first (to see order effects on the disk).
    let (mut a, mut b) = if env("QB_REDB_FIRST", 0) == 1 {
        let b = load(&theirs, keys, commits);
        (load(&ours, keys, commits), b)
    } else {
        let a = load(&ours, keys, commits);
        (a, load(&theirs, keys, commits))
    };
    a.concurrent = concurrent(&ours, 10 * keys);
    b.concurrent = concurrent(&theirs, 10 * keys);
    let n = keys.min(200_000);
    for _ in 0..rounds {
        for (e, f) in [
            (&ours as &dyn Engine, &mut a),
            (&theirs as &dyn Engine, &mut b),
        ] {
            let t = Instant::now();
            e.reads(n, keys);
            f.reads = f.reads.max(per_sec(n, t));
            let t = Instant::now();
            let seen = e.scan();
            f.scan = f.scan.max(per_sec(seen, t));
        }
    }
    println!("ours: {:?}", ours.0.stats());
    let redb_len = std::fs::metadata(d2.path().join("redb.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "file bytes: ours {} redb {redb_len}",
        ours.0.stats().file_bytes
    );
    println!(
        "{:<34} {:>14} {:>14} {:>8}",
        "metric", "cow-btree", "redb 4.5", "ratio"
    );
    let row = |name: &str, x: f64, y: f64, unit: &str| {
        println!(
            "{name:<34} {x:>11.2} {unit:<2} {y:>11.2} {unit:<2} {:>8.2}",
            x / y
        );
    };
    row("durable commit p50 (lower=better)", a.p50, b.p50, "ms");
    row("durable commit p99 (lower=better)", a.p99, b.p99, "ms");
    row(
        "8 threads, durable commits /s",
        a.concurrent,
        b.concurrent,
        "",
    );
    row("batch inserts /s", a.batch / 1e3, b.batch / 1e3, "k");
    row(
        "batch load CPU seconds (lower=better)",
        a.batch_cpu,
        b.batch_cpu,
        "s",
    );
    row("random reads /s", a.reads / 1e3, b.reads / 1e3, "k");
    row("range scan entries /s", a.scan / 1e3, b.scan / 1e3, "k");
}
