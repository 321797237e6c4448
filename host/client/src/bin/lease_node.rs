//! `orbit-lease-node`: one simulated Orbit-RS node for the lease-contention
//! test (`tests/contention.rs`). It competes for actors `Contended:0..M`
//! through [`AddressableDirectory`] for `--run-ms`, and writes one line per
//! belief to `--log`, so a test can check from outside that no two nodes
//! ever believed they held one actor at the same time.
//!
//! Belief follows the monotonic-safe rule: after a successful acquire or
//! renewal whose request was started at `t0` (read before sending), the node
//! believes it holds the actor until `t0 + lease - margin`, never longer.
//! Times are `CLOCK_MONOTONIC` nanoseconds, comparable between processes.
//!
//! Log lines (one `write` each, so a SIGKILL loses at most the line being
//! written):
//!
//! ```text
//! start <node> <t>
//! hold <actor> <from> <until> <version>   believed to hold from..until (acquire or renewal)
//! end <actor> <t>                         stopped believing at t (release, or a lost renewal)
//! delayed <actor> <t0> <ms>               this renewal was held back (a slow network)
//! lost <actor> <t>                        a renewal found the lease gone or taken
//! final <actor> <version> <until>         still held when the run ended (after one last renewal)
//! ```
//!
//! Every `--delay-every`-th renewal sleeps `--delay-ms` after taking `t0` and
//! before sending, as a slow network or a paused process would: such a
//! renewal lands after the lease expired on the server, which is exactly
//! when an unconditional renewal would steal the actor back.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use orbit_client::monotonic::now_ns;
use orbit_client::types::{AddressableReference, Key, NodeId};
use orbit_client::{
    Acquire, AddressableDirectory, Client, ClientConfig, DirectoryConfig, Error, HeldLease,
};

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Server URLs (comma-separated replicas of one store).
    #[arg(long, value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    #[arg(long)]
    node: String,
    #[arg(long, default_value_t = 6)]
    actors: u32,
    #[arg(long, default_value_t = 1500)]
    lease_ms: u64,
    #[arg(long, default_value_t = 150)]
    margin_ms: u64,
    #[arg(long, default_value_t = 5000)]
    run_ms: u64,
    #[arg(long, default_value_t = 50)]
    poll_ms: u64,
    /// Every n-th renewal of this node is held back (0: never).
    #[arg(long, default_value_t = 5)]
    delay_every: u64,
    #[arg(long, default_value_t = 1200)]
    delay_ms: u64,
    /// Chance that a due renewal is a release instead.
    #[arg(long, default_value_t = 0.1)]
    release_prob: f64,
    #[arg(long)]
    log: PathBuf,
    /// Prefix of the directory's keys.
    #[arg(long, default_value = "contention/")]
    prefix: String,
}

struct Log(Mutex<std::fs::File>);

impl Log {
    fn line(&self, s: String) {
        let mut f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = f.write_all(format!("{s}\n").as_bytes()) {
            eprintln!("cannot write the log: {e}");
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.log)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot open {}: {e}", args.log.display());
            std::process::exit(2);
        }
    };
    let log = Arc::new(Log(Mutex::new(file)));
    // Node `i` talks to replica `i mod R` first.
    let mut endpoints = args.endpoints.clone();
    let digits: usize = args
        .node
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0);
    let n = endpoints.len().max(1);
    endpoints.rotate_left(digits % n);
    let client = match Client::new(
        ClientConfig::new("")
            .with_endpoints(endpoints)
            .with_timeout(Duration::from_millis(args.lease_ms)),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let dir = AddressableDirectory::new(
        client,
        DirectoryConfig {
            prefix: args.prefix.clone(),
            lease_duration: Duration::from_millis(args.lease_ms),
            safety_margin: Duration::from_millis(args.margin_ms),
        },
    );
    let node = NodeId::new(args.node.clone(), "test");
    log.line(format!("start {} {}", args.node, now_ns()));
    let deadline = now_ns() + args.run_ms * 1_000_000;
    let renewals = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..args.actors)
        .map(|i| {
            let (dir, node, log, args, renewals) = (
                dir.clone(),
                node.clone(),
                log.clone(),
                args.clone(),
                renewals.clone(),
            );
            tokio::spawn(async move {
                actor_loop(i, dir, node, log, args, renewals, deadline).await;
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn actor_loop(
    i: u32,
    dir: AddressableDirectory,
    node: NodeId,
    log: Arc<Log>,
    args: Args,
    renewals: Arc<AtomicU64>,
    deadline: u64,
) {
    let actor = AddressableReference::new("Contended", Key::Int32Key { key: i as i32 });
    let lease_ns = args.lease_ms * 1_000_000;
    let margin_ns = args.margin_ms * 1_000_000;
    let poll = || Duration::from_millis(args.poll_ms + fastrand::u64(0..=args.poll_ms / 2));
    // The lease held and until when this node believes in it.
    let mut held: Option<(HeldLease, u64)> = None;
    loop {
        let now = now_ns();
        if now >= deadline {
            // One last renewal, so the final belief is fresh when the test
            // compares it with the store.
            if let Some((h, until)) = held
                && until > now
            {
                let t0 = now_ns();
                match dir.renew(&h).await {
                    Ok(h2) => {
                        let t1 = now_ns();
                        let new_until = t0 + lease_ns - margin_ns;
                        log.line(format!("hold {i} {t1} {new_until} {}", h2.version));
                        log.line(format!("final {i} {} {new_until}", h2.version));
                    }
                    Err(Error::LeaseLost(_)) => {
                        let t1 = now_ns();
                        log.line(format!("lost {i} {t1}"));
                        log.line(format!("end {i} {t1}"));
                    }
                    Err(_) => log.line(format!("final {i} {} {until}", h.version)),
                }
            }
            return;
        }
        match held.take() {
            None => {
                let t0 = now_ns();
                match dir.acquire(&actor, &node).await {
                    Ok(Acquire::Acquired(h)) => {
                        let t1 = now_ns();
                        let until = t0 + lease_ns - margin_ns;
                        if t1 < until {
                            log.line(format!("hold {i} {t1} {until} {}", h.version));
                            held = Some((h, until));
                        }
                    }
                    Ok(Acquire::HeldElsewhere { .. }) => {}
                    Err(e) => eprintln!("{}: acquire {i}: {e}", args.node),
                }
                tokio::time::sleep(poll()).await;
            }
            Some((h, until)) => {
                if now >= until {
                    // Belief ran out without a successful renewal.
                    tokio::time::sleep(poll()).await;
                    continue;
                }
                if until - now > lease_ns / 2 {
                    held = Some((h, until));
                    tokio::time::sleep(poll()).await;
                    continue;
                }
                if fastrand::f64() < args.release_prob {
                    log.line(format!("end {i} {}", now_ns()));
                    if let Err(e) = dir.release(&h).await {
                        eprintln!("{}: release {i}: {e}", args.node);
                    }
                    // Let someone else have it for a while.
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(100..400))).await;
                    continue;
                }
                let t0 = now_ns();
                let n = renewals.fetch_add(1, Ordering::Relaxed) + 1;
                // (Not in the last moments of the run: the process ends
                // soon after its deadline, so the test can compare its last
                // beliefs with the store while they still hold.)
                let delay_ns = args.delay_ms * 1_000_000;
                if args.delay_every > 0
                    && n.is_multiple_of(args.delay_every)
                    && t0 + delay_ns < deadline
                {
                    log.line(format!("delayed {i} {t0} {}", args.delay_ms));
                    tokio::time::sleep(Duration::from_millis(args.delay_ms)).await;
                }
                match dir.renew(&h).await {
                    Ok(h2) => {
                        let t1 = now_ns();
                        let new_until = t0 + lease_ns - margin_ns;
                        if t1 < new_until {
                            log.line(format!("hold {i} {t1} {new_until} {}", h2.version));
                        }
                        held = Some((h2, new_until));
                    }
                    Err(Error::LeaseLost(_)) => {
                        let t1 = now_ns();
                        log.line(format!("lost {i} {t1}"));
                        log.line(format!("end {i} {t1}"));
                    }
                    Err(e) => {
                        eprintln!("{}: renew {i}: {e}", args.node);
                        held = Some((h, until));
                    }
                }
                tokio::time::sleep(poll()).await;
            }
        }
    }
}
