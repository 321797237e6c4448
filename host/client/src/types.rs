//! Orbit-RS's directory and membership types, with the same field names and
//! serde representation as `orbit-shared` (`addressable.rs`, `mesh.rs`), so
//! the JSON this crate stores is what Orbit-RS reads and writes.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The key of an addressable within its type. Serialised as Orbit-RS does:
/// `{"StringKey":{"key":"5"}}`, `{"Int32Key":{"key":5}}`, `"NoKey"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    StringKey { key: String },
    Int32Key { key: i32 },
    Int64Key { key: i64 },
    NoKey,
}

impl Key {
    pub fn string(s: impl Into<String>) -> Key {
        Key::StringKey { key: s.into() }
    }
}

impl fmt::Display for Key {
    /// Orbit-RS's display form (`5` for both `StringKey("5")` and
    /// `Int32Key(5)`): for people, never for storage keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::StringKey { key } => write!(f, "{key}"),
            Key::Int32Key { key } => write!(f, "{key}"),
            Key::Int64Key { key } => write!(f, "{key}"),
            Key::NoKey => write!(f, "no-key"),
        }
    }
}

/// An actor: its type and key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AddressableReference {
    pub addressable_type: String,
    pub key: Key,
}

impl AddressableReference {
    pub fn new(addressable_type: impl Into<String>, key: Key) -> Self {
        AddressableReference {
            addressable_type: addressable_type.into(),
            key,
        }
    }
}

impl fmt::Display for AddressableReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.addressable_type, self.key)
    }
}

/// A node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId {
    pub key: String,
    pub namespace: String,
}

impl NodeId {
    pub fn new(key: impl Into<String>, namespace: impl Into<String>) -> Self {
        NodeId {
            key: key.into(),
            namespace: namespace.into(),
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}:{})", self.namespace, self.key)
    }
}

/// Where an actor lives, and until when (wall clock, informational: the
/// server's TTL is what ends a lease).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressableLease {
    pub reference: AddressableReference,
    pub node_id: NodeId,
    pub expires_at: DateTime<Utc>,
    pub renew_at: DateTime<Utc>,
}

/// What a node can host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCapabilities {
    pub addressable_types: Vec<String>,
    pub max_addressables: Option<u32>,
    pub tags: HashMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeStatus {
    #[default]
    Active,
    Draining,
    Stopped,
}

/// A node's claim to be alive. `challenge_token` names one incarnation:
/// renewing needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLease {
    pub node_id: NodeId,
    pub expires_at: DateTime<Utc>,
    pub renew_at: DateTime<Utc>,
    pub challenge_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub url: String,
    pub port: u16,
    pub capabilities: NodeCapabilities,
    pub status: NodeStatus,
    pub lease: Option<NodeLease>,
}

impl NodeInfo {
    pub fn new(id: NodeId, url: impl Into<String>, port: u16) -> Self {
        NodeInfo {
            id,
            url: url.into(),
            port,
            capabilities: NodeCapabilities::default(),
            status: NodeStatus::Active,
            lease: None,
        }
    }
}

/// Storage-key segments: `%` and `/` escaped, so no segment can contain
/// the separator and the mapping is reversible.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
    out
}

/// The storage-key segment of a [`Key`]: its variant and its value, so
/// `StringKey("5")` (`s:5`) and `Int32Key(5)` (`i32:5`) never meet.
pub(crate) fn key_segment(k: &Key) -> String {
    match k {
        Key::StringKey { key } => format!("s:{}", escape(key)),
        Key::Int32Key { key } => format!("i32:{key}"),
        Key::Int64Key { key } => format!("i64:{key}"),
        Key::NoKey => "none".to_string(),
    }
}

/// `type/key-segment` of a reference.
pub(crate) fn reference_segment(r: &AddressableReference) -> String {
    format!("{}/{}", escape(&r.addressable_type), key_segment(&r.key))
}

/// `namespace/key` of a node.
pub(crate) fn node_segment(n: &NodeId) -> String {
    format!("{}/{}", escape(&n.namespace), escape(&n.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_orbit_rs_json() {
        let lease = AddressableLease {
            reference: AddressableReference::new("Counter", Key::Int32Key { key: 5 }),
            node_id: NodeId::new("n1", "default"),
            expires_at: DateTime::parse_from_rfc3339("2026-01-01T00:00:10Z")
                .unwrap()
                .into(),
            renew_at: DateTime::parse_from_rfc3339("2026-01-01T00:00:05Z")
                .unwrap()
                .into(),
        };
        let j = serde_json::to_value(&lease).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "reference": {"addressable_type": "Counter", "key": {"Int32Key": {"key": 5}}},
                "node_id": {"key": "n1", "namespace": "default"},
                "expires_at": "2026-01-01T00:00:10Z",
                "renew_at": "2026-01-01T00:00:05Z"
            })
        );
        assert_eq!(serde_json::to_value(Key::NoKey).unwrap(), "NoKey");
        assert_eq!(
            serde_json::to_value(NodeStatus::Draining).unwrap(),
            "Draining"
        );
        let back: AddressableLease = serde_json::from_value(j).unwrap();
        assert_eq!(back, lease);
    }

    #[test]
    fn storage_keys_keep_the_key_variant_and_escape_separators() {
        let s5 = AddressableReference::new("A", Key::string("5"));
        let i5 = AddressableReference::new("A", Key::Int32Key { key: 5 });
        let l5 = AddressableReference::new("A", Key::Int64Key { key: 5 });
        let segs = [&s5, &i5, &l5].map(reference_segment);
        assert_eq!(segs, ["A/s:5", "A/i32:5", "A/i64:5"]);
        // A type or key holding the separator cannot imitate another one.
        let tricky = AddressableReference::new("A/s:5", Key::NoKey);
        assert_eq!(reference_segment(&tricky), "A%2Fs:5/none");
        let tricky2 = AddressableReference::new("A", Key::string("5/x"));
        assert_eq!(reference_segment(&tricky2), "A/s:5%2Fx");
        assert_ne!(escape("%2F"), escape("/"));
    }
}
