//! Hot reload of the health plugin.
//!
//! The configured file is polled (`ORBIT_PLUGIN_RELOAD_INTERVAL`). Polling
//! `stat` through the path, rather than watching inotify events, also sees a
//! Kubernetes ConfigMap update, which swaps a `..data` symlink and never
//! writes the file itself. A changed file is loaded like at start-up (digest
//! pin, world and version check, link), given a trial call on the current
//! health report, and only then swapped in; calls in flight finish on the old
//! version. A replacement that fails any step is refused with a logged
//! reason, counted in `orbit_plugin_reloads_total{outcome="refused"}` and
//! shown in `/health/ready`; the previous version keeps answering.
//!
//! The selector and the translator run once, at start-up: a new version of
//! either takes effect at the next start.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orbit_plugin_runtime::{PluginRuntime, PluginSpec};
use tokio::sync::watch;

use crate::health::HealthService;
use crate::metrics::{Metrics, ReloadLabels};

/// What identifies one version of a file on disk, following symlinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

fn stamp(path: &PathBuf) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

/// Polls `spec`'s file every `every` until `stop` changes.
pub async fn watch_health_plugin(
    runtime: Arc<PluginRuntime>,
    spec: PluginSpec,
    path: PathBuf,
    health: Arc<HealthService>,
    metrics: Arc<Metrics>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // With a public key configured, a new signature is a new version too
    // (a ConfigMap update swaps both files at once).
    let sig_path = spec
        .public_key
        .map(|_| orbit_plugin_runtime::signature::signature_path(&path));
    let stamps = || -> std::io::Result<(Stamp, Option<Stamp>)> {
        let sig = match &sig_path {
            Some(p) => stamp(p).ok(),
            None => None,
        };
        Ok((stamp(&path)?, sig))
    };
    let mut last = stamps().ok();
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return,
        }
        let now = match stamps() {
            Ok(s) => s,
            Err(e) => {
                // Mid-swap or removed: keep serving the loaded version.
                if last.is_some() {
                    tracing::warn!(path = %path.display(), error = %e, "health plugin file unreadable; keeping the loaded version");
                    last = None;
                }
                continue;
            }
        };
        if last == Some(now) {
            continue;
        }
        last = Some(now);
        let outcome = reload(&runtime, &spec, &health, &metrics).await;
        let label = match &outcome {
            Ok(true) => "ok",
            Ok(false) => continue,
            Err(_) => "refused",
        };
        metrics
            .plugin_reloads
            .get_or_create(&ReloadLabels {
                role: "health".into(),
                outcome: label.into(),
            })
            .inc();
        if let Err(reason) = outcome {
            tracing::warn!(path = %path.display(), %reason, "new health plugin refused; the previous version keeps serving");
            health.refused(reason);
        }
    }
}

/// `Ok(true)` if a new version was swapped in, `Ok(false)` if the file holds
/// the version already in service.
async fn reload(
    runtime: &Arc<PluginRuntime>,
    spec: &PluginSpec,
    health: &HealthService,
    metrics: &Metrics,
) -> Result<bool, String> {
    let (rt, sp) = (runtime.clone(), spec.clone());
    let plugin = tokio::task::spawn_blocking(move || rt.load_health(&sp))
        .await
        .map_err(|e| format!("loading panicked: {e}"))?
        .map_err(|e| e.to_string())?;
    if plugin.info().sha256 == health.plugin_sha256() {
        return Ok(false);
    }
    health
        .trial(&plugin)
        .await
        .map_err(|e| format!("trial call failed: {e}"))?;
    crate::bootstrap::log_loaded(plugin.info());
    metrics.plugin_loaded(plugin.info());
    tracing::info!(sha256 = %plugin.info().sha256, "health plugin reloaded");
    metrics.plugin_in_service(plugin.info());
    health.swap(plugin).await;
    Ok(true)
}
