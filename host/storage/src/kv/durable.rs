//! Waiting for durability without holding a thread.
//!
//! An engine whose [`OrderedKv::try_write`](super::OrderedKv::try_write)
//! leaves the fsync for later ([`Applied::Pending`](super::Applied::Pending))
//! gets one thread per store, the syncer. Async writers ask it for a log
//! position and wait for its publication; the syncer makes the log durable up
//! to the highest position asked for (one engine group fsync) and publishes
//! it. Writers that ask while an fsync runs share the next one, so the batches
//! are the engine's group commit, with one thread waiting instead of one per
//! writer.
//!
//! A failed fsync is fatal: the syncer publishes the failure, every waiter
//! (and every later one) gets it, and the thread ends. The engine refuses
//! writes from then on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::{Inner, OrderedKv};
use crate::{StorageError, StorageResult};

/// What the syncer has made durable.
#[derive(Clone, Debug)]
enum Progress {
    /// The log is durable (and its writes visible) up to here.
    Durable(u64),
    /// An fsync failed; the message names the file and the error.
    Failed(String),
}

struct Request {
    /// The highest position anyone waits for.
    wanted: u64,
    stop: bool,
}

pub(super) struct Syncer {
    request: Mutex<Request>,
    wake: Condvar,
    published: watch::Sender<Progress>,
    /// The last position published (read without the watch's lock).
    durable: AtomicU64,
    started: OnceLock<Result<(), String>>,
}

impl Syncer {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Syncer {
            request: Mutex::new(Request {
                wanted: 0,
                stop: false,
            }),
            wake: Condvar::new(),
            published: watch::Sender::new(Progress::Durable(0)),
            durable: AtomicU64::new(0),
            started: OnceLock::new(),
        })
    }

    /// A position the syncer has already made durable.
    pub(super) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Waits until the engine's log is durable up to `position`, starting the
    /// syncer thread on first use.
    pub(super) async fn wait<E: OrderedKv>(
        self: &Arc<Self>,
        inner: &Arc<Inner<E>>,
        position: u64,
    ) -> StorageResult<()> {
        if self.durable() >= position {
            return Ok(());
        }
        self.start(inner)?;
        let mut published = self.published.subscribe();
        {
            let mut request = self.request.lock();
            if request.wanted < position {
                request.wanted = position;
                self.wake.notify_one();
            }
        }
        let progress = published
            .wait_for(|p| !matches!(p, Progress::Durable(at) if *at < position))
            .await
            .map_err(|_| StorageError::Unavailable("the syncer thread ended".into()))?;
        match &*progress {
            Progress::Durable(_) => Ok(()),
            Progress::Failed(why) => Err(StorageError::Unavailable(why.clone())),
        }
    }

    fn start<E: OrderedKv>(self: &Arc<Self>, inner: &Arc<Inner<E>>) -> StorageResult<()> {
        let started = self.started.get_or_init(|| {
            let (syncer, inner) = (self.clone(), Arc::downgrade(inner));
            std::thread::Builder::new()
                .name("orbit-kv-sync".into())
                .spawn(move || syncer.run(inner))
                .map(|_| ())
                .map_err(|e| format!("cannot start the syncer thread: {e}"))
        });
        started.clone().map_err(StorageError::Unavailable)
    }

    fn run<E: OrderedKv>(&self, inner: Weak<Inner<E>>) {
        let mut done = 0;
        loop {
            let target = {
                let mut request = self.request.lock();
                while request.wanted <= done && !request.stop {
                    self.wake.wait(&mut request);
                }
                if request.stop {
                    return;
                }
                request.wanted
            };
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let synced = inner.engine.wait_durable(target);
            drop(inner);
            match synced {
                Ok(()) => {
                    done = target;
                    self.durable.store(target, Ordering::Release);
                    self.published.send_replace(Progress::Durable(target));
                }
                Err(e) => {
                    self.published.send_replace(Progress::Failed(e.to_string()));
                    return;
                }
            }
        }
    }

    /// Ends the thread (the store is being dropped).
    pub(super) fn stop(&self) {
        self.request.lock().stop = true;
        self.wake.notify_one();
    }
}
