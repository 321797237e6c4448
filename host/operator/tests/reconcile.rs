//! The reconcile loop against a mocked API server (`tower-test` behind
//! kube's real client): a small in-memory store answers GET, LIST, server-
//! side apply, merge patches (status included), DELETE and Event POSTs, and
//! records every request. Each case checks the requests the operator made.
//!
//! What it cannot show (there is no API server here): apply merging, owner
//! garbage collection, the StatefulSet controller, CEL rules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use orbit_operator::crd::OrbitCluster;
use orbit_operator::reconcile::{Context, reconcile};
use orbit_operator::translate::Translators;
use serde_json::{Value as Json, json};

const NS: &str = "orbit-rs";
const CLUSTER: &str = "/apis/orbit.turingworks.com/v1/namespaces/orbit-rs/orbitclusters/orbit";
const STS: &str = "/apis/apps/v1/namespaces/orbit-rs/statefulsets/orbit";

#[derive(Clone, Debug)]
struct Call {
    method: Method,
    path: String,
    query: String,
    body: Json,
}

impl Call {
    fn is_write(&self) -> bool {
        self.method != Method::GET
    }
}

#[derive(Default)]
struct Store {
    objects: BTreeMap<String, Json>,
    calls: Vec<Call>,
}

type Shared = Arc<Mutex<Store>>;

fn merge(into: &mut Json, patch: &Json) {
    match (into, patch) {
        (Json::Object(a), Json::Object(b)) => {
            for (k, v) in b {
                if v.is_null() {
                    a.remove(k);
                } else {
                    merge(a.entry(k.clone()).or_insert(Json::Null), v);
                }
            }
        }
        (a, b) => *a = b.clone(),
    }
}

fn status(code: StatusCode, reason: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": reason, "code": code.as_u16(), "message": reason});
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn ok(v: &Json) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

fn labels_match(obj: &Json, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        obj["metadata"]["labels"][k] == v
    })
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            v.replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/")
        })
    })
}

async fn answer(store: &Shared, req: Request<Body>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let bytes = req.into_body().collect().await.unwrap().to_bytes();
    let body: Json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
    let mut s = store.lock().unwrap();
    s.calls.push(Call {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        body: body.clone(),
    });
    match method {
        Method::GET => {
            if let Some(o) = s.objects.get(&path) {
                return ok(o);
            }
            // A collection: LIST with a label selector.
            let selector = query_param(&query, "labelSelector").unwrap_or_default();
            let items: Vec<Json> = s
                .objects
                .iter()
                .filter(|(p, _)| p.rsplit_once('/').map(|(dir, _)| dir) == Some(path.as_str()))
                .filter(|(_, o)| labels_match(o, &selector))
                .map(|(_, o)| o.clone())
                .collect();
            if path.ends_with("persistentvolumeclaims") {
                return ok(
                    &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaimList",
                    "metadata": {"resourceVersion": "1"}, "items": items}),
                );
            }
            status(StatusCode::NOT_FOUND, "NotFound")
        }
        Method::PATCH => {
            let (target, is_status) = match path.strip_suffix("/status") {
                Some(p) => (p.to_string(), true),
                None => (path.clone(), false),
            };
            let apply = query.contains("fieldManager=orbit-operator") && !is_status;
            let existing = s.objects.get(&target).cloned();
            let mut obj = match (existing, apply) {
                (Some(o), false) => o,
                (None, false) => return status(StatusCode::NOT_FOUND, "NotFound"),
                (Some(o), true) => {
                    // Apply: the operator owns every field it sets.
                    let mut fresh = body.clone();
                    fresh["metadata"]["generation"] =
                        json!(o["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
                    fresh
                }
                (None, true) => {
                    let mut fresh = body.clone();
                    fresh["metadata"]["generation"] = json!(1);
                    fresh
                }
            };
            if !apply {
                merge(&mut obj, &body);
            }
            s.objects.insert(target, obj.clone());
            ok(&obj)
        }
        Method::DELETE => match s.objects.remove(&path) {
            Some(o) => ok(&o),
            None => status(StatusCode::NOT_FOUND, "NotFound"),
        },
        Method::POST => {
            let mut b = body.clone();
            b["metadata"]["resourceVersion"] = json!("1");
            Response::builder()
                .status(StatusCode::CREATED)
                .body(Body::from(serde_json::to_vec(&b).unwrap()))
                .unwrap()
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
    }
}

/// A kube client whose requests `store` answers.
fn client(store: Shared) -> Client {
    let service = tower::service_fn(move |req: Request<Body>| {
        let store = store.clone();
        async move { Ok::<_, std::convert::Infallible>(answer(&store, req).await) }
    });
    Client::new(service, NS)
}

struct Harness {
    store: Shared,
    ctx: Arc<Context>,
}

impl Harness {
    fn cluster(&self) -> OrbitCluster {
        let s = self.store.lock().unwrap();
        serde_json::from_value(s.objects[CLUSTER].clone()).unwrap()
    }

    /// Changes the stored resource's spec as `kubectl apply` would (a new
    /// generation).
    fn edit(&self, f: impl FnOnce(&mut Json)) {
        let mut s = self.store.lock().unwrap();
        let c = s.objects.get_mut(CLUSTER).unwrap();
        f(&mut c["spec"]);
        let g = c["metadata"]["generation"].as_i64().unwrap();
        c["metadata"]["generation"] = json!(g + 1);
    }

    /// Reconciles the stored resource; the requests it made.
    async fn reconcile(&self) -> Vec<Call> {
        let before = self.store.lock().unwrap().calls.len();
        reconcile(Arc::new(self.cluster()), self.ctx.clone())
            .await
            .unwrap();
        self.store.lock().unwrap().calls[before..].to_vec()
    }

    fn condition(&self, type_: &str) -> Json {
        let s = self.store.lock().unwrap();
        s.objects[CLUSTER]["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == type_).cloned())
            .unwrap_or(Json::Null)
    }
}

fn writes(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.is_write())
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

fn applied<'a>(calls: &'a [Call], path: &str) -> Option<&'a Json> {
    calls
        .iter()
        .find(|c| {
            c.method == Method::PATCH
                && c.path == path
                && c.query.contains("fieldManager=orbit-operator")
        })
        .map(|c| &c.body)
}

fn env_of(sts: &Json, name: &str) -> Option<String> {
    sts["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(str::to_string))
}

fn new_cluster() -> Json {
    json!({
        "apiVersion": "orbit.turingworks.com/v1",
        "kind": "OrbitCluster",
        "metadata": {"name": "orbit", "namespace": NS, "uid": "1234-abcd", "generation": 1},
        "spec": {
            "replicas": 1,
            "storage": {"size": "10Gi"},
            "persistence": {"backend": "lsm_tree", "lsmTree": {"maxMemtables": 12}},
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_requests_for_each_kind_of_change() {
    let dir = tempfile::tempdir().unwrap();
    let translators = Arc::new(Translators::new(dir.path().to_path_buf()).unwrap());
    let store: Shared = Default::default();
    store
        .lock()
        .unwrap()
        .objects
        .insert(CLUSTER.into(), new_cluster());
    let h = Harness {
        ctx: Arc::new(Context::new(
            client(store.clone()),
            translators,
            "test".into(),
        )),
        store,
    };

    // 1. A new resource: every object applied with our field manager and an
    //    owner reference, then the status.
    let calls = h.reconcile().await;
    let w = writes(&calls);
    for path in [
        "/api/v1/namespaces/orbit-rs/serviceaccounts/orbit",
        "/api/v1/namespaces/orbit-rs/configmaps/orbit-config",
        "/api/v1/namespaces/orbit-rs/services/orbit",
        "/api/v1/namespaces/orbit-rs/services/orbit-headless",
        "/api/v1/namespaces/orbit-rs/services/orbit-metrics",
        STS,
        "/apis/policy/v1/namespaces/orbit-rs/poddisruptionbudgets/orbit",
    ] {
        let body = applied(&calls, path).unwrap_or_else(|| panic!("{path} not applied: {w:#?}"));
        assert_eq!(
            body["metadata"]["ownerReferences"][0]["uid"], "1234-abcd",
            "{path}"
        );
        assert_eq!(body["metadata"]["ownerReferences"][0]["controller"], true);
    }
    let call = calls
        .iter()
        .find(|c| c.path == STS && c.method == Method::PATCH)
        .unwrap();
    assert!(call.query.contains("force=true"), "{}", call.query);
    let sts = applied(&calls, STS).unwrap();
    assert_eq!(
        env_of(sts, "ORBIT_LSM_MAX_MEMTABLES").as_deref(),
        Some("12")
    );
    assert_eq!(
        env_of(sts, "ORBIT_LSM_DATA_DIR").as_deref(),
        Some("/app/data/lsm_tree")
    );
    assert!(w.contains(&format!("PATCH {CLUSTER}/status")), "{w:#?}");
    assert!(
        !calls
            .iter()
            .any(|c| c.path.contains("deployments") && c.is_write())
    );
    let c = h.cluster();
    let st = c.status.clone().unwrap();
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(st.backend.as_deref(), Some("lsm_tree"));
    assert_eq!(st.workload_kind.as_deref(), Some("StatefulSet"));
    assert_eq!(h.condition("Ready")["reason"], "PodsNotReady");
    assert_eq!(h.condition("Progressing")["status"], "True");

    // 2. Unchanged: reads only.
    let calls = h.reconcile().await;
    assert!(writes(&calls).is_empty(), "{:#?}", writes(&calls));
    assert!(!calls.is_empty());

    // 3. A changed backend setting: a new pod template, nothing else.
    h.edit(|s| s["persistence"]["lsmTree"]["maxMemtables"] = json!(16));
    let calls = h.reconcile().await;
    let sts = applied(&calls, STS).expect("StatefulSet re-applied");
    assert_eq!(
        env_of(sts, "ORBIT_LSM_MAX_MEMTABLES").as_deref(),
        Some("16")
    );
    let w = writes(&calls);
    assert_eq!(
        w,
        vec![format!("PATCH {STS}"), format!("PATCH {CLUSTER}/status")],
        "{w:#?}"
    );

    // 3b. An optional object switched off: the one this cluster owns is
    //     deleted (garbage collection acts only when the cluster goes).
    h.edit(|s| s["podDisruptionBudget"] = json!({"enabled": false}));
    let calls = h.reconcile().await;
    let pdb = "/apis/policy/v1/namespaces/orbit-rs/poddisruptionbudgets/orbit";
    assert!(
        writes(&calls).contains(&format!("DELETE {pdb}")),
        "{:#?}",
        writes(&calls)
    );
    let calls = h.reconcile().await;
    assert!(writes(&calls).is_empty(), "{:#?}", writes(&calls));

    // 3c. existingClaim set once the StatefulSet exists: refused (its claim
    //     template is immutable), nothing applied; removed again, it runs.
    h.edit(|s| s["storage"]["existingClaim"] = json!("mine"));
    let calls = h.reconcile().await;
    let w = writes(&calls);
    assert!(
        w.iter()
            .all(|x| x.ends_with("/status") || x.contains("/events")),
        "{w:#?}"
    );
    assert_eq!(h.condition("Degraded")["reason"], "ClaimChangeRefused");
    h.edit(|s| {
        s["storage"]
            .as_object_mut()
            .unwrap()
            .remove("existingClaim");
    });
    h.reconcile().await;
    assert_eq!(h.condition("Degraded")["status"], "False");

    // 4. A larger volume: PVCs grown, the StatefulSet deleted with its pods
    //    orphaned, then re-created with the new claim template.
    {
        let mut s = h.store.lock().unwrap();
        s.objects.insert(
            "/api/v1/namespaces/orbit-rs/persistentvolumeclaims/data-orbit-0".into(),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data-orbit-0", "namespace": NS, "labels": {
                    "app.kubernetes.io/name": "orbit-rs", "app.kubernetes.io/instance": "orbit",
                    "app.kubernetes.io/component": "server"}},
                "spec": {"resources": {"requests": {"storage": "10Gi"}}}}),
        );
    }
    h.edit(|s| s["storage"]["size"] = json!("20Gi"));
    let calls = h.reconcile().await;
    let w = writes(&calls);
    let pvc = "/api/v1/namespaces/orbit-rs/persistentvolumeclaims/data-orbit-0";
    let i_pvc = w
        .iter()
        .position(|x| x == &format!("PATCH {pvc}"))
        .expect("PVC patched");
    let i_del = w
        .iter()
        .position(|x| x == &format!("DELETE {STS}"))
        .expect("StatefulSet deleted");
    let i_apply = w
        .iter()
        .position(|x| x == &format!("PATCH {STS}"))
        .expect("StatefulSet applied");
    assert!(i_pvc < i_del && i_del < i_apply, "{w:#?}");
    let del = calls.iter().find(|c| c.method == Method::DELETE).unwrap();
    assert_eq!(del.body["propagationPolicy"], "Orphan", "{:?}", del.body);
    let pvc_patch = calls.iter().find(|c| c.path == pvc).unwrap();
    assert_eq!(
        pvc_patch.body["spec"]["resources"]["requests"]["storage"],
        "20Gi"
    );
    let sts = applied(&calls, STS).unwrap();
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "20Gi"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.method == Method::POST && c.path.contains("events"))
    );

    // 5. A switch from a local to a cloud backend: refused, nothing applied.
    h.edit(|s| {
        s["persistence"] = json!({"backend": "s3", "s3": {"bucket": "b"}});
    });
    let calls = h.reconcile().await;
    let w = writes(&calls);
    assert!(
        w.iter()
            .all(|x| x.ends_with("/status") || x.contains("/events")),
        "{w:#?}"
    );
    let degraded = h.condition("Degraded");
    assert_eq!(degraded["status"], "True");
    assert_eq!(degraded["reason"], "BackendSwitchRefused");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("spec.persistence.backend")
    );
    assert!(w.iter().any(|x| x.contains("/events")), "an Event: {w:#?}");

    // 6. A value the server would refuse: the translator's diagnostic in the
    //    Ready condition and an Event; no workload written.
    h.edit(|s| {
        s["persistence"] = json!({"backend": "lsm_tree", "lsmTree": {"memtableSize": "64XB"}});
    });
    let calls = h.reconcile().await;
    let w = writes(&calls);
    assert!(
        !w.iter()
            .any(|x| x.contains("statefulsets") || x.contains("configmaps")),
        "{w:#?}"
    );
    let ready = h.condition("Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "InvalidConfiguration");
    let msg = ready["message"].as_str().unwrap();
    assert!(
        msg.contains("64XB") && msg.contains("memtable_size"),
        "{msg}"
    );
    let event = calls
        .iter()
        .find(|c| c.method == Method::POST && c.path.contains("events"))
        .expect("an Event");
    assert_eq!(event.body["reason"], "InvalidConfiguration");
    assert!(event.body["note"].as_str().unwrap().contains("64XB"));
    // Unchanged and still invalid: no new status write, no new Event.
    let calls = h.reconcile().await;
    assert!(writes(&calls).is_empty(), "{:#?}", writes(&calls));

    // 7. A deleted resource: garbage collection's job, no request at all.
    {
        let mut s = h.store.lock().unwrap();
        let c = s.objects.get_mut(CLUSTER).unwrap();
        c["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    let calls = h.reconcile().await;
    assert!(calls.is_empty(), "{calls:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_independent_local_replicas_need_the_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let translators = Arc::new(Translators::new(dir.path().to_path_buf()).unwrap());
    let store: Shared = Default::default();
    let mut c = new_cluster();
    c["spec"]["replicas"] = json!(3);
    store.lock().unwrap().objects.insert(CLUSTER.into(), c);
    let h = Harness {
        ctx: Arc::new(Context::new(
            client(store.clone()),
            translators,
            "test".into(),
        )),
        store,
    };
    let calls = h.reconcile().await;
    let w = writes(&calls);
    assert!(!w.iter().any(|x| x.contains("statefulsets")), "{w:#?}");
    let d = h.condition("Degraded");
    assert_eq!(d["reason"], "IndependentReplicasRefused");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("spec.allowIndependentReplicas")
    );
    h.edit(|s| s["allowIndependentReplicas"] = json!(true));
    let calls = h.reconcile().await;
    assert!(applied(&calls, STS).is_some());
}
