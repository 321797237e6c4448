//! Watching plugin files.
//!
//! Each configured plugin file is polled (`ORBIT_PLUGIN_RELOAD_INTERVAL`).
//! Polling `stat` through the path, rather than watching inotify events, also
//! sees a Kubernetes ConfigMap update, which swaps a `..data` symlink and
//! never writes the file itself. With a public key configured, a new
//! signature file is a new version too.
//!
//! - **Health:** a changed file is loaded like at start-up (digest pin,
//!   signature, world and version check, link), given a trial call on the
//!   current health report, and only then swapped in; calls in flight finish
//!   on the old version.
//! - **Selector and translator:** they run once, at start-up, so a changed
//!   file is loaded and checked the same way and then asked what the next
//!   start would do with it (see `policy`); it is reported as pending.
//!
//! A replacement that fails any step is refused with a logged reason, counted
//! in `orbit_plugin_reloads_total{outcome="refused"}` and shown in
//! `/health/ready`; the previous version keeps answering.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orbit_plugin_runtime::{PluginRuntime, PluginSpec, Role};
use tokio::sync::watch;

use crate::health::HealthService;
use crate::metrics::{Metrics, ReloadLabels};
use crate::policy::PolicyPlugins;

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

/// What a changed file is for.
pub enum Target {
    Health(Arc<HealthService>),
    Policy(Arc<PolicyPlugins>),
}

/// Polls `path` (the plugin file of `role`) every `every` until `stop`
/// changes, and judges each new version.
#[allow(clippy::too_many_arguments)]
pub async fn watch_plugin_file(
    role: Role,
    runtime: Arc<PluginRuntime>,
    spec: PluginSpec,
    path: PathBuf,
    target: Target,
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
                    tracing::warn!(%role, path = %path.display(), error = %e, "plugin file unreadable; keeping the loaded version");
                    last = None;
                }
                continue;
            }
        };
        if last == Some(now) {
            continue;
        }
        last = Some(now);
        let outcome = match &target {
            Target::Health(health) => reload(&runtime, &spec, health, &metrics)
                .await
                .map(|swapped| swapped.then_some("ok")),
            Target::Policy(policy) => policy
                .changed(role, &runtime, &spec, &metrics)
                .await
                .map(|pending| {
                    pending.map(|next_start| {
                        tracing::warn!(%role, path = %path.display(), %next_start, "plugin file changed; it applies at the next start");
                        "pending_restart"
                    })
                }),
        };
        let label = match &outcome {
            Ok(Some(label)) => label,
            Ok(None) => continue,
            Err(_) => "refused",
        };
        metrics
            .plugin_reloads
            .get_or_create(&ReloadLabels {
                role: role.name().into(),
                outcome: (*label).into(),
            })
            .inc();
        if let Err(reason) = outcome {
            tracing::warn!(%role, path = %path.display(), %reason, "new plugin version refused; the previous version stays");
            match &target {
                Target::Health(health) => health.refused(reason),
                Target::Policy(policy) => policy.refused(role, reason),
            }
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
