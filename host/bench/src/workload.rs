//! The workloads (db_bench's fill/read/seek/scan family and YCSB A–F) and the
//! measured run of one workload against one open engine.
//!
//! Why: each workload is a loop of engine operations per worker thread; this
//! module owns those loops, the per-operation latency recording, the
//! every-N sync rule and the checking of every value read back. It measures
//! nothing about the process; [`crate::harness`] adds the kernel's view.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::{Durability, Engine, EngineError};
use crate::histogram::Histogram;
use crate::keyspace::{DataShape, Rng, ScrambledZipfian, Zipfian};

/// A named workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Insert `records` keys in key order into an empty store.
    FillSeq,
    /// Insert `records` keys in a shuffled order into an empty store.
    FillRandom,
    /// Rewrite `ops` uniformly chosen existing keys.
    Overwrite,
    /// `ops` point reads of uniformly chosen existing keys.
    ReadRandom,
    /// Iterate over every key in order (the key range split among threads).
    ReadSeq,
    /// `ops` seeks to uniformly chosen keys, reading one entry each.
    SeekRandom,
    /// `ops` seeks to uniformly chosen keys, reading `scan_len` entries each.
    Scan,
    /// `ops` point reads by `threads` readers while one more thread overwrites
    /// uniformly chosen keys, as fast as it can or at
    /// [`WorkloadParams::write_rate`].
    ReadWhileWriting,
    YcsbA,
    YcsbB,
    YcsbC,
    YcsbD,
    YcsbE,
    YcsbF,
}

impl Workload {
    pub const ALL: [Workload; 14] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::Overwrite,
        Workload::ReadRandom,
        Workload::ReadSeq,
        Workload::SeekRandom,
        Workload::Scan,
        Workload::ReadWhileWriting,
        Workload::YcsbA,
        Workload::YcsbB,
        Workload::YcsbC,
        Workload::YcsbD,
        Workload::YcsbE,
        Workload::YcsbF,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::Overwrite => "overwrite",
            Workload::ReadRandom => "readrandom",
            Workload::ReadSeq => "readseq",
            Workload::SeekRandom => "seekrandom",
            Workload::Scan => "scan",
            Workload::ReadWhileWriting => "readwhilewriting",
            Workload::YcsbA => "ycsb-a",
            Workload::YcsbB => "ycsb-b",
            Workload::YcsbC => "ycsb-c",
            Workload::YcsbD => "ycsb-d",
            Workload::YcsbE => "ycsb-e",
            Workload::YcsbF => "ycsb-f",
        }
    }

    /// Whether the workload starts from an empty store (otherwise it needs
    /// the `records` keys a fill left behind).
    pub fn starts_empty(self) -> bool {
        matches!(self, Workload::FillSeq | Workload::FillRandom)
    }

    /// Whether the workload changes the store.
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Workload::ReadRandom
                | Workload::ReadSeq
                | Workload::SeekRandom
                | Workload::Scan
                | Workload::YcsbC
        )
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Workload::ALL.iter().map(|w| w.name()).collect();
                format!("unknown workload {s:?}; known: {}", known.join(", "))
            })
    }
}

/// Parameters of one measured run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadParams {
    pub workload: Workload,
    /// Keys written by a fill, or already in the store for other workloads.
    pub records: u64,
    /// Operations of non-fill workloads.
    pub ops: u64,
    pub threads: usize,
    pub key_size: usize,
    pub value_size: usize,
    /// Keys per write batch in fills and overwrites.
    pub batch: usize,
    /// Entries per `scan` operation (YCSB E draws 1..=scan_len uniformly).
    pub scan_len: usize,
    pub durability: Durability,
    pub seed: u64,
    /// `readwhilewriting`: the background writer's pace, writes per second
    /// (0: unthrottled, as db_bench without `--benchmark_write_rate_limit`).
    /// A fixed pace puts every engine's readers under the same write load;
    /// unthrottled, a faster writer makes more work for its own readers.
    #[serde(default)]
    pub write_rate: u64,
}

/// What the worker threads did.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Tally {
    /// Operations counted for ops/s (for `readwhilewriting`, the reads).
    pub ops: u64,
    pub reads: u64,
    /// Point reads that found nothing.
    pub read_misses: u64,
    /// Reads or scanned entries whose value had the wrong size or tag, or
    /// scans that returned keys out of order.
    pub read_wrong: u64,
    pub entries_scanned: u64,
    /// Keys written (puts inside batches count one each).
    pub writes: u64,
    pub user_bytes_written: u64,
    /// New keys inserted by YCSB D and E.
    pub inserted: u64,
    pub syncs: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.ops += o.ops;
        self.reads += o.reads;
        self.read_misses += o.read_misses;
        self.read_wrong += o.read_wrong;
        self.entries_scanned += o.entries_scanned;
        self.writes += o.writes;
        self.user_bytes_written += o.user_bytes_written;
        self.inserted += o.inserted;
        self.syncs += o.syncs;
    }
}

/// The outcome of [`run`].
pub struct Measured {
    pub tally: Tally,
    pub elapsed: Duration,
    pub latency: Histogram,
}

/// Shared state of one run's workers.
struct Ctx<'a> {
    engine: &'a dyn Engine,
    p: &'a WorkloadParams,
    shape: &'a DataShape,
    /// Writes since the start, for `Durability::EveryN`.
    written: AtomicU64,
    /// Per-thread count of YCSB inserts done (ids `records + k*threads + t`).
    inserts_done: Vec<AtomicU64>,
    stop_writer: AtomicBool,
}

/// One worker's buffers and counters.
struct Worker<'a, 'c> {
    ctx: &'c Ctx<'a>,
    rng: Rng,
    key: Vec<u8>,
    keys: Vec<Vec<u8>>,
    vals: Vec<Vec<u8>>,
    out: Vec<u8>,
    salt: u64,
    tally: Tally,
    hist: Histogram,
}

impl<'a, 'c> Worker<'a, 'c> {
    fn new(ctx: &'c Ctx<'a>, thread: usize) -> Self {
        Worker {
            ctx,
            rng: Rng::new(ctx.p.seed ^ ((thread as u64 + 1) << 32)),
            key: Vec::new(),
            keys: Vec::new(),
            vals: Vec::new(),
            out: Vec::new(),
            salt: ctx.p.seed ^ thread as u64,
            tally: Tally::default(),
            hist: Histogram::default(),
        }
    }

    fn timed<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let start = Instant::now();
        let r = f(self)?;
        self.hist.record(start.elapsed().as_nanos() as u64);
        Ok(r)
    }

    /// Writes the keys `ids` in one batch (then syncs if an every-N boundary
    /// was crossed). Not timed: callers time the operation they define.
    fn put(&mut self, ids: &[u64]) -> Result<(), EngineError> {
        let shape = self.ctx.shape;
        self.keys.resize_with(ids.len(), Vec::new);
        self.vals.resize_with(ids.len(), Vec::new);
        for (i, &id) in ids.iter().enumerate() {
            self.salt = self.salt.wrapping_add(1);
            shape.key(id, &mut self.keys[i]);
            shape.value(id, self.salt, &mut self.vals[i]);
        }
        let batch: Vec<(&[u8], &[u8])> = self
            .keys
            .iter()
            .zip(&self.vals)
            .take(ids.len())
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        self.ctx.engine.write(&batch)?;
        let n = ids.len() as u64;
        self.tally.writes += n;
        self.tally.user_bytes_written += n * shape.entry_bytes();
        if let Durability::EveryN(every) = self.ctx.p.durability {
            let before = self.ctx.written.fetch_add(n, Ordering::Relaxed);
            if (before + n) / every > before / every {
                self.ctx.engine.sync()?;
                self.tally.syncs += 1;
            }
        }
        Ok(())
    }

    fn read(&mut self, id: u64) -> Result<(), EngineError> {
        let shape = self.ctx.shape;
        shape.key(id, &mut self.key);
        self.tally.reads += 1;
        if self.ctx.engine.get(&self.key, &mut self.out)? {
            if !shape.value_matches(id, &self.out) {
                self.tally.read_wrong += 1;
            }
        } else {
            self.tally.read_misses += 1;
        }
        Ok(())
    }

    fn scan(&mut self, from_id: u64, len: usize) -> Result<u64, EngineError> {
        let shape = self.ctx.shape;
        shape.key(from_id, &mut self.key);
        let mut last: Option<u64> = None;
        let mut wrong = 0;
        let n = self.ctx.engine.scan(&self.key, len, &mut |k, v| {
            let ok = match shape.id_of(k) {
                Some(id) => {
                    let ordered = last.is_none_or(|l| id > l) && id >= from_id;
                    last = Some(id);
                    ordered && shape.value_matches(id, v)
                }
                None => false,
            };
            if !ok {
                wrong += 1;
            }
        })?;
        self.tally.read_wrong += wrong;
        self.tally.entries_scanned += n as u64;
        Ok(n as u64)
    }

    /// Ids below this are inserted by every YCSB thread (the "acknowledged"
    /// frontier the latest distribution draws from).
    fn insert_frontier(&self) -> u64 {
        let threads = self.ctx.inserts_done.len() as u64;
        let min_done = self
            .ctx
            .inserts_done
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        self.ctx.p.records + min_done * threads
    }

    fn insert(&mut self, thread: usize) -> Result<(), EngineError> {
        let threads = self.ctx.inserts_done.len() as u64;
        let k = self.ctx.inserts_done[thread].load(Ordering::Acquire);
        self.put(&[self.ctx.p.records + k * threads + thread as u64])?;
        self.ctx.inserts_done[thread].store(k + 1, Ordering::Release);
        self.tally.inserted += 1;
        Ok(())
    }
}

/// Splits `total` over `threads`: the share of thread `t`.
fn share(total: u64, threads: usize, t: usize) -> std::ops::Range<u64> {
    let threads = threads as u64;
    let t = t as u64;
    (total * t / threads)..(total * (t + 1) / threads)
}

/// Runs the workload of `p` on `engine` and returns what it did. The engine
/// must hold the keys `0..p.records` unless the workload starts empty.
pub fn run(engine: &dyn Engine, p: &WorkloadParams) -> Result<Measured, EngineError> {
    let shape = DataShape::new(p.key_size, p.value_size, p.seed);
    let threads = p.threads.max(1);
    let ctx = Ctx {
        engine,
        p,
        shape: &shape,
        written: AtomicU64::new(0),
        inserts_done: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        stop_writer: AtomicBool::new(false),
    };
    let order: Vec<u64> = if p.workload == Workload::FillRandom {
        let mut ids: Vec<u64> = (0..p.records).collect();
        let mut rng = Rng::new(p.seed ^ 0xF111);
        for i in (1..ids.len()).rev() {
            ids.swap(i, rng.below(i as u64 + 1) as usize);
        }
        ids
    } else {
        Vec::new()
    };
    let extra_writer = p.workload == Workload::ReadWhileWriting;
    let barrier = Barrier::new(threads + 1 + usize::from(extra_writer));
    let results: Mutex<Vec<Result<(Tally, Histogram), EngineError>>> = Mutex::new(Vec::new());
    // When each measured worker started and ended: the run lasts from the
    // first start to the last end (timing from the spawning thread would
    // miss workers that ran before it was scheduled again).
    let spans: Mutex<Vec<(Instant, Instant)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for t in 0..threads {
            let (ctx, barrier, order, results, spans) = (&ctx, &barrier, &order, &results, &spans);
            handles.push(s.spawn(move || {
                let mut w = Worker::new(ctx, t);
                barrier.wait();
                let start = Instant::now();
                let r = worker(&mut w, t, order).map(|()| (w.tally, w.hist));
                if let Ok(mut v) = spans.lock() {
                    v.push((start, Instant::now()));
                }
                if let Ok(mut v) = results.lock() {
                    v.push(r);
                }
            }));
        }
        let writer = extra_writer.then(|| {
            let (ctx, barrier, results) = (&ctx, &barrier, &results);
            s.spawn(move || {
                let mut w = Worker::new(ctx, threads);
                barrier.wait();
                let r = background_writer(&mut w);
                if let Err(e) = r
                    && let Ok(mut v) = results.lock()
                {
                    v.push(Err(e));
                } else if let Ok(mut v) = results.lock() {
                    // The writer's operations are not the measured ones.
                    let mut tally = w.tally;
                    tally.ops = 0;
                    v.push(Ok((tally, Histogram::default())));
                }
            })
        });
        barrier.wait();
        for h in handles {
            let _ = h.join();
        }
        ctx.stop_writer.store(true, Ordering::Relaxed);
        if let Some(h) = writer {
            let _ = h.join();
        }
    });
    let spans = spans.into_inner().unwrap_or_default();
    let elapsed = match (
        spans.iter().map(|s| s.0).min(),
        spans.iter().map(|s| s.1).max(),
    ) {
        (Some(first), Some(last)) => last.duration_since(first),
        _ => Duration::ZERO,
    };
    let mut tally = Tally::default();
    let mut latency = Histogram::default();
    let results = results.into_inner().unwrap_or_default();
    if results.len() != threads + usize::from(extra_writer) {
        return Err(EngineError::Backend {
            engine: "harness",
            op: "worker",
            source: "a worker thread panicked".into(),
        });
    }
    for r in results {
        let (t, h) = r?;
        tally.add(&t);
        latency.merge(&h);
    }
    Ok(Measured {
        tally,
        elapsed,
        latency,
    })
}

fn background_writer(w: &mut Worker<'_, '_>) -> Result<(), EngineError> {
    let records = w.ctx.p.records;
    let rate = w.ctx.p.write_rate;
    let start = Instant::now();
    let mut written: u64 = 0;
    while !w.ctx.stop_writer.load(Ordering::Relaxed) {
        // Write number n is due n/rate s after the start; a writer that fell
        // behind (descheduled, a stalled write) catches up at once, so the
        // average pace is the rate. Sleeping only when 1 ms or more ahead
        // keeps timer slack from slowing it down. Rate 0: never sleeps.
        if let Some(due_ns) = written.saturating_mul(1_000_000_000).checked_div(rate) {
            let due = start + Duration::from_nanos(due_ns);
            let ahead = due.saturating_duration_since(Instant::now());
            if ahead >= Duration::from_millis(1) {
                std::thread::sleep(ahead);
                continue;
            }
        }
        let id = w.rng.below(records);
        w.put(&[id])?;
        written += 1;
    }
    Ok(())
}

fn worker(w: &mut Worker<'_, '_>, t: usize, order: &[u64]) -> Result<(), EngineError> {
    let p = w.ctx.p;
    let threads = p.threads.max(1);
    let batch = p.batch.max(1);
    let records = p.records;
    match p.workload {
        Workload::FillSeq | Workload::FillRandom => {
            let mine = share(records, threads, t);
            let ids: Vec<u64> = if p.workload == Workload::FillSeq {
                mine.collect()
            } else {
                order[mine.start as usize..mine.end as usize].to_vec()
            };
            for chunk in ids.chunks(batch) {
                w.timed(|w| w.put(chunk))?;
                w.tally.ops += chunk.len() as u64;
            }
        }
        Workload::Overwrite => {
            let n = share(p.ops, threads, t).count();
            let mut ids = Vec::with_capacity(batch);
            let mut done = 0;
            while done < n {
                let k = batch.min(n - done);
                ids.clear();
                ids.extend((0..k).map(|_| w.rng.below(records)));
                w.timed(|w| w.put(&ids))?;
                w.tally.ops += k as u64;
                done += k;
            }
        }
        Workload::ReadRandom | Workload::ReadWhileWriting => {
            for _ in share(p.ops, threads, t) {
                let id = w.rng.below(records);
                w.timed(|w| w.read(id))?;
                w.tally.ops += 1;
            }
        }
        Workload::ReadSeq => {
            // Latency is recorded per chunk of CHUNK entries.
            const CHUNK: usize = 1000;
            let mine = share(records, threads, t);
            let mut next = mine.start;
            while next < mine.end {
                let want = CHUNK.min((mine.end - next) as usize);
                let got = w.timed(|w| w.scan(next, want))?;
                w.tally.ops += got;
                if got == 0 {
                    break;
                }
                next += want as u64;
            }
        }
        Workload::SeekRandom | Workload::Scan => {
            let len = if p.workload == Workload::Scan {
                p.scan_len.max(1)
            } else {
                1
            };
            for _ in share(p.ops, threads, t) {
                let id = w.rng.below(records);
                w.timed(|w| w.scan(id, len))?;
                w.tally.ops += 1;
            }
        }
        Workload::YcsbA
        | Workload::YcsbB
        | Workload::YcsbC
        | Workload::YcsbD
        | Workload::YcsbE
        | Workload::YcsbF => ycsb(w, t)?,
    }
    Ok(())
}

/// YCSB core workloads: proportions as in YCSB's `workloads/workload[a-f]`,
/// request distribution zipfian (scrambled) except D (latest); E scans
/// 1..=scan_len entries (uniform); F reads then writes the same key.
fn ycsb(w: &mut Worker<'_, '_>, t: usize) -> Result<(), EngineError> {
    #[derive(Clone, Copy)]
    enum Op {
        Read,
        Update,
        Insert,
        Scan,
        ReadModifyWrite,
    }
    let p = w.ctx.p;
    let mix: &[(f64, Op)] = match p.workload {
        Workload::YcsbA => &[(0.5, Op::Read), (0.5, Op::Update)],
        Workload::YcsbB => &[(0.95, Op::Read), (0.05, Op::Update)],
        Workload::YcsbC => &[(1.0, Op::Read)],
        Workload::YcsbD => &[(0.95, Op::Read), (0.05, Op::Insert)],
        Workload::YcsbE => &[(0.95, Op::Scan), (0.05, Op::Insert)],
        _ => &[(0.5, Op::Read), (0.5, Op::ReadModifyWrite)],
    };
    let latest = p.workload == Workload::YcsbD;
    let mut scrambled = ScrambledZipfian::new(p.records.max(1));
    let mut skewed = latest.then(|| Zipfian::new(p.records.max(2)));
    for _ in share(p.ops, p.threads.max(1), t) {
        let mut x = w.rng.unit();
        let mut op = mix[mix.len() - 1].1;
        for &(share, o) in mix {
            if x < share {
                op = o;
                break;
            }
            x -= share;
        }
        let id = if let Some(skewed) = skewed.as_mut() {
            let frontier = w.insert_frontier();
            frontier - 1 - skewed.next(&mut w.rng, frontier)
        } else {
            scrambled.next(&mut w.rng)
        };
        match op {
            Op::Read => w.timed(|w| w.read(id))?,
            Op::Update => w.timed(|w| w.put(&[id]))?,
            Op::Insert => w.timed(|w| w.insert(t))?,
            Op::Scan => {
                let len = 1 + w.rng.below(p.scan_len.max(1) as u64) as usize;
                w.timed(|w| w.scan(id, len).map(drop))?
            }
            Op::ReadModifyWrite => w.timed(|w| {
                w.read(id)?;
                w.put(&[id])
            })?,
        }
        w.tally.ops += 1;
    }
    Ok(())
}
