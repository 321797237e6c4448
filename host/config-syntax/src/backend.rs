//! The seven persistence backends and their names.

use std::fmt;
use std::str::FromStr;

/// A persistence backend, named as `ORBIT_PERSISTENCE_BACKEND` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    Memory,
    CowBtree,
    LsmTree,
    Rocksdb,
    S3,
    Azure,
    Gcp,
}

impl BackendKind {
    pub const ALL: [BackendKind; 7] = [
        BackendKind::Memory,
        BackendKind::CowBtree,
        BackendKind::LsmTree,
        BackendKind::Rocksdb,
        BackendKind::S3,
        BackendKind::Azure,
        BackendKind::Gcp,
    ];

    /// The configuration name (`lsm_tree`, `cow_btree`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            BackendKind::Memory => "memory",
            BackendKind::CowBtree => "cow_btree",
            BackendKind::LsmTree => "lsm_tree",
            BackendKind::Rocksdb => "rocksdb",
            BackendKind::S3 => "s3",
            BackendKind::Azure => "azure",
            BackendKind::Gcp => "gcp",
        }
    }

    /// True for backends that keep their data on the local disk.
    pub const fn is_local(self) -> bool {
        matches!(
            self,
            BackendKind::Memory
                | BackendKind::CowBtree
                | BackendKind::LsmTree
                | BackendKind::Rocksdb
        )
    }

    /// `memory, cow_btree, lsm_tree, rocksdb, s3, azure, gcp`.
    pub fn accepted_names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not one of the seven backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBackend(pub String);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown persistence backend {:?}; accepted: {}",
            self.0,
            BackendKind::accepted_names()
        )
    }
}

impl std::error::Error for UnknownBackend {}

impl FromStr for BackendKind {
    type Err = UnknownBackend;

    /// Exact names only (surrounding whitespace ignored): a typo must not
    /// silently pick another backend.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Self::ALL
            .into_iter()
            .find(|k| k.name() == t)
            .ok_or_else(|| UnknownBackend(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in BackendKind::ALL {
            assert_eq!(k.name().parse::<BackendKind>().unwrap(), k);
        }
        let err = "lsm".parse::<BackendKind>().unwrap_err().to_string();
        assert!(
            err.contains("\"lsm\"") && err.contains("lsm_tree, rocksdb"),
            "{err}"
        );
    }
}
