//! Cluster membership of Orbit-RS (`ClusterMembership`): node records with
//! a lease, renewed with the node's challenge token.
//!
//! One key per node, `<prefix>cluster/nodes/<namespace>/<node>`, holding the
//! [`NodeInfo`] (Orbit-RS JSON) with a TTL of the lease duration.
//!
//! - **join** creates the record if absent, with a fresh random challenge
//!   token (128 bits from the OS);
//! - **renew** reads the record, requires the token to be the node's own,
//!   and writes it back *if still at the version read* with a new expiry:
//!   an operator's change (status `Draining`) survives a renewal, and a
//!   node whose record was removed (declared dead) or replaced by another
//!   incarnation gets [`Error::LeaseLost`] / [`Error::ChallengeMismatch`]
//!   instead of silently coming back;
//! - **leave** deletes the record if still at the held version.

use std::time::{Duration, Instant};

use chrono::Utc;
use futures::TryStreamExt;

use crate::client::{Client, Condition, HealthStatus, ListOptions, PutOptions};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::types::{NodeId, NodeInfo, NodeLease, NodeStatus, node_segment};

/// Settings of the membership.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    pub prefix: String,
    pub lease_duration: Duration,
    pub safety_margin: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            prefix: "orbit/".into(),
            lease_duration: Duration::from_secs(30),
            safety_margin: Duration::from_millis(500),
        }
    }
}

/// This node's membership: its record as last written, the version, and
/// until when it may consider itself a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldNode {
    pub info: NodeInfo,
    pub version: u64,
    pub valid_until: Instant,
}

impl HeldNode {
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }

    pub fn challenge_token(&self) -> Option<&str> {
        self.info
            .lease
            .as_ref()
            .and_then(|l| l.challenge_token.as_deref())
    }
}

/// What [`ClusterMembership::cleanup_expired_nodes`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeCleanupReport {
    pub removed: Vec<NodeId>,
}

#[derive(Debug, Clone)]
pub struct ClusterMembership {
    client: Client,
    config: MembershipConfig,
    metrics: std::sync::Arc<Metrics>,
}

impl ClusterMembership {
    pub fn new(client: Client, config: MembershipConfig) -> Self {
        ClusterMembership {
            client,
            config,
            metrics: Default::default(),
        }
    }

    pub fn node_key(&self, id: &NodeId) -> String {
        format!("{}cluster/nodes/{}", self.config.prefix, node_segment(id))
    }

    fn prefix(&self) -> String {
        format!("{}cluster/nodes/", self.config.prefix)
    }

    async fn timed<T>(&self, op: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let r = f.await;
        let label = match &r {
            Ok(_) => "ok",
            Err(e) => e.label(),
        };
        self.metrics.record(op, label, started.elapsed());
        r
    }

    fn lease_for(&self, id: &NodeId, token: String) -> Result<NodeLease> {
        let now = Utc::now();
        let d = chrono::Duration::from_std(self.config.lease_duration)
            .map_err(|_| Error::Invalid("lease duration too long".into()))?;
        Ok(NodeLease {
            node_id: id.clone(),
            expires_at: now + d,
            renew_at: now + d / 2,
            challenge_token: Some(token),
        })
    }

    fn valid_until(&self, t0: Instant) -> Instant {
        t0 + self
            .config
            .lease_duration
            .saturating_sub(self.config.safety_margin)
    }

    /// Orbit-RS `store_node`: registers `info` with a new lease and
    /// challenge token, if no record of this node exists
    /// ([`Error::PreconditionFailed`] otherwise: a live incarnation holds
    /// the name).
    pub async fn join(&self, info: &NodeInfo) -> Result<HeldNode> {
        self.timed("store_node", async {
            let mut info = info.clone();
            info.lease = Some(self.lease_for(&info.id, new_token()?)?);
            let value = serde_json::to_vec(&info).map_err(|e| Error::Invalid(e.to_string()))?;
            let t0 = Instant::now();
            let w = self
                .client
                .put(
                    &self.node_key(&info.id),
                    value,
                    PutOptions {
                        condition: Condition::Absent,
                        ttl: Some(self.config.lease_duration),
                    },
                )
                .await?;
            Ok(HeldNode {
                info,
                version: w.version,
                valid_until: self.valid_until(t0),
            })
        })
        .await
    }

    /// Orbit-RS `store_node` under its own name; see [`ClusterMembership::join`].
    pub async fn store_node(&self, info: &NodeInfo) -> Result<HeldNode> {
        self.join(info).await
    }

    /// Orbit-RS `renew_node_lease`: renews this node's lease if the stored
    /// record still carries its challenge token (compare-and-set on the
    /// version read, so the token check and the write are one step).
    pub async fn renew_node_lease(&self, held: &HeldNode) -> Result<HeldNode> {
        self.timed("renew_node_lease", async {
            let token = held
                .challenge_token()
                .ok_or_else(|| Error::Invalid("the held record has no challenge token".into()))?
                .to_string();
            let key = self.node_key(&held.info.id);
            let t0 = Instant::now();
            let Some(current) = self.client.get(&key).await? else {
                return Err(Error::LeaseLost(format!(
                    "node {} has no record (expired or declared dead); join again as a new incarnation",
                    held.info.id
                )));
            };
            let mut info: NodeInfo = serde_json::from_slice(&current.value)
                .map_err(|e| Error::Invalid(format!("{key}: not a NodeInfo: {e}")))?;
            let stored_token = info.lease.as_ref().and_then(|l| l.challenge_token.clone());
            if stored_token.as_deref() != Some(token.as_str()) {
                return Err(Error::ChallengeMismatch {
                    node: held.info.id.to_string(),
                });
            }
            info.lease = Some(self.lease_for(&info.id, token)?);
            let value = serde_json::to_vec(&info).map_err(|e| Error::Invalid(e.to_string()))?;
            match self
                .client
                .compare_and_set(&key, current.version, value, Some(self.config.lease_duration))
                .await
            {
                Ok(w) => Ok(HeldNode {
                    info,
                    version: w.version,
                    valid_until: self.valid_until(t0),
                }),
                Err(Error::PreconditionFailed {
                    current_version, ..
                }) => Err(Error::LeaseLost(format!(
                    "node {} record changed while renewing (now {current_version:?}); retry the renewal",
                    held.info.id
                ))),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Orbit-RS `update_node`: replaces this node's record (status,
    /// capabilities...), keeping its lease, compare-and-set on the held
    /// version.
    pub async fn update_node(&self, held: &HeldNode, info: &NodeInfo) -> Result<HeldNode> {
        self.timed("update_node", async {
            if info.id != held.info.id {
                return Err(Error::Invalid(
                    "update_node cannot change the node id".into(),
                ));
            }
            let mut info = info.clone();
            info.lease = held.info.lease.clone();
            let value = serde_json::to_vec(&info).map_err(|e| Error::Invalid(e.to_string()))?;
            let ttl = held
                .info
                .lease
                .as_ref()
                .and_then(|l| (l.expires_at - Utc::now()).to_std().ok())
                .filter(|d| d.as_millis() > 0)
                .ok_or_else(|| Error::LeaseLost(format!("node {} lease has expired", info.id)))?;
            let w = self
                .client
                .compare_and_set(&self.node_key(&info.id), held.version, value, Some(ttl))
                .await?;
            Ok(HeldNode {
                info,
                version: w.version,
                valid_until: held.valid_until,
            })
        })
        .await
    }

    /// Marks a node `Draining` (or any status) as an operator would: read,
    /// change the status, compare-and-set, keeping its token and expiry.
    pub async fn set_status(&self, id: &NodeId, status: NodeStatus) -> Result<bool> {
        self.timed("set_status", async {
            let key = self.node_key(id);
            let Some(current) = self.client.get(&key).await? else {
                return Ok(false);
            };
            let mut info: NodeInfo = serde_json::from_slice(&current.value)
                .map_err(|e| Error::Invalid(format!("{key}: not a NodeInfo: {e}")))?;
            info.status = status;
            let ttl = current
                .expires_at_ms
                .map(|ms| Duration::from_millis(ms.saturating_sub(now_ms()).max(1)));
            let value = serde_json::to_vec(&info).map_err(|e| Error::Invalid(e.to_string()))?;
            self.client
                .compare_and_set(&key, current.version, value, ttl)
                .await?;
            Ok(true)
        })
        .await
    }

    /// The node's record, with its version.
    pub async fn get_node(&self, id: &NodeId) -> Result<Option<(NodeInfo, u64)>> {
        self.timed("get_node", async {
            let key = self.node_key(id);
            let Some(e) = self.client.get(&key).await? else {
                return Ok(None);
            };
            let info = serde_json::from_slice(&e.value)
                .map_err(|err| Error::Invalid(format!("{key}: not a NodeInfo: {err}")))?;
            Ok(Some((info, e.version)))
        })
        .await
    }

    /// Orbit-RS `remove_node`, also how a node is declared dead: its record
    /// goes, so its next renewal fails and it must rejoin as a new
    /// incarnation.
    pub async fn remove_node(&self, id: &NodeId) -> Result<bool> {
        self.timed(
            "remove_node",
            self.client.delete(&self.node_key(id), Condition::None),
        )
        .await
    }

    /// This node leaves: its record is deleted if it is still the held
    /// version.
    pub async fn leave(&self, held: &HeldNode) -> Result<bool> {
        self.timed("leave", async {
            match self
                .client
                .delete_if_version(&self.node_key(&held.info.id), held.version)
                .await
            {
                Ok(d) => Ok(d),
                Err(Error::PreconditionFailed { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn all(&self) -> Result<Vec<(NodeInfo, u64)>> {
        let items: Vec<_> = self
            .client
            .list(ListOptions::prefix(self.prefix()).with_values())
            .try_collect()
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item
                .value
                .as_ref()
                .map(|v| serde_json::from_slice::<NodeInfo>(v))
            {
                Some(Ok(info)) => out.push((info, item.version)),
                _ => tracing::warn!(key = item.key, "not a NodeInfo; skipped"),
            }
        }
        Ok(out)
    }

    /// Orbit-RS `list_all_nodes`.
    pub async fn list_all_nodes(&self) -> Result<Vec<NodeInfo>> {
        self.timed("list_all_nodes", async {
            Ok(self.all().await?.into_iter().map(|(i, _)| i).collect())
        })
        .await
    }

    /// Orbit-RS `list_active_nodes`: status `Active` and lease not expired.
    pub async fn list_active_nodes(&self) -> Result<Vec<NodeInfo>> {
        self.timed("list_active_nodes", async {
            let now = Utc::now();
            Ok(self
                .all()
                .await?
                .into_iter()
                .map(|(i, _)| i)
                .filter(|i| {
                    i.status == NodeStatus::Active
                        && i.lease.as_ref().is_none_or(|l| l.expires_at > now)
                })
                .collect())
        })
        .await
    }

    /// Orbit-RS `cleanup_expired_nodes`: records whose lease's `expires_at`
    /// has passed but that are still stored (written without a TTL by an
    /// older writer); the ones written here expire on the server.
    pub async fn cleanup_expired_nodes(&self) -> Result<NodeCleanupReport> {
        self.timed("cleanup_expired_nodes", async {
            let now = Utc::now();
            let mut report = NodeCleanupReport::default();
            for (info, version) in self.all().await? {
                let expired = info.lease.as_ref().is_some_and(|l| l.expires_at < now);
                if expired {
                    match self
                        .client
                        .delete_if_version(&self.node_key(&info.id), version)
                        .await
                    {
                        Ok(true) => report.removed.push(info.id),
                        Ok(false) | Err(Error::PreconditionFailed { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(report)
        })
        .await
    }

    pub async fn health_check(&self) -> HealthStatus {
        self.client.health().await
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }
}

fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

/// 128 random bits from the OS, hex.
fn new_token() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::Invalid("the OS random source failed".into()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
