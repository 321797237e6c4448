//! Runs the real `engine-bench` binary (the `--quick` preset, with fewer
//! records) once per engine and checks that every run reports sane numbers:
//! operations happened, latencies are ordered, every read found the value
//! that was written, writes reached the disk, and the store occupies space.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const RECORDS: u64 = 3_000;

fn run(engine: &str, dir: &Path) -> (Vec<Value>, String) {
    let json = dir.join("results.json");
    let out = Command::new(env!("CARGO_BIN_EXE_engine-bench"))
        .args([
            "--quick",
            "--engines",
            engine,
            "--records",
            "3000",
            "--ops",
            "3000",
        ])
        .args(["--settle-secs", "0.5", "--sync-records", "64"])
        .arg("--dir")
        .arg(dir.join("stores"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("engine-bench starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "engine-bench failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).expect("the JSON file was written");
    let rows: Vec<Value> = serde_json::from_str(&text).expect("the JSON file parses");
    (rows, stdout)
}

fn f(row: &Value, key: &str) -> f64 {
    row[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {row}"))
}

fn check(engine: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (rows, table) = run(engine, dir.path());
    // 14 workloads, readwhilewriting again with a paced writer, and the durable
    // multi-writer insert run.
    assert_eq!(rows.len(), 16, "{rows:#?}");
    assert!(
        table.contains("| run | engine | ops/s | vs RocksDB"),
        "{table}"
    );
    for row in &rows {
        let label = row["label"].as_str().unwrap();
        let workload = row["workload"].as_str().unwrap();
        assert_eq!(row["engine"], engine);
        assert!(f(row, "ops") > 0.0, "{label}: no operations");
        assert!(f(row, "ops_per_sec") > 0.0, "{label}");
        let (p50, p99, p999, max) = (
            f(row, "p50_us"),
            f(row, "p99_us"),
            f(row, "p999_us"),
            f(row, "max_us"),
        );
        assert!(
            0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
            "{label}: latencies out of order: {row}"
        );
        assert_eq!(f(row, "read_misses"), 0.0, "{label}: reads missed: {row}");
        assert_eq!(f(row, "read_wrong"), 0.0, "{label}: wrong values: {row}");
        if matches!(
            workload,
            "readrandom"
                | "readwhilewriting"
                | "ycsb-a"
                | "ycsb-b"
                | "ycsb-c"
                | "ycsb-d"
                | "ycsb-f"
        ) {
            assert!(f(row, "reads") > 0.0, "{label}: no reads");
        }
        if matches!(workload, "readseq") {
            assert_eq!(f(row, "entries_scanned") as u64, RECORDS, "{label}: {row}");
        }
        if matches!(workload, "scan" | "seekrandom" | "ycsb-e") {
            assert!(f(row, "entries_scanned") > 0.0, "{label}");
        }
        if f(row, "writes") > 0.0 {
            let wa = f(row, "write_amp");
            assert!(
                wa >= 0.5,
                "{label}: the disk saw less than half the bytes written: {row}"
            );
        } else {
            assert!(row["write_amp"].is_null(), "{label}");
        }
        assert!(
            f(row, "disk_bytes") > 0.0 && f(row, "space_amp") > 0.1,
            "{label}: {row}"
        );
        assert!(f(row, "peak_rss_bytes") > 1_048_576.0, "{label}");
    }
    let paced = rows
        .iter()
        .find(|r| r["label"] == "readwhilewriting (writer 5000/s)")
        .expect("the paced readwhilewriting run");
    assert!(
        f(paced, "writes") > 0.0,
        "the paced writer wrote nothing: {paced}"
    );
    let fill = rows.iter().find(|r| r["label"] == "fillrandom").unwrap();
    assert_eq!(f(fill, "writes") as u64, RECORDS);
    let durable = rows
        .iter()
        .find(|r| r["durability"] == "sync")
        .expect("a durable run");
    assert_eq!(f(durable, "threads"), 4.0);
    assert_eq!(f(durable, "writes"), 64.0);
}

#[cfg(feature = "rocksdb")]
#[test]
fn quick_rocksdb() {
    check("rocksdb");
}

#[test]
fn quick_fjall() {
    check("fjall");
}

#[test]
fn quick_redb() {
    check("redb");
}

#[test]
fn quick_orbit_lsm() {
    check("orbit-lsm");
}

#[test]
fn quick_orbit_cow() {
    check("orbit-cow");
}
