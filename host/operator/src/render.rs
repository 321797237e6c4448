//! The objects of an `OrbitCluster`: a pure function of the resource, its
//! resolved configuration ([`crate::translate::Resolved`]) and the checksums
//! of what it references. No client, no async; the reconciler applies what
//! this returns, and the parity test compares it with `helm template`.
//!
//! The pod is the Helm chart's pod (`helm/orbit-rs/templates/_helpers.tpl`):
//! same ports, probes, security contexts, volumes and base environment. The
//! backend settings travel as variables (`render-env`), not in orbit.toml.

use std::collections::BTreeMap;

use orbit_config_syntax::BackendKind;
use serde_json::{Value as Json, json};

use crate::crd::{OrbitCluster, SecretUse};
use crate::translate::{
    CONFIG_DIR, DATA_DIR, DEFAULT_PLUGIN_MOUNT, EnvSource, HTTP_PORT, METRICS_PORT, Resolved,
    secret_key,
};

/// The field manager of the operator's server-side applies, and the
/// `app.kubernetes.io/managed-by` label of its objects.
pub const MANAGER: &str = "orbit-operator";
pub const DEFAULT_IMAGE: &str = "orbit-rs/orbit-server";
/// Annotation on the pod template: checksum of the referenced Secret.
pub const SECRET_CHECKSUM: &str = "orbit.turingworks.com/secret-checksum";
/// Annotation on the pod template: checksum of the plugins ConfigMap.
pub const PLUGINS_CHECKSUM: &str = "orbit.turingworks.com/plugins-checksum";
/// Annotation on the pod template: checksum of the rendered ConfigMap.
pub const CONFIG_CHECKSUM: &str = "checksum/config";
/// Annotation on every object: hash of what the operator applied, so an
/// unchanged object is not applied again.
pub const APPLIED_HASH: &str = "orbit.turingworks.com/applied-hash";

/// What the render depends on besides the resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Image tag when the resource gives none (the operator's version).
    pub default_tag: String,
    /// sha256 of the Secret's data (None: no Secret).
    pub secret_checksum: Option<String>,
    /// sha256 of the plugins ConfigMap's binaryData.
    pub plugins_checksum: Option<String>,
}

/// The workload kind for a backend.
pub fn workload_kind(kind: BackendKind) -> &'static str {
    if kind.is_local() {
        "StatefulSet"
    } else {
        "Deployment"
    }
}

/// The rendered objects, in apply order.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub workload_kind: &'static str,
    pub objects: Vec<Json>,
}

impl Rendered {
    pub fn find(&self, kind: &str, name: &str) -> Option<&Json> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }
    pub fn workload(&self) -> Option<&Json> {
        self.objects
            .iter()
            .find(|o| o["kind"] == self.workload_kind)
    }
}

fn name(c: &OrbitCluster) -> String {
    c.metadata.name.clone().unwrap_or_default()
}

/// The labels that select the cluster's pods.
pub fn selector_labels(c: &OrbitCluster) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "orbit-rs".into()),
        ("app.kubernetes.io/instance".into(), name(c)),
        ("app.kubernetes.io/component".into(), "server".into()),
    ])
}

/// `key=value,...` of [`selector_labels`] (the scale subresource's selector).
pub fn selector_string(c: &OrbitCluster) -> String {
    selector_labels(c)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn labels(c: &OrbitCluster) -> Json {
    let mut l = selector_labels(c);
    l.insert("app.kubernetes.io/part-of".into(), "orbit-rs".into());
    l.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
    json!(l)
}

fn metadata(c: &OrbitCluster, name: String) -> Json {
    let mut m = json!({
        "name": name,
        "namespace": c.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
        "labels": labels(c),
    });
    if let Some(uid) = &c.metadata.uid {
        m["ownerReferences"] = json!([{
            "apiVersion": "orbit.turingworks.com/v1",
            "kind": "OrbitCluster",
            "name": self::name(c),
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
    }
    m
}

/// The Secret the pods read credentials and the API token from.
pub fn secret_name(c: &OrbitCluster) -> String {
    let p = &c.spec.persistence;
    c.spec
        .secrets
        .as_ref()
        .and_then(|s| s.name.clone())
        .or_else(|| p.cloud.as_ref().and_then(|c| c.credentials_secret.clone()))
        .unwrap_or_else(|| format!("{}-secrets", name(c)))
}

/// The ConfigMap holding custom plugins, if the resource names one.
pub fn plugins_config_map(c: &OrbitCluster) -> Option<String> {
    c.spec.plugins.as_ref().and_then(|p| p.config_map.clone())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn quantity(v: &Json) -> Json {
    match v {
        Json::Number(n) => Json::String(n.to_string()),
        v => v.clone(),
    }
}

fn env(c: &OrbitCluster, resolved: &Resolved) -> Vec<Json> {
    let secret = secret_name(c);
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    let mut out: Vec<(String, Json)> = vec![
        (
            "POD_NAME".into(),
            json!({"valueFrom": field("metadata.name")}),
        ),
        (
            "POD_NAMESPACE".into(),
            json!({"valueFrom": field("metadata.namespace")}),
        ),
        ("POD_IP".into(), json!({"valueFrom": field("status.podIP")})),
        (
            "NODE_NAME".into(),
            json!({"valueFrom": field("spec.nodeName")}),
        ),
        (
            "RUST_LOG".into(),
            json!({"value": c.spec.log_level.clone().unwrap_or_else(|| "info".into())}),
        ),
        (
            "ORBIT_CONFIG_FILE".into(),
            json!({"value": format!("{CONFIG_DIR}/orbit.toml")}),
        ),
        (
            "ORBIT_PERSISTENCE_BACKEND".into(),
            json!({"value": resolved.backend.name()}),
        ),
    ];
    let token = c.spec.api_token();
    if token != SecretUse::None {
        out.push((
            "ORBIT_API_TOKEN".into(),
            json!({"valueFrom": {"secretKeyRef": {
                "name": secret, "key": secret_key(&c.spec, "ORBIT_API_TOKEN"),
                "optional": token.optional()}}}),
        ));
    }
    let credentials = c.spec.backend_credentials();
    for (name, source) in &resolved.env {
        let v = match source {
            EnvSource::Plain(s) => json!({"value": s}),
            EnvSource::SecretKey(_) if credentials == SecretUse::None => continue,
            EnvSource::SecretKey(key) => json!({"valueFrom": {"secretKeyRef": {
                "name": secret, "key": key, "optional": credentials.optional()}}}),
        };
        out.retain(|(n, _)| n != name);
        out.push((name.clone(), v));
    }
    let user: Vec<Json> = c
        .spec
        .env
        .iter()
        .flatten()
        .map(|e| serde_json::to_value(e).unwrap_or_default())
        .collect();
    out.retain(|(n, _)| !user.iter().any(|u| u["name"] == n.as_str()));
    let mut list: Vec<Json> = out
        .into_iter()
        .map(|(n, mut v)| {
            v["name"] = Json::String(n);
            v
        })
        .collect();
    list.extend(user);
    list
}

fn affinity(c: &OrbitCluster) -> Option<Json> {
    let s = c.spec.scheduling.as_ref();
    if let Some(a) = s.and_then(|s| s.affinity.as_ref()) {
        return serde_json::to_value(a).ok();
    }
    let selector = json!({"matchLabels": selector_labels(c)});
    match s
        .and_then(|s| s.pod_anti_affinity.as_deref())
        .unwrap_or("soft")
    {
        "hard" => Some(json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": selector}]}})),
        "none" => None,
        _ => Some(json!({"podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {
                    "topologyKey": "kubernetes.io/hostname", "labelSelector": selector}}]}})),
    }
}

fn pod_template(c: &OrbitCluster, resolved: &Resolved, inputs: &Inputs, config: &Json) -> Json {
    let spec = &c.spec;
    let kind = resolved.backend;
    let mut annotations = json!({"kubectl.kubernetes.io/default-container": "orbit-server"});
    let scrape = spec
        .monitoring
        .as_ref()
        .and_then(|m| m.scrape_annotations)
        .unwrap_or(true);
    if scrape {
        annotations["prometheus.io/scrape"] = json!("true");
        annotations["prometheus.io/port"] = json!(METRICS_PORT.to_string());
        annotations["prometheus.io/path"] = json!("/metrics");
    }
    annotations[CONFIG_CHECKSUM] = json!(sha256_hex(
        serde_json::to_string(&config["data"])
            .unwrap_or_default()
            .as_bytes()
    ));
    if let Some(s) = &inputs.secret_checksum {
        annotations[SECRET_CHECKSUM] = json!(s);
    }
    if let Some(s) = &inputs.plugins_checksum {
        annotations[PLUGINS_CHECKSUM] = json!(s);
    }
    for (k, v) in spec.pod_annotations.iter().flatten() {
        annotations[k] = json!(v);
    }
    let mut pod_labels = selector_labels(c);
    pod_labels.insert("app.kubernetes.io/part-of".into(), "orbit-rs".into());
    pod_labels.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
    for (k, v) in spec.pod_labels.iter().flatten() {
        pod_labels.insert(k.clone(), v.clone());
    }

    let image = spec.image.clone().unwrap_or_default();
    let repo = image.repository.unwrap_or_else(|| DEFAULT_IMAGE.into());
    let image_ref = match (&image.digest, &image.tag) {
        (Some(d), _) if !d.is_empty() => format!("{repo}@{d}"),
        (_, Some(t)) if !t.is_empty() => format!("{repo}:{t}"),
        _ => format!("{repo}:{}", inputs.default_tag),
    };
    let mut resources = json!({
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    });
    if let Some(r) = &spec.resources {
        for (path, v) in [
            (("requests", "cpu"), &r.cpu_request),
            (("requests", "memory"), &r.memory_request),
            (("limits", "cpu"), &r.cpu_limit),
            (("limits", "memory"), &r.memory_limit),
        ] {
            if let Some(v) = v {
                resources[path.0][path.1] = quantity(v);
            }
        }
    }

    let mut mounts = vec![
        json!({"name": "data", "mountPath": DATA_DIR}),
        json!({"name": "config", "mountPath": CONFIG_DIR, "readOnly": true}),
    ];
    let mut volumes = Vec::new();
    if let Some(claim) = existing_claim(c).filter(|_| kind.is_local()) {
        volumes.push(json!({"name": "data", "persistentVolumeClaim": {"claimName": claim}}));
    }
    if !kind.is_local() {
        let limit = spec
            .storage
            .as_ref()
            .and_then(|s| s.empty_dir_size_limit.as_ref())
            .map(quantity)
            .unwrap_or_else(|| json!("1Gi"));
        volumes.push(json!({"name": "data", "emptyDir": {"sizeLimit": limit}}));
    }
    volumes.push(json!({"name": "config", "configMap": {"name": format!("{}-config", name(c))}}));
    if let Some((key, path)) = &resolved.secret_file {
        let (dir, file) = path.rsplit_once('/').unwrap_or(("/", path));
        mounts.push(json!({"name": "gcp-credentials", "mountPath": if dir.is_empty() { "/" } else { dir }, "readOnly": true}));
        volumes.push(json!({"name": "gcp-credentials", "secret": {
            "secretName": secret_name(c), "optional": spec.backend_credentials().optional(), "defaultMode": 0o440,
            "items": [{"key": key, "path": file}]}}));
    }
    if let Some(cm) = plugins_config_map(c) {
        let mount = spec
            .plugins
            .as_ref()
            .and_then(|p| p.mount_path.clone())
            .unwrap_or_else(|| DEFAULT_PLUGIN_MOUNT.into());
        mounts.push(json!({"name": "plugins", "mountPath": mount, "readOnly": true}));
        volumes.push(json!({"name": "plugins", "configMap": {"name": cm}}));
    }

    let probe = |path: &str, period: u32, failures: u32| {
        json!({
            "httpGet": {"path": path, "port": "health"},
            "periodSeconds": period,
            "timeoutSeconds": 3,
            "failureThreshold": failures,
        })
    };
    let container = json!({
        "name": "orbit-server",
        "image": image_ref,
        "imagePullPolicy": image.pull_policy.unwrap_or_else(|| "IfNotPresent".into()),
        "args": ["serve"],
        "ports": [
            {"name": "health", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "env": env(c, resolved),
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
        },
        "startupProbe": probe("/health/startup", 5, 180),
        "livenessProbe": probe("/health", 10, 3),
        "readinessProbe": probe("/health/ready", 5, 3),
        "volumeMounts": mounts,
    });
    let mut container = container;
    let pre_stop = spec.pre_stop_sleep_seconds.unwrap_or(5);
    if pre_stop > 0 {
        container["lifecycle"] = json!({"preStop": {"sleep": {"seconds": pre_stop}}});
    }
    if let Some(e) = &spec.env_from {
        container["envFrom"] = serde_json::to_value(e).unwrap_or_default();
    }
    if let Some(m) = &spec.extra_volume_mounts {
        let extra = serde_json::to_value(m).unwrap_or_default();
        if let (Some(all), Some(extra)) =
            (container["volumeMounts"].as_array_mut(), extra.as_array())
        {
            all.extend(extra.iter().cloned());
        }
    }
    let mut containers = vec![container];
    containers.extend(spec.extra_containers.iter().flatten().cloned());
    volumes.extend(spec.extra_volumes.iter().flatten().cloned());
    let mut pod = json!({
        "serviceAccountName": name(c),
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "terminationGracePeriodSeconds": spec.termination_grace_period_seconds.unwrap_or(60),
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": containers,
        "volumes": volumes,
    });
    if let Some(a) = affinity(c) {
        pod["affinity"] = a;
    }
    if let Some(s) = &spec.image_pull_secrets {
        pod["imagePullSecrets"] = serde_json::to_value(s).unwrap_or_default();
    }
    if let Some(s) = &spec.scheduling {
        if let Some(n) = &s.node_selector {
            pod["nodeSelector"] = json!(n);
        }
        if let Some(t) = &s.tolerations {
            pod["tolerations"] = serde_json::to_value(t).unwrap_or_default();
        }
        let mut spread =
            serde_json::to_value(s.topology_spread_constraints.clone().unwrap_or_default())
                .unwrap_or_default();
        if s.zone_spread.unwrap_or(false)
            && let Some(all) = spread.as_array_mut()
        {
            all.push(json!({
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels(c)},
            }));
        }
        if spread.as_array().is_some_and(|a| !a.is_empty()) {
            pod["topologySpreadConstraints"] = spread;
        }
        if let Some(p) = &s.priority_class_name {
            pod["priorityClassName"] = json!(p);
        }
    }
    json!({
        "metadata": {"labels": pod_labels, "annotations": annotations},
        "spec": pod,
    })
}

/// The storage size of the data volumes.
pub fn storage_size(c: &OrbitCluster) -> String {
    c.spec
        .storage
        .as_ref()
        .and_then(|s| s.size.as_ref())
        .map(|v| match quantity(v) {
            Json::String(s) => s,
            v => v.to_string(),
        })
        .unwrap_or_else(|| "10Gi".into())
}

/// Kinds rendered only when the spec asks for them; the reconcile deletes
/// the one it owns once the spec no longer does.
pub const OPTIONAL_KINDS: [&str; 4] = [
    "PodDisruptionBudget",
    "ServiceMonitor",
    "PrometheusRule",
    "NetworkPolicy",
];

/// `storage.existingClaim`, when set.
pub fn existing_claim(c: &OrbitCluster) -> Option<&str> {
    c.spec
        .storage
        .as_ref()
        .and_then(|s| s.existing_claim.as_deref())
        .filter(|s| !s.is_empty())
}

/// The storage class of the data volumes (None: the cluster default).
pub fn storage_class(c: &OrbitCluster) -> Option<String> {
    c.spec
        .storage
        .as_ref()
        .and_then(|s| s.storage_class.clone())
        .filter(|s| !s.is_empty())
}

fn workload(c: &OrbitCluster, resolved: &Resolved, inputs: &Inputs, config: &Json) -> Json {
    let template = pod_template(c, resolved, inputs, config);
    let selector = json!({"matchLabels": selector_labels(c)});
    if resolved.backend.is_local() {
        let storage = c.spec.storage.clone().unwrap_or_default();
        let retention = storage.retention_policy.clone().unwrap_or_default();
        let mut claim_spec = json!({
            "accessModes": [storage.access_mode.clone().unwrap_or_else(|| "ReadWriteOnce".into())],
            "resources": {"requests": {"storage": storage_size(c)}},
        });
        if let Some(class) = storage_class(c) {
            claim_spec["storageClassName"] = json!(class);
        }
        let mut sts = json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": metadata(c, name(c)),
            "spec": {
                "serviceName": format!("{}-headless", name(c)),
                "replicas": c.spec.replicas(),
                "podManagementPolicy": "Parallel",
                "updateStrategy": c.spec.update_strategy.clone().unwrap_or_else(|| json!({"type": "RollingUpdate"})),
                "persistentVolumeClaimRetentionPolicy": {
                    "whenDeleted": retention.when_deleted.unwrap_or_else(|| "Retain".into()),
                    "whenScaled": retention.when_scaled.unwrap_or_else(|| "Retain".into()),
                },
                "selector": selector,
                "template": template,
            },
        });
        if existing_claim(c).is_none() {
            sts["spec"]["volumeClaimTemplates"] = json!([{
                "metadata": {"name": "data", "labels": selector_labels(c)},
                "spec": claim_spec,
            }]);
        }
        with_min_ready(c, sts)
    } else {
        with_min_ready(
            c,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": metadata(c, name(c)),
                "spec": {
                    "replicas": c.spec.replicas(),
                    "strategy": c.spec.update_strategy.clone().unwrap_or_else(
                        || json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})),
                    "selector": selector,
                    "template": template,
                },
            }),
        )
    }
}

fn with_min_ready(c: &OrbitCluster, mut workload: Json) -> Json {
    if let Some(s) = c.spec.min_ready_seconds.filter(|s| *s > 0) {
        workload["spec"]["minReadySeconds"] = json!(s);
    }
    workload
}

fn services(c: &OrbitCluster) -> Vec<Json> {
    let n = name(c);
    let port = |name: &str, port: u16| json!({"name": name, "port": port, "targetPort": name, "protocol": "TCP", "appProtocol": "http"});
    let mut metrics_meta = metadata(c, format!("{n}-metrics"));
    metrics_meta["labels"]["orbit-rs/service"] = json!("metrics");
    let mut client = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": metadata(c, n.clone()),
        "spec": {
            "type": c.spec.service_type.clone().unwrap_or_else(|| "ClusterIP".into()),
            "selector": selector_labels(c),
            "ports": [port("health", HTTP_PORT)],
        },
    });
    for (k, v) in c.spec.service_annotations.iter().flatten() {
        client["metadata"]["annotations"][k] = json!(v);
    }
    if let Some(r) = c
        .spec
        .load_balancer_source_ranges
        .as_ref()
        .filter(|r| !r.is_empty())
    {
        client["spec"]["loadBalancerSourceRanges"] = json!(r);
    }
    vec![
        client,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": metadata(c, format!("{n}-headless")),
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": true,
                "selector": selector_labels(c),
                "ports": [port("health", HTTP_PORT), port("metrics", METRICS_PORT)],
            },
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": metrics_meta,
            "spec": {
                "type": "ClusterIP",
                "selector": selector_labels(c),
                "ports": [port("metrics", METRICS_PORT)],
            },
        }),
    ]
}

/// The alert rules, the same file the Helm chart ships.
const ALERTS: &str = include_str!("../../../helm/orbit-rs/files/alerts.yaml");

/// The runbook base URL of `ALERTS` (and the default of `runbookBaseUrl`).
pub const RUNBOOK_BASE_URL: &str =
    "https://github.com/turingworks/orbit-rs/blob/main/docs/runbooks.md#";

fn monitoring(c: &OrbitCluster) -> Vec<Json> {
    let mut out = Vec::new();
    let m = c.spec.monitoring.clone().unwrap_or_default();
    let n = name(c);
    let ns = c
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    if let Some(sm) = m.service_monitor.filter(|s| s.enabled) {
        let mut meta = metadata(c, n.clone());
        for (k, v) in sm.labels.iter().flatten() {
            meta["labels"][k] = json!(v);
        }
        let mut selector = selector_labels(c);
        selector.insert("orbit-rs/service".into(), "metrics".into());
        let mut endpoint = json!({"port": "metrics", "path": "/metrics",
            "interval": sm.interval.unwrap_or_else(|| "30s".into()),
            "scrapeTimeout": sm.scrape_timeout.unwrap_or_else(|| "10s".into())});
        if let Some(r) = sm.relabelings.filter(|r| !r.is_empty()) {
            endpoint["relabelings"] = json!(r);
        }
        if let Some(r) = sm.metric_relabelings.filter(|r| !r.is_empty()) {
            endpoint["metricRelabelings"] = json!(r);
        }
        out.push(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": meta,
            "spec": {
                "selector": {"matchLabels": selector},
                "namespaceSelector": {"matchNames": [ns]},
                "endpoints": [endpoint],
            },
        }));
    }
    if let Some(pr) = m.prometheus_rule.filter(|p| p.enabled) {
        let mut meta = metadata(c, n.clone());
        for (k, v) in pr.labels.iter().flatten() {
            meta["labels"][k] = json!(v);
        }
        // The chart's substitutions (templates/prometheusrule.yaml): the
        // file is written for the raw manifests' names.
        let alerts = ALERTS
            .replace(
                "job=\"orbit-server-metrics\"",
                &format!("job=\"{n}-metrics\""),
            )
            .replace("namespace=\"orbit-rs\"", &format!("namespace=\"{ns}\""))
            .replace(
                "persistentvolumeclaim=~\"data-orbit-server-[0-9]+\"",
                &format!("persistentvolumeclaim=~\"data-{n}-[0-9]+\""),
            )
            .replace(
                RUNBOOK_BASE_URL,
                pr.runbook_base_url.as_deref().unwrap_or(RUNBOOK_BASE_URL),
            );
        let mut rules: Json = serde_yaml::from_str(&alerts).unwrap_or_else(|_| json!([]));
        if let Some(all) = rules.as_array_mut() {
            all.extend(pr.extra_rules.iter().flatten().cloned());
        }
        out.push(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": meta,
            "spec": {"groups": [{"name": "orbit-server", "rules": rules}]},
        }));
    }
    out
}

fn network_policy(c: &OrbitCluster) -> Option<Json> {
    let np = c.spec.network_policy.clone().filter(|n| n.enabled)?;
    let mut metrics_peer = json!({"namespaceSelector": np.metrics_namespace_selector.unwrap_or_else(
        || json!({"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}))});
    if let Some(p) = np.metrics_pod_selector {
        metrics_peer["podSelector"] = p;
    }
    let mut ingress = vec![
        json!({"ports": [{"port": HTTP_PORT, "protocol": "TCP"}],
            "from": np.api_from.unwrap_or_else(|| vec![json!({"podSelector": {}})])}),
        json!({"ports": [{"port": METRICS_PORT, "protocol": "TCP"}], "from": [metrics_peer]}),
    ];
    ingress.extend(np.extra_ingress.into_iter().flatten());
    Some(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": metadata(c, name(c)),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(c)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }))
}

/// Every object of `c`, in apply order, each carrying [`APPLIED_HASH`].
pub fn render(c: &OrbitCluster, resolved: &Resolved, inputs: &Inputs) -> Rendered {
    let n = name(c);
    let config = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": metadata(c, format!("{n}-config")),
        "data": {"orbit.toml": resolved.config_toml},
    });
    let mut sa_meta = metadata(c, n.clone());
    sa_meta["labels"] = labels(c);
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": sa_meta,
            "automountServiceAccountToken": false}),
        config.clone(),
    ];
    objects.extend(services(c));
    objects.push(workload(c, resolved, inputs, &config));
    let pdb = c.spec.pod_disruption_budget.clone().unwrap_or_default();
    if pdb.enabled.unwrap_or(true) {
        let mut spec = json!({"selector": {"matchLabels": selector_labels(c)}});
        match (&pdb.min_available, &pdb.max_unavailable) {
            (Some(m), _) => spec["minAvailable"] = m.clone(),
            (None, Some(m)) => spec["maxUnavailable"] = m.clone(),
            (None, None) => spec["maxUnavailable"] = json!(1),
        }
        if let Some(p) = &pdb.unhealthy_pod_eviction_policy {
            spec["unhealthyPodEvictionPolicy"] = json!(p);
        }
        objects.push(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": metadata(c, n.clone()),
            "spec": spec,
        }));
    }
    objects.extend(monitoring(c));
    objects.extend(network_policy(c));
    for o in &mut objects {
        let hash = sha256_hex(serde_json::to_string(&*o).unwrap_or_default().as_bytes());
        o["metadata"]["annotations"][APPLIED_HASH] = json!(hash);
    }
    Rendered {
        workload_kind: workload_kind(resolved.backend),
        objects,
    }
}

/// Why a resource is refused before anything is applied (besides an
/// invalid configuration): the condition reason, and the field to set and
/// what to do.
pub fn refusal(c: &OrbitCluster, kind: BackendKind) -> Option<(&'static str, String)> {
    let replicas = c.spec.replicas();
    if kind.is_local() && replicas > 1 && !c.spec.allow_independent_replicas.unwrap_or(false) {
        return Some((
            "IndependentReplicasRefused",
            format!(
                "spec.replicas={replicas} with the local backend {kind}: each replica would be an independent store behind one Service, so clients would see different data depending on the pod they reach. Set spec.replicas=1, or spec.allowIndependentReplicas=true if your clients address pods one by one through the headless Service."
            ),
        ));
    }
    if kind.is_local()
        && replicas > 1
        && let Some(claim) = existing_claim(c)
    {
        return Some((
            "SharedClaimRefused",
            format!(
                "spec.storage.existingClaim={claim} with spec.replicas={replicas}: every pod would mount the same claim. Use existingClaim with one replica, or remove it for one claim per pod."
            ),
        ));
    }
    if let Some(s) = &c.spec.update_strategy {
        let t = s["type"].as_str().unwrap_or("RollingUpdate");
        let rolling = &s["rollingUpdate"];
        let ok = if kind.is_local() {
            matches!(t, "RollingUpdate" | "OnDelete") && rolling.get("maxSurge").is_none()
        } else {
            matches!(t, "RollingUpdate" | "Recreate") && rolling.get("partition").is_none()
        };
        if !ok {
            return Some((
                "UpdateStrategyRefused",
                if kind.is_local() {
                    format!(
                        "spec.updateStrategy: the {kind} backend runs a StatefulSet (type RollingUpdate or OnDelete; rollingUpdate.partition, rollingUpdate.maxUnavailable); Recreate and maxSurge are Deployment settings"
                    )
                } else {
                    format!(
                        "spec.updateStrategy: the {kind} backend runs a Deployment (type RollingUpdate or Recreate; rollingUpdate.maxSurge, rollingUpdate.maxUnavailable); OnDelete and partition are StatefulSet settings"
                    )
                },
            ));
        }
    }
    None
}
