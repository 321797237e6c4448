//! The directory and membership providers against the real `orbit-server`:
//! the directory on memory, lsm_tree and s3 (SeaweedFS), membership on
//! memory (it uses nothing the directory does not).

mod support;

use std::time::Duration;

use chrono::Utc;
use orbit_client::types::{
    AddressableLease, AddressableReference, Key, NodeId, NodeInfo, NodeStatus,
};
use orbit_client::{
    Acquire, AddressableDirectory, Client, ClientConfig, ClusterMembership, DirectoryConfig, Error,
    HealthStatus, HeldLease, MembershipConfig,
};
use support::Server;

fn directory(c: &Client, lease_ms: u64) -> AddressableDirectory {
    AddressableDirectory::new(
        c.clone(),
        DirectoryConfig {
            prefix: "t/".into(),
            lease_duration: Duration::from_millis(lease_ms),
            safety_margin: Duration::from_millis(lease_ms / 10),
        },
    )
}

fn acquired(a: Acquire) -> HeldLease {
    match a {
        Acquire::Acquired(h) => h,
        other => panic!("expected to acquire, got {other:?}"),
    }
}

async fn directory_on(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &support::local_env(backend));
    directory_checks(&s).await;
}

async fn directory_checks(s: &Server) {
    let c = Client::new(ClientConfig::new(&s.http)).unwrap();
    let d = directory(&c, 60_000);
    let a = NodeId::new("a", "default");
    let b = NodeId::new("b", "default");
    let s5 = AddressableReference::new("Counter", Key::string("5"));
    let i5 = AddressableReference::new("Counter", Key::Int32Key { key: 5 });
    let l5 = AddressableReference::new("Counter", Key::Int64Key { key: 5 });
    let none = AddressableReference::new("Counter/s:5", Key::NoKey);

    // Acquire: one holder per actor; the key variant is part of the key.
    let held_s5 = acquired(d.acquire(&s5, &a).await.unwrap());
    assert!(held_s5.is_valid());
    assert!(matches!(
        d.acquire(&s5, &b).await.unwrap(),
        Acquire::HeldElsewhere { current_version: Some(v) } if v == held_s5.version
    ));
    let held_i5 = acquired(d.acquire(&i5, &b).await.unwrap());
    let held_l5 = acquired(d.acquire(&l5, &b).await.unwrap());
    let held_none = acquired(d.acquire(&none, &a).await.unwrap());
    let stored = d.get_lease(&s5).await.unwrap().unwrap();
    assert_eq!(stored.lease.node_id, a);
    assert_eq!(stored.lease.reference.key, Key::string("5"));

    // Renew: compare-and-set on the version last seen; a stale copy loses.
    let renewed = d.renew(&held_s5).await.unwrap();
    assert!(renewed.version > held_s5.version);
    assert!(matches!(d.renew(&held_s5).await, Err(Error::LeaseLost(_))));
    assert!(matches!(d.release(&held_s5).await, Ok(false)));

    // The per-node index follows acquire and release.
    let mut of_b: Vec<_> = d
        .list_node_leases(&b)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.lease.reference)
        .collect();
    of_b.sort();
    let mut want = vec![i5.clone(), l5.clone()];
    want.sort();
    assert_eq!(of_b, want);
    assert_eq!(d.list_node_leases(&a).await.unwrap().len(), 2);
    assert_eq!(d.list_all_leases().await.unwrap().len(), 4);
    assert!(d.release(&renewed).await.unwrap());
    assert!(d.release(&held_none).await.unwrap());
    assert!(d.list_node_leases(&a).await.unwrap().is_empty());
    assert_eq!(d.get_lease(&s5).await.unwrap(), None);

    // Bulk: atomic store (with index), release by version.
    let now = Utc::now();
    let bulk: Vec<AddressableLease> = (0..20)
        .map(|i| AddressableLease {
            reference: AddressableReference::new("Bulk", Key::Int64Key { key: i }),
            node_id: a.clone(),
            expires_at: now + chrono::Duration::seconds(60),
            renew_at: now + chrono::Duration::seconds(30),
        })
        .collect();
    let held_bulk = d.store_leases_bulk(&bulk).await.unwrap();
    assert_eq!(held_bulk.len(), 20);
    assert_eq!(d.list_node_leases(&a).await.unwrap().len(), 20);
    // A bulk store meeting one existing lease stores nothing.
    let mut clash = bulk[..2].to_vec();
    clash[0].reference.key = Key::Int64Key { key: 999 };
    assert!(matches!(
        d.store_leases_bulk(&clash).await,
        Err(Error::PreconditionFailed { .. })
    ));
    let k999 = AddressableReference::new("Bulk", Key::Int64Key { key: 999 });
    assert_eq!(d.get_lease(&k999).await.unwrap(), None);
    assert_eq!(d.remove_leases_bulk(&held_bulk).await.unwrap(), 20);
    assert!(d.list_node_leases(&a).await.unwrap().is_empty());

    // Administrative removal, and cleanup of what an older writer left:
    // a lease without TTL whose expires_at passed, and an orphan index.
    assert!(d.remove_lease(&i5).await.unwrap());
    assert!(!d.remove_lease(&i5).await.unwrap());
    let legacy = AddressableLease {
        reference: AddressableReference::new("Legacy", Key::NoKey),
        node_id: a.clone(),
        expires_at: now - chrono::Duration::seconds(5),
        renew_at: now - chrono::Duration::seconds(10),
    };
    c.set(
        &d.lease_key(&legacy.reference),
        serde_json::to_vec(&legacy).unwrap(),
    )
    .await
    .unwrap();
    c.set(
        "t/dir/nodes/default/a/Ghost/none",
        serde_json::to_vec(&AddressableReference::new("Ghost", Key::NoKey)).unwrap(),
    )
    .await
    .unwrap();
    c.set("t/dir/leases/garbage", "not json").await.unwrap();
    let report = d.cleanup_expired_leases().await.unwrap();
    assert_eq!(report.expired_leases, vec![legacy.reference.clone()]);
    assert_eq!(report.orphan_index_entries, 1);
    assert_eq!(report.removed(), 2);
    // l5 is still held by b, and its index entry was not an orphan.
    assert_eq!(d.list_node_leases(&b).await.unwrap().len(), 1);
    assert!(d.release(&held_l5).await.unwrap());
    let _ = held_i5;

    // Expiry is the server's TTL: a short lease disappears by itself and
    // another node takes the actor.
    let short = directory(&c, 400);
    let h = acquired(short.acquire(&s5, &a).await.unwrap());
    assert!(matches!(
        short.acquire(&s5, &b).await.unwrap(),
        Acquire::HeldElsewhere { .. }
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !h.is_valid(),
        "the holder stopped believing before the server expired it"
    );
    acquired(short.acquire(&s5, &b).await.unwrap());
    assert!(matches!(short.renew(&h).await, Err(Error::LeaseLost(_))));

    assert_eq!(d.health_check().await, HealthStatus::Healthy);
    let m = d.metrics();
    assert_eq!(m.count("acquire", "held_elsewhere"), 1, "{m:?}");
    assert_eq!(m.count("renew", "lost"), 1, "{m:?}");
    assert!(m.count("acquire", "ok") >= 4, "{m:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_on_memory() {
    directory_on("memory").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_on_lsm_tree() {
    directory_on("lsm_tree").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    let weed = support::weed(dir.path());
    let env = support::s3_env(&weed, "providers");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let data = dir.path().join("server");
    std::fs::create_dir_all(&data).unwrap();
    let s = Server::start(&data, &env);
    directory_checks(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn membership_renews_with_the_challenge_token_and_a_dead_node_stays_dead() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &support::local_env("memory"));
    let c = Client::new(ClientConfig::new(&s.http)).unwrap();
    let m = ClusterMembership::new(
        c.clone(),
        MembershipConfig {
            prefix: "t/".into(),
            lease_duration: Duration::from_secs(30),
            safety_margin: Duration::from_secs(1),
        },
    );
    let id = NodeId::new("n1", "prod");
    let mut info = NodeInfo::new(id.clone(), "http://10.0.0.1", 50051);
    info.capabilities.addressable_types = vec!["Counter".into()];
    let held = m.join(&info).await.unwrap();
    let token = held.challenge_token().unwrap().to_string();
    assert_eq!(token.len(), 32);
    assert!(matches!(
        m.join(&info).await,
        Err(Error::PreconditionFailed { .. })
    ));
    let other = m
        .join(&NodeInfo::new(
            NodeId::new("n2", "prod"),
            "http://10.0.0.2",
            50051,
        ))
        .await
        .unwrap();

    // Renewal keeps the token; an operator's status change survives it.
    let held = m.renew_node_lease(&held).await.unwrap();
    assert_eq!(held.challenge_token(), Some(token.as_str()));
    assert!(m.set_status(&id, NodeStatus::Draining).await.unwrap());
    let held = m.renew_node_lease(&held).await.unwrap();
    assert_eq!(held.info.status, NodeStatus::Draining);
    let active: Vec<_> = m
        .list_active_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(active, vec![other.info.id.clone()]);
    assert_eq!(m.list_all_nodes().await.unwrap().len(), 2);

    // Declared dead: the record goes, the zombie's renewal fails.
    assert!(m.remove_node(&id).await.unwrap());
    assert!(matches!(
        m.renew_node_lease(&held).await,
        Err(Error::LeaseLost(_))
    ));
    // A new incarnation under the same name gets a new token; the old one
    // cannot renew into it.
    let reborn = m.join(&info).await.unwrap();
    assert_ne!(reborn.challenge_token(), Some(token.as_str()));
    assert!(matches!(
        m.renew_node_lease(&held).await,
        Err(Error::ChallengeMismatch { .. })
    ));
    m.renew_node_lease(&reborn).await.unwrap();

    // update_node: CAS on the held version, the lease kept.
    let reborn = m.renew_node_lease(&reborn).await.unwrap();
    let mut changed = reborn.info.clone();
    changed.port = 6000;
    let updated = m.update_node(&reborn, &changed).await.unwrap();
    assert_eq!(m.get_node(&id).await.unwrap().unwrap().0.port, 6000);
    assert_eq!(updated.challenge_token(), reborn.challenge_token());
    assert!(matches!(
        m.update_node(&reborn, &changed).await,
        Err(Error::PreconditionFailed { .. })
    ));

    // Cleanup removes only records without TTL whose lease has passed.
    let mut legacy = NodeInfo::new(NodeId::new("old", "prod"), "http://x", 1);
    legacy.lease = Some(orbit_client::types::NodeLease {
        node_id: legacy.id.clone(),
        expires_at: Utc::now() - chrono::Duration::seconds(1),
        renew_at: Utc::now() - chrono::Duration::seconds(2),
        challenge_token: None,
    });
    c.set(
        &m.node_key(&legacy.id),
        serde_json::to_vec(&legacy).unwrap(),
    )
    .await
    .unwrap();
    let report = m.cleanup_expired_nodes().await.unwrap();
    assert_eq!(report.removed, vec![legacy.id.clone()]);
    assert!(m.leave(&other).await.unwrap());
    assert!(!m.leave(&other).await.unwrap());
    assert_eq!(m.health_check().await, HealthStatus::Healthy);
    let metrics = m.metrics();
    assert_eq!(metrics.count("renew_node_lease", "challenge_mismatch"), 1);
    assert_eq!(metrics.count("renew_node_lease", "lost"), 1);
}
