//! `orbit-actors`: watch Orbit-RS actors move between nodes.
//!
//! Run one per terminal against one orbit-server:
//!
//! ```sh
//! bash scripts/serve.sh &                                   # or any orbit-server
//! cargo run --release --example orbit-actors -- --node a    # terminal 1
//! cargo run --release --example orbit-actors -- --node b    # terminal 2
//! ```
//!
//! Each process joins the cluster (membership with a challenge token),
//! then holds its fair share of the actors `Counter:0..N` (N / live nodes),
//! renewing their leases, and prints once a second what it hosts and who
//! hosts the rest. Stop one with Ctrl-C: it releases its actors and leaves,
//! and the other takes them at once. Stop one with `kill -9`: the other
//! takes them when the leases run out (`--lease-secs`).

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use orbit_client::types::{AddressableReference, Key, NodeId, NodeInfo};
use orbit_client::{
    Acquire, AddressableDirectory, Client, ClientConfig, ClusterMembership, DirectoryConfig, Error,
    HeldLease, MembershipConfig,
};

#[derive(Parser, Debug)]
struct Args {
    /// This node's name.
    #[arg(long)]
    node: String,
    /// Server URLs, comma-separated (default: ORBIT_URL, else
    /// http://127.0.0.1:8080); the token comes from ORBIT_API_TOKEN.
    #[arg(long, value_delimiter = ',')]
    url: Vec<String>,
    /// How many actors the cluster hosts.
    #[arg(long, default_value_t = 8)]
    actors: i32,
    /// Lease duration of actors and nodes.
    #[arg(long, default_value_t = 5)]
    lease_secs: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("orbit-actors: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let mut config = ClientConfig::from_env();
    if !args.url.is_empty() {
        config.endpoints = args.url.clone();
    }
    let client = Client::new(config)?;
    let lease = Duration::from_secs(args.lease_secs.max(1));
    let margin = lease / 10;
    let dir = AddressableDirectory::new(
        client.clone(),
        DirectoryConfig {
            prefix: "orbit-actors/".into(),
            lease_duration: lease,
            safety_margin: margin,
        },
    );
    let members = ClusterMembership::new(
        client,
        MembershipConfig {
            prefix: "orbit-actors/".into(),
            lease_duration: lease,
            safety_margin: margin,
        },
    );
    let me = NodeId::new(args.node.clone(), "demo");
    println!("[{}] {:?}", args.node, dir.health_check().await);
    let mut info = NodeInfo::new(me.clone(), format!("http://{}", args.node), 0);
    info.capabilities.addressable_types = vec!["Counter".into()];
    let mut membership = members.join(&info).await?;
    println!(
        "[{}] joined the cluster (challenge token {}...)",
        args.node,
        membership
            .challenge_token()
            .and_then(|t| t.get(..8))
            .unwrap_or("?")
    );
    let actors: Vec<AddressableReference> = (0..args.actors)
        .map(|k| AddressableReference::new("Counter", Key::Int32Key { key: k }))
        .collect();
    let mut held: BTreeMap<i32, HeldLease> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tick.tick() => {}
        }
        let mut events = Vec::new();
        // Membership first: a node that lost its record must stop.
        if membership
            .valid_until
            .saturating_duration_since(std::time::Instant::now())
            < lease / 2
        {
            membership = match members.renew_node_lease(&membership).await {
                Ok(m) => m,
                Err(e @ (Error::LeaseLost(_) | Error::ChallengeMismatch { .. })) => {
                    println!("[{}] {e}: stopping", args.node);
                    return Ok(());
                }
                Err(e) => {
                    events.push(format!("membership renewal failed: {e}"));
                    membership
                }
            };
        }
        let live = members
            .list_active_nodes()
            .await
            .map(|n| n.len())
            .unwrap_or(1)
            .max(1);
        let share = (actors.len()).div_ceil(live);
        // Renew what is due; forget what cannot be renewed.
        for (k, h) in std::mem::take(&mut held) {
            if h.remaining() > lease / 2 {
                held.insert(k, h);
                continue;
            }
            match dir.renew(&h).await {
                Ok(h2) => {
                    held.insert(k, h2);
                }
                Err(Error::LeaseLost(_)) => events.push(format!("lost Counter:{k}")),
                Err(e) if h.is_valid() => {
                    events.push(format!("renewal of Counter:{k} failed ({e}), retrying"));
                    held.insert(k, h);
                }
                Err(_) => events.push(format!("gave up Counter:{k}")),
            }
        }
        // Give back more than the fair share (a node joined)...
        while held.len() > share {
            let Some((&k, _)) = held.iter().next_back() else {
                break;
            };
            if let Some(h) = held.remove(&k) {
                let _ = dir.release(&h).await;
                events.push(format!("handed over Counter:{k}"));
            }
        }
        // ...and take free actors up to it.
        for (k, a) in actors.iter().enumerate() {
            let k = k as i32;
            if held.len() >= share {
                break;
            }
            if held.contains_key(&k) {
                continue;
            }
            if let Ok(Acquire::Acquired(h)) = dir.acquire(a, &me).await {
                events.push(format!("activated Counter:{k}"));
                held.insert(k, h);
            }
        }
        // Who hosts what.
        let mut hosts: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for l in dir.list_all_leases().await.unwrap_or_default() {
            if let Key::Int32Key { key } = l.lease.reference.key {
                hosts.entry(l.lease.node_id.key).or_default().push(key);
            }
        }
        let mine: Vec<String> = held.keys().map(|k| k.to_string()).collect();
        let view: Vec<String> = hosts.iter().map(|(n, ks)| format!("{n}:{ks:?}")).collect();
        println!(
            "[{}] {} | hosting {} of {} ({} live node{}): [{}] | directory {}{}",
            args.node,
            chrono::Local::now().format("%H:%M:%S"),
            held.len(),
            actors.len(),
            live,
            if live == 1 { "" } else { "s" },
            mine.join(","),
            view.join(" "),
            if events.is_empty() {
                String::new()
            } else {
                format!(" | {}", events.join("; "))
            }
        );
    }
    // Ctrl-C: hand everything back at once, then leave.
    let held: Vec<HeldLease> = held.into_values().collect();
    let released = dir.remove_leases_bulk(&held).await?;
    members.leave(&membership).await?;
    println!(
        "[{}] released {released} actors and left the cluster",
        args.node
    );
    Ok(())
}
