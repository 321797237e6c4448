//! The reconcile loop: one `OrbitCluster` in, the API requests that bring
//! its objects in line out. See `DESIGN.md` for the rules; in short:
//!
//! 1. A resource being deleted is left to garbage collection (every object
//!    carries an owner reference): no request.
//! 2. The translator (embedded, or the one the resource names in its plugins
//!    ConfigMap) checks the resource and renders the variables. A diagnostic
//!    error sets `Ready=False`/`InvalidConfiguration` and an Event; nothing
//!    else is written.
//! 3. Refusals (several independent local replicas without the opt-in, an
//!    `existingClaim` shared by several pods or set after the fact, an update
//!    strategy of the other workload kind, a switch between a local and a
//!    cloud backend, a new storage class, a smaller volume) set
//!    `Degraded=True` with what to do; nothing else is written.
//! 4. A larger `storage.size` grows every PVC, then deletes the StatefulSet
//!    with `propagationPolicy: Orphan` (its pods and volumes stay) so the
//!    apply below re-creates it with the new claim template.
//! 5. Every rendered object is server-side applied (field manager
//!    `orbit-operator`, forced) unless the live object already carries the
//!    same applied-hash annotation: an unchanged resource costs reads only.
//!    An optional object the spec no longer asks for (PDB, ServiceMonitor,
//!    PrometheusRule, NetworkPolicy) is deleted if this cluster owns it.
//! 6. The status (observedGeneration, conditions, backend, workload kind,
//!    replicas) is patched only when it differs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, PersistentVolumeClaim, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PropagationPolicy,
};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value as Json, json};

use crate::crd::{Condition, OrbitCluster, OrbitClusterStatus};
use crate::render::{self, APPLIED_HASH, Inputs, MANAGER};
use crate::translate::{ResolveError, Translators};

/// Errors that requeue the resource with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Translator(String),
    #[error("the resource has no {0}")]
    Missing(&'static str),
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub translators: Arc<Translators>,
    pub default_tag: String,
    pub reporter: Reporter,
    /// Consecutive failures per resource (namespace/name), for backoff.
    pub failures: Mutex<BTreeMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, translators: Arc<Translators>, default_tag: String) -> Self {
        Context {
            client,
            translators,
            default_tag,
            reporter: Reporter {
                controller: MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
            failures: Mutex::new(BTreeMap::new()),
        }
    }
}

/// Requeue after success: a periodic check besides the watches.
pub const RESYNC: Duration = Duration::from_secs(300);

/// The backoff after `n` consecutive failures: 5 s doubling, at most 5 min.
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << n.min(6));
    Duration::from_secs(secs.min(300))
}

/// Called by the controller when [`reconcile`] fails.
pub fn error_policy(cluster: Arc<OrbitCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key(&cluster);
    let n = {
        let mut f = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(key.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let wait = backoff(n - 1);
    tracing::warn!(cluster = %key, failures = n, retry_in_s = wait.as_secs(), "reconcile failed: {error}");
    Action::requeue(wait)
}

fn key(c: &OrbitCluster) -> String {
    format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any())
}

fn gvk_plural(kind: &str) -> Option<(GroupVersionKind, &'static str)> {
    let (g, v, plural) = match kind {
        "ConfigMap" => ("", "v1", "configmaps"),
        "Service" => ("", "v1", "services"),
        "ServiceAccount" => ("", "v1", "serviceaccounts"),
        "StatefulSet" => ("apps", "v1", "statefulsets"),
        "Deployment" => ("apps", "v1", "deployments"),
        "PodDisruptionBudget" => ("policy", "v1", "poddisruptionbudgets"),
        "ServiceMonitor" => ("monitoring.coreos.com", "v1", "servicemonitors"),
        "PrometheusRule" => ("monitoring.coreos.com", "v1", "prometheusrules"),
        "NetworkPolicy" => ("networking.k8s.io", "v1", "networkpolicies"),
        _ => return None,
    };
    Some((GroupVersionKind::gvk(g, v, kind), plural))
}

fn dynamic_api(client: &Client, ns: &str, kind: &str) -> Option<Api<DynamicObject>> {
    let (gvk, plural) = gvk_plural(kind)?;
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    Some(Api::namespaced_with(client.clone(), ns, &ar))
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: None,
        observed_generation: generation,
    }
}

/// The outcome of one reconcile, written to the status.
struct Outcome {
    ready: Condition,
    progressing: Condition,
    degraded: Condition,
    backend: Option<String>,
    workload_kind: Option<String>,
    storage_class: Option<String>,
    replicas: Option<i32>,
    ready_replicas: Option<i32>,
}

/// A refusal or an invalid configuration: conditions say why, nothing is applied.
fn refused(c: &OrbitCluster, reason: &str, message: &str, invalid: bool) -> Outcome {
    let g = c.metadata.generation;
    let old = c.status.clone().unwrap_or_default();
    Outcome {
        ready: condition("Ready", false, reason, message, g),
        progressing: condition(
            "Progressing",
            false,
            reason,
            "nothing is rolled out until the resource is fixed",
            g,
        ),
        degraded: if invalid {
            condition("Degraded", false, "AsExpected", "", g)
        } else {
            condition("Degraded", true, reason, message, g)
        },
        backend: old.backend,
        workload_kind: old.workload_kind,
        storage_class: old.storage_class,
        replicas: old.replicas,
        ready_replicas: old.ready_replicas,
    }
}

/// Reconciles one resource.
pub async fn reconcile(cluster: Arc<OrbitCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    if cluster.metadata.deletion_timestamp.is_some() {
        // Owner references: garbage collection removes what we created;
        // PVCs follow the StatefulSet's retention policy.
        return Ok(Action::await_change());
    }
    let ns = cluster.namespace().ok_or(Error::Missing("namespace"))?;
    let client = &ctx.client;
    let generation = cluster.metadata.generation;

    // Custom plugins: read the ConfigMap (bytes for the translator, and a
    // checksum that rolls the pods when it changes).
    let mut plugins_checksum = None;
    let mut custom: Option<(Vec<u8>, Option<String>)> = None;
    if let Some(cm_name) = render::plugins_config_map(&cluster) {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        match cms.get_opt(&cm_name).await? {
            None => {
                let msg = format!(
                    "spec.plugins.configMap names the ConfigMap {cm_name}, which does not exist in {ns}"
                );
                return refuse(
                    &cluster,
                    &ctx,
                    "PluginsNotFound",
                    msg,
                    true,
                    Action::requeue(Duration::from_secs(60)),
                )
                .await;
            }
            Some(cm) => {
                let data = cm.binary_data.clone().unwrap_or_default();
                let mut hasher_input = Vec::new();
                for (k, v) in &data {
                    hasher_input.extend_from_slice(k.as_bytes());
                    hasher_input.push(0);
                    hasher_input.extend_from_slice(&v.0);
                }
                plugins_checksum = Some(sha256_hex(&hasher_input));
                if let Some(t) = cluster
                    .spec
                    .plugins
                    .as_ref()
                    .and_then(|p| p.translator.as_ref())
                {
                    match data.get(&t.file) {
                        Some(bytes) => custom = Some((bytes.0.clone(), t.sha256.clone())),
                        None => {
                            let msg = format!(
                                "spec.plugins.translator.file is {:?}, but the ConfigMap {cm_name} has no such key in binaryData",
                                t.file
                            );
                            return refuse(
                                &cluster,
                                &ctx,
                                "InvalidConfiguration",
                                msg,
                                true,
                                Action::await_change(),
                            )
                            .await;
                        }
                    }
                }
            }
        }
    }

    let resolved = match ctx
        .translators
        .resolve(
            &cluster,
            custom.as_ref().map(|(b, p)| (b.as_slice(), p.as_deref())),
        )
        .await
    {
        Ok(r) => r,
        Err(ResolveError::Invalid(diags)) => {
            let msg = diags.join("; ");
            return refuse(
                &cluster,
                &ctx,
                "InvalidConfiguration",
                msg,
                true,
                Action::await_change(),
            )
            .await;
        }
        Err(ResolveError::Plugin(e)) => return Err(Error::Translator(e)),
    };
    let kind = resolved.backend;
    let wanted_kind = render::workload_kind(kind);

    if let Some((reason, msg)) = render::refusal(&cluster, kind) {
        return refuse(&cluster, &ctx, reason, msg, false, Action::await_change()).await;
    }
    let old = cluster.status.clone().unwrap_or_default();
    if let (Some(was), Some(was_backend)) = (&old.workload_kind, &old.backend)
        && was != wanted_kind
    {
        let msg = format!(
            "spec.persistence.backend changed from {was_backend} ({was}) to {kind} ({wanted_kind}): a switch between a local and a cloud backend is not done in place, as the data would not move. Set spec.persistence.backend back to {was_backend}, or create a new OrbitCluster with the {kind} backend, copy the data, then delete this one."
        );
        return refuse(
            &cluster,
            &ctx,
            "BackendSwitchRefused",
            msg,
            false,
            Action::await_change(),
        )
        .await;
    }
    let class = render::storage_class(&cluster);
    if kind.is_local()
        && old.workload_kind.as_deref() == Some("StatefulSet")
        && old.storage_class != class
    {
        let msg = format!(
            "spec.storage.storageClass changed from {} to {}: existing volumes cannot change class. Set it back, or create a new OrbitCluster with the new class and copy the data.",
            old.storage_class.as_deref().unwrap_or("(cluster default)"),
            class.as_deref().unwrap_or("(cluster default)")
        );
        return refuse(
            &cluster,
            &ctx,
            "StorageClassChangeRefused",
            msg,
            false,
            Action::await_change(),
        )
        .await;
    }

    // The Secret's checksum rolls the pods when credentials change.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret_checksum = secrets
        .get_opt(&render::secret_name(&cluster))
        .await?
        .map(|s| {
            let mut input = Vec::new();
            for (k, v) in s.data.unwrap_or_default() {
                input.extend_from_slice(k.as_bytes());
                input.push(0);
                input.extend_from_slice(&v.0);
            }
            sha256_hex(&input)
        });
    let inputs = Inputs {
        default_tag: ctx.default_tag.clone(),
        secret_checksum,
        plugins_checksum,
    };
    let rendered = render::render(&cluster, &resolved, &inputs);
    let name = cluster.name_any();
    let mut event = None;

    // Volume growth: the StatefulSet's claim template is immutable.
    let mut live_workload = None;
    if let Some(api) = dynamic_api(client, &ns, wanted_kind) {
        live_workload = api.get_opt(&name).await?;
    }
    if kind.is_local()
        && let Some(live) = &live_workload
        && live.data["spec"]["volumeClaimTemplates"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
            != render::existing_claim(&cluster).is_none()
    {
        let msg = "spec.storage.existingClaim was set or removed after the StatefulSet was created: its volume claim templates cannot change. Set it back, or create a new OrbitCluster and copy the data.".to_string();
        return refuse(
            &cluster,
            &ctx,
            "ClaimChangeRefused",
            msg,
            false,
            Action::await_change(),
        )
        .await;
    }
    if kind.is_local()
        && let Some(live) = &live_workload
    {
        let live_size = live.data["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
            .as_str()
            .map(str::to_string);
        let want = render::storage_size(&cluster);
        if let Some(live_size) = live_size
            && live_size != want
        {
            match (parse_quantity(&live_size), parse_quantity(&want)) {
                (Some(a), Some(b)) if b > a => {
                    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
                    let lp = ListParams::default().labels(&render::selector_string(&cluster));
                    for pvc in pvcs.list(&lp).await?.items {
                        let patch = json!({"spec": {"resources": {"requests": {"storage": want}}}});
                        pvcs.patch(
                            &pvc.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await?;
                    }
                    let api = dynamic_api(client, &ns, "StatefulSet")
                        .ok_or(Error::Missing("StatefulSet API"))?;
                    let dp = DeleteParams {
                        propagation_policy: Some(PropagationPolicy::Orphan),
                        ..DeleteParams::default()
                    };
                    api.delete(&name, &dp).await?;
                    live_workload = None;
                    event = Some((
                        "VolumesExpanding",
                        format!(
                            "storage.size {live_size} -> {want}: the PersistentVolumeClaims were grown and the StatefulSet re-created around its running pods (their data stays)"
                        ),
                    ));
                }
                _ => {
                    let msg = format!(
                        "spec.storage.size is {want} but the volumes are {live_size}: a volume cannot shrink. Set spec.storage.size back to {live_size} or more."
                    );
                    return refuse(
                        &cluster,
                        &ctx,
                        "VolumeShrinkRefused",
                        msg,
                        false,
                        Action::await_change(),
                    )
                    .await;
                }
            }
        }
    }

    // Server-side apply of what changed.
    let pp = PatchParams::apply(MANAGER).force();
    for obj in &rendered.objects {
        let kind_name = obj["kind"].as_str().unwrap_or_default();
        let obj_name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let Some(api) = dynamic_api(client, &ns, kind_name) else {
            continue;
        };
        let live = if kind_name == wanted_kind && obj_name == name {
            live_workload.clone()
        } else {
            api.get_opt(obj_name).await?
        };
        let want_hash = &obj["metadata"]["annotations"][APPLIED_HASH];
        let live_hash = live
            .as_ref()
            .and_then(|l| l.annotations().get(APPLIED_HASH).cloned());
        if live_hash.as_deref() == want_hash.as_str() {
            continue;
        }
        let applied = api.patch(obj_name, &pp, &Patch::Apply(obj)).await?;
        if kind_name == wanted_kind {
            live_workload = Some(applied);
        }
    }
    // An optional object switched off in the spec: delete the one this
    // cluster owns (garbage collection only acts when the cluster goes).
    let uid = cluster.uid().unwrap_or_default();
    for kind_name in render::OPTIONAL_KINDS {
        if rendered.find(kind_name, &name).is_some() {
            continue;
        }
        let Some(api) = dynamic_api(client, &ns, kind_name) else {
            continue;
        };
        let owned = api.get_opt(&name).await?.is_some_and(|o| {
            o.owner_references()
                .iter()
                .any(|r| r.controller == Some(true) && r.uid == uid)
        });
        if owned {
            api.delete(&name, &DeleteParams::default()).await?;
        }
    }

    let replicas = cluster.spec.replicas();
    let st = live_workload
        .as_ref()
        .map(|w| w.data["status"].clone())
        .unwrap_or(Json::Null);
    let ready_replicas = st["readyReplicas"].as_i64().unwrap_or(0) as i32;
    let updated = st["updatedReplicas"].as_i64().unwrap_or(0) as i32;
    let observed = st["observedGeneration"].as_i64();
    let live_gen = live_workload.as_ref().and_then(|w| w.metadata.generation);
    let rolled_out = observed.is_some() && observed == live_gen && updated >= replicas;
    let ready = ready_replicas >= replicas;
    let out = Outcome {
        ready: if ready {
            condition(
                "Ready",
                true,
                "Available",
                &format!("{ready_replicas}/{replicas} pods ready"),
                generation,
            )
        } else {
            condition(
                "Ready",
                false,
                "PodsNotReady",
                &format!("{ready_replicas}/{replicas} pods ready"),
                generation,
            )
        },
        progressing: if rolled_out && ready {
            condition(
                "Progressing",
                false,
                "RolloutComplete",
                &format!("the {wanted_kind} runs the current configuration"),
                generation,
            )
        } else {
            condition(
                "Progressing",
                true,
                "RollingOut",
                &format!("the {wanted_kind} is rolling out the current configuration"),
                generation,
            )
        },
        degraded: if resolved.warnings.is_empty() {
            condition("Degraded", false, "AsExpected", "", generation)
        } else {
            condition(
                "Degraded",
                false,
                "ConfigurationWarnings",
                &resolved.warnings.join("; "),
                generation,
            )
        },
        backend: Some(kind.name().into()),
        workload_kind: Some(wanted_kind.into()),
        storage_class: if kind.is_local() { class } else { None },
        replicas: Some(replicas),
        ready_replicas: Some(ready_replicas),
    };
    let action = if ready && rolled_out {
        Action::requeue(RESYNC)
    } else {
        Action::requeue(Duration::from_secs(30))
    };
    finish(&cluster, &ctx, out, event, action).await
}

/// Writes the status if it changed, publishes `event` (reason, message)
/// when the Ready condition changes or an action was taken, and resets the
/// failure count.
/// Refuses the resource: [`refused`]'s conditions, an Event with `msg`,
/// then `action`.
async fn refuse(
    cluster: &OrbitCluster,
    ctx: &Context,
    reason: &str,
    msg: String,
    invalid: bool,
    action: Action,
) -> Result<Action, Error> {
    let out = refused(cluster, reason, &msg, invalid);
    finish(cluster, ctx, out, Some((reason, msg)), action).await
}

async fn finish(
    cluster: &OrbitCluster,
    ctx: &Context,
    out: Outcome,
    event: Option<(&str, String)>,
    action: Action,
) -> Result<Action, Error> {
    let old = cluster.status.clone().unwrap_or_default();
    let now = jiff_now();
    let carry = |mut c: Condition| {
        let prev = old.conditions.iter().find(|p| p.type_ == c.type_);
        c.last_transition_time = match prev {
            Some(p) if p.status == c.status => p.last_transition_time.clone(),
            _ => Some(now.clone()),
        };
        c
    };
    let status = OrbitClusterStatus {
        observed_generation: cluster.metadata.generation,
        backend: out.backend,
        workload_kind: out.workload_kind,
        storage_class: out.storage_class,
        replicas: out.replicas,
        ready_replicas: out.ready_replicas,
        selector: Some(render::selector_string(cluster)),
        conditions: vec![
            carry(out.ready),
            carry(out.progressing),
            carry(out.degraded),
        ],
    };
    let ready_changed = old
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (&c.status, &c.reason, &c.message))
        != status
            .conditions
            .first()
            .map(|c| (&c.status, &c.reason, &c.message));
    if status != old {
        let api: Api<OrbitCluster> =
            Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
        let patch = json!({"status": status});
        api.patch_status(
            &cluster.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    if let Some((reason, message)) = event
        && (ready_changed || reason == "VolumesExpanding")
    {
        publish(ctx, cluster, reason, &message).await;
    }
    if let Ok(mut f) = ctx.failures.lock() {
        f.remove(&key(cluster));
    }
    Ok(action)
}

async fn publish(ctx: &Context, cluster: &OrbitCluster, reason: &str, message: &str) {
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let reference: ObjectReference = cluster.object_ref(&());
    let type_ = if reason == "VolumesExpanding" {
        EventType::Normal
    } else {
        EventType::Warning
    };
    let mut note: String = message.chars().take(1000).collect();
    if note.len() < message.len() {
        note.push('…');
    }
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, &reference).await {
        tracing::warn!("cannot publish event {reason}: {e}");
    }
}

fn jiff_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    k8s_openapi::jiff::Timestamp::from_second(now.as_secs() as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A storage quantity in bytes (`10Gi`, `500M`, `1073741824`), or None.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let m = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "m" => 1e-3,
        _ => return None,
    };
    Some(n * m)
}
