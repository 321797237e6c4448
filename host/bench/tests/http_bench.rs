//! CI's quick mode of `http-bench`: the real binary with `--quick` (one run,
//! 1 s per operation, 1 000 keys) against the floor, orbit-server on every
//! local backend, Redis and etcd, checking that every system ran and
//! reported (not how fast). Needs wrk, redis-server, redis-benchmark and
//! etcd: `bash scripts/install-bench-peers.sh` (scripts/test.sh runs it).

use std::process::Command;

use serde_json::Value;

#[test]
fn quick_mode_runs_every_system_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("http.json");
    let bench = env!("CARGO_BIN_EXE_http-bench");
    let server = std::path::Path::new(bench).with_file_name("orbit-server");
    assert!(
        server.exists(),
        "{} is not built (cargo build --release --locked --workspace --bins)",
        server.display()
    );
    let started = std::time::Instant::now();
    let out = Command::new(bench)
        .args(["--quick", "--peers", "redis,etcd", "--json"])
        .arg(&json)
        .arg("--server")
        .arg(&server)
        .output()
        .expect("http-bench starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "http-bench failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("http-bench --quick took {:?}", started.elapsed());
    assert!(
        stdout.contains("| system | operation | ops/s |"),
        "{stdout}"
    );
    assert!(stdout.contains("share the machine's"), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["bench"], "http");
    let rows = report["rows"].as_array().unwrap();
    let has = |system: &str, op: &str| {
        rows.iter().any(|r| {
            r["system"] == system && r["operation"] == op && r["ops_per_sec"].as_f64() > Some(0.0)
        })
    };
    for (system, ops) in [
        ("floor (axum + map)", &["GET", "PUT"][..]),
        ("orbit-server memory", &["GET", "PUT"]),
        ("orbit-server lsm_tree (sync)", &["GET", "PUT", "CAS"]),
        ("orbit-server rocksdb (sync)", &["GET", "PUT", "CAS"]),
        ("orbit-server cow_btree (sync)", &["GET", "PUT", "CAS"]),
        ("redis-server (redis-benchmark)", &["GET", "SET"]),
        ("etcd 3.4 (JSON gateway)", &["GET", "PUT", "CAS"]),
    ] {
        for op in ops {
            assert!(has(system, op), "no {system} {op} in {rows:#?}");
        }
    }
    let lsm_get = rows
        .iter()
        .find(|r| r["system"] == "orbit-server lsm_tree (sync)" && r["operation"] == "GET")
        .unwrap();
    assert!(lsm_get["vs_floor"].as_f64().is_some(), "{lsm_get}");
    assert!(lsm_get["vs_etcd"].as_f64().is_some(), "{lsm_get}");
}
