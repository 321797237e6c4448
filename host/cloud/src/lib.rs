//! Object-storage backends of the Orbit storage contract: Amazon S3 (and
//! S3-compatible services), Azure Blob Storage and Google Cloud Storage,
//! through `object_store` 0.14. One engine ([`CloudStorage`], module
//! `store`) serves all three; the provider modules only build clients from
//! the typed configs ([`open_s3`], [`open_azure`], [`open_gcp`], or
//! [`open`] for any cloud [`BackendConfig`]). Several `orbit-server`
//! replicas may share one bucket and prefix: the object store's conditional
//! writes are the only coordination, there is no lock service and no
//! shared counter object.
//!
//! # Layout
//! Under the configured prefix `P` (at most 128 bytes):
//! - `P/k/<name>`: one object per key. `<name>` is the key in lowercase hex
//!   for keys of up to 111 bytes ([`DIRECT_KEY_LEN`]), so object names
//!   sort exactly like keys and listing is a name-ordered scan with
//!   `list_with_offset`. Keys of 112 bytes up to
//!   [`orbit_storage::MAX_KEY_LEN`] (64 KiB, all accepted) are named
//!   `hex(first 111 bytes)-hex(sha256(key)[..16])`: such keys sharing their
//!   first 111 bytes form a group whose names sort by hash, and the lister
//!   reads a whole group and sorts it by key (correct, but a listing inside
//!   a large group costs one GET per member). A name is one path segment of
//!   at most 255 bytes (SeaweedFS's segment limit); with the prefix it stays
//!   under 1024 bytes (the S3, Azure and GCS limit). Every object holds its full key, value
//!   and metadata: `ORBK`, a format byte, a JSON header (key, version,
//!   live/tombstone, expiry, pending batch intent, the ids of the last 16
//!   operations that wrote it, write time) and the raw value bytes.
//! - `P/t/<txn>`: transaction objects of in-flight multi-key batches.
//! - `P/x/<due>.<kind><version>.<name>`: the expiry index (see "Expiry
//!   index"), empty objects named by when background work on key object
//!   `<name>` falls due.
//! - `P/purge-lease`: the purge lease (see "Purge lease").
//! - `P/probe-cas/<writer id>`: written and deleted by the start-up check
//!   of conditional writes (see "Start-up check").
//! - `P/probe`: never written; [`CloudStorage::probe`] HEADs it.
//!
//! # Compare-and-set
//! Every put and delete reads the key's object, checks the precondition
//! against the live state (expired entries and tombstones count as
//! absent), and writes the new object with `PutMode::Create` (no object
//! yet) or `PutMode::Update` on the ETag read (S3, Azure) or generation
//! (GCS). A lost race re-reads and re-checks, so an unconditional put is
//! also a CAS loop and no acknowledged write is ever overwritten by a
//! writer that did not see it.
//!
//! Ambiguous writes: a write that fails with a timeout or connection error
//! (after object_store's own retries), or whose retry reports
//! "already exists / precondition failed" because the first attempt had
//! landed, is settled by re-reading the object: each operation writes a
//! unique id (`writer id . sequence`) into the object's 16-entry history,
//! and later writers carry that history forward, so finding the id means
//! the write happened (and at which version). Not finding it means it was
//! not applied, the write is retried from a fresh read (twice at most),
//! and otherwise the error is returned. If the re-read also fails the error
//! says the outcome is unknown. Remaining gap, stated honestly: a request
//! that the service processes after the client gave up on it (and after
//! the re-read) can still land; it can only land if nobody wrote the key
//! in between, because it is conditional on the ETag it read.
//!
//! # Versions
//! A hybrid logical clock per store handle: `max(now_ms << 16, last + 1,
//! floor + 1)` where `floor` is the highest version stored in the key's
//! object (tombstones included). So versions strictly increase within a
//! process, strictly increase per key across replicas (every write reads
//! the key first, and tombstones keep the last version for
//! [`store::TOMBSTONE_GRACE_MS`]), and survive restarts. Not guaranteed
//! with many replicas: a single order of versions across *different*
//! keys written by different replicas (their clocks may differ), and no
//! ABA after a tombstone was purged if a replica's clock is behind the
//! deleting replica's by more than the time since the delete.
//!
//! # Deletes
//! A delete writes a tombstone object (conditional like any write), which
//! keeps the version and the op history. [`orbit_storage::Storage::purge_expired`]
//! removes tombstones older than 60 s ([`store::TOMBSTONE_GRACE_MS`]);
//! object_store has no conditional delete, so purge HEADs the object and
//! deletes it only if the ETag / generation is still the one it read. A
//! write that lands on a tombstone older than 60 s between that HEAD and
//! the DELETE would be lost; the window is one round trip on a key deleted
//! over a minute ago.
//!
//! # TTL
//! `expires_at` is stored in the object; get, list, preconditions and
//! stats' liveness all compare it with the local clock, so an expired
//! entry is never returned, purged or not. Purge turns expired entries into
//! tombstones with a write conditional on the ETag it read (a concurrent
//! rewrite wins); each removal is counted once.
//!
//! # Expiry index
//! Background work is found through an index kept in the bucket, never by
//! reading every key. [`CloudStorage`]'s one funnel for key-record writes,
//! `put_record`, first writes one empty object per piece of future work of
//! the record it is about to write, then the record:
//! `P/x/<due ms, 13 digits>.<kind><version, 16 hex>.<key object name>`,
//! kind `e` for a live cell with `expires_at` (due then), `g` for a
//! tombstone (due [`store::TOMBSTONE_GRACE_MS`] after it was written), `i`
//! for a batch intent (due [`store::TXN_TIMEOUT_MS`] after the batch
//! started). Names of keys longer than 111 bytes do not fit: their entry
//! ends in `h<hash>` and holds the key object name as its body. A write
//! without TTL, and not a delete, writes no entry.
//!
//! Purge lists `P/x/` from its start (names sort by due time) and stops at
//! the first entry that is not due, so an idle store costs one LIST
//! request. For each due entry it reads the key object: if the object no
//! longer holds the entry's version (rewritten since, or gone) the entry
//! is stale and is just deleted, because the newer record was written with
//! entries of its own. Otherwise it does the work: expired -> tombstone
//! (conditional), old tombstone -> HEAD-checked delete, intent -> abort the
//! batch if this store has seen it pending and unchanged for the timeout
//! (the batch protocol's rule, see `host/cloud/DESIGN.md`), then write the settled state
//! (conditional). Then it deletes the entry. A lost race or a failure keeps
//! the entry for the next pass, so nothing due is forgotten: the entry is
//! written before the record, and removed only after the work is done or
//! proved unnecessary. A crash between the entry and the record leaves a
//! stale entry, nothing worse. One pass handles at most 10 000 entries
//! (the next pass goes on).
//!
//! Records written by versions of this crate that predate the index have
//! no entries. The first lease holder to purge a prefix without the marker
//! `P/index-complete` scans every record once, writes the entries those
//! records need, then the marker (idempotent; a holder that dies half-way
//! is followed by one that starts over); after that no pass scans. The
//! start-up check marks a prefix with no key object complete at once. Not
//! covered: replicas of an older version still writing (a rolling upgrade)
//! after the scan; deleting the marker once they are gone scans again.
//!
//! Transaction objects: purge deletes a finished transaction object older
//! than [`store::TXN_RETENTION_MS`] only once the index holds no intent
//! entry due earlier than its commit time plus the transaction timeout and
//! a 5-minute clock margin: every intent of it has been settled. It no
//! longer reads key objects to find intents that name a transaction.
//!
//! # Purge lease
//! Only one replica purges a prefix at a time: the holder of
//! `P/purge-lease` (its writer id and a sequence number that each renewal
//! increments, so every write changes the ETag). Each `purge_expired`
//! call renews it with a write conditional on the version the holder wrote
//! last; a replica that does not hold it reads it (one GET) and returns 0,
//! and takes it over (a conditional write) only after it has seen the same
//! version for the lease period ([`DEFAULT_LEASE_PERIOD`], 30 s; three
//! purge intervals of the server's default) on its own monotonic clock.
//! The holder acts for half a period after it *sent* its last successful
//! renewal, checking before each chunk of work. No two machines' wall
//! clocks are compared; the assumption is only that monotonic clocks of
//! two machines run at rates within 50 % of each other. A purge request
//! sent by a holder that then stalls can still land after a takeover: every
//! purge write is conditional on what it read, so that is a lost race, not
//! a lost write. A holder that dies is replaced after one lease period
//! plus one purge interval.
//!
//! # Batches
//! Truly atomic, with a commit record; specified in `host/cloud/DESIGN.md`
//! (module `batch`). The batch reads its keys, applies its operations to
//! a model, creates `P/t/<txn>` as `pending`, writes each key's object with
//! an *intent* (the planned state next to the committed one; 32 at a time,
//! each conditional on the ETag read), and commits with one conditional
//! update of the transaction object to `committed`; then the intents are
//! rolled forward and the transaction object is deleted. Readers that meet
//! an intent read its transaction object: committed -> the planned state,
//! pending or aborted -> the old state, gone -> re-read the key.
//! - Lease: while it writes intents the writer renews its transaction
//!   object every `timeout / 5`. Another writer aborts a pending
//!   transaction only after seeing its object unchanged (same ETag /
//!   generation) for [`store::TXN_TIMEOUT_MS`] on its own monotonic clock,
//!   so wall-clock skew never aborts a live batch.
//! - Ambiguity: a failed or 412-answered write of the protocol is settled
//!   by reading back (the transaction object for the commit, the key for
//!   an intent); a batch that may have committed is never run again, and
//!   when the read-back fails too the error says the outcome is unknown.
//! - Not guaranteed: a writer paused longer than the timeout may be
//!   aborted (it then rolls back and retries); no fairness between batches.
//!
//! Cost: reads, then `3 + 3n` writes for `n` keys (plus renewals): each
//! intent first writes its expiry-index entry. Single-operation batches are
//! plain writes. Purge finds intents through the expiry index (see "Expiry
//! index"), settles those of finished batches, aborts abandoned ones under
//! the same rule, and deletes finished transaction objects once no
//! unsettled intent can name them and they are older than
//! [`store::TXN_RETENTION_MS`]. `tests/replicas.rs` SIGKILLs a batch writer;
//! `tests/batches.rs` injects lost responses, slow writes, clock skew and
//! vanished transactions through an `ObjectStore` wrapper.
//!
//! # Start-up check
//! object_store's `PutMode::Create` / `PutMode::Update` become
//! `If-None-Match: *` / `If-Match` (S3, Azure) or generation matches
//! (GCS). A store that ignores them (older MinIO, some gateways) accepts
//! every write and silently loses updates. [`open_checked`] (what
//! `orbit_backends::open`, and so the server, uses) runs
//! [`CloudStorage::check_conditional_writes`] before anything else: on
//! `P/probe-cas/<writer id>` a create over an existing object must fail, an
//! update on the current version must succeed and change the version, and
//! one on a stale version must fail; the probe object is deleted. If not,
//! opening fails with `Invalid`, naming the provider, the endpoint, the
//! probe object, what was tested and what happened; the server does not
//! start. A store that does not answer is retried for 30 s
//! ([`OPEN_CHECK_DEADLINE`]), then fails the start too (it used to be
//! found later by the health canary). Five requests. Passing it proves the
//! behaviour at start-up, not that a gateway keeps honouring it.
//!
//! # Costs and limits
//! - get: 1 GET (+1 if an intent is pending); put/delete: 1 GET + 1 PUT,
//!   +1 PUT of an index entry for a put with TTL and for every delete.
//! - list: LIST pages + 1 GET per returned entry (16 at a time). On Azure
//!   `list_with_offset` filters client-side, so deep cursors re-list. A
//!   listing needs the GETs even without values: liveness (TTL, tombstone,
//!   pending intent) is in the object body, and a listed object is only a
//!   name, size, ETag / version and time (object_store's `ObjectMeta`; S3's
//!   ListObjectsV2 returns no user metadata or tags at all), so a listing
//!   from names alone could return deleted or expired keys. Not done.
//! - the health canary (a put with TTL and a delete per readiness check)
//!   writes two index entries and later costs purge about 6 requests.
//! - purge, per call and replica: holder 1 PUT (lease renewal) + 1 LIST of
//!   the index + 1 LIST of `P/t/` (+ per in-flight transaction 1 GET);
//!   others 1 GET. Plus, per key that falls due: expiry 1 GET + 2 PUT +
//!   1 DELETE, tombstone 1 GET + 1 HEAD + 2 DELETE; a stale entry 1 GET +
//!   1 DELETE. An idle store of N keys therefore costs a constant number
//!   of requests per purge interval, whatever N: `cloud-idle-bench`
//!   measures it (figures, command and date in `host/bench/README.md`).
//! - `health_stats` (readiness, `/metrics`): no request. Counting keys
//!   would read every object and replicas keep no shared counter, so it
//!   reports `sizes_known: false`: `/health/ready` shows `keys` and
//!   `bytes` as null, the key and byte gauges of `/metrics` are not set,
//!   and the health plugin sees 0 live keys. The request counters
//!   ([`CloudStorage::remote_stats`]) are live.
//! - `stats` is exact and reads every object (O(keys) requests); the
//!   server never calls it.
//!
//! # Settings
//! See `options` for how connection / read / write timeouts and retry
//! counts map onto object_store, and each provider module for its
//! settings. Secrets are resolved once at open through
//! [`orbit_storage::SecretRef::resolve`], never logged, and scrubbed from
//! every error message; `Debug` of a store prints no secret.
//!
//! # What was tested
//! S3 against SeaweedFS 4.48 (`weed mini`, credentials enforced), Azure
//! against Azurite 3.35, GCS against the small XML-API server in
//! `orbit-test-support` (`host/test-support/src/gcs.rs`), which honours `x-goog-if-generation-match` the
//! way object_store uses it. GCS was not checked against Google.

mod azure;
mod batch;
mod clock;
mod expiry;
mod gcp;
mod hooks;
mod layout;
mod lease;
mod options;
mod provider;
mod purge;
mod remote;
mod s3;
pub mod store;

use std::sync::Arc;

pub use azure::open_azure;
pub use gcp::open_gcp;
#[doc(hidden)]
pub use hooks::{TestHooks, WrapClient};
pub use layout::{DIRECT_KEY_LEN, MAX_PREFIX_LEN};
pub use lease::DEFAULT_LEASE_PERIOD;
pub use s3::open_s3;
#[doc(hidden)]
pub use s3::{open_s3_with_hooks, open_s3_wrapped};
pub use store::CloudStorage;

use orbit_storage::{BackendConfig, Storage, StorageError};

/// Opens the cloud backend `config` names; `Invalid` for a local backend.
/// Sends no request (see [`open_checked`]).
pub fn open(config: &BackendConfig) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(open_concrete(config)?)
}

/// How long [`open_checked`] keeps trying a store that does not answer.
pub const OPEN_CHECK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the cloud backend `config` names and proves that the store
/// honours conditional writes ([`CloudStorage::check_conditional_writes`],
/// five requests): the server's start-up path. Fails at once, naming the
/// provider, the endpoint and what failed, if the store ignores
/// preconditions; a store that cannot be reached (or refuses the
/// credentials) is retried every second for [`OPEN_CHECK_DEADLINE`], then
/// its last error is returned.
pub async fn open_checked(config: &BackendConfig) -> Result<Arc<dyn Storage>, StorageError> {
    let store = open_concrete(config)?;
    let started = std::time::Instant::now();
    loop {
        match store.check_conditional_writes().await {
            Ok(()) => return Ok(store),
            Err(StorageError::Unavailable(reason)) if started.elapsed() < OPEN_CHECK_DEADLINE => {
                tracing::warn!(%reason, "object store not answering at start-up; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn open_concrete(config: &BackendConfig) -> Result<Arc<CloudStorage>, StorageError> {
    Ok(match config {
        BackendConfig::S3(c) => open_s3(c)?,
        BackendConfig::Azure(c) => open_azure(c)?,
        BackendConfig::Gcp(c) => open_gcp(c)?,
        other => {
            return Err(StorageError::Invalid(format!(
                "orbit-cloud does not serve the {:?} backend",
                other.kind()
            )));
        }
    })
}
