//! A health policy whose canary runs through `wasi:keyvalue` (draft 2, the
//! version Spin and wRPC implement) instead of Orbit's own `store` import:
//! the key-value half of this file is exactly what a Spin component would
//! write, and it runs against whichever backend the Orbit host has open.
//!
//! Every evaluation, in bucket `canary` (keys `canary/...` in the host):
//! 1. `atomics::increment("probes", 1)`: the probe number `n`;
//! 2. `set("beat", "probe n")`, then `get` and `exists` must see it;
//! 3. a compare-and-swap of `beat` (`cas::new`, `current`, `swap`);
//! 4. `batch::set-many` of two keys, `get-many` with a third, absent key,
//!    `delete-many`, and `exists` must then be false;
//! 5. `list-keys` must list `probes` and `beat`.
//!
//! Ready when the host reports the backend open and every step above gave
//! what it should; the first failing step is the reason otherwise. The
//! bucket must be granted: `ORBIT_PLUGIN_HEALTH_GRANTS=keyvalue:canary`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "health-policy-kv",
    generate_all,
});

use exports::orbit::storage::health::Guest;
use orbit::storage::log::{Level, log};
use orbit::storage::types::{DeploymentContext, HealthReport, HealthStatus, HealthVerdict};
use wasi::keyvalue::{atomics, batch, store};

const BUCKET: &str = "canary";

struct KvCanary;

fn describe(e: &store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no such store".into(),
        store::Error::AccessDenied => format!(
            "bucket `{BUCKET}` not granted (set ORBIT_PLUGIN_HEALTH_GRANTS=keyvalue:{BUCKET})"
        ),
        store::Error::Other(m) => m.clone(),
    }
}

/// Runs the canary; `Ok(n)` is the probe number, `Err` the first failure.
fn probe() -> Result<i64, String> {
    let step = |what: &str, e: store::Error| format!("{what}: {}", describe(&e));
    let bucket = store::open(BUCKET).map_err(|e| step("open", e))?;

    let n = atomics::increment(&bucket, "probes", 1).map_err(|e| step("increment", e))?;
    let beat = format!("probe {n}");
    bucket
        .set("beat", beat.as_bytes())
        .map_err(|e| step("set", e))?;
    let read = bucket.get("beat").map_err(|e| step("get", e))?;
    if read.as_deref() != Some(beat.as_bytes()) {
        return Err(format!("get returned {read:?}, wrote {beat:?}"));
    }
    if !bucket.exists("beat").map_err(|e| step("exists", e))? {
        return Err("exists is false for a key just written".into());
    }

    let cas = atomics::Cas::new(&bucket, "beat").map_err(|e| step("cas new", e))?;
    if cas
        .current()
        .map_err(|e| step("cas current", e))?
        .as_deref()
        != Some(beat.as_bytes())
    {
        return Err("cas current differs from the value just written".into());
    }
    let swapped = format!("probe {n} swapped");
    match atomics::swap(cas, swapped.as_bytes()) {
        Ok(()) => {}
        Err(atomics::CasError::StoreError(e)) => return Err(step("swap", e)),
        // Another replica's canary wrote `beat` in between: not a failure.
        Err(atomics::CasError::CasFailed(_)) => {}
    }

    let pairs = [
        ("batch-a".to_string(), n.to_le_bytes().to_vec()),
        ("batch-b".to_string(), beat.clone().into_bytes()),
    ];
    batch::set_many(&bucket, &pairs).map_err(|e| step("set-many", e))?;
    let keys = ["batch-a", "batch-b", "batch-absent"].map(String::from);
    let got = batch::get_many(&bucket, &keys).map_err(|e| step("get-many", e))?;
    let expected = vec![
        (keys[0].clone(), Some(pairs[0].1.clone())),
        (keys[1].clone(), Some(pairs[1].1.clone())),
        (keys[2].clone(), None),
    ];
    if got != expected {
        return Err(format!("get-many returned {got:?}"));
    }
    batch::delete_many(&bucket, &keys[..2]).map_err(|e| step("delete-many", e))?;
    if bucket.exists("batch-a").map_err(|e| step("exists", e))? {
        return Err("a key removed by delete-many still exists".into());
    }

    let mut listed = Vec::new();
    let mut cursor = None;
    loop {
        let page = bucket
            .list_keys(cursor.as_deref())
            .map_err(|e| step("list-keys", e))?;
        listed.extend(page.keys);
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    for key in ["probes", "beat"] {
        if !listed.iter().any(|k| k == key) {
            return Err(format!("list-keys does not list {key:?}: {listed:?}"));
        }
    }
    Ok(n)
}

impl Guest for KvCanary {
    fn evaluate(_context: DeploymentContext, report: HealthReport) -> HealthVerdict {
        let (ready, reason) = if !report.backend_open {
            (false, "kv canary: the backend is not open".to_string())
        } else {
            match probe() {
                Ok(n) => (
                    true,
                    format!(
                        "kv canary: probe {n} through wasi:keyvalue ok (store, atomics, batch)"
                    ),
                ),
                Err(e) => (false, format!("kv canary failed: {e}")),
            }
        };
        log(if ready { Level::Debug } else { Level::Warn }, &reason);
        HealthVerdict {
            live: true,
            ready,
            status: if ready {
                HealthStatus::Ok
            } else {
                HealthStatus::Degraded
            },
            reasons: vec![reason],
        }
    }
}

export!(KvCanary);
