//! Lease contention through the real server: N node processes
//! (`orbit-lease-node`) compete for M actors, renew (some renewals held
//! back past the lease's expiry, as a slow network would), release, and one
//! node is SIGKILLed and never renews. From every node's log of what it
//! believed and when (`CLOCK_MONOTONIC`, shared by all processes), the test
//! checks:
//!
//! 1. no actor ever had two believed holders at once;
//! 2. every actor the killed node held was taken over within one lease
//!    period of the kill (plus one polling interval and a request: the
//!    takeover needs someone to ask);
//! 3. no acknowledged placement was lost: every lease a node still believed
//!    in at the end is in the store, with that node and version.
//!
//! On memory, lsm_tree, and s3 (SeaweedFS) with three server replicas on
//! one bucket, the nodes spread over the replicas. A few seconds each.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use orbit_client::monotonic::now_ns;
use orbit_client::types::{Key, NodeId};
use orbit_client::{AddressableDirectory, Client, ClientConfig, DirectoryConfig};
use support::Server;
use tokio::sync::Mutex;

const NODES: usize = 4;
const ACTORS: u32 = 6;
const POLL_MS: u64 = 50;

/// A scenario's clock: leases, when the victim dies, how long the nodes run,
/// and what the takeover may take on top of one lease period (a polling
/// interval and an acquire request on a loaded 2-core CI machine).
#[derive(Clone, Copy)]
struct Timing {
    lease_ms: u64,
    margin_ms: u64,
    kill_after_ms: u64,
    run_ms: u64,
    takeover_slack_ms: u64,
    /// How long a held-back renewal waits after taking its start time: long
    /// enough to outlive the lease, so that another node can take the actor
    /// before the late renewal lands (which must then fail).
    delay_ms: u64,
}

/// The local backends answer in milliseconds.
const LOCAL: Timing = Timing {
    lease_ms: 1500,
    margin_ms: 150,
    kill_after_ms: 2000,
    run_ms: 5000,
    takeover_slack_ms: 750,
    delay_ms: 1200,
};

/// On object storage an acquire or renewal is a multi-key batch of several
/// conditional object writes: 0.4-0.7 s each on SeaweedFS with the machine
/// loaded, so leases, run and slack are twice as long.
const OBJECT_STORE: Timing = Timing {
    lease_ms: 3000,
    margin_ms: 300,
    kill_after_ms: 4000,
    run_ms: 10_000,
    takeover_slack_ms: 1500,
    delay_ms: 2400,
};

/// The scenarios share two cores; run them one at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

#[derive(Debug, Clone, Copy)]
struct Interval {
    node: usize,
    from: u64,
    until: u64,
    version: u64,
}

#[derive(Debug, Default)]
struct NodeLog {
    /// Per actor, belief intervals in log order (an `end` cuts them).
    holds: BTreeMap<u32, Vec<Interval>>,
    finals: Vec<(u32, u64, u64)>,
    delayed: usize,
    lost: usize,
    ends: usize,
}

fn parse(node: usize, text: &str) -> NodeLog {
    let mut log = NodeLog::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> u64 {
            f.get(i)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("node {node}: bad log line {line:?}"))
        };
        match f.first().copied() {
            Some("hold") => log.holds.entry(num(1) as u32).or_default().push(Interval {
                node,
                from: num(2),
                until: num(3),
                version: num(4),
            }),
            Some("end") => {
                log.ends += 1;
                let t = num(2);
                // Belief is the union of the intervals so far (a renewal's
                // overlaps the one before): an end cuts all of them.
                for i in log.holds.entry(num(1) as u32).or_default() {
                    i.until = i.until.min(t);
                }
            }
            Some("final") => log.finals.push((num(1) as u32, num(2), num(3))),
            Some("delayed") => log.delayed += 1,
            Some("lost") => log.lost += 1,
            Some("start") | None => {}
            Some(other) => panic!("node {node}: unknown log line {other:?}"),
        }
    }
    log
}

fn spawn_node(i: usize, endpoints: &str, log: &Path, t: Timing) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orbit-lease-node"))
        .args(["--endpoints", endpoints])
        .args(["--node", &format!("node{i}")])
        .args(["--actors", &ACTORS.to_string()])
        .args(["--lease-ms", &t.lease_ms.to_string()])
        .args(["--margin-ms", &t.margin_ms.to_string()])
        .args(["--run-ms", &t.run_ms.to_string()])
        .args(["--delay-ms", &t.delay_ms.to_string()])
        .args(["--poll-ms", &POLL_MS.to_string()])
        .arg("--log")
        .arg(log)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start orbit-lease-node")
}

/// Copies the node logs out of the temporary directory when a check
/// failed, to read them afterwards.
fn keep_logs(name: &str, logs: &[PathBuf], failed: bool) -> String {
    if !failed {
        return String::new();
    }
    let to = std::env::temp_dir().join(format!(
        "orbit-contention-{}-{}",
        name.replace(' ', "_"),
        std::process::id()
    ));
    let _ = std::fs::create_dir_all(&to);
    for l in logs {
        if let Some(f) = l.file_name() {
            let _ = std::fs::copy(l, to.join(f));
        }
    }
    to.display().to_string()
}

async fn contend(name: &str, endpoints: &[String], dir: &Path, t: Timing) {
    let joined = endpoints.join(",");
    let logs: Vec<PathBuf> = (0..NODES)
        .map(|i| dir.join(format!("node{i}.log")))
        .collect();
    let mut children: Vec<Child> = (0..NODES)
        .map(|i| spawn_node(i, &joined, &logs[i], t))
        .collect();
    tokio::time::sleep(Duration::from_millis(t.kill_after_ms)).await;
    // The victim: the node that believes it holds the most actors now.
    let now = now_ns();
    let victim = (0..NODES)
        .max_by_key(|&i| {
            let l = parse(i, &std::fs::read_to_string(&logs[i]).unwrap_or_default());
            l.holds
                .values()
                .filter(|v| v.iter().any(|x| x.from <= now && now < x.until))
                .count()
        })
        .unwrap();
    let kill_ns = now_ns();
    children[victim].kill().expect("SIGKILL the victim");
    let _ = children[victim].wait();
    for (i, c) in children.iter_mut().enumerate() {
        if i != victim {
            let status = c.wait().unwrap();
            assert!(status.success(), "{name}: node{i} failed: {status}");
        }
    }

    // What the store says now, before any final belief runs out.
    let client = Client::new(ClientConfig::new("").with_endpoints(endpoints.to_vec())).unwrap();
    let directory = AddressableDirectory::new(
        client,
        DirectoryConfig {
            prefix: "contention/".into(),
            ..Default::default()
        },
    );
    // One listing: the quickest read of every lease.
    let stored: BTreeMap<u32, orbit_client::StoredLease> = directory
        .list_all_leases()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|l| match l.lease.reference.key {
            Key::Int32Key { key } => Some((key as u32, l)),
            _ => None,
        })
        .collect();
    let read_done = now_ns();

    let parsed: Vec<NodeLog> = logs
        .iter()
        .enumerate()
        .map(|(i, p)| parse(i, &std::fs::read_to_string(p).unwrap_or_default()))
        .collect();
    let mut per_actor: BTreeMap<u32, Vec<Interval>> = BTreeMap::new();
    for l in &parsed {
        for (a, v) in &l.holds {
            per_actor.entry(*a).or_default().extend(v.iter().copied());
        }
    }
    let holds: usize = per_actor.values().map(Vec::len).sum();
    let delayed: usize = parsed.iter().map(|l| l.delayed).sum();
    let lost: usize = parsed.iter().map(|l| l.lost).sum();
    let ends: usize = parsed.iter().map(|l| l.ends).sum();

    // 1. No two holders at once.
    let mut violations = Vec::new();
    for (a, v) in &per_actor {
        for (x, p) in v.iter().enumerate() {
            for q in &v[x + 1..] {
                if p.node != q.node && p.from < q.until && q.from < p.until {
                    let rel = |t: u64| (t as f64 - kill_ns as f64) / 1e6;
                    violations.push(format!(
                        "actor {a}: node{} believed {:+.1}..{:+.1} ms (v{}) and node{} {:+.1}..{:+.1} ms (v{}), times from the kill",
                        p.node,
                        rel(p.from),
                        rel(p.until),
                        p.version,
                        q.node,
                        rel(q.from),
                        rel(q.until),
                        q.version
                    ));
                }
            }
        }
    }
    let kept = keep_logs(name, &logs, !violations.is_empty());
    assert!(
        violations.is_empty(),
        "{name}: {} overlapping beliefs (first 10; logs kept in {kept}):\n{}",
        violations.len(),
        violations[..violations.len().min(10)].join("\n")
    );

    // 2. The killed node's actors were taken over within one lease period.
    let mut taken_over = Vec::new();
    for (a, v) in &per_actor {
        let held_at_kill = v
            .iter()
            .any(|i| i.node == victim && i.from <= kill_ns && kill_ns < i.until);
        if !held_at_kill {
            continue;
        }
        let next = v
            .iter()
            .filter(|i| i.node != victim && i.from > kill_ns)
            .map(|i| i.from)
            .min();
        let Some(next) = next else {
            panic!("{name}: actor {a} held by the killed node{victim} was never taken over");
        };
        let after = Duration::from_nanos(next - kill_ns);
        assert!(
            after <= Duration::from_millis(t.lease_ms + t.takeover_slack_ms),
            "{name}: actor {a} taken over {after:?} after the kill (lease {} ms)",
            t.lease_ms
        );
        taken_over.push(after);
    }
    assert!(
        !taken_over.is_empty(),
        "{name}: the killed node held nothing at the kill; the scenario proved nothing"
    );

    // 3. No acknowledged placement lost.
    let mut checked = 0;
    for (node, l) in parsed.iter().enumerate() {
        if node == victim {
            continue;
        }
        for &(a, version, until) in &l.finals {
            if until <= read_done {
                continue; // belief ran out before the read finished
            }
            let s = stored.get(&a).unwrap_or_else(|| {
                panic!("{name}: actor {a}: node{node} holds v{version}, the store has nothing")
            });
            assert_eq!(
                (&s.lease.node_id, s.version),
                (&NodeId::new(format!("node{node}"), "test"), version),
                "{name}: actor {a}: node{node} believes it holds v{version}, the store says otherwise"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "{name}: no final belief to check against the store"
    );

    // The scenario exercised what it claims to.
    assert!(holds > ACTORS as usize * 3, "{name}: only {holds} holds");
    assert!(
        delayed > 0 && ends > 0,
        "{name}: delayed {delayed}, ends {ends}"
    );
    let worst = taken_over.iter().max().unwrap();
    eprintln!(
        "{name}: {holds} belief intervals, {delayed} held-back renewals ({lost} found the lease gone), \
         {ends} releases or losses, {} actors of the killed node taken over (slowest after {worst:?}), \
         {checked} final placements found in the store",
        taken_over.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_under_contention_on_memory() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &support::local_env("memory"));
    contend("memory", std::slice::from_ref(&s.http), dir.path(), LOCAL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_under_contention_on_lsm_tree() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &support::local_env("lsm_tree"));
    contend("lsm_tree", std::slice::from_ref(&s.http), dir.path(), LOCAL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_under_contention_on_s3_with_three_replicas() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let weed = support::weed(dir.path());
    let env = support::s3_env(&weed, "contention");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let servers: Vec<Server> = (0..3)
        .map(|i| {
            let d = dir.path().join(format!("replica{i}"));
            std::fs::create_dir_all(&d).unwrap();
            Server::start(&d, &env)
        })
        .collect();
    let urls: Vec<String> = servers.iter().map(|s| s.http.clone()).collect();
    contend("s3 x3", &urls, dir.path(), OBJECT_STORE).await;
}
