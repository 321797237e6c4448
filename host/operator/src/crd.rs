//! The `OrbitCluster` resource (`orbit.turingworks.com/v1`).
//!
//! The shape the deployment guides use is accepted verbatim: `replicas`,
//! `image{repository,tag}`, `persistence{backend, local{...}, cloud{...}}`
//! with their snake_case keys, `resources{cpuRequest,...}`,
//! `storage{storageClass,size,accessMode}`. What the guides leave out is
//! camelCase, like the Helm chart's values: one settings table per backend
//! (`persistence.lsmTree`, ...), `server`, `health`, `plugins`, `secrets`,
//! `monitoring`, `scheduling`, `podDisruptionBudget`.
//!
//! The settings tables' schemas are generated from the settings catalogue
//! ([`crate::settings_schema`]); the free-form `local.config` map of the
//! guides is checked by the translator plugin, not by the schema.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvFromSource, EnvVar, LocalObjectReference, Toleration, TopologySpreadConstraint,
    VolumeMount,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::settings_schema::{self as ss, Table};

/// A settings table: camelCase TOML keys to values.
pub type SettingsTable = BTreeMap<String, Json>;

/// An Orbit storage host cluster: a StatefulSet (local backends) or a
/// Deployment (cloud backends) of `orbit-server`, its Services, ConfigMap,
/// PodDisruptionBudget and, optionally, monitoring objects.
// Several `printcolumn(type_ = ...)` look like duplicated attributes to clippy.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "orbit.turingworks.com",
    version = "v1",
    kind = "OrbitCluster",
    plural = "orbitclusters",
    shortname = "orbit",
    namespaced,
    status = "OrbitClusterStatus",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Backend",
        type_ = "string",
        json_path = ".spec.persistence.backend"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct OrbitClusterSpec {
    /// Pods. Default 1. With a local backend each pod is an independent
    /// store: more than one needs `allowIndependentReplicas: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Allow several replicas of a local backend (each pod its own store;
    /// clients address pods one by one through the headless Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_independent_replicas: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    pub persistence: PersistenceSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
    /// The data volume of local backends (ignored by cloud backends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// The Secret holding credentials and the API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsSpec>,
    /// Extra environment variables of the server container; an entry
    /// replaces the operator's variable of the same name. `ORBIT_*` values
    /// are checked by the translator like everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Whole ConfigMaps or Secrets as variables of the server container.
    /// `ORBIT_*` names among them reach the server unchecked by the operator
    /// (the server still checks them at start-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_from: Option<Vec<EnvFromSource>>,
    /// `RUST_LOG` of the server. Default `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Server settings (`[server]` of orbit.toml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "server_schema")]
    pub server: Option<SettingsTable>,
    /// Health thresholds (`[health]` of orbit.toml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "health_schema")]
    pub health: Option<SettingsTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<PluginsSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PdbSpec>,
    /// Type of the client Service. Default ClusterIP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["ClusterIP", "NodePort", "LoadBalancer"]))]
    pub service_type: Option<String>,
    /// Annotations of the client Service (e.g. a cloud load balancer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_annotations: Option<BTreeMap<String, String>>,
    /// Source CIDRs admitted by a LoadBalancer client Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_source_ranges: Option<Vec<String>>,
    /// The workload's update strategy, as Kubernetes writes it. StatefulSet
    /// (local backends): `{type: RollingUpdate|OnDelete, rollingUpdate:
    /// {partition, maxUnavailable}}`; Deployment (cloud backends): `{type:
    /// RollingUpdate|Recreate, rollingUpdate: {maxSurge, maxUnavailable}}`.
    /// Default RollingUpdate (the Deployment with maxSurge 1, maxUnavailable 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub update_strategy: Option<Json>,
    /// Seconds a new pod must stay ready before the rollout goes on. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_ready_seconds: Option<i32>,
    /// Default 60: the server drains and syncs its backend on SIGTERM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,
    /// A preStop sleep, so endpoints drop the pod before it stops serving.
    /// Default 5; 0: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub pre_stop_sleep_seconds: Option<i64>,
    /// More volumes of the pod (Volume objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_objects")]
    pub extra_volumes: Option<Vec<Json>>,
    /// More mounts of the orbit-server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_volume_mounts: Option<Vec<VolumeMount>>,
    /// More containers in the pod (sidecars), as Container objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_objects")]
    pub extra_containers: Option<Vec<Json>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicySpec>,
    /// Annotations and labels added to the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_labels: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Default orbit-rs/orbit-server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Default: the operator's own version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `sha256:...`; wins over the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Always", "IfNotPresent", "Never"]))]
    pub pull_policy: Option<String>,
}

/// Which backend, and its settings. `local` and `cloud` are the deployment
/// guides' sections (snake_case keys, written to the backend's TOML table as
/// they are and checked by the translator); the camelCase tables are the
/// catalogue's settings, typed by the schema.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.local) || !has(self.local.backend_type) || self.local.backend_type == self.backend",
     "message": "persistence.local.backend_type must equal persistence.backend"},
    {"rule": "!has(self.cloud) || !has(self.cloud.provider) || self.cloud.provider == self.backend",
     "message": "persistence.cloud.provider must equal persistence.backend"},
]))]
pub struct PersistenceSpec {
    /// memory, cow_btree, lsm_tree, rocksdb (local: StatefulSet with a
    /// volume) or s3, azure, gcp (cloud: Deployment).
    #[schemars(schema_with = "backend_schema")]
    pub backend: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "memory_schema")]
    pub memory: Option<SettingsTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "cow_btree_schema")]
    pub cow_btree: Option<SettingsTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "lsm_tree_schema")]
    pub lsm_tree: Option<SettingsTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "rocksdb_schema")]
    pub rocksdb: Option<SettingsTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "s3_schema")]
    pub s3: Option<SettingsTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "azure_schema")]
    pub azure: Option<SettingsTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "gcp_schema")]
    pub gcp: Option<SettingsTable>,
}

/// The guides' local section. Its keys go to `[persistence.<backend>]` as
/// written; keys the backend does not have are reported by the translator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct LocalSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "local_backend_schema")]
    pub backend_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_compression: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub write_buffer_size: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub cache_size: Option<Json>,
    /// Further TOML keys of the backend's table (values as strings, numbers
    /// or booleans), e.g. `memtable_size_limit: "134217728"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_table")]
    pub config: Option<BTreeMap<String, Json>>,
}

/// The guides' cloud section.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CloudSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "cloud_backend_schema")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub connection_timeout: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_ssl: Option<bool>,
    /// The Secret with the credentials (keys `s3-access-key-id`,
    /// `s3-secret-access-key`, `azure-account-key`,
    /// `gcp-service-account-key`); same as `secrets.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

/// The guides' resources: requests and limits of the server container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub cpu_request: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub memory_request: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub cpu_limit: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub memory_limit: Option<Json>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(oldSelf.size) || (has(self.size) && quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0)",
     "message": "storage.size cannot shrink (a PersistentVolumeClaim can only grow)"},
]))]
pub struct StorageSpec {
    /// StorageClass of the data volumes; empty: the cluster default. It
    /// cannot be changed once the volumes exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Size of each pod's data volume. Default 10Gi. May grow (the volumes
    /// are expanded where the StorageClass allows), never shrink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub size: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"]))]
    pub access_mode: Option<String>,
    /// What happens to the volumes when the cluster is deleted or scaled
    /// down: Retain (default) or Delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<RetentionSpec>,
    /// Size limit of the emptyDir data volume of cloud backends. Default 1Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub empty_dir_size_limit: Option<Json>,
    /// A PersistentVolumeClaim that exists already, mounted as the data
    /// volume instead of one claim per pod (local backends, one replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_claim: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Retain", "Delete"]))]
    pub when_deleted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Retain", "Delete"]))]
    pub when_scaled: Option<String>,
}

/// The Secret with credentials and the API token, and its keys.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretsSpec {
    /// Default `<cluster>-secrets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The key of each secret setting, by variable name. Default: the name
    /// without `ORBIT_`, lower case, `-` for `_` (`ORBIT_S3_ACCESS_KEY_ID`
    /// -> `s3-access-key-id`, `ORBIT_API_TOKEN` -> `api-token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<BTreeMap<String, String>>,
    /// The selected backend's secret settings (s3: both keys; azure: the
    /// account key; gcp: the service-account file), as the chart's
    /// `secrets.backendCredentials`: `required` (default; a missing Secret or
    /// key stops the pod at creation), `optional` (read if present) or
    /// `none` (not referenced; the pod's ambient identity is used; with gcp,
    /// also set `persistence.gcp.credentialsPath: ""`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["required", "optional", "none"]))]
    pub backend_credentials: Option<String>,
    /// The API bearer token (`ORBIT_API_TOKEN`), as the chart's
    /// `secrets.apiToken`: `optional` (default; read if the Secret and key
    /// exist), `required` or `none` (no token; /v1/* is open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["optional", "required", "none"]))]
    pub api_token: Option<String>,
}

/// How a Secret-held value is referenced: `required`, `optional` or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretUse {
    Required,
    Optional,
    None,
}

impl SecretUse {
    fn parse(s: Option<&str>, default: SecretUse) -> SecretUse {
        match s {
            Some("required") => SecretUse::Required,
            Some("optional") => SecretUse::Optional,
            Some("none") => SecretUse::None,
            _ => default,
        }
    }

    /// The `optional` flag of a `secretKeyRef` or secret volume.
    pub fn optional(self) -> bool {
        self == SecretUse::Optional
    }
}

impl OrbitClusterSpec {
    /// `secrets.backendCredentials` (default required).
    pub fn backend_credentials(&self) -> SecretUse {
        SecretUse::parse(
            self.secrets
                .as_ref()
                .and_then(|s| s.backend_credentials.as_deref()),
            SecretUse::Required,
        )
    }

    /// `secrets.apiToken` (default optional).
    pub fn api_token(&self) -> SecretUse {
        SecretUse::parse(
            self.secrets.as_ref().and_then(|s| s.api_token.as_deref()),
            SecretUse::Optional,
        )
    }
}

/// Custom policy plugins, from a ConfigMap's binaryData.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginsSpec {
    /// ConfigMap whose binaryData holds the component files; mounted
    /// read-only at `mountPath`, its content's checksum rolls the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    /// Default /plugins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<PluginRef>,
    /// The translator also runs in the operator, which reads it from the
    /// ConfigMap and checks the resource with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translator: Option<PluginRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<PluginRef>,
    /// Detached-signature public key (`[plugins] public_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Limits of every plugin call (`[plugins]` of orbit.toml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "plugins_schema")]
    pub limits: Option<SettingsTable>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginRef {
    /// Key of the ConfigMap (file name under mountPath).
    pub file: String,
    /// Expected sha256 (hex) of the component; another is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,
    /// What the plugin may reach beyond its sandbox (`env:NAME`, `dir:/P`,
    /// `network`, `keyvalue:BUCKET`), comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// `prometheus.io/*` annotations on the pods. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_annotations: Option<bool>,
    /// A ServiceMonitor (Prometheus Operator) for the metrics Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor: Option<ServiceMonitorSpec>,
    /// A PrometheusRule with the storage host's alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_rule: Option<PrometheusRuleSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// RelabelConfigs applied to targets before the scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_objects")]
    pub relabelings: Option<Vec<Json>>,
    /// RelabelConfigs applied to samples after the scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_objects")]
    pub metric_relabelings: Option<Vec<Json>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRuleSpec {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Each alert's runbook_url is this followed by the alert name in lower
    /// case. Default: the project's docs/runbooks.md (as the chart's
    /// `metrics.prometheusRule.runbookBaseUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_base_url: Option<String>,
    /// More rules appended to the group (Prometheus rule objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_objects")]
    pub extra_rules: Option<Vec<Json>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    /// Replaces the default pod anti-affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// soft (default), hard or none: anti-affinity on the node hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["soft", "hard", "none"]))]
    pub pod_anti_affinity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// Adds a spread of the pods over `topology.kubernetes.io/zone`
    /// (maxSkew 1, ScheduleAnyway) to the constraints; for a hard rule write
    /// it in `topologySpreadConstraints`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_spread: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PdbSpec {
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Default 1 (when minAvailable is not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub max_unavailable: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub min_available: Option<Json>,
    /// IfHealthyBudget or AlwaysAllow (a pod that is not ready may be
    /// evicted even when the budget is spent, so a crash-looping pod cannot
    /// block a node drain). Default: the cluster's (IfHealthyBudget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["IfHealthyBudget", "AlwaysAllow"]))]
    pub unhealthy_pod_eviction_policy: Option<String>,
}

/// A NetworkPolicy admitting traffic to the pods only on the API port from
/// `api.from` and on the metrics port from the monitoring namespace (egress
/// stays open: cloud backends reach their object store). Needs a network
/// plugin that enforces NetworkPolicies.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    #[serde(default)]
    pub enabled: bool,
    /// NetworkPolicyPeers admitted to the API port. Default: every pod of the
    /// cluster's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_objects")]
    pub api_from: Option<Vec<Json>>,
    /// The namespace Prometheus runs in (label selector). Default
    /// `kubernetes.io/metadata.name: monitoring`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub metrics_namespace_selector: Option<Json>,
    /// The Prometheus pods in that namespace; default any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub metrics_pod_selector: Option<Json>,
    /// More NetworkPolicyIngressRules, appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_objects")]
    pub extra_ingress: Option<Vec<Json>>,
}

/// What the operator observed and decided.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrbitClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// StatefulSet or Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_kind: Option<String>,
    /// The storage class the volumes were created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Label selector of the pods (scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A status condition (the fields of metav1.Condition).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

// ---- generated schemas ------------------------------------------------------

fn schema(json: Json) -> schemars::Schema {
    match json {
        Json::Object(map) => schemars::Schema::from(map),
        _ => schemars::Schema::default(),
    }
}

fn settings(table: Table, description: &str) -> schemars::Schema {
    schema(ss::table_schema(table, description))
}

fn memory_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use orbit_config_syntax::BackendKind::*;
    settings(Table::Backend(Memory), "Settings of the memory backend.")
}
fn cow_btree_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use orbit_config_syntax::BackendKind::*;
    settings(
        Table::Backend(CowBtree),
        "Settings of the cow_btree backend.",
    )
}
fn lsm_tree_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use orbit_config_syntax::BackendKind::*;
    settings(Table::Backend(LsmTree), "Settings of the lsm_tree backend.")
}
fn rocksdb_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use orbit_config_syntax::BackendKind::*;
    settings(Table::Backend(Rocksdb), "Settings of the rocksdb backend.")
}
fn s3_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use orbit_config_syntax::BackendKind::*;
    settings(
        Table::Backend(S3),
        "Settings of the s3 backend (credentials come from the Secret).",
    )
}
fn azure_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use orbit_config_syntax::BackendKind::*;
    settings(
        Table::Backend(Azure),
        "Settings of the azure backend (the account key comes from the Secret).",
    )
}
fn gcp_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use orbit_config_syntax::BackendKind::*;
    settings(
        Table::Backend(Gcp),
        "Settings of the gcp backend (the service-account key comes from the Secret).",
    )
}
fn server_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    settings(ss::SERVER, "Server settings (`[server]` of orbit.toml).")
}
fn health_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    settings(ss::HEALTH, "Health thresholds (`[health]` of orbit.toml).")
}
fn plugins_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    settings(
        ss::PLUGINS,
        "Plugin call limits (`[plugins]` of orbit.toml).",
    )
}
fn backend_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schema(serde_json::json!({
        "type": "string",
        "enum": ss::backend_names(),
        "description": "The backend; local ones run as a StatefulSet with a volume, cloud ones as a Deployment.",
    }))
}
fn local_backend_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schema(
        serde_json::json!({"type": "string", "enum": ss::local_backend_names(),
        "description": "Must equal persistence.backend."}),
    )
}
fn cloud_backend_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let cloud: Vec<&str> = orbit_config_syntax::BackendKind::ALL
        .iter()
        .filter(|k| !k.is_local())
        .map(|k| k.name())
        .collect();
    schema(serde_json::json!({"type": "string", "enum": cloud,
        "description": "Must equal persistence.backend."}))
}
fn int_or_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schema(serde_json::json!({"x-kubernetes-int-or-string": true}))
}
/// A Kubernetes object the operator passes through unchanged (the workload's
/// own validation checks it when it is applied).
fn free_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schema(serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}))
}
fn free_objects(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schema(serde_json::json!({"type": "array", "items": free_object(g)}))
}
fn free_table(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schema(serde_json::json!({
        "type": "object",
        "description": "TOML keys of the backend's table, as the deployment guides write them (values as strings, numbers or booleans); checked by the translator plugin.",
        "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true},
    }))
}

impl OrbitClusterSpec {
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }
}
