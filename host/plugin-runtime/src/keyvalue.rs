//! The host side of `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch),
//! served by the same backend and checks as `orbit:storage/store`, so
//! key-value code written for Spin or wRPC runs against any Orbit backend.
//!
//! Mapping decided here (the proposal leaves it to the host):
//! - A bucket opens only if granted to the plugin (`keyvalue:NAME` in
//!   `ORBIT_PLUGIN_<ROLE>_GRANTS`); anything else is `access-denied`.
//! - Bucket `default` is the whole user keyspace; bucket `NAME` is the keys
//!   that start with `NAME/` (so `canary` key `x` is `/v1/kv/canary/x` over
//!   HTTP).
//! - Counters (`increment`) are 8-byte little-endian signed integers, as in
//!   Spin; a key holding anything else is an error, never silently reset.
//! - `cas` remembers the version it read; `swap` is a conditional write on
//!   that version, and a lost race returns a fresh handle for the retry.
//! - `set-many` and `delete-many` are atomic (one backend batch), which is
//!   stronger than the proposal requires.
//! - `list-keys` returns keys in order, 256 per page; its cursor is opaque.
//!   Keys that are not UTF-8 cannot be named through this interface and are
//!   skipped.

use bytes::Bytes;
use orbit_storage::{
    BatchOp, KeyRange, ListQuery, MAX_BATCH_OPS, PRIVATE_KEY_PREFIX, Precondition, PutOptions,
};
use wasmtime::component::Resource;

use crate::bindings::keyvalue::{atomics, batch, store};
use std::sync::Arc;

use orbit_storage::Storage;

use crate::bindings::store::StoreError;
use crate::state::CallState;
use crate::store_host::store_error;

use store::Error;

/// An open bucket: the key prefix it maps to.
pub struct Bucket {
    prefix: Vec<u8>,
}

/// A compare-and-swap handle: the full key, and the version (none if absent)
/// and value it read.
pub struct Cas {
    key: Vec<u8>,
    version: Option<u64>,
    value: Option<Bytes>,
    /// Bytes charged to the plugin's memory cap while the handle lives.
    charged: usize,
}

/// What a CAS handle costs the host beyond its key and value.
const CAS_HANDLE_OVERHEAD: usize = 256;

/// Keys per `list-keys` page.
const LIST_PAGE: usize = 256;
/// Attempts of an `increment` racing other writers before it gives up.
const INCREMENT_ATTEMPTS: usize = 64;

fn other(e: StoreError) -> Error {
    Error::Other(match e {
        StoreError::Conflict(_) => "the key changed concurrently".into(),
        StoreError::Limit(m) | StoreError::Invalid(m) | StoreError::Unavailable(m) => m,
    })
}

fn stale_handle(what: &str) -> Error {
    Error::Other(format!("unknown {what} handle"))
}

impl CallState {
    fn bucket_prefix(&self, bucket: &Resource<Bucket>) -> Result<Vec<u8>, Error> {
        Ok(self
            .table
            .get(bucket)
            .map_err(|_| stale_handle("bucket"))?
            .prefix
            .clone())
    }

    /// `prefix + key`, checked like every other key a plugin writes.
    fn full_key(&self, bucket: &Resource<Bucket>, key: &str) -> Result<Vec<u8>, Error> {
        let mut full = self.bucket_prefix(bucket)?;
        full.extend_from_slice(key.as_bytes());
        self.check_key(&full).map_err(other)?;
        Ok(full)
    }

    /// The backend, as an owned handle: a call's future must be `Send`, and
    /// `CallState` is not `Sync`, so no `&self` may live across an await.
    fn kv_backend(&self) -> Result<Arc<dyn Storage>, Error> {
        self.storage
            .clone()
            .ok_or_else(|| Error::Other("no backend is open during this call".into()))
    }
}

async fn read(b: &Arc<dyn Storage>, key: &[u8]) -> Result<Option<orbit_storage::Entry>, Error> {
    b.get(key).await.map_err(storage_error)
}

async fn write(
    b: &Arc<dyn Storage>,
    key: &[u8],
    value: Vec<u8>,
    precondition: Precondition,
) -> Result<u64, StoreError> {
    b.put(
        key,
        Bytes::from(value),
        PutOptions {
            precondition,
            expires_at: None,
        },
    )
    .await
    .map_err(store_error)
}

async fn apply(b: &Arc<dyn Storage>, ops: Vec<BatchOp>) -> Result<(), Error> {
    if ops.len() > MAX_BATCH_OPS {
        return Err(Error::Other(format!(
            "{} keys in one batch; the limit is {MAX_BATCH_OPS}",
            ops.len()
        )));
    }
    b.batch(ops).await.map(drop).map_err(storage_error)
}

fn storage_error(e: orbit_storage::StorageError) -> Error {
    other(store_error(e))
}

impl store::Host for CallState {
    async fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, Error> {
        if !self.grants.keyvalue_buckets.contains(&identifier) {
            tracing::warn!(target: "orbit_plugin", plugin = &*self.plugin, bucket = %identifier,
                "wasi:keyvalue bucket refused: not granted (grant it with keyvalue:{identifier})");
            return Err(Error::AccessDenied);
        }
        let prefix = if identifier == "default" {
            Vec::new()
        } else {
            format!("{identifier}/").into_bytes()
        };
        self.table
            .push(Bucket { prefix })
            .map_err(|e| Error::Other(e.to_string()))
    }
}

impl store::HostBucket for CallState {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Error> {
        let key = self.full_key(&bucket, &key)?;
        Ok(read(&self.kv_backend()?, &key)
            .await?
            .map(|e| e.value.to_vec()))
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        let key = self.full_key(&bucket, &key)?;
        self.check_value(&value).map_err(other)?;
        write(&self.kv_backend()?, &key, value, Precondition::None)
            .await
            .map(drop)
            .map_err(other)
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), Error> {
        let key = self.full_key(&bucket, &key)?;
        self.kv_backend()?
            .delete(&key, Precondition::None)
            .await
            .map(drop)
            .map_err(storage_error)
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, Error> {
        let key = self.full_key(&bucket, &key)?;
        Ok(read(&self.kv_backend()?, &key).await?.is_some())
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, Error> {
        let prefix = self.bucket_prefix(&bucket)?;
        let cursor = match cursor {
            None => None,
            Some(c) => match hex::decode(&c) {
                Ok(k) if k.starts_with(&prefix) => Some(Bytes::from(k)),
                _ => {
                    return Err(Error::Other(format!(
                        "cursor {c:?} was not returned by list-keys on this bucket"
                    )));
                }
            },
        };
        let range = if prefix.is_empty() {
            KeyRange::Range {
                start: None,
                end: Some(Bytes::from_static(&[PRIVATE_KEY_PREFIX])),
            }
        } else {
            KeyRange::Prefix(Bytes::from(prefix.clone()))
        };
        let page = self
            .kv_backend()?
            .list(&ListQuery {
                cursor,
                values: false,
                ..ListQuery::new(range, LIST_PAGE)
            })
            .await
            .map_err(storage_error)?;
        let keys = page
            .entries
            .iter()
            .filter_map(|e| std::str::from_utf8(&e.key[prefix.len()..]).ok())
            .map(str::to_string)
            .collect();
        Ok(store::KeyResponse {
            keys,
            cursor: page.next_cursor.map(hex::encode),
        })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for CallState {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Result<i64, Error> {
        let full = self.full_key(&bucket, &key)?;
        let b = self.kv_backend()?;
        for _ in 0..INCREMENT_ATTEMPTS {
            let (current, precondition) = match read(&b, &full).await? {
                None => (0, Precondition::Absent),
                Some(e) => match <[u8; 8]>::try_from(&e.value[..]) {
                    Ok(bytes) => (i64::from_le_bytes(bytes), Precondition::Version(e.version)),
                    Err(_) => {
                        return Err(Error::Other(format!(
                            "key {key:?} holds {} bytes, not a counter (an 8-byte little-endian integer)",
                            e.value.len()
                        )));
                    }
                },
            };
            let next = current.checked_add(delta).ok_or_else(|| {
                Error::Other(format!(
                    "counter {key:?} would overflow: {current} + {delta}"
                ))
            })?;
            match write(&b, &full, next.to_le_bytes().to_vec(), precondition).await {
                Ok(_) => return Ok(next),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(other(e)),
            }
        }
        Err(Error::Other(format!(
            "counter {key:?} kept changing under {INCREMENT_ATTEMPTS} attempts; try again"
        )))
    }

    async fn swap(&mut self, cas: Resource<Cas>, value: Vec<u8>) -> Result<(), atomics::CasError> {
        let handle = self
            .table
            .delete(cas)
            .map_err(|_| atomics::CasError::StoreError(stale_handle("cas")))?;
        self.limiter.release_host(handle.charged);
        self.check_value(&value)
            .map_err(|e| atomics::CasError::StoreError(other(e)))?;
        let precondition = match handle.version {
            Some(v) => Precondition::Version(v),
            None => Precondition::Absent,
        };
        let b = self.kv_backend().map_err(atomics::CasError::StoreError)?;
        match write(&b, &handle.key, value, precondition).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(_)) => {
                let fresh = self
                    .read_cas(handle.key)
                    .await
                    .map_err(atomics::CasError::StoreError)?;
                Err(atomics::CasError::CasFailed(fresh))
            }
            Err(e) => Err(atomics::CasError::StoreError(other(e))),
        }
    }
}

impl CallState {
    /// A handle remembering the key's version and value. The host keeps the
    /// value until the handle is dropped or swapped, so it is charged to the
    /// plugin's memory cap; past the cap the call fails (`memory_limit`).
    async fn read_cas(&mut self, key: Vec<u8>) -> Result<Resource<Cas>, Error> {
        let found = read(&self.kv_backend()?, &key).await?;
        let value = found.as_ref().map(|e| e.value.clone());
        let charged = CAS_HANDLE_OVERHEAD + key.len() + value.as_ref().map_or(0, Bytes::len);
        if !self.limiter.charge_host(charged) {
            return Err(Error::Other(
                "compare-and-swap handles hold more than this plugin's memory limit; drop some"
                    .into(),
            ));
        }
        let cas = Cas {
            key,
            version: found.map(|e| e.version),
            value,
            charged,
        };
        self.table.push(cas).map_err(|e| {
            self.limiter.release_host(charged);
            Error::Other(e.to_string())
        })
    }
}

impl atomics::HostCas for CallState {
    async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Result<Resource<Cas>, Error> {
        let full = self.full_key(&bucket, &key)?;
        self.read_cas(full).await
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .table
            .get(&cas)
            .map_err(|_| stale_handle("cas"))?
            .value
            .as_ref()
            .map(|v| v.to_vec()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        let handle = self.table.delete(cas)?;
        self.limiter.release_host(handle.charged);
        Ok(())
    }
}

impl batch::Host for CallState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, Error> {
        if keys.len() > MAX_BATCH_OPS {
            return Err(Error::Other(format!(
                "{} keys in one get-many; the limit is {MAX_BATCH_OPS}",
                keys.len()
            )));
        }
        let b = self.kv_backend()?;
        let mut out = Vec::with_capacity(keys.len());
        let mut bytes = 0usize;
        for key in keys {
            let full = self.full_key(&bucket, &key)?;
            let value = read(&b, &full).await?.map(|e| e.value);
            bytes += key.len() + value.as_ref().map_or(0, Bytes::len);
            if bytes > self.limiter.answer_budget() {
                return Err(Error::Other(format!(
                    "get-many would return more than {} bytes (a quarter of this plugin's memory limit); ask for fewer keys",
                    self.limiter.answer_budget()
                )));
            }
            out.push((key, value.map(|v| v.to_vec())));
        }
        Ok(out)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Error> {
        let mut ops = Vec::with_capacity(key_values.len());
        for (key, value) in key_values {
            let key = self.full_key(&bucket, &key)?;
            self.check_value(&value).map_err(other)?;
            ops.push(BatchOp::Put {
                key: Bytes::from(key),
                value: Bytes::from(value),
                options: PutOptions::default(),
            });
        }
        apply(&self.kv_backend()?, ops).await
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<(), Error> {
        let mut ops = Vec::with_capacity(keys.len());
        for key in keys {
            ops.push(BatchOp::Delete {
                key: Bytes::from(self.full_key(&bucket, &key)?),
                precondition: Precondition::None,
            });
        }
        apply(&self.kv_backend()?, ops).await
    }
}
