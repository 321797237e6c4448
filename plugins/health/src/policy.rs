//! Liveness and readiness from the host's measurements.
//!
//! Liveness fails only on what a restart can fix: a backend that has not
//! opened long after start-up (a stuck mount, a lost lease on a lock file).
//! Everything else a restart would not cure (a full disk, a failing object
//! store, a failing canary) makes the pod *not ready* instead, so Kubernetes
//! stops routing to it without killing it in a loop.

use orbit_config_syntax::{BackendKind, Setting, ValueError, parse_byte_size, parse_fraction};
use orbit_plugin_common::{Env, Raw, Tenths, TomlDoc, find, human_bytes, human_duration_us};

/// A backend still closed this long after start-up makes the pod not live.
pub const OPEN_GRACE_SECS: u64 = 60;
/// The error rate is judged only over at least this many operations.
pub const MIN_OPERATIONS: u64 = 20;

const MIN_FREE: &str = "ORBIT_HEALTH_MIN_FREE_BYTES";
const MAX_ERROR_RATE: &str = "ORBIT_HEALTH_MAX_ERROR_RATE";

/// The only variables [`evaluate`] reads.
pub const READS: [&str; 2] = [MIN_FREE, MAX_ERROR_RATE];

/// The data root (first directory of the host facts).
#[derive(Clone, Debug)]
pub struct DataRoot {
    pub path: String,
    pub free_bytes: Option<u64>,
}

/// What the host measured.
#[derive(Clone, Debug)]
pub struct Report {
    pub backend: BackendKind,
    pub backend_open: bool,
    pub canary_ok: bool,
    pub canary_latency_us: u64,
    pub canary_error: Option<String>,
    pub window_secs: u64,
    pub operations: u64,
    pub errors: u64,
    /// The most recent error, as `operation: message`.
    pub last_error: Option<String>,
    pub uptime_secs: u64,
}

/// The judgement.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub live: bool,
    pub ready: bool,
    /// `ok`, `degraded` (not ready, live) or `unavailable` (not live).
    pub status: &'static str,
    /// The failed conditions; when none failed, what was checked.
    pub reasons: Vec<String>,
}

/// A threshold and how to name it in a sentence (`ORBIT_HEALTH_MIN_FREE_BYTES`
/// or `health.min_free_bytes`).
struct Threshold<T> {
    value: T,
    name: String,
}

pub fn evaluate(
    env: &Env,
    toml: Option<&str>,
    data_root: Option<&DataRoot>,
    r: &Report,
) -> Verdict {
    let mut failed = Vec::new();
    let mut checked = Vec::new();

    let doc = match toml.map(TomlDoc::parse) {
        Some(Ok(doc)) => Some(doc),
        Some(Err(d)) => {
            failed.push(format!(
                "{}; the health thresholds cannot be read",
                d.message
            ));
            None
        }
        None => None,
    };

    let backend = r.backend.name();
    let live = r.backend_open || r.uptime_secs <= OPEN_GRACE_SECS;
    if r.backend_open {
        checked.push(format!("backend {backend} is open"));
    } else if live {
        failed.push(format!(
            "backend {backend} is not open (uptime {} s, within the {OPEN_GRACE_SECS} s start-up grace)",
            r.uptime_secs
        ));
    } else {
        failed.push(format!(
            "backend {backend} is still not open after {} s of uptime (more than {OPEN_GRACE_SECS} s); a restart may recover it",
            r.uptime_secs
        ));
    }

    let latency = human_duration_us(r.canary_latency_us);
    if r.canary_ok {
        checked.push(format!("canary write+read succeeded in {latency}"));
    } else {
        match &r.canary_error {
            Some(e) => failed.push(format!("canary write+read failed after {latency}: {e}")),
            None => failed.push(format!("canary write+read failed after {latency}")),
        }
    }

    if r.backend.is_local()
        && let Some(root) = data_root
    {
        match (
            threshold(MIN_FREE, env, doc.as_ref(), parse_byte_size),
            root.free_bytes,
        ) {
            (Err(reason), _) => failed.push(reason),
            (Ok(_), None) => checked.push(format!(
                "free space on {} is not measurable; not checked",
                root.path
            )),
            (Ok(min), Some(free)) if free < min.value => failed.push(format!(
                "free space on {} is {}, below {}={}",
                root.path,
                human_bytes(free),
                min.name,
                human_bytes(min.value)
            )),
            (Ok(min), Some(free)) => checked.push(format!(
                "free space on {} is {} (at least {}={})",
                root.path,
                human_bytes(free),
                min.name,
                human_bytes(min.value)
            )),
        }
    }

    match threshold(MAX_ERROR_RATE, env, doc.as_ref(), parse_fraction) {
        Err(reason) => failed.push(reason),
        Ok(_) if r.operations < MIN_OPERATIONS => checked.push(format!(
            "{} backend operations in the last {} s; the error rate is judged from {MIN_OPERATIONS}",
            r.operations, r.window_secs
        )),
        Ok(max) => {
            let percent = Tenths::percent(r.errors, r.operations);
            let allowed = Tenths::percent_of_fraction(max.value);
            let counts = format!(
                "{} of {} backend operations in the last {} s failed ({percent}%",
                r.errors, r.operations, r.window_secs,
            );
            if r.errors as f64 / r.operations as f64 > max.value {
                let latest = r.last_error.as_ref().map(|e| format!("; latest: {e}")).unwrap_or_default();
                failed.push(format!(
                    "{counts}), above {}={} ({allowed}%){latest}",
                    max.name, max.value,
                ));
            } else {
                checked.push(format!("{counts}, at most {allowed}% allowed by {})", max.name));
            }
        }
    }

    let ready = failed.is_empty();
    let status = if !live {
        "unavailable"
    } else if !ready {
        "degraded"
    } else {
        "ok"
    };
    Verdict {
        live,
        ready,
        status,
        reasons: if ready { checked } else { failed },
    }
}

/// Reads a threshold (environment, TOML, catalogue default). An invalid
/// value is a reason not to be ready, naming the variable and what it accepts.
fn threshold<T>(
    variable: &str,
    env: &Env,
    doc: Option<&TomlDoc<'_>>,
    parse: fn(&str) -> Result<T, ValueError>,
) -> Result<Threshold<T>, String> {
    let setting: &Setting = orbit_config_syntax::lookup(variable)
        .ok_or_else(|| format!("{variable} is missing from the settings catalogue"))?;
    let found = find(setting, env, doc);
    let name = found.source.variable(setting);
    let text = match found.raw {
        Raw::Text(t) => t,
        Raw::Unset => setting.default.to_string(),
        Raw::NotScalar(ty) => {
            let accepted = parse("").err().map(|e| e.accepted).unwrap_or_default();
            return Err(format!(
                "{name} in the TOML file is a {ty}, so readiness cannot be judged; expected {accepted}"
            ));
        }
        Raw::Withheld => {
            return Err(format!(
                "the host withheld the value of {name}, so readiness cannot be judged"
            ));
        }
    };
    match parse(&text) {
        Ok(value) => Ok(Threshold { value, name }),
        Err(e) => Err(format!(
            "{} is not valid, so readiness cannot be judged: {e}",
            found.source.show(setting, &text)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbit_plugin_common::EnvValue;

    fn healthy() -> Report {
        Report {
            backend: BackendKind::LsmTree,
            backend_open: true,
            canary_ok: true,
            canary_latency_us: 35,
            canary_error: None,
            window_secs: 60,
            operations: 100,
            errors: 1,
            last_error: None,
            uptime_secs: 600,
        }
    }

    fn root(free: u64) -> DataRoot {
        DataRoot {
            path: "/app/data".into(),
            free_bytes: Some(free),
        }
    }

    #[test]
    fn all_good_lists_what_was_checked() {
        let v = evaluate(&Env::default(), None, Some(&root(10 << 30)), &healthy());
        assert_eq!((v.live, v.ready, v.status), (true, true, "ok"));
        assert!(
            v.reasons.contains(&"backend lsm_tree is open".to_string()),
            "{:?}",
            v.reasons
        );
        assert!(
            v.reasons
                .contains(&"canary write+read succeeded in 35 us".to_string()),
            "{:?}",
            v.reasons
        );
        assert!(
            v.reasons.iter().any(|r| r.contains("10 GiB")),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn low_disk_is_degraded_with_figures() {
        let v = evaluate(&Env::default(), None, Some(&root(12 << 20)), &healthy());
        assert_eq!((v.live, v.ready, v.status), (true, false, "degraded"));
        assert_eq!(
            v.reasons,
            ["free space on /app/data is 12 MiB, below ORBIT_HEALTH_MIN_FREE_BYTES=100 MiB"]
        );
        // Cloud backends do not care about the local disk.
        let cloud = Report {
            backend: BackendKind::S3,
            ..healthy()
        };
        assert!(evaluate(&Env::default(), None, Some(&root(0)), &cloud).ready);
        // The threshold from TOML, named by its path.
        let v = evaluate(
            &Env::default(),
            Some("[health]\nmin_free_bytes = '1MiB'\n"),
            Some(&root(12 << 20)),
            &healthy(),
        );
        assert!(v.ready, "{:?}", v.reasons);
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("health.min_free_bytes=1 MiB")),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn error_rate() {
        let r = Report {
            errors: 8,
            last_error: Some("put: disk full".into()),
            ..healthy()
        };
        let v = evaluate(&Env::default(), None, None, &r);
        assert!(!v.ready);
        assert_eq!(
            v.reasons,
            [
                "8 of 100 backend operations in the last 60 s failed (8.0%), above ORBIT_HEALTH_MAX_ERROR_RATE=0.05 (5.0%); latest: put: disk full"
            ]
        );
        // Too few operations to judge.
        let r = Report {
            operations: 10,
            errors: 10,
            ..healthy()
        };
        assert!(evaluate(&Env::default(), None, None, &r).ready);
        // Nonsense counters never panic.
        let r = Report {
            operations: 20,
            errors: u64::MAX,
            ..healthy()
        };
        assert!(!evaluate(&Env::default(), None, None, &r).ready);
    }

    #[test]
    fn liveness_only_after_the_grace() {
        let starting = Report {
            backend_open: false,
            canary_ok: false,
            uptime_secs: 10,
            ..healthy()
        };
        let v = evaluate(&Env::default(), None, None, &starting);
        assert_eq!((v.live, v.ready, v.status), (true, false, "degraded"));
        let stuck = Report {
            uptime_secs: 61,
            ..starting
        };
        let v = evaluate(&Env::default(), None, None, &stuck);
        assert_eq!((v.live, v.ready, v.status), (false, false, "unavailable"));
        assert!(v.reasons[0].contains("61 s"), "{:?}", v.reasons);
    }

    #[test]
    fn bad_thresholds_make_it_not_ready() {
        let env = Env::new([(
            "ORBIT_HEALTH_MAX_ERROR_RATE".to_string(),
            EnvValue::Plain("5%".into()),
        )]);
        let v = evaluate(&env, None, None, &healthy());
        assert!(!v.ready && v.live);
        assert!(
            v.reasons[0].starts_with("ORBIT_HEALTH_MAX_ERROR_RATE=5% is not valid"),
            "{:?}",
            v.reasons
        );
        assert!(
            v.reasons[0].contains("strictly between 0 and 1"),
            "{:?}",
            v.reasons
        );
        let v = evaluate(
            &Env::default(),
            Some("[health]\nmin_free_bytes = [1]\n"),
            Some(&root(1 << 40)),
            &healthy(),
        );
        assert!(!v.ready);
        assert!(
            v.reasons[0].contains("health.min_free_bytes"),
            "{:?}",
            v.reasons
        );
        let v = evaluate(&Env::default(), Some("[health\n"), None, &healthy());
        assert!(!v.ready);
    }
}
