//! The host side of `orbit:storage/store`: what a component that imports the
//! store can do, mapped onto the [`Storage`] trait with the same validation
//! and limits as the HTTP API. Keys starting with `0xFF` (the host's private
//! keyspace) are refused.
//!
//! The store import reaches only the buckets granted to the plugin, the same
//! grants as `wasi:keyvalue` (`keyvalue:NAME` in `ORBIT_PLUGIN_<ROLE>_GRANTS`):
//! `NAME` covers the keys that start with `NAME/`, and `default` covers the
//! whole user keyspace. Without a grant, every key is refused.

use bytes::Bytes;
use orbit_storage::{
    BatchOp, KeyRange, ListQuery, MAX_BATCH_OPS, Precondition, PutOptions, Storage, StorageError,
    now_millis,
};

use crate::bindings::store::{self, StoreError};
use crate::bindings::types;
use crate::state::CallState;

impl types::Host for CallState {}

impl crate::bindings::log::Host for CallState {
    async fn log(&mut self, level: crate::bindings::log::Level, message: String) {
        use crate::bindings::log::Level;
        use crate::state::LOG_LINE_MAX;
        if self.log_budget == 0 {
            return;
        }
        self.log_budget -= 1;
        let mut message = message;
        if message.len() > LOG_LINE_MAX {
            let mut cut = LOG_LINE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [cut]");
        }
        let plugin = &*self.plugin;
        match level {
            Level::Debug => tracing::debug!(target: "orbit_plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "orbit_plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "orbit_plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "orbit_plugin", plugin, "{message}"),
        }
        if self.log_budget == 0 {
            tracing::warn!(target: "orbit_plugin", plugin, "log limit of {} lines per call reached; further lines dropped", crate::state::LOG_LINES_PER_CALL);
        }
    }
}

/// The key prefix of bucket `name` (`name/`); none for `default`.
fn bucket_of(name: &str) -> Option<Vec<u8>> {
    (name != "default").then(|| format!("{name}/").into_bytes())
}

fn not_granted(buckets: &[String]) -> StoreError {
    let granted = if buckets.is_empty() {
        "none".to_string()
    } else {
        buckets.join(", ")
    };
    StoreError::Invalid(format!(
        "outside the buckets granted to this plugin (granted: {granted}); grant keyvalue:NAME for the keys NAME/..., or keyvalue:default for every key"
    ))
}

fn precondition(p: store::Precondition) -> Precondition {
    match p {
        store::Precondition::None => Precondition::None,
        store::Precondition::Absent => Precondition::Absent,
        store::Precondition::Version(v) => Precondition::Version(v),
    }
}

pub(crate) fn store_error(e: StorageError) -> StoreError {
    match e {
        StorageError::Conflict { current, .. } => StoreError::Conflict(current),
        StorageError::Invalid(m) => StoreError::Invalid(m),
        StorageError::CapacityExceeded(m) => StoreError::Limit(m),
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn listed(e: orbit_storage::Listed) -> store::Entry {
    store::Entry {
        key: e.key.to_vec(),
        value: e.value.map(|v| v.to_vec()).unwrap_or_default(),
        version: e.version,
        expires_at_ms: e.expires_at,
    }
}

fn entry(e: orbit_storage::Entry) -> store::Entry {
    store::Entry {
        key: e.key.to_vec(),
        value: e.value.to_vec(),
        version: e.version,
        expires_at_ms: e.expires_at,
    }
}

impl CallState {
    pub(crate) fn backend(&self) -> Result<&dyn Storage, StoreError> {
        self.storage
            .as_deref()
            .ok_or_else(|| StoreError::Unavailable("no backend is open during this call".into()))
    }

    pub(crate) fn check_key(&self, key: &[u8]) -> Result<(), StoreError> {
        if key.is_empty() {
            return Err(StoreError::Invalid("key is empty".into()));
        }
        if orbit_storage::is_private_key(key) {
            return Err(store_error(StorageError::private_key()));
        }
        if key.len() > self.store_limits.max_key_bytes {
            return Err(StoreError::Limit(format!(
                "key is {} bytes; the limit is {} bytes (ORBIT_MAX_KEY_BYTES)",
                key.len(),
                self.store_limits.max_key_bytes
            )));
        }
        Ok(())
    }

    pub(crate) fn check_value(&self, value: &[u8]) -> Result<(), StoreError> {
        if value.len() > self.store_limits.max_value_bytes {
            return Err(StoreError::Limit(format!(
                "value is {} bytes; the limit is {} bytes (ORBIT_MAX_VALUE_BYTES)",
                value.len(),
                self.store_limits.max_value_bytes
            )));
        }
        Ok(())
    }

    /// The store import's key check: a valid user key, inside a granted bucket.
    fn check_granted_key(&self, key: &[u8]) -> Result<(), StoreError> {
        self.check_key(key)?;
        let buckets = &self.grants.keyvalue_buckets;
        let granted = buckets
            .iter()
            .any(|b| b == "default" || bucket_of(b).is_some_and(|p| key.starts_with(&p)));
        if granted {
            Ok(())
        } else {
            Err(not_granted(buckets))
        }
    }

    /// The store import's listing check: the range must lie inside one
    /// granted bucket (or anywhere in the user keyspace with `default`).
    fn check_granted_range(&self, range: &KeyRange) -> Result<(), StoreError> {
        let buckets = &self.grants.keyvalue_buckets;
        if buckets.iter().any(|b| b == "default") {
            return Ok(());
        }
        let inside = |b: &String| {
            let Some(low) = bucket_of(b) else {
                return false;
            };
            // Every key of bucket `b` is in [`b/`, `b0`) ('0' follows '/').
            let mut high = low.clone();
            *high.last_mut().expect("bucket prefix ends with '/'") = b'0';
            match range {
                KeyRange::Prefix(p) => p.starts_with(&low),
                KeyRange::Range { start, end } => {
                    start.as_deref().is_some_and(|s| s >= low.as_slice())
                        && end.as_deref().is_some_and(|e| e <= high.as_slice())
                }
            }
        };
        if buckets.iter().any(inside) {
            Ok(())
        } else {
            Err(not_granted(buckets))
        }
    }

    fn check_put(&self, req: &store::PutRequest) -> Result<PutOptions, StoreError> {
        self.check_granted_key(&req.key)?;
        self.check_value(&req.value)?;
        Ok(PutOptions {
            precondition: precondition(req.precondition),
            expires_at: req.ttl_ms.map(|ttl| now_millis().saturating_add(ttl)),
        })
    }
}

impl store::Host for CallState {
    async fn get(&mut self, key: Vec<u8>) -> Result<Option<store::Entry>, StoreError> {
        self.check_granted_key(&key)?;
        let found = self.backend()?.get(&key).await.map_err(store_error)?;
        Ok(found.map(entry))
    }

    async fn put(&mut self, request: store::PutRequest) -> Result<u64, StoreError> {
        let options = self.check_put(&request)?;
        self.backend()?
            .put(&request.key, Bytes::from(request.value), options)
            .await
            .map_err(store_error)
    }

    async fn delete(
        &mut self,
        key: Vec<u8>,
        precondition_: store::Precondition,
    ) -> Result<bool, StoreError> {
        self.check_granted_key(&key)?;
        self.backend()?
            .delete(&key, precondition(precondition_))
            .await
            .map_err(store_error)
    }

    async fn list(&mut self, request: store::ListRequest) -> Result<store::ListPage, StoreError> {
        let range = match request.range {
            store::KeyRange::All => KeyRange::Range {
                start: None,
                end: None,
            },
            store::KeyRange::Prefix(p) => KeyRange::Prefix(Bytes::from(p)),
            store::KeyRange::Span(span) => KeyRange::Range {
                start: span.start.map(Bytes::from),
                end: span.end.map(Bytes::from),
            },
        };
        // Never reach into the host's private keyspace.
        let range = range.clamp_to_user_keyspace().map_err(store_error)?;
        self.check_granted_range(&range)?;
        // A page carries at most a quarter of the plugin's memory cap back
        // to it: the backend stops the page there, the rest follows from
        // the cursor.
        let budget = self.limiter.answer_budget();
        let query = ListQuery {
            cursor: request.cursor.map(Bytes::from),
            max_bytes: budget,
            ..ListQuery::new(range, request.limit.clamp(1, 1000) as usize)
        };
        let page = self.backend()?.list(&query).await.map_err(store_error)?;
        if let [only] = page.entries.as_slice()
            && only.key.len() as u64 + only.size > budget as u64
        {
            return Err(StoreError::Limit(format!(
                "the first entry alone is larger than {budget} bytes (a quarter of this plugin's memory limit)"
            )));
        }
        Ok(store::ListPage {
            entries: page.entries.into_iter().map(listed).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_vec()),
        })
    }

    async fn batch(&mut self, ops: Vec<store::BatchOp>) -> Result<Vec<Option<u64>>, StoreError> {
        if ops.len() > MAX_BATCH_OPS {
            return Err(StoreError::Limit(format!(
                "a batch holds at most {MAX_BATCH_OPS} operations; this one has {}",
                ops.len()
            )));
        }
        let mut batch = Vec::with_capacity(ops.len());
        for op in ops {
            batch.push(match op {
                store::BatchOp::Put(req) => {
                    let options = self.check_put(&req)?;
                    BatchOp::Put {
                        key: Bytes::from(req.key),
                        value: Bytes::from(req.value),
                        options,
                    }
                }
                store::BatchOp::Delete(req) => {
                    self.check_granted_key(&req.key)?;
                    BatchOp::Delete {
                        key: Bytes::from(req.key),
                        precondition: precondition(req.precondition),
                    }
                }
            });
        }
        self.backend()?.batch(batch).await.map_err(store_error)
    }
}
