//! The pure render, object by object, with the real embedded translator:
//! what each object holds for a resource, what the translator refuses, and
//! the generated settings schema. No client, no cluster.

use std::time::Duration;

use orbit_config_syntax::{BackendConfig, BackendKind, ValueKind};
use orbit_operator::crd::OrbitCluster;
use orbit_operator::reconcile::{backoff, parse_quantity};
use orbit_operator::render::{
    self, APPLIED_HASH, Inputs, PLUGINS_CHECKSUM, Rendered, SECRET_CHECKSUM,
};
use orbit_operator::settings_schema::{self as ss, Table};
use orbit_operator::translate::{ResolveError, Translators};
use serde_json::{Value as Json, json};

fn cluster(spec: Json) -> OrbitCluster {
    serde_json::from_value(json!({
        "apiVersion": "orbit.turingworks.com/v1",
        "kind": "OrbitCluster",
        "metadata": {"name": "c1", "namespace": "ns", "uid": "u-1"},
        "spec": spec,
    }))
    .unwrap()
}

fn translators() -> Translators {
    Translators::new(std::env::temp_dir().join("orbit-operator-render-test")).unwrap()
}

async fn render_with(
    t: &Translators,
    spec: Json,
    inputs: Inputs,
) -> Result<Rendered, ResolveError> {
    let c = cluster(spec);
    let r = t.resolve(&c, None).await?;
    Ok(render::render(&c, &r, &inputs))
}

fn env(workload: &Json) -> Vec<Json> {
    workload["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone()
}

fn env_value(workload: &Json, name: &str) -> Option<Json> {
    env(workload).into_iter().find(|e| e["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_of_a_local_cluster() {
    let t = translators();
    let inputs = Inputs {
        default_tag: "9.9.9".into(),
        secret_checksum: Some("s-sum".into()),
        plugins_checksum: None,
    };
    let spec = json!({
        "persistence": {"backend": "lsm_tree", "lsmTree": {"maxMemtables": 12, "durability": "periodic"}},
        "storage": {"size": "20Gi", "storageClass": "fast", "retentionPolicy": {"whenDeleted": "Delete"}},
        "server": {"maxKeyBytes": 2048},
        "env": [{"name": "RUST_LOG", "value": "debug"}],
    });
    let r = render_with(&t, spec, inputs).await.unwrap();
    assert_eq!(r.workload_kind, "StatefulSet");
    let kinds: Vec<&str> = r
        .objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ConfigMap",
            "Service",
            "Service",
            "Service",
            "StatefulSet",
            "PodDisruptionBudget"
        ]
    );
    for o in &r.objects {
        assert_eq!(o["metadata"]["namespace"], "ns");
        assert_eq!(o["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "orbit-operator"
        );
        assert!(
            o["metadata"]["annotations"][APPLIED_HASH]
                .as_str()
                .unwrap()
                .len()
                == 64
        );
    }

    // ServiceAccount: no token.
    assert_eq!(
        r.find("ServiceAccount", "c1").unwrap()["automountServiceAccountToken"],
        false
    );

    // ConfigMap: server settings only; backend settings travel as variables.
    let toml = r.find("ConfigMap", "c1-config").unwrap()["data"]["orbit.toml"]
        .as_str()
        .unwrap()
        .to_string();
    let doc: toml::Table = toml::from_str(&toml).unwrap();
    assert_eq!(doc["server"]["data_dir"].as_str(), Some("/app/data"));
    assert_eq!(doc["server"]["log_format"].as_str(), Some("json"));
    assert_eq!(doc["server"]["max_key_bytes"].as_integer(), Some(2048));
    assert!(doc.get("persistence").is_none(), "{toml}");

    // Services.
    let svc = r.find("Service", "c1").unwrap();
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "health");
    assert_eq!(svc["spec"]["selector"]["app.kubernetes.io/instance"], "c1");
    let headless = r.find("Service", "c1-headless").unwrap();
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    let metrics = r.find("Service", "c1-metrics").unwrap();
    assert_eq!(metrics["metadata"]["labels"]["orbit-rs/service"], "metrics");
    assert_eq!(metrics["spec"]["ports"][0]["port"], 9090);

    // StatefulSet: claims, retention, the translator's variables, checksums.
    let sts = r.find("StatefulSet", "c1").unwrap();
    assert_eq!(sts["spec"]["serviceName"], "c1-headless");
    let claim = &sts["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(claim["resources"]["requests"]["storage"], "20Gi");
    assert_eq!(claim["storageClassName"], "fast");
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
        "Delete"
    );
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
        "Retain"
    );
    assert_eq!(
        env_value(sts, "ORBIT_LSM_MAX_MEMTABLES").unwrap()["value"],
        "12"
    );
    assert_eq!(
        env_value(sts, "ORBIT_LSM_DURABILITY").unwrap()["value"],
        "periodic"
    );
    // Every setting of the backend is rendered (defaults included).
    for s in BackendConfig::settings(BackendKind::LsmTree) {
        assert!(env_value(sts, s.env).is_some(), "{}", s.env);
    }
    // The user's RUST_LOG replaces the operator's, once.
    let rust_log: Vec<Json> = env(sts)
        .into_iter()
        .filter(|e| e["name"] == "RUST_LOG")
        .collect();
    assert_eq!(rust_log, [json!({"name": "RUST_LOG", "value": "debug"})]);
    let token = env_value(sts, "ORBIT_API_TOKEN").unwrap();
    assert_eq!(token["valueFrom"]["secretKeyRef"]["name"], "c1-secrets");
    assert_eq!(token["valueFrom"]["secretKeyRef"]["key"], "api-token");
    let pod = &sts["spec"]["template"];
    assert_eq!(pod["metadata"]["annotations"][SECRET_CHECKSUM], "s-sum");
    assert!(pod["metadata"]["annotations"]["checksum/config"].is_string());
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        "orbit-rs/orbit-server:9.9.9"
    );
    assert_eq!(
        pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert!(pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"].is_array());
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        volumes,
        ["config"],
        "the data volume comes from the claim template"
    );

    // PodDisruptionBudget: maxUnavailable 1 by default.
    assert_eq!(
        r.find("PodDisruptionBudget", "c1").unwrap()["spec"]["maxUnavailable"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_clusters_secrets_plugins_monitoring_and_scheduling() {
    let t = translators();
    // GCP: a Deployment, the service-account key mounted as the credentials file.
    let r = render_with(
        &t,
        json!({"persistence": {"backend": "gcp", "gcp": {"bucketName": "b"}},
               "secrets": {"name": "creds"},
               "podDisruptionBudget": {"minAvailable": 1},
               "monitoring": {"serviceMonitor": {"enabled": true, "labels": {"release": "prom"}},
                              "prometheusRule": {"enabled": true}},
               "scheduling": {"podAntiAffinity": "hard", "nodeSelector": {"disk": "ssd"}},
               "image": {"repository": "r/o", "digest": "sha256:abc"}}),
        Inputs {
            default_tag: "1".into(),
            ..Inputs::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.workload_kind, "Deployment");
    assert!(r.find("StatefulSet", "c1").is_none());
    let d = r.find("Deployment", "c1").unwrap();
    let pod = &d["spec"]["template"]["spec"];
    let volumes = pod["volumes"].as_array().unwrap();
    assert_eq!(
        volumes[0],
        json!({"name": "data", "emptyDir": {"sizeLimit": "1Gi"}})
    );
    let gcp = volumes
        .iter()
        .find(|v| v["name"] == "gcp-credentials")
        .unwrap();
    assert_eq!(gcp["secret"]["secretName"], "creds");
    assert_eq!(gcp["secret"]["optional"], false);
    assert_eq!(
        gcp["secret"]["items"][0],
        json!({"key": "gcp-service-account-key", "path": "credentials.json"})
    );
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == "/app/gcp" && m["readOnly"] == true)
    );
    assert_eq!(
        env_value(d, "ORBIT_GCP_CREDENTIALS_PATH").unwrap()["value"],
        "/app/gcp/credentials.json"
    );
    assert!(env_value(d, "ORBIT_GCP_SERVICE_ACCOUNT_KEY").is_none());
    assert_eq!(pod["containers"][0]["image"], "r/o@sha256:abc");
    assert!(
        pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            .is_array()
    );
    assert_eq!(pod["nodeSelector"]["disk"], "ssd");
    let pdb = r.find("PodDisruptionBudget", "c1").unwrap();
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert!(pdb["spec"].get("maxUnavailable").is_none());
    let sm = r.find("ServiceMonitor", "c1").unwrap();
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"]["orbit-rs/service"],
        "metrics"
    );
    let rules = &r.find("PrometheusRule", "c1").unwrap()["spec"]["groups"][0]["rules"];
    assert!(rules.as_array().unwrap().len() >= 5);
    // The chart's substitutions: this cluster's job, namespace and claims.
    let text = serde_json::to_string(rules).unwrap();
    assert!(
        text.contains(r#"up{job=\"c1-metrics\",namespace=\"ns\"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"persistentvolumeclaim=~\"data-c1-[0-9]+\""#),
        "{text}"
    );
    assert!(!text.contains("orbit-server-metrics") && !text.contains("data-orbit-server"));

    // S3 in the guides' cloud form: credentials as required secretKeyRefs of
    // credentials_secret (secrets.backendCredentials' default); plugins from
    // a ConfigMap.
    let r = render_with(
        &t,
        json!({"persistence": {"backend": "s3", "cloud": {"provider": "s3", "bucket": "b", "region": "eu-west-1",
                   "credentials_secret": "s3creds", "retry_count": 7}},
               "plugins": {"configMap": "my-plugins", "health": {"file": "h.wasm", "grants": "network"}}}),
        Inputs { default_tag: "1".into(), plugins_checksum: Some("p-sum".into()), ..Inputs::default() },
    )
    .await
    .unwrap();
    let d = r.find("Deployment", "c1").unwrap();
    assert_eq!(env_value(d, "ORBIT_S3_BUCKET").unwrap()["value"], "b");
    assert_eq!(env_value(d, "ORBIT_S3_RETRY_COUNT").unwrap()["value"], "7");
    let key = env_value(d, "ORBIT_S3_SECRET_ACCESS_KEY").unwrap();
    assert_eq!(
        key["valueFrom"]["secretKeyRef"],
        json!({"name": "s3creds", "key": "s3-secret-access-key", "optional": false})
    );
    let pod = &d["spec"]["template"];
    assert_eq!(pod["metadata"]["annotations"][PLUGINS_CHECKSUM], "p-sum");
    assert!(
        pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["configMap"]["name"] == "my-plugins")
    );
    let toml = r.find("ConfigMap", "c1-config").unwrap()["data"]["orbit.toml"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        toml.contains("health = \"/plugins/h.wasm\"")
            && toml.contains("health_grants = \"network\""),
        "{toml}"
    );
}

/// `secrets.backendCredentials` and `secrets.apiToken`, as the chart's
/// values of the same names: the `optional` flags, or no reference at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_references_follow_backend_credentials_and_api_token() {
    let t = translators();
    let s3 = |secrets: Json| {
        json!({"persistence": {"backend": "s3", "s3": {"bucket": "b", "region": "eu-west-1"}},
               "secrets": secrets,
               "monitoring": {"prometheusRule": {"enabled": true, "runbookBaseUrl": "https://wiki/rb#"}}})
    };
    let refs = |d: &Json| {
        [
            "ORBIT_API_TOKEN",
            "ORBIT_S3_ACCESS_KEY_ID",
            "ORBIT_S3_SECRET_ACCESS_KEY",
        ]
        .map(|n| env_value(d, n).map(|e| e["valueFrom"]["secretKeyRef"]["optional"].clone()))
    };
    let cases = [
        (
            json!({}),
            [Some(json!(true)), Some(json!(false)), Some(json!(false))],
        ),
        (
            json!({"backendCredentials": "optional", "apiToken": "required"}),
            [Some(json!(false)), Some(json!(true)), Some(json!(true))],
        ),
        (
            json!({"backendCredentials": "none", "apiToken": "none"}),
            [None, None, None],
        ),
    ];
    for (secrets, expected) in cases {
        let r = render_with(&t, s3(secrets.clone()), Inputs::default())
            .await
            .unwrap();
        let d = r.find("Deployment", "c1").unwrap();
        assert_eq!(refs(d), expected, "{secrets}");
        let rules = &r.find("PrometheusRule", "c1").unwrap()["spec"]["groups"][0]["rules"];
        assert!(
            rules
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["annotations"]["runbook_url"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://wiki/rb#")),
            "{rules}"
        );
    }

    // GCP: optional credentials make the key volume optional; none refuses
    // a credentials file (nothing would be mounted there) until the path is
    // emptied, as the chart does.
    let gcp = |secrets: Json, table: Json| json!({"persistence": {"backend": "gcp", "gcp": table}, "secrets": secrets});
    let r = render_with(
        &t,
        gcp(
            json!({"backendCredentials": "optional"}),
            json!({"bucketName": "b"}),
        ),
        Inputs::default(),
    )
    .await
    .unwrap();
    let d = r.find("Deployment", "c1").unwrap();
    let volumes = d["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    let key = volumes
        .iter()
        .find(|v| v["name"] == "gcp-credentials")
        .unwrap();
    assert_eq!(key["secret"]["optional"], true);
    let err = render_with(
        &t,
        gcp(
            json!({"backendCredentials": "none"}),
            json!({"bucketName": "b"}),
        ),
        Inputs::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("credentialsPath"), "{err}");
    let r = render_with(
        &t,
        gcp(
            json!({"backendCredentials": "none"}),
            json!({"bucketName": "b", "credentialsPath": ""}),
        ),
        Inputs::default(),
    )
    .await
    .unwrap();
    let d = r.find("Deployment", "c1").unwrap();
    let volumes = d["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    assert!(volumes.iter().all(|v| v["name"] != "gcp-credentials"));
    assert!(env(d).iter().all(|e| e.get("valueFrom").is_none()
        || e["valueFrom"].get("secretKeyRef").is_none()
        || e["name"] == "ORBIT_API_TOKEN"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_translator_refuses_what_the_server_would() {
    let t = translators();
    let cases = [
        // A byte size the syntax does not accept.
        (
            json!({"backend": "lsm_tree", "lsmTree": {"memtableSize": "64XB"}}),
            "64XB",
        ),
        // The guides' free-form config: a count out of the catalogue's bounds.
        (
            json!({"backend": "lsm_tree", "local": {"backend_type": "lsm_tree", "config": {"max_memtables": "1"}}}),
            "max_memtables",
        ),
        // A required setting missing.
        (
            json!({"backend": "azure", "azure": {"accountName": "a"}}),
            "ORBIT_AZURE_CONTAINER_NAME",
        ),
        // Plain http with SSL on.
        (
            json!({"backend": "s3", "cloud": {"provider": "s3", "bucket": "b", "endpoint": "http://minio:9000"}}),
            "ORBIT_S3_ENABLE_SSL",
        ),
        // Not a backend.
        (json!({"backend": "etcd"}), "spec.persistence.backend"),
    ];
    for (persistence, expected) in cases {
        let err = render_with(&t, json!({"persistence": persistence}), Inputs::default())
            .await
            .unwrap_err();
        match err {
            ResolveError::Invalid(d) => {
                let text = d.join("; ");
                assert!(text.contains(expected), "{expected}: {text}");
            }
            e => panic!("{expected}: {e}"),
        }
    }
    // Unknown keys of the guides' sections are warnings, not errors.
    let c = cluster(json!({"persistence": {"backend": "lsm_tree",
        "local": {"backend_type": "lsm_tree", "write_buffer_size": 268435456}}}));
    let r = t.resolve(&c, None).await.unwrap();
    assert!(
        r.warnings.iter().any(|w| w.contains("write_buffer_size")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn several_local_replicas_are_refused_without_the_opt_in() {
    let c = cluster(json!({"replicas": 3, "persistence": {"backend": "rocksdb"}}));
    let (reason, msg) = render::refusal(&c, BackendKind::Rocksdb).unwrap();
    assert_eq!(reason, "IndependentReplicasRefused");
    assert!(msg.contains("spec.allowIndependentReplicas"), "{msg}");
    let c = cluster(
        json!({"replicas": 3, "allowIndependentReplicas": true, "persistence": {"backend": "rocksdb"}}),
    );
    assert!(render::refusal(&c, BackendKind::Rocksdb).is_none());
    let c = cluster(json!({"replicas": 3, "persistence": {"backend": "s3"}}));
    assert!(render::refusal(&c, BackendKind::S3).is_none());
}

#[test]
fn every_backend_setting_has_a_typed_key_in_the_schema() {
    for kind in BackendKind::ALL {
        let schema = ss::table_schema(Table::Backend(kind), "");
        for s in BackendConfig::settings(kind) {
            let key = ss::camel(s.toml_key());
            let present = schema["properties"].get(&key).is_some();
            assert_eq!(present, s.kind != ValueKind::Secret, "{kind} {key}");
        }
    }
    let lsm = ss::table_schema(Table::Backend(BackendKind::LsmTree), "");
    assert_eq!(lsm["properties"]["maxMemtables"]["minimum"], 2);
    assert_eq!(
        lsm["properties"]["memtableSizeLimit"]["x-kubernetes-int-or-string"],
        true
    );
    let server = ss::table_schema(ss::SERVER, "");
    assert!(server["properties"].get("dataDir").is_none());
    assert!(server["properties"].get("maxKeyBytes").is_some());
    let plugins = ss::table_schema(ss::PLUGINS, "");
    assert!(plugins["properties"].get("translator").is_none());
    assert!(plugins["properties"].get("timeout").is_some());
}

#[test]
fn backoff_and_quantities() {
    assert_eq!(backoff(0), Duration::from_secs(5));
    assert_eq!(backoff(1), Duration::from_secs(10));
    assert_eq!(backoff(10), Duration::from_secs(300));
    assert!(parse_quantity("20Gi") > parse_quantity("10Gi"));
    assert_eq!(parse_quantity("1Ki"), Some(1024.0));
    assert_eq!(parse_quantity("1G"), Some(1e9));
    assert_eq!(parse_quantity("x"), None);
}

/// The chart's rollout, pod, service, monitoring and network knobs, each as
/// the chart renders it (helm/orbit-rs/templates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_knobs_reach_the_objects() {
    let t = translators();
    let inputs = || Inputs {
        default_tag: "9.9.9".into(),
        secret_checksum: None,
        plugins_checksum: None,
    };
    let spec = json!({
        "persistence": {"backend": "rocksdb"},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
        "minReadySeconds": 15,
        "terminationGracePeriodSeconds": 120,
        "preStopSleepSeconds": 0,
        "envFrom": [{"configMapRef": {"name": "extra"}}],
        "extraVolumes": [{"name": "scratch", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        "extraContainers": [{"name": "shipper", "image": "busybox"}],
        "scheduling": {"zoneSpread": true},
        "storage": {"existingClaim": "my-data"},
        "serviceType": "LoadBalancer",
        "serviceAnnotations": {"lb.example/internal": "true"},
        "loadBalancerSourceRanges": ["10.0.0.0/8"],
        "podDisruptionBudget": {"unhealthyPodEvictionPolicy": "AlwaysAllow"},
        "monitoring": {
            "serviceMonitor": {"enabled": true, "scrapeTimeout": "5s",
                "relabelings": [{"action": "labeldrop", "regex": "pod"}],
                "metricRelabelings": [{"action": "drop", "regex": "x"}]},
            "prometheusRule": {"enabled": true, "extraRules": [{"alert": "Mine", "expr": "vector(1)"}]},
        },
        "networkPolicy": {"enabled": true, "apiFrom": [{"podSelector": {"matchLabels": {"role": "actor"}}}]},
    });
    let r = render_with(&t, spec, inputs()).await.unwrap();
    let sts = r.find("StatefulSet", "c1").unwrap();
    assert_eq!(
        sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
        1
    );
    assert_eq!(sts["spec"]["minReadySeconds"], 15);
    assert!(sts["spec"].get("volumeClaimTemplates").is_none());
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 120);
    let server = &pod["containers"][0];
    assert!(
        server.get("lifecycle").is_none(),
        "preStopSleepSeconds 0: no hook"
    );
    assert_eq!(server["envFrom"][0]["configMapRef"]["name"], "extra");
    assert!(
        server["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/scratch")
    );
    assert_eq!(pod["containers"][1]["name"], "shipper");
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(volumes.iter().any(|v| v["name"] == "scratch"));
    let data = volumes.iter().find(|v| v["name"] == "data").unwrap();
    assert_eq!(data["persistentVolumeClaim"]["claimName"], "my-data");
    let spread = &pod["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(spread["whenUnsatisfiable"], "ScheduleAnyway");
    let svc = r.find("Service", "c1").unwrap();
    assert_eq!(
        svc["metadata"]["annotations"]["lb.example/internal"],
        "true"
    );
    assert_eq!(svc["spec"]["loadBalancerSourceRanges"][0], "10.0.0.0/8");
    let pdb = r.find("PodDisruptionBudget", "c1").unwrap();
    assert_eq!(pdb["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow");
    let sm = r.find("ServiceMonitor", "c1").unwrap();
    assert_eq!(sm["spec"]["endpoints"][0]["scrapeTimeout"], "5s");
    assert_eq!(
        sm["spec"]["endpoints"][0]["relabelings"][0]["action"],
        "labeldrop"
    );
    assert_eq!(
        sm["spec"]["endpoints"][0]["metricRelabelings"][0]["action"],
        "drop"
    );
    let rules = r.find("PrometheusRule", "c1").unwrap()["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rules.last().unwrap()["alert"], "Mine");
    assert!(rules.len() > 1, "the shipped alerts stay");
    let np = r.find("NetworkPolicy", "c1").unwrap();
    assert_eq!(
        np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["role"],
        "actor"
    );
    assert_eq!(
        np["spec"]["ingress"][1]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );

    // The defaults, as the chart's: preStop 5 s, grace 60 s, no spread, a
    // claim template, no NetworkPolicy.
    let r = render_with(&t, json!({"persistence": {"backend": "rocksdb"}}), inputs())
        .await
        .unwrap();
    let sts = r.find("StatefulSet", "c1").unwrap();
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        5
    );
    assert_eq!(pod["terminationGracePeriodSeconds"], 60);
    assert!(pod.get("topologySpreadConstraints").is_none());
    assert!(sts["spec"].get("minReadySeconds").is_none());
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "data"
    );
    assert!(r.find("NetworkPolicy", "c1").is_none());
}

#[test]
fn claims_and_strategies_of_the_other_workload_kind_are_refused() {
    let shared = cluster(
        json!({"persistence": {"backend": "lsm_tree"}, "replicas": 2,
        "allowIndependentReplicas": true, "storage": {"existingClaim": "d"}}),
    );
    let (reason, msg) = render::refusal(&shared, BackendKind::LsmTree).unwrap();
    assert_eq!(reason, "SharedClaimRefused");
    assert!(msg.contains("spec.storage.existingClaim=d"), "{msg}");
    let recreate = cluster(json!({"persistence": {"backend": "lsm_tree"},
        "updateStrategy": {"type": "Recreate"}}));
    let (reason, msg) = render::refusal(&recreate, BackendKind::LsmTree).unwrap();
    assert_eq!(reason, "UpdateStrategyRefused");
    assert!(msg.contains("runs a StatefulSet"), "{msg}");
    let partition = cluster(json!({"persistence": {"backend": "s3"},
        "updateStrategy": {"rollingUpdate": {"partition": 1}}}));
    let (_, msg) = render::refusal(&partition, BackendKind::S3).unwrap();
    assert!(msg.contains("runs a Deployment"), "{msg}");
    let fine = cluster(json!({"persistence": {"backend": "s3"},
        "updateStrategy": {"type": "Recreate"}}));
    assert_eq!(render::refusal(&fine, BackendKind::S3), None);
}
