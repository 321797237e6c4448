//! Durability of the disk engines, end to end: concurrent clients write
//! through the HTTP API under `durability = sync`, the server is killed with
//! SIGKILL at a random moment, and after a restart every acknowledged write
//! is there (with at least its acknowledged version), and every batch is
//! either wholly present or wholly absent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Method;
use orbit_test_support::server::Server;

/// Writers per cycle; concurrent synced writers exercise group commit.
const WRITERS: usize = 16;

/// What the clients were told: key -> (value, version) for acknowledged
/// single puts, and every batch's keys with whether it was acknowledged.
#[derive(Default)]
struct Acked {
    puts: BTreeMap<String, (String, u64)>,
    batches: Vec<(Vec<String>, bool)>,
    /// Why each writer that stopped before the kill stopped (a failed
    /// request; after the kill every writer stops on a connection error).
    stopped: Vec<String>,
}

async fn writer(server: Arc<Server>, cycle: usize, id: usize, acked: Arc<Mutex<Acked>>) {
    for i in 0.. {
        let key = format!("c{cycle}/w{id}/{i}");
        if i % 4 == 3 {
            // An atomic batch of three keys.
            let keys: Vec<String> = (0..3).map(|j| format!("{key}/b{j}")).collect();
            let ops: Vec<String> = keys
                .iter()
                .map(|k| format!(r#"{{"op":"put","key":"{k}","value":"batch"}}"#))
                .collect();
            let body = format!(r#"{{"ops":[{}]}}"#, ops.join(","));
            let r = server
                .try_call(
                    Method::POST,
                    "/v1/batch",
                    &[("content-type", "application/json")],
                    body,
                )
                .await;
            let ok = matches!(&r, Ok(r) if r.status == 200);
            let mut acked = acked.lock().unwrap();
            acked.batches.push((keys, ok));
            if !ok {
                acked.stopped.push(match r {
                    Ok(r) => format!("batch: {} {}", r.status, r.text()),
                    Err(e) => format!("batch: {e}"),
                });
                return;
            }
            continue;
        }
        let value = format!("value-{cycle}-{id}-{i}");
        match server
            .try_call(Method::PUT, &format!("/v1/kv/{key}"), &[], value.clone())
            .await
        {
            Ok(r) if r.status == 200 => {
                let version = r.json()["version"].as_u64().expect("version");
                acked.lock().unwrap().puts.insert(key, (value, version));
            }
            other => {
                acked.lock().unwrap().stopped.push(match other {
                    Ok(r) => format!("put: {} {}", r.status, r.text()),
                    Err(e) => format!("put: {e}"),
                });
                return;
            }
        }
    }
}

fn random_delay_ms(seed: usize) -> u64 {
    // A fixed spread of kill moments, different per cycle.
    let x = (seed as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17);
    300 + x % 900
}

async fn kill_and_check(backend: &str, extra: &[(&str, &str)], cycles: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, &str)> = vec![("ORBIT_PERSISTENCE_BACKEND", backend)];
    env.extend_from_slice(extra);
    let mut all = Acked::default();
    for cycle in 0..cycles {
        let server = Arc::new(Server::start(dir.path(), &env));
        let acked = Arc::new(Mutex::new(Acked::default()));
        let tasks: Vec<_> = (0..WRITERS)
            .map(|id| tokio::spawn(writer(server.clone(), cycle, id, acked.clone())))
            .collect();
        // The kill comes at a random moment after writes start being
        // acknowledged (a first fsync can take a while on a busy disk).
        let started = std::time::Instant::now();
        loop {
            {
                let a = acked.lock().unwrap();
                if !a.puts.is_empty() {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30) && a.stopped.len() < WRITERS,
                    "cycle {cycle}: no write acknowledged after {:?}; writers stopped: {:?}",
                    started.elapsed(),
                    a.stopped
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(random_delay_ms(cycle + 1))).await;
        server.kill9_now();
        for t in tasks {
            t.await.unwrap();
        }
        drop(server);
        let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
        eprintln!(
            "{backend} cycle {cycle}: {} puts and {} batches acknowledged before SIGKILL",
            acked.puts.len(),
            acked.batches.iter().filter(|(_, ok)| *ok).count()
        );
        all.puts.extend(acked.puts);
        all.batches.extend(acked.batches);

        // Every acknowledged write of every cycle so far is there.
        let server = Server::start(dir.path(), &env);
        for (key, (value, version)) in &all.puts {
            let r = server.get(&format!("/v1/kv/{key}")).await;
            assert_eq!(
                r.status, 200,
                "{backend} cycle {cycle}: acknowledged {key} lost"
            );
            assert_eq!(&r.text(), value, "{backend}: {key}");
            let etag: u64 = r.header("etag").unwrap().trim_matches('"').parse().unwrap();
            assert_eq!(etag, *version, "{backend}: {key} version");
        }
        for (keys, ok) in &all.batches {
            let mut present = 0;
            for key in keys {
                if server.get(&format!("/v1/kv/{key}")).await.status == 200 {
                    present += 1;
                }
            }
            if *ok {
                assert_eq!(present, 3, "{backend}: acknowledged batch {keys:?} lost");
            } else {
                assert!(
                    present == 0 || present == 3,
                    "{backend}: batch {keys:?} half-visible ({present} of 3)"
                );
            }
        }
        // Versions keep increasing across the crash.
        let r = server.put(&format!("/v1/kv/after-{cycle}"), "x").await;
        let v = r.json()["version"].as_u64().unwrap();
        let max_acked = all.puts.values().map(|(_, v)| *v).max().unwrap_or(0);
        assert!(
            v > max_acked,
            "{backend}: version {v} <= acknowledged {max_acked}"
        );
        server.kill9();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rocksdb_keeps_every_acknowledged_write_across_kill_9() {
    kill_and_check("rocksdb", &[("ORBIT_ROCKSDB_DURABILITY", "sync")], 4).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lsm_tree_keeps_every_acknowledged_write_across_kill_9() {
    kill_and_check(
        "lsm_tree",
        &[
            ("ORBIT_LSM_DURABILITY", "sync"),
            // Small memtables: flushes and compactions happen before the kill.
            ("ORBIT_LSM_MEMTABLE_SIZE", "256KiB"),
        ],
        4,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cow_btree_keeps_every_acknowledged_write_across_kill_9() {
    kill_and_check("cow_btree", &[("ORBIT_COW_DURABILITY", "sync")], 4).await;
}
