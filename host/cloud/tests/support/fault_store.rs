//! An `ObjectStore` wrapper around the real client that injects faults:
//! responses lost after the write landed (answered as a 500, or as the
//! 412 an object_store retry of the landed request gets), slow writes,
//! and hooks that run between a store's two reads. Install it with
//! `orbit_cloud::open_s3_with_hooks`.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use orbit_cloud::{TestHooks, WrapClient};
use tokio::sync::watch;

/// How a write whose request landed is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostResponse {
    /// A 500 / timeout: the client cannot tell whether it landed.
    ServerError,
    /// What object_store's retry of the landed request gets: 412
    /// (precondition failed) or "already exists".
    RetrySees412,
}

/// Shared fault settings of the wrappers of one store (its read and its
/// write client).
pub struct Faults {
    /// Every PUT waits this long first, in milliseconds.
    pub write_delay_ms: AtomicU64,
    /// The next commit writes (transaction object -> committed) land and
    /// are answered with these, in order.
    pub commit_faults: Mutex<Vec<LostResponse>>,
    /// Lose the response of every Nth commit write (0: never), alternating
    /// between the two kinds.
    pub lose_commit_every: AtomicU64,
    /// The next intent writes land and are answered with these.
    pub intent_faults: Mutex<Vec<LostResponse>>,
    /// How many responses were lost.
    pub lost_commits: AtomicU64,
    pub lost_intents: AtomicU64,
    /// Intent writes that landed.
    pub intent_writes: AtomicU64,
    /// Commit writes sent (landed ones, including those whose response
    /// was then lost).
    pub commit_writes: AtomicU64,
    /// While set, key writes after a commit was seen (the roll-forward)
    /// wait for `release`.
    pub hold_roll_forward: AtomicBool,
    /// While set, commit writes wait for `release` (a writer stuck
    /// between its intents and its commit).
    pub hold_commit: AtomicBool,
    committed_seen: AtomicBool,
    release: watch::Sender<bool>,
    /// Set to true when a `holding` key write is waiting.
    holding: watch::Sender<bool>,
    /// Set to true when a transaction object was deleted.
    txn_deleted: watch::Sender<bool>,
    /// Runs once, before the next GET of a transaction object.
    before_txn_get: Mutex<Option<BoxFuture<'static, ()>>>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            write_delay_ms: AtomicU64::new(0),
            commit_faults: Mutex::new(Vec::new()),
            lose_commit_every: AtomicU64::new(0),
            intent_faults: Mutex::new(Vec::new()),
            lost_commits: AtomicU64::new(0),
            lost_intents: AtomicU64::new(0),
            intent_writes: AtomicU64::new(0),
            commit_writes: AtomicU64::new(0),
            hold_roll_forward: AtomicBool::new(false),
            hold_commit: AtomicBool::new(false),
            committed_seen: AtomicBool::new(false),
            release: watch::channel(false).0,
            holding: watch::channel(false).0,
            txn_deleted: watch::channel(false).0,
            before_txn_get: Mutex::new(None),
        }
    }
}

impl Faults {
    /// Hooks that install wrappers sharing these faults.
    pub fn hooks(self: &Arc<Self>) -> TestHooks {
        let faults = self.clone();
        let wrap: WrapClient = Arc::new(move |inner| {
            Arc::new(FaultStore {
                inner,
                faults: faults.clone(),
            }) as Arc<dyn ObjectStore>
        });
        TestHooks {
            wrap: Some(wrap),
            ..TestHooks::default()
        }
    }

    /// Holds the roll-forward writes of the next committed batch.
    pub fn arm_hold(&self) {
        self.release.send_replace(false);
        self.holding.send_replace(false);
        self.txn_deleted.send_replace(false);
        self.committed_seen.store(false, Ordering::SeqCst);
        self.hold_roll_forward.store(true, Ordering::SeqCst);
    }

    /// Holds the next commit writes until `release`.
    pub fn arm_hold_commit(&self) {
        self.release.send_replace(false);
        self.holding.send_replace(false);
        self.hold_commit.store(true, Ordering::SeqCst);
    }

    pub async fn wait_holding(&self) {
        let mut rx = self.holding.subscribe();
        rx.wait_for(|h| *h).await.unwrap();
    }

    /// Lets the held roll-forward go on.
    pub fn release(&self) {
        self.hold_roll_forward.store(false, Ordering::SeqCst);
        self.hold_commit.store(false, Ordering::SeqCst);
        self.release.send_replace(true);
    }

    pub async fn wait_txn_deleted(&self) {
        let mut rx = self.txn_deleted.subscribe();
        rx.wait_for(|d| *d).await.unwrap();
    }

    pub fn before_next_txn_get(&self, hook: BoxFuture<'static, ()>) {
        *self.before_txn_get.lock().unwrap() = Some(hook);
    }
}

fn folder(location: &Path) -> Option<String> {
    let parts: Vec<_> = location.parts().collect();
    (parts.len() >= 2).then(|| parts[parts.len() - 2].as_ref().to_string())
}

fn contains(payload: &PutPayload, needle: &[u8]) -> bool {
    let bytes: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[derive(Debug)]
struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Faults")
    }
}

impl FaultStore {
    async fn lose(
        &self,
        kind: LostResponse,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        match kind {
            LostResponse::ServerError => Err(object_store::Error::Generic {
                store: "fault-injection",
                source: "injected: HTTP 500 after the write landed".into(),
            }),
            // The retry of the same conditional request.
            LostResponse::RetrySees412 => {
                match self.inner.put_opts(location, payload, opts).await {
                    Ok(_) => panic!("the retry of a landed conditional write succeeded"),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let delay = self.faults.write_delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let folder = folder(location);
        let is_commit =
            folder.as_deref() == Some("t") && contains(&payload, br#""state":"committed""#);
        let is_intent = folder.as_deref() == Some("k") && contains(&payload, br#""intent":{"#);
        let hold = if is_commit {
            self.faults.hold_commit.load(Ordering::SeqCst)
        } else {
            folder.as_deref() == Some("k")
                && self.faults.hold_roll_forward.load(Ordering::SeqCst)
                && self.faults.committed_seen.load(Ordering::SeqCst)
        };
        if hold {
            self.faults.holding.send_replace(true);
            let mut rx = self.faults.release.subscribe();
            rx.wait_for(|r| *r).await.unwrap();
        }
        let result = self
            .inner
            .put_opts(location, payload.clone(), opts.clone())
            .await?;
        if is_commit {
            self.faults.committed_seen.store(true, Ordering::SeqCst);
            let n = self.faults.commit_writes.fetch_add(1, Ordering::Relaxed) + 1;
            let queued = {
                let mut queue = self.faults.commit_faults.lock().unwrap();
                (!queue.is_empty()).then(|| queue.remove(0))
            };
            let every = self.faults.lose_commit_every.load(Ordering::Relaxed);
            let kind = queued.or_else(|| {
                (every > 0 && n.is_multiple_of(every)).then(|| {
                    if (n / every).is_multiple_of(2) {
                        LostResponse::ServerError
                    } else {
                        LostResponse::RetrySees412
                    }
                })
            });
            if let Some(kind) = kind {
                self.faults.lost_commits.fetch_add(1, Ordering::Relaxed);
                return self.lose(kind, location, payload, opts).await;
            }
        } else if is_intent {
            self.faults.intent_writes.fetch_add(1, Ordering::Relaxed);
            let queued = {
                let mut queue = self.faults.intent_faults.lock().unwrap();
                (!queue.is_empty()).then(|| queue.remove(0))
            };
            if let Some(kind) = queued {
                self.faults.lost_intents.fetch_add(1, Ordering::Relaxed);
                return self.lose(kind, location, payload, opts).await;
            }
        }
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if folder(location).as_deref() == Some("t") {
            let hook = self.faults.before_txn_get.lock().unwrap().take();
            if let Some(hook) = hook {
                hook.await;
            }
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let faults = self.faults.clone();
        self.inner
            .delete_stream(locations)
            .inspect(move |result| {
                if let Ok(path) = result
                    && folder(path).as_deref() == Some("t")
                {
                    faults.txn_deleted.send_replace(true);
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
