//! Shared pieces of Orbit's benchmark programs.
//!
//! - latency recording and reporting for `http-bench` (the HTTP API against
//!   redis-server, side by side in one run);
//! - the storage-engine harness behind `engine-bench`: [`engine`] (one trait,
//!   one adapter per engine), [`workload`] (db_bench and YCSB workloads),
//!   [`harness`] (one child process per engine × workload, the kernel's view
//!   of write and space amplification and peak RSS, the table).
//!
//! Benchmarks are programs, not timed tests: they run the peers in the same
//! run and print the ratio.

pub mod engine;
pub mod floor;
pub mod harness;
pub mod histogram;
pub mod keyspace;
pub mod process;
pub mod procfs;
pub mod workload;
pub mod wrk;

use std::time::Duration;

/// Latencies of one run, in microseconds.
#[derive(Default, Debug, Clone)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.0.push(d.as_micros().min(u32::MAX as u128) as u32);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The mean in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.iter().map(|&us| f64::from(us)).sum::<f64>() / self.0.len() as f64 / 1000.0
    }

    /// The `p`-quantile (0..=1) in milliseconds.
    pub fn quantile_ms(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() - 1) as f64 * p).round() as usize;
        f64::from(self.0[i]) / 1000.0
    }
}

/// One line of a comparison table.
#[derive(Debug, Clone)]
pub struct Row {
    pub system: String,
    pub operation: String,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}
