//! The actor directory of Orbit-RS (`AddressableDirectory`): which node
//! hosts actor `type:key`, until when, with leases that two nodes can never
//! both believe they hold.
//!
//! Storage keys (under the configured prefix, `orbit/` by default):
//!
//! | key | value | TTL |
//! |---|---|---|
//! | `dir/leases/<type>/<kind>:<key>` | the [`AddressableLease`] (Orbit-RS JSON) | the lease duration |
//! | `dir/nodes/<namespace>/<node>/<type>/<kind>:<key>` | the [`AddressableReference`] | the same, written in the same batch |
//!
//! `<kind>` is `s`, `i32`, `i64` or `none`, so `StringKey("5")` and
//! `Int32Key(5)` are different keys; `/` and `%` inside a type, key or node
//! name are escaped.
//!
//! - **acquire** = one atomic batch: the lease *if absent*, with TTL, and
//!   the node's index entry;
//! - **renew** = the same batch with the lease *if at the version the
//!   holder last saw*;
//! - **release** = the lease deleted *if at that version*, and the index
//!   entry.
//!
//! A holder believes it holds the actor until `t0 + duration - margin`,
//! where `t0` is its monotonic clock read *before* it sent the request
//! that succeeded. The server sets the TTL when it applies the write, which
//! is after `t0`, so the store keeps the lease at least as long as the
//! holder believes in it (see DESIGN.md for the clock assumptions).

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use futures::TryStreamExt;

use crate::client::{BatchOp, Client, Condition, HealthStatus, ListOptions};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::types::{
    AddressableLease, AddressableReference, NodeId, node_segment, reference_segment,
};

/// Settings of the directory.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// Prefix of every key this directory writes (`orbit/`).
    pub prefix: String,
    /// How long a lease lasts without renewal.
    pub lease_duration: Duration,
    /// Subtracted from the holder's belief, for clock-rate differences
    /// between the holder and the server, and scheduling.
    pub safety_margin: Duration,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            prefix: "orbit/".into(),
            lease_duration: Duration::from_secs(30),
            safety_margin: Duration::from_millis(500),
        }
    }
}

/// A lease this node holds: the record, the version that names this
/// write, and until when (monotonic) the node may act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLease {
    pub lease: AddressableLease,
    pub version: u64,
    pub valid_until: Instant,
}

impl HeldLease {
    /// Whether the node may still act as the actor's host.
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }

    /// Time left until [`HeldLease::valid_until`].
    pub fn remaining(&self) -> Duration {
        self.valid_until.saturating_duration_since(Instant::now())
    }
}

/// A lease as stored, with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLease {
    pub lease: AddressableLease,
    pub version: u64,
}

/// The answer to an acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    Acquired(HeldLease),
    /// Another lease exists, at this version.
    HeldElsewhere {
        current_version: Option<u64>,
    },
}

/// What a cleanup removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Leases whose `expires_at` had passed but that were still stored
    /// (written without a TTL, by an older writer). Leases written by this
    /// crate expire on the server and never show up here.
    pub expired_leases: Vec<AddressableReference>,
    /// Index entries whose lease is gone or belongs to another node.
    pub orphan_index_entries: usize,
}

impl CleanupReport {
    pub fn removed(&self) -> u64 {
        (self.expired_leases.len() + self.orphan_index_entries) as u64
    }
}

/// The directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AddressableDirectory {
    client: Client,
    config: DirectoryConfig,
    metrics: std::sync::Arc<Metrics>,
}

impl AddressableDirectory {
    pub fn new(client: Client, config: DirectoryConfig) -> Self {
        AddressableDirectory {
            client,
            config,
            metrics: Default::default(),
        }
    }

    pub fn config(&self) -> &DirectoryConfig {
        &self.config
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The storage key of an actor's lease.
    pub fn lease_key(&self, r: &AddressableReference) -> String {
        format!("{}dir/leases/{}", self.config.prefix, reference_segment(r))
    }

    fn node_prefix(&self, node: &NodeId) -> String {
        format!("{}dir/nodes/{}/", self.config.prefix, node_segment(node))
    }

    fn index_key(&self, node: &NodeId, r: &AddressableReference) -> String {
        format!("{}{}", self.node_prefix(node), reference_segment(r))
    }

    async fn timed<T>(
        &self,
        op: &str,
        f: impl Future<Output = Result<T>>,
        outcome: impl Fn(&T) -> &'static str,
    ) -> Result<T> {
        let started = Instant::now();
        let r = f.await;
        let label = match &r {
            Ok(v) => outcome(v),
            Err(e) => e.label(),
        };
        self.metrics.record(op, label, started.elapsed());
        r
    }

    fn new_lease(
        &self,
        reference: &AddressableReference,
        node: &NodeId,
        duration: Duration,
    ) -> Result<AddressableLease> {
        let now = Utc::now();
        let d = chrono::Duration::from_std(duration)
            .map_err(|_| Error::Invalid(format!("lease duration {duration:?} is too long")))?;
        Ok(AddressableLease {
            reference: reference.clone(),
            node_id: node.clone(),
            expires_at: now + d,
            renew_at: now + d / 2,
        })
    }

    fn lease_ops(
        &self,
        lease: &AddressableLease,
        condition: Condition,
        ttl: Duration,
    ) -> Result<[BatchOp; 2]> {
        let value = serde_json::to_vec(lease).map_err(|e| Error::Invalid(e.to_string()))?;
        let reference =
            serde_json::to_vec(&lease.reference).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok([
            BatchOp::put(self.lease_key(&lease.reference), value)
                .when(condition)
                .ttl(ttl),
            BatchOp::put(self.index_key(&lease.node_id, &lease.reference), reference).ttl(ttl),
        ])
    }

    fn valid_until(&self, t0: Instant, ttl: Duration) -> Instant {
        t0 + ttl.saturating_sub(self.config.safety_margin)
    }

    /// Activates `reference` on `node` for the configured lease duration,
    /// if no other lease exists.
    pub async fn acquire(
        &self,
        reference: &AddressableReference,
        node: &NodeId,
    ) -> Result<Acquire> {
        self.timed(
            "acquire",
            async {
                let lease = self.new_lease(reference, node, self.config.lease_duration)?;
                self.create(lease, self.config.lease_duration).await
            },
            |a| match a {
                Acquire::Acquired(_) => "ok",
                Acquire::HeldElsewhere { .. } => "held_elsewhere",
            },
        )
        .await
    }

    async fn create(&self, lease: AddressableLease, ttl: Duration) -> Result<Acquire> {
        Ok(
            match self.write_lease(lease, Condition::Absent, ttl).await? {
                Ok(held) => Acquire::Acquired(held),
                Err(current_version) => Acquire::HeldElsewhere { current_version },
            },
        )
    }

    /// Writes `lease` with its index entry in one batch if `condition`
    /// holds: the held lease, valid until the request's start plus `ttl`
    /// less the safety margin, or the key's current version when the
    /// condition failed.
    async fn write_lease(
        &self,
        lease: AddressableLease,
        condition: Condition,
        ttl: Duration,
    ) -> Result<std::result::Result<HeldLease, Option<u64>>> {
        let ops = self.lease_ops(&lease, condition, ttl)?;
        let t0 = Instant::now();
        match self.client.batch(&ops).await {
            Ok(versions) => Ok(Ok(HeldLease {
                version: versions.first().copied().flatten().ok_or_else(|| {
                    Error::Invalid("the batch answer has no version for the lease".into())
                })?,
                valid_until: self.valid_until(t0, ttl),
                lease,
            })),
            Err(Error::PreconditionFailed {
                current_version, ..
            }) => Ok(Err(current_version)),
            Err(e) => Err(e),
        }
    }

    /// Extends a held lease by the configured duration, only if it is still
    /// the version this holder wrote. [`Error::LeaseLost`] means another
    /// node may hold it now: stop acting as its host.
    pub async fn renew(&self, held: &HeldLease) -> Result<HeldLease> {
        self.timed(
            "renew",
            async {
                let lease = self.new_lease(
                    &held.lease.reference,
                    &held.lease.node_id,
                    self.config.lease_duration,
                )?;
                self.replace(held, lease, self.config.lease_duration).await
            },
            |_| "ok",
        )
        .await
    }

    async fn replace(
        &self,
        held: &HeldLease,
        lease: AddressableLease,
        ttl: Duration,
    ) -> Result<HeldLease> {
        if lease.reference != held.lease.reference || lease.node_id != held.lease.node_id {
            return Err(Error::Invalid(
                "an update keeps the lease's reference and node (release and acquire to move it)"
                    .into(),
            ));
        }
        match self
            .write_lease(lease, Condition::Version(held.version), ttl)
            .await?
        {
            Ok(renewed) => Ok(renewed),
            Err(current_version) => Err(Error::LeaseLost(format!(
                "{} is no longer at version {} (now {})",
                held.lease.reference,
                held.version,
                current_version.map_or("absent".to_string(), |v| format!("version {v}"))
            ))),
        }
    }

    /// Gives a held lease up: deletes it if it is still this holder's
    /// version (`false` if it was not any more), with the index entry.
    pub async fn release(&self, held: &HeldLease) -> Result<bool> {
        self.timed(
            "release",
            self.delete_if_version(&held.lease, held.version),
            |released| if *released { "ok" } else { "not_held" },
        )
        .await
    }

    /// Orbit-RS `store_lease`: stores `lease` if the actor has none, with
    /// a TTL up to its `expires_at`.
    pub async fn store_lease(&self, lease: &AddressableLease) -> Result<Acquire> {
        self.timed(
            "store_lease",
            async {
                let ttl = ttl_until(lease.expires_at)?;
                self.create(lease.clone(), ttl).await
            },
            |a| match a {
                Acquire::Acquired(_) => "ok",
                Acquire::HeldElsewhere { .. } => "held_elsewhere",
            },
        )
        .await
    }

    /// Orbit-RS `update_lease`: replaces a held lease with `lease` (same
    /// actor and node; new times), compare-and-set on the held version.
    pub async fn update_lease(
        &self,
        held: &HeldLease,
        lease: &AddressableLease,
    ) -> Result<HeldLease> {
        self.timed(
            "update_lease",
            async {
                let ttl = ttl_until(lease.expires_at)?;
                self.replace(held, lease.clone(), ttl).await
            },
            |_| "ok",
        )
        .await
    }

    /// The actor's lease, if any.
    pub async fn get_lease(&self, reference: &AddressableReference) -> Result<Option<StoredLease>> {
        self.timed(
            "get_lease",
            async {
                let Some(e) = self.client.get(&self.lease_key(reference)).await? else {
                    return Ok(None);
                };
                let lease = decode(&e.key, &e.value)?;
                Ok(Some(StoredLease {
                    lease,
                    version: e.version,
                }))
            },
            |_| "ok",
        )
        .await
    }

    /// Orbit-RS `remove_lease`, an administrative removal: deletes the
    /// actor's lease whoever holds it (at the version just read) with its
    /// holder's index entry. The holder keeps believing until its
    /// `valid_until`; a node that wants to give up its own lease calls
    /// [`AddressableDirectory::release`].
    pub async fn remove_lease(&self, reference: &AddressableReference) -> Result<bool> {
        self.timed(
            "remove_lease",
            async {
                let Some(stored) = self.get_lease(reference).await? else {
                    return Ok(false);
                };
                self.delete_if_version(&stored.lease, stored.version).await
            },
            |r| if *r { "ok" } else { "absent" },
        )
        .await
    }

    /// Deletes `lease` if it is still at `version`, with its index entry, in
    /// one batch; `false` if it had changed or gone.
    async fn delete_if_version(&self, lease: &AddressableLease, version: u64) -> Result<bool> {
        let ops = [
            BatchOp::delete(self.lease_key(&lease.reference)).when(Condition::Version(version)),
            BatchOp::delete(self.index_key(&lease.node_id, &lease.reference)),
        ];
        match self.client.batch(&ops).await {
            Ok(_) => Ok(true),
            Err(Error::PreconditionFailed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The leases `node` holds now (its index, each entry checked against
    /// the lease itself).
    pub async fn list_node_leases(&self, node: &NodeId) -> Result<Vec<StoredLease>> {
        self.timed(
            "list_node_leases",
            async {
                let index: Vec<_> = self
                    .client
                    .list(ListOptions::prefix(self.node_prefix(node)).with_values())
                    .try_collect()
                    .await?;
                let mut out = Vec::new();
                for item in index {
                    let Some(reference) = item
                        .value
                        .as_ref()
                        .and_then(|v| serde_json::from_slice::<AddressableReference>(v).ok())
                    else {
                        tracing::warn!(key = item.key, "index entry is not a reference; skipped");
                        continue;
                    };
                    if let Some(stored) = self.get_lease(&reference).await?
                        && &stored.lease.node_id == node
                    {
                        out.push(stored);
                    }
                }
                Ok(out)
            },
            |_| "ok",
        )
        .await
    }

    /// Every lease in the directory.
    pub async fn list_all_leases(&self) -> Result<Vec<StoredLease>> {
        self.timed("list_all_leases", self.all_leases(), |_| "ok")
            .await
    }

    async fn all_leases(&self) -> Result<Vec<StoredLease>> {
        let prefix = format!("{}dir/leases/", self.config.prefix);
        let items: Vec<_> = self
            .client
            .list(ListOptions::prefix(prefix).with_values())
            .try_collect()
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Some(value) = &item.value else { continue };
            match decode(&item.key, value) {
                Ok(lease) => out.push(StoredLease {
                    lease,
                    version: item.version,
                }),
                Err(e) => tracing::warn!(key = item.key, error = %e, "not a lease; skipped"),
            }
        }
        Ok(out)
    }

    /// Orbit-RS `cleanup_expired_leases`. Expiry is the server's TTL, so
    /// leases written here are already gone when they expire; this removes
    /// what an older writer left without a TTL, and index entries whose
    /// lease is gone or held by another node, and says what it removed.
    pub async fn cleanup_expired_leases(&self) -> Result<CleanupReport> {
        self.timed(
            "cleanup_expired_leases",
            async {
                let mut report = CleanupReport::default();
                let now = Utc::now();
                for stored in self.all_leases().await? {
                    if stored.lease.expires_at < now
                        && self
                            .delete_if_version(&stored.lease, stored.version)
                            .await?
                    {
                        report.expired_leases.push(stored.lease.reference);
                    }
                }
                let prefix = format!("{}dir/nodes/", self.config.prefix);
                let index: Vec<_> = self
                    .client
                    .list(ListOptions::prefix(prefix.clone()).with_values())
                    .try_collect()
                    .await?;
                for item in index {
                    let reference = item
                        .value
                        .as_ref()
                        .and_then(|v| serde_json::from_slice::<AddressableReference>(v).ok());
                    let holder_ok = match &reference {
                        Some(r) => match self.get_lease(r).await? {
                            Some(stored) => self.index_key(&stored.lease.node_id, r) == item.key,
                            None => false,
                        },
                        None => false,
                    };
                    if !holder_ok
                        && self
                            .client
                            .delete_if_version(&item.key, item.version)
                            .await?
                    {
                        report.orphan_index_entries += 1;
                    }
                }
                Ok(report)
            },
            |_| "ok",
        )
        .await
    }

    /// Orbit-RS `store_leases_bulk`: stores leases that do not exist yet,
    /// 500 per atomic batch (with their index entries): a batch stores all
    /// of its leases or none. Stops at the first batch that fails.
    pub async fn store_leases_bulk(&self, leases: &[AddressableLease]) -> Result<Vec<HeldLease>> {
        self.timed(
            "store_leases_bulk",
            async {
                let mut out = Vec::with_capacity(leases.len());
                for chunk in leases.chunks(500) {
                    let mut ops = Vec::with_capacity(chunk.len() * 2);
                    let mut ttls = Vec::with_capacity(chunk.len());
                    for lease in chunk {
                        let ttl = ttl_until(lease.expires_at)?;
                        ttls.push(ttl);
                        ops.extend(self.lease_ops(lease, Condition::Absent, ttl)?);
                    }
                    let t0 = Instant::now();
                    let versions = self.client.batch(&ops).await?;
                    for (i, lease) in chunk.iter().enumerate() {
                        out.push(HeldLease {
                            lease: lease.clone(),
                            version: versions.get(2 * i).copied().flatten().ok_or_else(|| {
                                Error::Invalid("the batch answer lacks a version".into())
                            })?,
                            valid_until: self.valid_until(t0, ttls[i]),
                        });
                    }
                }
                Ok(out)
            },
            |_| "ok",
        )
        .await
    }

    /// Orbit-RS `remove_leases_bulk`: releases held leases, atomically
    /// when every one is still at its version, else one by one. Returns how
    /// many were removed.
    pub async fn remove_leases_bulk(&self, held: &[HeldLease]) -> Result<u64> {
        self.timed(
            "remove_leases_bulk",
            async {
                let mut removed = 0;
                for chunk in held.chunks(500) {
                    let mut ops = Vec::with_capacity(chunk.len() * 2);
                    for h in chunk {
                        ops.push(
                            BatchOp::delete(self.lease_key(&h.lease.reference))
                                .when(Condition::Version(h.version)),
                        );
                        ops.push(BatchOp::delete(
                            self.index_key(&h.lease.node_id, &h.lease.reference),
                        ));
                    }
                    match self.client.batch(&ops).await {
                        Ok(_) => removed += chunk.len() as u64,
                        Err(Error::PreconditionFailed { .. }) => {
                            for h in chunk {
                                if self.release(h).await? {
                                    removed += 1;
                                }
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(removed)
            },
            |_| "ok",
        )
        .await
    }

    /// The server's health (healthy, degraded or unhealthy, with a reason).
    pub async fn health_check(&self) -> HealthStatus {
        self.client.health().await
    }

    /// Counters of the directory's operations, by outcome.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }
}

fn ttl_until(expires_at: chrono::DateTime<Utc>) -> Result<Duration> {
    (expires_at - Utc::now())
        .to_std()
        .ok()
        .filter(|d| d.as_millis() > 0)
        .ok_or_else(|| Error::Invalid(format!("expires_at {expires_at} is not in the future")))
}

fn decode(key: &str, value: &Bytes) -> Result<AddressableLease> {
    serde_json::from_slice(value)
        .map_err(|e| Error::Invalid(format!("{key}: not an Orbit-RS lease: {e}")))
}
