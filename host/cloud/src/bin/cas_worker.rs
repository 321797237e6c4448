//! Test tool for the many-replica tests: one "replica" that does
//! compare-and-set increments on shared counters in one bucket, then prints
//! one JSON line `{"acked":[per-key counts],"errors":n,"unknown":n}`.
//!
//! Usage (every flag required):
//! `orbit-cloud-cas-worker --provider s3|azure --endpoint URL --bucket B
//!  --prefix P --key-file F --secret-file F --keys K --ops N`
//! (`--key-file` is the access key id file for S3; for Azure it is unused
//! but must be given, and `--secret-file` is the account key file.)
//! A counter's value is its decimal count; an increment reads it and writes
//! `count + 1` on condition of the version read (or absent), retrying on
//! conflict. An increment is *acknowledged* when the put returned Ok.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use orbit_storage::{
    AzureConfig, Precondition, PutOptions, S3Config, SecretRef, Storage, StorageError,
};

fn main() -> ExitCode {
    let mut args: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let (Some(flag), Some(value)) = (it.next(), it.next()) {
        args.insert(flag.trim_start_matches('-').to_string(), value);
    }
    let arg = |name: &str| -> String {
        args.get(name).cloned().unwrap_or_else(|| {
            eprintln!("missing --{name}");
            std::process::exit(2)
        })
    };
    let keys: usize = arg("keys").parse().unwrap_or(1);
    let ops: usize = arg("ops").parse().unwrap_or(1);
    let store: std::sync::Arc<dyn Storage> = match arg("provider").as_str() {
        "s3" => match orbit_cloud::open_s3(&S3Config {
            endpoint: Some(arg("endpoint")),
            region: "us-east-1".into(),
            bucket: arg("bucket"),
            access_key_id: Some(SecretRef::File(arg("key-file"))),
            secret_access_key: Some(SecretRef::File(arg("secret-file"))),
            prefix: arg("prefix"),
            enable_ssl: false,
            connection_timeout: std::time::Duration::from_secs(2),
            read_timeout: Some(std::time::Duration::from_secs(20)),
            write_timeout: Some(std::time::Duration::from_secs(20)),
            retry_count: 2,
        }) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("open: {e}");
                return ExitCode::from(2);
            }
        },
        "azure" => match orbit_cloud::open_azure(&AzureConfig {
            account_name: "devstoreaccount1".into(),
            account_key: Some(SecretRef::File(arg("secret-file"))),
            container_name: arg("bucket"),
            endpoint: Some(arg("endpoint")),
            prefix: arg("prefix"),
            connection_timeout: std::time::Duration::from_secs(2),
            retry_count: 2,
        }) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("open: {e}");
                return ExitCode::from(2);
            }
        },
        other => {
            eprintln!("unknown provider {other}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::from(2);
        }
    };
    if args.get("mode").map(String::as_str) == Some("transfer") {
        runtime.block_on(transfer_forever(store));
        return ExitCode::SUCCESS;
    }
    let (acked, errors, unknown) = runtime.block_on(run(store, keys, ops));
    println!(
        "{}",
        serde_json::json!({"acked": acked, "errors": errors, "unknown": unknown})
    );
    ExitCode::SUCCESS
}

async fn run(store: std::sync::Arc<dyn Storage>, keys: usize, ops: usize) -> (Vec<u64>, u64, u64) {
    let mut acked = vec![0u64; keys];
    let (mut errors, mut unknown) = (0u64, 0u64);
    for i in 0..ops {
        let slot = i % keys;
        let key = format!("counter-{slot}");
        let started = Instant::now();
        loop {
            if started.elapsed() > Duration::from_secs(120) {
                errors += 1;
                break;
            }
            let current = match store.get(key.as_bytes()).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("get {key}: {e}");
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let (count, precondition) = match &current {
                None => (0u64, Precondition::Absent),
                Some(entry) => (
                    std::str::from_utf8(&entry.value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    Precondition::Version(entry.version),
                ),
            };
            let options = PutOptions {
                precondition,
                expires_at: None,
            };
            match store
                .put(
                    key.as_bytes(),
                    Bytes::from((count + 1).to_string()),
                    options,
                )
                .await
            {
                Ok(_) => {
                    acked[slot] += 1;
                    break;
                }
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => {
                    let message = e.to_string();
                    eprintln!("put {key}: {message}");
                    if message.contains("outcome unknown") {
                        // Might have been applied: do not retry (that could
                        // double-count); report it.
                        unknown += 1;
                        break;
                    }
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    (acked, errors, unknown)
}

async fn transfer_forever(store: std::sync::Arc<dyn Storage>) {
    use std::io::Write;
    let read = |e: &Option<orbit_storage::Entry>| -> (i64, Precondition) {
        match e {
            None => (0, Precondition::Absent),
            Some(e) => (
                std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                Precondition::Version(e.version),
            ),
        }
    };
    loop {
        let (Ok(a), Ok(b)) = (store.get(b"a").await, store.get(b"b").await) else {
            continue;
        };
        let ((a, pa), (b, pb)) = (read(&a), read(&b));
        let op = |key: &'static [u8], value: i64, precondition| orbit_storage::BatchOp::Put {
            key: Bytes::from_static(key),
            value: Bytes::from(value.to_string()),
            options: PutOptions {
                precondition,
                expires_at: None,
            },
        };
        match store
            .batch(vec![op(b"a", a - 1, pa), op(b"b", b + 1, pb)])
            .await
        {
            Ok(_) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "ack");
                let _ = out.flush();
            }
            Err(StorageError::Conflict { .. }) => {}
            Err(e) => eprintln!("transfer: {e}"),
        }
    }
}
