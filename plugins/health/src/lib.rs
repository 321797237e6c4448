//! The default health policy (WIT world `health-policy`).
//!
//! The host measures (backend open, canary write+read, error counters, free
//! space) and this plugin judges: live, ready, a one-word status and one
//! sentence per reason. The world imports the key-value `store` so a custom
//! policy could, say, honour a maintenance switch; this one does not need it.
//! The logic lives in [`policy`] as plain Rust; this file converts WIT types.

mod policy;

wit_bindgen::generate!({
    path: "../../wit",
    world: "health-policy",
});

orbit_plugin_common::wit_glue!();

use exports::orbit::storage::health::Guest;
use orbit::storage::types::{DeploymentContext, HealthReport, HealthStatus, HealthVerdict};

struct Health;

impl Guest for Health {
    fn evaluate(context: DeploymentContext, report: HealthReport) -> HealthVerdict {
        // Only the variables the policy reads are copied out of the context.
        let read: Vec<_> = context
            .env
            .into_iter()
            .filter(|v| policy::READS.contains(&v.name.as_str()))
            .collect();
        let env = glue::env(&read);
        let data_root = context
            .facts
            .dirs
            .into_iter()
            .next()
            .map(|d| policy::DataRoot {
                path: d.path,
                free_bytes: d.free_bytes,
            });
        let last_error = report.recent_errors.iter().max_by_key(|e| e.unix_ms);
        let input = policy::Report {
            backend: glue::kind(report.backend),
            backend_open: report.backend_open,
            canary_ok: report.canary.ok,
            canary_latency_us: report.canary.latency_us,
            canary_error: report.canary.error,
            window_secs: report.window_secs,
            operations: report.operations,
            errors: report.errors,
            last_error: last_error.map(|e| format!("{}: {}", e.operation, e.message)),
            uptime_secs: report.uptime_secs,
        };
        let verdict = policy::evaluate(&env, context.toml.as_deref(), data_root.as_ref(), &input);
        HealthVerdict {
            live: verdict.live,
            ready: verdict.ready,
            // The policy's one-word status follows from the two flags.
            status: match (verdict.live, verdict.ready) {
                (false, _) => HealthStatus::Unavailable,
                (true, false) => HealthStatus::Degraded,
                (true, true) => HealthStatus::Ok,
            },
            reasons: verdict.reasons,
        }
    }
}

export!(Health);
