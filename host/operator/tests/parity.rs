//! Parity with the Helm chart: for each backend, the operator's render of
//! `examples/orbitcluster-<backend>.yaml` and `helm template` of
//! `examples/values-<backend>.yaml` give the same workload kind, replicas,
//! pod labels, ports, probes, security contexts, resources, volumes, volume
//! claims, affinity, the same non-backend variables and the same effective
//! backend configuration; object names are normalised (the chart's
//! `orbit-server` and the resource's name both become `NAME`).
//!
//! The chart carries backend settings in orbit.toml or in `orbitServer.env`,
//! the operator in the variables `render-env` gives: so the backend
//! configuration is compared as the server would see it, by running the real
//! translator on each side's environment and orbit.toml.
//!
//! Needs a real helm: `ORBIT_HELM_BIN` (scripts/check-deploy.sh passes the
//! pinned helm it fetches). Without it the test fails saying so; it is
//! `#[ignore]`d in the plain `cargo test` run because a clean machine has no
//! helm until check-deploy.sh fetches it, and check-deploy.sh runs it with
//! `--include-ignored`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use orbit_config_syntax::{BackendConfig, BackendKind, Scope};
use orbit_operator::offline;
use orbit_operator::translate::Translators;
use orbit_plugin_runtime::{convert, types as wit};
use orbit_storage::SecretBindings;
use serde_json::{Value as Json, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn helm() -> PathBuf {
    match std::env::var_os("ORBIT_HELM_BIN") {
        Some(p) if Path::new(&p).is_file() => PathBuf::from(p),
        Some(p) => panic!("ORBIT_HELM_BIN={} is not a file", Path::new(&p).display()),
        None => panic!(
            "the parity test needs a real helm: set ORBIT_HELM_BIN (scripts/check-deploy.sh fetches the pinned helm v4.1.4 into target/deploy-tools/helm/helm and runs this test with it)"
        ),
    }
}

fn helm_template(backend: &str) -> Vec<Json> {
    let out = Command::new(helm())
        .current_dir(root())
        .args([
            "template",
            "orbit-rs",
            "helm/orbit-rs",
            "--namespace",
            "orbit-rs",
            "-f",
        ])
        .arg(format!("examples/values-{backend}.yaml"))
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm template {backend}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // helm writes file modes as YAML 1.1 octal (`0440`); read them as the
    // API server does.
    let text: String = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| match l.trim_start().strip_prefix("defaultMode: 0") {
            Some(octal) if !octal.is_empty() => {
                let indent = &l[..l.len() - l.trim_start().len()];
                format!(
                    "{indent}defaultMode: {}\n",
                    u32::from_str_radix(octal, 8).unwrap()
                )
            }
            _ => format!("{l}\n"),
        })
        .collect();
    text.split("\n---")
        .filter_map(|d| serde_yaml::from_str::<Json>(d).ok())
        .filter(|d| d.is_object())
        .collect()
}

/// The resource's name -> `orbit-server`, the chart's name of the objects
/// (release orbit-rs); the chart's own objects are left as they are.
fn normalise(v: &Json, name: &str) -> Json {
    match v {
        Json::String(s) => Json::String(s.replace(name, "orbit-server")),
        Json::Array(a) => Json::Array(a.iter().map(|x| normalise(x, name)).collect()),
        Json::Object(o) => Json::Object(
            o.iter()
                .map(|(k, x)| (k.replace(name, "orbit-server"), normalise(x, name)))
                .collect(),
        ),
        v => v.clone(),
    }
}

fn labels(l: &Json) -> Json {
    let mut l = l.clone();
    if let Some(o) = l.as_object_mut() {
        o.remove("app.kubernetes.io/managed-by");
        o.remove("app.kubernetes.io/instance");
        o.remove("helm.sh/chart");
        o.remove("app.kubernetes.io/version");
    }
    l
}

fn annotations(a: &Json) -> Json {
    let mut a = a.clone();
    if let Some(o) = a.as_object_mut() {
        o.retain(|k, _| !k.starts_with("checksum/") && !k.starts_with("orbit.turingworks.com/"));
    }
    a
}

fn is_backend_setting(name: &str) -> bool {
    orbit_config_syntax::lookup(name).is_some_and(|s| matches!(s.scope, Scope::Backend(_)))
}

/// The container's variables that are not backend settings, by name.
fn other_env(container: &Json) -> BTreeMap<String, Json> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| !is_backend_setting(e["name"].as_str().unwrap_or_default()))
        .map(|e| {
            let mut e = e.clone();
            let name = e["name"].as_str().unwrap_or_default().to_string();
            e.as_object_mut().unwrap().remove("name");
            (name, e)
        })
        .collect()
}

/// The container's backend settings that come from a Secret (name, key,
/// optional), by variable.
fn secret_env(container: &Json) -> BTreeMap<String, Json> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| is_backend_setting(e["name"].as_str().unwrap_or_default()))
        .filter(|e| e.get("valueFrom").is_some())
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["valueFrom"].clone(),
            )
        })
        .collect()
}

/// The backend configuration the server would resolve from the container's
/// variables and the ConfigMap's orbit.toml (secrets withheld).
async fn effective(
    translators: &Translators,
    kind: BackendKind,
    container: &Json,
    toml: &str,
) -> BackendConfig {
    let mut env = Vec::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = match e["value"].as_str() {
            Some(v) if e.get("valueFrom").is_none() => wit::EnvValue::Plain(v.into()),
            _ if name.starts_with("POD_") || name == "NODE_NAME" => continue,
            _ => wit::EnvValue::Withheld,
        };
        env.push(wit::EnvVar { name, value });
    }
    let context = wit::DeploymentContext {
        env,
        toml: Some(toml.to_string()),
        facts: wit::HostFacts {
            dirs: vec![wit::DirFacts {
                path: "/app/data".into(),
                exists: true,
                writable: true,
                free_bytes: None,
                total_bytes: None,
                mount_point: true,
            }],
            memory_limit_bytes: None,
            cpu_count: 1,
            pod: wit::PodIdentity {
                pod_name: None,
                pod_namespace: None,
                pod_ip: None,
                node_name: None,
                hostname: None,
            },
        },
    };
    let mut bindings = SecretBindings::default();
    for s in orbit_config_syntax::settings() {
        bindings.allow(s.env, orbit_storage::SecretRef::Env(s.env.into()));
        if !s.default.is_empty() {
            bindings.allow(s.env, orbit_storage::SecretRef::File(s.default.into()));
        }
    }
    let t = translators
        .default_plugin()
        .translate(convert::backend_kind_to_wit(kind), &context, &bindings)
        .await
        .unwrap();
    let errors: Vec<String> = t.diagnostics.iter().map(ToString::to_string).collect();
    t.config.unwrap_or_else(|| panic!("{kind}: {errors:?}"))
}

fn find<'a>(objs: &'a [Json], kind: &str) -> Vec<&'a Json> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

/// What must be equal in the pod template.
fn pod_view(template: &Json, name: &str) -> Json {
    let t = normalise(template, name);
    let spec = &t["spec"];
    let c = &spec["containers"][0];
    let mut volumes = spec["volumes"].clone();
    // An emptyDir's size limit and a Secret volume's mode are compared as
    // the API server stores them (the chart writes 0440 as octal YAML).
    for v in volumes.as_array_mut().into_iter().flatten() {
        if let Some(o) = v.as_object_mut() {
            o.remove("name").map(|n| o.insert("name".into(), n));
        }
    }
    json!({
        "labels": labels(&t["metadata"]["labels"]),
        "annotations": annotations(&t["metadata"]["annotations"]),
        "serviceAccountName": spec["serviceAccountName"],
        "automountServiceAccountToken": spec["automountServiceAccountToken"],
        "enableServiceLinks": spec["enableServiceLinks"],
        "terminationGracePeriodSeconds": spec["terminationGracePeriodSeconds"],
        "securityContext": spec["securityContext"],
        "affinity": labels_in_affinity(&spec["affinity"]),
        "imagePullSecrets": spec["imagePullSecrets"],
        "volumes": volumes,
        "container": {
            "name": c["name"],
            "image_repository": c["image"].as_str().unwrap_or_default().split(':').next(),
            "imagePullPolicy": c["imagePullPolicy"],
            "args": c["args"],
            "ports": c["ports"],
            "resources": c["resources"],
            "securityContext": c["securityContext"],
            "startupProbe": c["startupProbe"],
            "livenessProbe": c["livenessProbe"],
            "readinessProbe": c["readinessProbe"],
            "lifecycle": c["lifecycle"],
            "volumeMounts": c["volumeMounts"],
        },
    })
}

fn labels_in_affinity(a: &Json) -> Json {
    let mut a = a.clone();
    let p = "/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/0/podAffinityTerm/labelSelector/matchLabels";
    if let Some(m) = a.pointer_mut(p) {
        *m = labels(m);
    }
    a
}

fn workload_view(w: &Json, name: &str) -> Json {
    let w = normalise(w, name);
    let s = &w["spec"];
    let mut claims = s["volumeClaimTemplates"].clone();
    for c in claims.as_array_mut().into_iter().flatten() {
        c["metadata"]["labels"] = labels(&c["metadata"]["labels"]);
    }
    json!({
        "kind": w["kind"],
        "replicas": s["replicas"],
        "serviceName": s["serviceName"],
        "podManagementPolicy": s["podManagementPolicy"],
        "updateStrategy": s["updateStrategy"],
        "strategy": s["strategy"],
        "retention": s["persistentVolumeClaimRetentionPolicy"],
        "selector": labels(&s["selector"]["matchLabels"]),
        "labels": labels(&w["metadata"]["labels"]),
        "volumeClaimTemplates": claims,
    })
}

fn service_view(objs: &[Json], name: &str) -> Json {
    let mut out: Vec<Json> = find(objs, "Service")
        .into_iter()
        .map(|s| {
            let s = normalise(s, name);
            json!({
                "name": s["metadata"]["name"],
                "labels": labels(&s["metadata"]["labels"]),
                "type": s["spec"]["type"],
                "clusterIP": s["spec"]["clusterIP"],
                "publishNotReadyAddresses": s["spec"]["publishNotReadyAddresses"],
                "selector": labels(&s["spec"]["selector"]),
                "ports": s["spec"]["ports"],
            })
        })
        .collect();
    out.sort_by_key(|s| s["name"].to_string());
    Json::Array(out)
}

fn pdb_view(objs: &[Json], name: &str) -> Json {
    find(objs, "PodDisruptionBudget")
        .first()
        .map(|p| {
            let p = normalise(p, name);
            json!({"maxUnavailable": p["spec"]["maxUnavailable"], "minAvailable": p["spec"]["minAvailable"],
                "selector": labels(&p["spec"]["selector"]["matchLabels"])})
        })
        .unwrap_or(Json::Null)
}

/// Where two values differ: one line per differing path (leaves, or a key
/// present on one side only).
fn paths(a: &Json, b: &Json, at: String, out: &mut Vec<String>) {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Json::Null),
                    y.get(k).unwrap_or(&Json::Null),
                );
                paths(va, vb, format!("{at}.{k}"), out);
            }
        }
        (Json::Array(x), Json::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                paths(va, vb, format!("{at}[{i}]"), out);
            }
        }
        (a, b) if a != b => out.push(format!(
            "    {at}: chart {} / operator {}",
            serde_json::to_string(a).unwrap(),
            serde_json::to_string(b).unwrap()
        )),
        _ => {}
    }
}

fn diff(what: &str, backend: &str, chart: &Json, operator: &Json) -> Option<String> {
    (chart != operator).then(|| {
        let mut out = Vec::new();
        paths(chart, operator, String::new(), &mut out);
        format!("{backend}: {what} differs\n{}", out.join("\n"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real helm (ORBIT_HELM_BIN): run by scripts/check-deploy.sh with --include-ignored"]
async fn operator_and_chart_render_the_same_pods_for_every_backend() {
    let _ = helm();
    let translators = Translators::new(std::env::temp_dir().join("orbit-operator-parity")).unwrap();
    let mut failures = Vec::new();
    for kind in BackendKind::ALL {
        let b = kind.name();
        let chart = helm_template(b);
        let path = root().join(format!("examples/orbitcluster-{b}.yaml"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let cluster = offline::parse(&text, "orbit-rs").unwrap();
        let name = cluster.metadata.name.clone().unwrap();
        let ours = offline::render_cluster(&translators, &cluster)
            .await
            .unwrap_or_else(|e| panic!("{b}: {e}"))
            .objects;

        let workload_of = |objs: &[Json]| {
            objs.iter()
                .find(|o| o["kind"] == "StatefulSet" || o["kind"] == "Deployment")
                .cloned()
                .unwrap_or_else(|| panic!("{b}: no workload"))
        };
        let (cw, ow) = (workload_of(&chart), workload_of(&ours));
        failures.extend(diff(
            "workload",
            b,
            &workload_view(&cw, "orbit-server"),
            &workload_view(&ow, &name),
        ));
        let (ct, ot) = (&cw["spec"]["template"], &ow["spec"]["template"]);
        failures.extend(diff(
            "pod template",
            b,
            &pod_view(ct, "orbit-server"),
            &pod_view(ot, &name),
        ));
        let (cc, oc) = (&ct["spec"]["containers"][0], &ot["spec"]["containers"][0]);
        let cenv = normalise(&json!(other_env(cc)), "orbit-server");
        let oenv = normalise(&json!(other_env(oc)), &name);
        failures.extend(diff(
            "environment (besides backend settings)",
            b,
            &cenv,
            &oenv,
        ));
        let csec = normalise(&json!(secret_env(cc)), "orbit-server");
        let osec = normalise(&json!(secret_env(oc)), &name);
        failures.extend(diff("backend settings from the Secret", b, &csec, &osec));
        failures.extend(diff(
            "Services",
            b,
            &service_view(&chart, "orbit-server"),
            &service_view(&ours, &name),
        ));
        failures.extend(diff(
            "PodDisruptionBudget",
            b,
            &pdb_view(&chart, "orbit-server"),
            &pdb_view(&ours, &name),
        ));

        let toml_of = |objs: &[Json], cm: &str| {
            objs.iter()
                .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == cm)
                .and_then(|o| o["data"]["orbit.toml"].as_str())
                .unwrap_or_else(|| panic!("{b}: no ConfigMap {cm}"))
                .to_string()
        };
        let chart_cfg = effective(
            &translators,
            kind,
            cc,
            &toml_of(&chart, "orbit-server-config"),
        )
        .await;
        let our_cfg = effective(
            &translators,
            kind,
            oc,
            &toml_of(&ours, &format!("{name}-config")),
        )
        .await;
        if chart_cfg != our_cfg {
            failures.push(format!(
                "{b}: effective backend configuration differs\n  chart:    {chart_cfg:?}\n  operator: {our_cfg:?}"
            ));
        }
        // The host settings of orbit.toml agree too, defaults filled in.
        let host = |text: &str| -> BTreeMap<String, String> {
            let doc: toml::Table = toml::from_str(text).unwrap();
            orbit_config_syntax::settings()
                .iter()
                .filter(|s| matches!(s.scope, Scope::Server | Scope::Health | Scope::Plugins))
                .filter(|s| !s.toml.is_empty())
                .map(|s| {
                    let (table, key) = s.toml.split_once('.').unwrap();
                    let raw = doc
                        .get(table)
                        .and_then(|t| t.get(key))
                        .map(|v| match v {
                            toml::Value::String(s) => s.clone(),
                            v => v.to_string(),
                        })
                        .unwrap_or_else(|| s.default.to_string());
                    let parsed = s.parse(&raw).map(|v| format!("{v:?}")).unwrap_or(raw);
                    (s.toml.to_string(), parsed)
                })
                .collect()
        };
        let (ch, oh) = (
            host(&toml_of(&chart, "orbit-server-config")),
            host(&toml_of(&ours, &format!("{name}-config"))),
        );
        failures.extend(diff("orbit.toml host settings", b, &json!(ch), &json!(oh)));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
