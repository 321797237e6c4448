//! The checks the harness makes must be able to fail: a wrong value is
//! counted as wrong, a missing key as a miss, and a failing child is an
//! error, not a row of numbers.

use orbit_bench::engine::{Durability, EngineKind, EngineSettings};
use orbit_bench::harness::{self, HarnessError, RunSpec};
use orbit_bench::keyspace::DataShape;
use orbit_bench::workload::{self, Workload, WorkloadParams};

fn params(workload: Workload, records: u64) -> WorkloadParams {
    WorkloadParams {
        workload,
        records,
        ops: 2_000,
        threads: 2,
        key_size: 16,
        value_size: 100,
        batch: 10,
        scan_len: 10,
        durability: Durability::None,
        seed: 1,
        write_rate: 0,
    }
}

const SETTINGS: EngineSettings = EngineSettings {
    durability: Durability::None,
    cache_bytes: 4 << 20,
};

#[test]
fn wrong_values_and_misses_are_counted() {
    let built = EngineKind::ALL
        .into_iter()
        .filter(|k| cfg!(feature = "rocksdb") || *k != EngineKind::RocksDb);
    for kind in built {
        let dir = tempfile::tempdir().unwrap();
        let engine = kind.open(dir.path(), &SETTINGS).unwrap();
        let fill = workload::run(engine.as_ref(), &params(Workload::FillSeq, 100)).unwrap();
        assert_eq!(fill.tally.writes, 100);

        let clean = workload::run(engine.as_ref(), &params(Workload::ReadRandom, 100)).unwrap();
        assert_eq!(
            (clean.tally.read_misses, clean.tally.read_wrong),
            (0, 0),
            "{kind}"
        );

        // Key 7 now holds a value of the wrong size.
        let shape = DataShape::new(16, 100, 1);
        let mut key = Vec::new();
        shape.key(7, &mut key);
        engine.write(&[(&key, &[0u8; 99])]).unwrap();
        let bad = workload::run(engine.as_ref(), &params(Workload::ReadRandom, 100)).unwrap();
        assert!(
            bad.tally.read_wrong > 0,
            "{kind}: a wrong value went unnoticed"
        );
        assert_eq!(bad.tally.read_misses, 0, "{kind}");
        let scan = workload::run(engine.as_ref(), &params(Workload::ReadSeq, 100)).unwrap();
        assert_eq!(scan.tally.read_wrong, 1, "{kind}");

        // Keys 100..200 were never written.
        let missing = workload::run(engine.as_ref(), &params(Workload::ReadRandom, 200)).unwrap();
        assert!(
            missing.tally.read_misses > 500,
            "{kind}: {}",
            missing.tally.read_misses
        );
    }
}

#[test]
fn a_failing_child_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the store's directory should be.
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let spec = RunSpec {
        engine: EngineKind::Redb,
        label: "fillseq".into(),
        dir: not_a_dir,
        settings: SETTINGS,
        params: params(Workload::FillSeq, 10),
        live_records: 0,
        settle_secs: 0.1,
    };
    let err = harness::spawn_child(env!("CARGO_BIN_EXE_engine-bench").as_ref(), &spec).unwrap_err();
    assert!(matches!(err, HarnessError::Child { .. }), "{err}");
    assert!(err.to_string().contains("exited with"), "{err}");
}

#[test]
fn a_paced_writer_never_runs_ahead_of_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let engine = EngineKind::OrbitLsm.open(dir.path(), &SETTINGS).unwrap();
    workload::run(engine.as_ref(), &params(Workload::FillSeq, 100)).unwrap();
    let rate = 1_000;
    let paced = WorkloadParams {
        ops: 400_000,
        write_rate: rate,
        ..params(Workload::ReadWhileWriting, 100)
    };
    let m = workload::run(engine.as_ref(), &paced).unwrap();
    assert_eq!(
        m.tally.ops, 400_000,
        "the readers' operations are the counted ones"
    );
    // The writer may start before the first reader and stop after the last
    // (50 ms of slack), and runs at most 1 ms ahead of its schedule.
    let bound = (rate as f64 * (m.elapsed.as_secs_f64() + 0.051)) as u64 + 1;
    assert!(
        (1..=bound).contains(&m.tally.writes),
        "{} writes in {:?} at {rate}/s (at most {bound})",
        m.tally.writes,
        m.elapsed
    );
}
