//! The purge lease: at most one replica purges a prefix at a time.
//!
//! Exists so that background work does not multiply by the number of
//! replicas, and so that two purgers do not race each other. The lease is
//! one object, `P/purge-lease`, holding the holder's writer id and a
//! sequence number that every renewal increments (so every write changes
//! the ETag). It is taken and renewed with conditional writes only, and no
//! two machines' wall clocks are ever compared:
//!
//! - a replica that holds the lease renews it with a write conditional on
//!   the version it wrote last; it counts itself the holder for
//!   `period / 2` after it *sent* its last successful write (measured on its
//!   own monotonic clock);
//! - a replica that does not hold it takes over (a write conditional on
//!   the version it saw) only after it has seen the lease object unchanged
//!   for `period` on its own monotonic clock, counted from the first read
//!   that returned that version, which came after that version was written.
//!
//! So a takeover completes more than `period` after the holder's last
//! successful renewal was sent, while the holder stopped acting `period / 2`
//! after sending it: two replicas never both hold the lease, as long as the
//! monotonic clocks of two machines do not run apart by half a period over
//! one period (clock *rates*, never clock values). A request sent while
//! holding the lease can still arrive after a takeover: every purge write
//! is conditional on what it read, so that costs nothing but a lost race.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, UpdateVersion};
use serde::{Deserialize, Serialize};

/// Default lease period: three times the server's default purge interval
/// (10 s), so a live holder renews well before anyone may take over.
pub const DEFAULT_LEASE_PERIOD: Duration = Duration::from_secs(30);

#[derive(Serialize, Deserialize)]
struct Body {
    holder: String,
    seq: u64,
}

#[derive(Default)]
struct State {
    /// The version we wrote last, its sequence number and when we sent it.
    held: Option<(UpdateVersion, u64, Instant)>,
    /// A version of the lease held by someone else, and when we first saw it.
    observed: Option<(UpdateVersion, u64, Instant)>,
}

/// One replica's view of the lease.
pub struct Lease {
    path: Path,
    holder: String,
    period: parking_lot::Mutex<Duration>,
    state: tokio::sync::Mutex<State>,
}

fn same(a: &UpdateVersion, b: &UpdateVersion) -> bool {
    a.e_tag == b.e_tag && a.version == b.version
}

fn race(error: &object_store::Error) -> bool {
    matches!(
        error,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
    )
}

impl Lease {
    pub fn new(path: Path, holder: String) -> Self {
        Lease {
            path,
            holder,
            period: parking_lot::Mutex::new(DEFAULT_LEASE_PERIOD),
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn set_period(&self, period: Duration) {
        *self.period.lock() = period;
    }

    pub fn period(&self) -> Duration {
        *self.period.lock()
    }

    fn body(&self, seq: u64) -> Bytes {
        Bytes::from(
            serde_json::to_vec(&Body {
                holder: self.holder.clone(),
                seq,
            })
            .unwrap_or_default(),
        )
    }

    /// Whether we may act as the holder right now (no request).
    pub async fn valid(&self) -> bool {
        let half = self.period() / 2;
        let state = self.state.lock().await;
        state
            .held
            .as_ref()
            .is_some_and(|(_, _, sent)| sent.elapsed() < half)
    }

    /// Takes or renews the lease. `Ok(true)`: we hold it for the next
    /// `period / 2`. One request when holding (the renewal), one GET when
    /// someone else holds it, two when taking it over.
    pub async fn acquire(
        &self,
        read: &Arc<dyn ObjectStore>,
        write: &Arc<dyn ObjectStore>,
    ) -> Result<bool, object_store::Error> {
        let period = self.period();
        let mut state = self.state.lock().await;
        if let Some((version, seq, _)) = state.held.take() {
            let sent = Instant::now();
            match write
                .put_opts(
                    &self.path,
                    self.body(seq + 1).into(),
                    PutMode::Update(version).into(),
                )
                .await
            {
                Ok(result) => {
                    state.held = Some((result.into(), seq + 1, sent));
                    return Ok(true);
                }
                Err(e) if race(&e) => {
                    tracing::info!(lease = %self.path, "purge lease taken over by another replica");
                }
                // Ambiguous: the renewal may have landed; we no longer know
                // our version, so we are not the holder (safe).
                Err(e) => return Err(e),
            }
        }
        let current = match read.get(&self.path).await {
            Ok(result) => {
                let version = UpdateVersion {
                    e_tag: result.meta.e_tag.clone(),
                    version: result.meta.version.clone(),
                };
                let bytes = result.bytes().await?;
                let seq = serde_json::from_slice::<Body>(&bytes).map_or(0, |b| b.seq);
                Some((version, seq))
            }
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let (mode, seq) = match current {
            None => (PutMode::Create, 0),
            Some((version, seq)) => {
                let unchanged_for = match &state.observed {
                    Some((seen, _, since)) if same(seen, &version) => since.elapsed(),
                    _ => {
                        state.observed = Some((version, seq, Instant::now()));
                        return Ok(false);
                    }
                };
                if unchanged_for < period {
                    return Ok(false);
                }
                (PutMode::Update(version), seq)
            }
        };
        let sent = Instant::now();
        match write
            .put_opts(&self.path, self.body(seq + 1).into(), mode.into())
            .await
        {
            Ok(result) => {
                tracing::info!(lease = %self.path, "took the purge lease");
                state.observed = None;
                state.held = Some((result.into(), seq + 1, sent));
                Ok(true)
            }
            Err(e) if race(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
