//! The rules of the storage contract that every backend applies, written
//! once: when a precondition holds, when an entry is visible (TTL), and how
//! a batch's operations see each other and get their versions. Backends
//! keep only their mechanics (where entries live, how a version counter is
//! made durable, how a batch is made atomic); what a write means is
//! decided here, so the memory backend, the engine adapter ([`crate::kv`])
//! and the object-storage backends (`orbit-cloud`) cannot disagree on it.
//! Input validation is the sibling module [`crate::validate`].

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;

use bytes::Bytes;

use crate::{BatchOp, Precondition, StorageError, StorageResult, UnixMillis, Version};

/// The TTL rule: an entry written with `expires_at` is visible strictly
/// before that instant and invisible from it on (to get, list and
/// preconditions alike), whether or not it has been purged; one without an
/// expiry is visible until it is overwritten or deleted.
pub fn is_live(expires_at: Option<UnixMillis>, now: UnixMillis) -> bool {
    expires_at.is_none_or(|at| at > now)
}

impl Precondition {
    /// Whether the precondition holds for a key whose live version is
    /// `current` (`None`: absent, expired or deleted).
    pub fn holds(self, current: Option<Version>) -> bool {
        match self {
            Precondition::None => true,
            Precondition::Absent => current.is_none(),
            Precondition::Version(expected) => current == Some(expected),
        }
    }

    /// `Ok` if it holds, else the [`Conflict`](StorageError::Conflict)
    /// naming `key` and its current version: the one home of this rule for
    /// every backend.
    pub fn check(self, key: &[u8], current: Option<Version>) -> StorageResult<()> {
        if self.holds(current) {
            Ok(())
        } else {
            Err(StorageError::conflict(key, current))
        }
    }
}

/// What a batch does, as [`plan_batch`] decided it; nothing is written yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchPlan {
    /// Per operation, in order: the new version of a put, `None` for a
    /// delete (what [`Storage::batch`](crate::Storage::batch) returns).
    pub versions: Vec<Option<Version>>,
    /// Every key the batch touches: its live version in the store before
    /// the batch, and the one the batch leaves it with (`None`: absent).
    pub keys: HashMap<Bytes, (Option<Version>, Option<Version>)>,
}

impl BatchPlan {
    /// How many more live keys the store holds after the batch than before
    /// (0 when it holds fewer), for backends with a capacity limit.
    pub fn net_new_keys(&self) -> u64 {
        let (mut created, mut removed) = (0u64, 0u64);
        for (before, after) in self.keys.values() {
            match (before.is_some(), after.is_some()) {
                (false, true) => created += 1,
                (true, false) => removed += 1,
                _ => {}
            }
        }
        created.saturating_sub(removed)
    }
}

/// The batch rule, for every backend. The operations apply in order:
/// - each precondition is checked against the state the earlier
///   operations of the batch leave (`committed` gives a key's live version
///   in the store, asked once per key, before the batch touches it);
/// - a put gets a version from `allocate`, called once per put in
///   operation order after its precondition held, so the puts of a batch
///   get increasing versions in order; its key is then live at that
///   version, unless its expiry has already passed ([`is_live`] at `now`),
///   when the key is absent;
/// - a delete gets no version and leaves its key absent.
///
/// A failing precondition refuses the whole batch with a
/// [`Conflict`](StorageError::Conflict) carrying the key's version
/// *committed in the store*, never one the batch itself planned (that
/// version was never written and may later name another write). An error
/// from `allocate` is returned as is. The backend then applies the plan
/// atomically; the last operation on a key decides what is stored.
pub fn plan_batch(
    ops: &[BatchOp],
    now: UnixMillis,
    mut committed: impl FnMut(&[u8]) -> Option<Version>,
    mut allocate: impl FnMut() -> StorageResult<Version>,
) -> StorageResult<BatchPlan> {
    let mut plan = BatchPlan {
        versions: Vec::with_capacity(ops.len()),
        keys: HashMap::with_capacity(ops.len()),
    };
    for op in ops {
        let state = match plan.keys.entry(op.key().clone()) {
            MapEntry::Occupied(occupied) => occupied.into_mut(),
            MapEntry::Vacant(vacant) => {
                let before = committed(op.key());
                vacant.insert((before, before))
            }
        };
        let (before, current) = *state;
        op.precondition()
            .check(op.key(), current)
            .map_err(|_| StorageError::conflict(op.key(), before))?;
        let version = match op {
            BatchOp::Put { options, .. } => {
                let version = allocate()?;
                state.1 = is_live(options.expires_at, now).then_some(version);
                Some(version)
            }
            BatchOp::Delete { .. } => {
                state.1 = None;
                None
            }
        };
        plan.versions.push(version);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PutOptions;

    fn put(key: &'static [u8], precondition: Precondition, expires_at: Option<u64>) -> BatchOp {
        BatchOp::Put {
            key: Bytes::from_static(key),
            value: Bytes::from_static(b"v"),
            options: PutOptions {
                precondition,
                expires_at,
            },
        }
    }

    fn delete(key: &'static [u8], precondition: Precondition) -> BatchOp {
        BatchOp::Delete {
            key: Bytes::from_static(key),
            precondition,
        }
    }

    fn counter(first: Version) -> impl FnMut() -> StorageResult<Version> {
        let mut next = first;
        move || {
            next += 1;
            Ok(next - 1)
        }
    }

    #[test]
    fn ttl_visibility_ends_at_the_expiry_instant() {
        assert!(is_live(None, u64::MAX));
        assert!(is_live(Some(11), 10));
        assert!(!is_live(Some(10), 10));
        assert!(!is_live(Some(0), 10));
    }

    #[test]
    fn preconditions() {
        assert!(Precondition::None.holds(Some(3)) && Precondition::None.holds(None));
        assert!(Precondition::Absent.holds(None) && !Precondition::Absent.holds(Some(3)));
        assert!(Precondition::Version(3).holds(Some(3)));
        assert!(!Precondition::Version(3).holds(Some(4)) && !Precondition::Version(3).holds(None));
        match Precondition::Absent.check(b"k", Some(7)) {
            Err(StorageError::Conflict { key, current }) => {
                assert_eq!((key.as_str(), current), ("k", Some(7)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn operations_see_earlier_ones_and_puts_get_versions_in_order() {
        let ops = [
            put(b"a", Precondition::Absent, None),
            delete(b"b", Precondition::Version(5)),
            put(b"b", Precondition::Absent, None),
            put(b"a", Precondition::Version(100), None),
            put(b"c", Precondition::None, Some(1)),
        ];
        let committed = |key: &[u8]| (key == b"b").then_some(5);
        let plan = plan_batch(&ops, 10, committed, counter(100)).unwrap();
        assert_eq!(
            plan.versions,
            vec![Some(100), None, Some(101), Some(102), Some(103)]
        );
        assert_eq!(plan.keys[&b"a"[..]], (None, Some(102)));
        assert_eq!(plan.keys[&b"b"[..]], (Some(5), Some(101)));
        // Expired on arrival: the key is absent after the batch.
        assert_eq!(plan.keys[&b"c"[..]], (None, None));
        assert_eq!(plan.net_new_keys(), 1);
    }

    #[test]
    fn a_conflict_reports_the_committed_version_and_allocates_nothing_more() {
        let mut allocated = 0;
        let ops = [
            put(b"a", Precondition::None, None),
            put(b"a", Precondition::Version(1), None),
            put(b"z", Precondition::None, None),
        ];
        let result = plan_batch(
            &ops,
            10,
            |_| Some(7),
            || {
                allocated += 1;
                Ok(100 + allocated)
            },
        );
        match result {
            Err(StorageError::Conflict { current, .. }) => assert_eq!(current, Some(7)),
            other => panic!("{other:?}"),
        }
        assert_eq!(allocated, 1, "only the put before the conflict");
        let ops = [
            put(b"n", Precondition::None, None),
            delete(b"n", Precondition::Absent),
        ];
        match plan_batch(&ops, 10, |_| None, counter(1)) {
            Err(StorageError::Conflict { current, .. }) => assert_eq!(current, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn committed_is_asked_once_per_key() {
        let mut asked = Vec::new();
        let ops = [
            put(b"a", Precondition::None, None),
            delete(b"a", Precondition::None),
            put(b"b", Precondition::None, None),
        ];
        plan_batch(
            &ops,
            10,
            |key| {
                asked.push(key.to_vec());
                None
            },
            counter(1),
        )
        .unwrap();
        assert_eq!(asked, vec![b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn an_allocation_error_is_returned() {
        let ops = [put(b"a", Precondition::None, None)];
        let exhausted = || Err(StorageError::Unavailable("exhausted".into()));
        assert!(matches!(
            plan_batch(&ops, 10, |_| None, exhausted),
            Err(StorageError::Unavailable(_))
        ));
    }
}
