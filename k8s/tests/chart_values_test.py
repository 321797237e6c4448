#!/usr/bin/env python3
"""Render-and-inspect checks of the chart's issue-17 values (items 5, 9, 10).

Each check renders the chart with the real helm and looks at the objects (or at
the error helm prints); one PASS/FAIL line per check, which
scripts/check-deploy.sh counts.

  python3 k8s/tests/chart_values_test.py --helm target/deploy-tools/helm/helm
"""
import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "orbit-rs"
results = []


def render(helm, values=None, sets=(), files=()):
    cmd = [helm, "template", "orbit-rs", str(CHART), "--namespace", "orbit-rs",
           "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true"]
    if values:
        cmd += ["-f", str(REPO / values)]
    for f in files:
        cmd += ["-f", str(f)]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr
    return [d for d in yaml.safe_load_all(p.stdout) if d], ""


def kinds(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def workload(objs):
    return [o for o in objs if o["kind"] in ("StatefulSet", "Deployment")][0]


def container(objs):
    return workload(objs)["spec"]["template"]["spec"]["containers"][0]


def env_refs(objs):
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(objs).get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})}


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))


def refused(helm, name, want, values=None, sets=()):
    objs, err = render(helm, values, sets)
    check(name, objs is None and want in err, f"rendered, or without {want!r}: {err.strip()[:400]}")


def bytes_of(q) -> int:
    """A Kubernetes quantity or an orbit byte size (64MiB, 268435456, 2Gi) in bytes."""
    s = str(q).strip()
    m = re.fullmatch(r"([0-9.]+)\s*([KMGTP]i?B?|[kKMGT]B|B)?", s)
    if not m:
        raise ValueError(f"not a size: {q!r}")
    n, unit = float(m.group(1)), (m.group(2) or "")
    powers = {"K": 1, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5}
    if not unit or unit == "B":
        return int(n)
    base = 1024 if ("i" in unit or unit.endswith("iB")) else 1000
    return int(n * base ** powers[unit[0]])


# --------------------------------------------------------------------------
# Item 5: credentials
# --------------------------------------------------------------------------
def item5(helm):
    objs, err = render(helm, "examples/values-s3.yaml")
    refs = env_refs(objs)
    check("secrets: s3 keys are required secretKeyRefs (optional: false)",
          refs.get("ORBIT_S3_ACCESS_KEY_ID", {}).get("optional") is False
          and refs.get("ORBIT_S3_SECRET_ACCESS_KEY", {}).get("optional") is False, refs)
    check("secrets: only the selected backend's keys are referenced (s3: no azure key, no gcp volume)",
          "ORBIT_AZURE_ACCOUNT_KEY" not in refs
          and not any(v.get("name") == "gcp-credentials" for v in workload(objs)["spec"]["template"]["spec"]["volumes"]),
          sorted(refs))
    check("secrets: API token optional by default", refs.get("ORBIT_API_TOKEN", {}).get("optional") is True, refs)
    objs, _ = render(helm, "examples/values-azure.yaml")
    check("secrets: azure account key required", env_refs(objs).get("ORBIT_AZURE_ACCOUNT_KEY", {}).get("optional") is False,
          env_refs(objs))
    objs, _ = render(helm, "examples/values-gcp.yaml")
    vols = {v["name"]: v for v in workload(objs)["spec"]["template"]["spec"]["volumes"]}
    check("secrets: gcp key file volume required (optional: false)",
          vols.get("gcp-credentials", {}).get("secret", {}).get("optional") is False, vols.get("gcp-credentials"))
    objs, _ = render(helm, "examples/values-s3.yaml", ["secrets.backendCredentials=none"])
    check("secrets: backendCredentials=none references no s3 key (IRSA)",
          not {"ORBIT_S3_ACCESS_KEY_ID", "ORBIT_S3_SECRET_ACCESS_KEY"} & set(env_refs(objs)), env_refs(objs))
    objs, _ = render(helm, "examples/values-s3.yaml", ["secrets.backendCredentials=optional"])
    check("secrets: backendCredentials=optional keeps optional references",
          env_refs(objs).get("ORBIT_S3_ACCESS_KEY_ID", {}).get("optional") is True, env_refs(objs))
    objs, err = render(helm, "examples/values-gcp.yaml",
                       ["secrets.backendCredentials=none", "persistence.gcp.credentialsPath="])
    ok = objs is not None
    if ok:
        c, spec = container(objs), workload(objs)["spec"]["template"]["spec"]
        ok = (not any(m["name"] == "gcp-credentials" for m in c["volumeMounts"])
              and not any(v["name"] == "gcp-credentials" for v in spec["volumes"])
              and "credentials_path" not in kinds(objs, "ConfigMap")[0]["data"]["orbit.toml"])
    check("secrets: gcp Workload Identity (credentialsPath \"\", backendCredentials none): no key volume or path",
          ok, err)
    refused(helm, "secrets: gcp with backendCredentials=none and a credentialsPath is refused",
            "persistence.gcp.credentialsPath", "examples/values-gcp.yaml", ["secrets.backendCredentials=none"])
    objs, _ = render(helm, None, ["secrets.apiToken=required"])
    check("secrets: apiToken=required makes the token reference required",
          env_refs(objs).get("ORBIT_API_TOKEN", {}).get("optional") is False, env_refs(objs))
    objs, _ = render(helm, None, ["secrets.apiToken=none"])
    check("secrets: apiToken=none references no token", "ORBIT_API_TOKEN" not in env_refs(objs), env_refs(objs))
    a, _ = render(helm, "examples/values-s3.yaml")
    b, _ = render(helm, "examples/values-s3.yaml", ["orbitServer.rolloutToken=2025-06-01T10:00"])
    ta, tb = workload(a)["spec"]["template"], workload(b)["spec"]["template"]
    check("secrets: a new orbitServer.rolloutToken changes the pod template (rolls the pods after a rotation)",
          ta != tb and tb["metadata"]["annotations"].get("orbit-rs/rollout-token") == "2025-06-01T10:00",
          tb["metadata"]["annotations"])


# --------------------------------------------------------------------------
# Item 7: alerts
# --------------------------------------------------------------------------
def rules_of(objs):
    return [r for o in kinds(objs, "PrometheusRule") for g in o["spec"]["groups"] for r in g["rules"]]


def item7(helm):
    anchors = {m.lower() for m in re.findall(r"^## (\S+)\s*$", (REPO / "docs" / "runbooks.md").read_text(), re.M)}
    raw = [d for d in yaml.safe_load_all((REPO / "k8s" / "08-monitoring.yaml").read_text()) if d]
    objs, _ = render(helm, None)
    for where, rules in (("k8s/08-monitoring.yaml", rules_of(raw)), ("chart", rules_of(objs))):
        bad = [r["alert"] for r in rules
               if r["annotations"].get("runbook_url", "").rpartition("#")[2] != r["alert"].lower()
               or r["alert"].lower() not in anchors]
        check(f"alerts: every alert of {where} has a runbook_url with its anchor in docs/runbooks.md "
              f"({len(rules)} alerts)", rules and not bad, bad)
    names = {r["alert"] for r in rules_of(raw)}
    check("alerts: target down, target absent and volume fill prediction exist",
          {"OrbitServerDown", "OrbitServerAbsent", "OrbitVolumeFillingUp"} <= names, sorted(names))
    objs, _ = render(helm, "examples/values-lsm_tree.yaml", ["fullnameOverride=kv",
                     "metrics.prometheusRule.runbookBaseUrl=https://wiki.example.com/orbit#"])
    text = yaml.safe_dump(rules_of(objs))
    by = {r["alert"]: r for r in rules_of(objs)}
    check("alerts: the chart's rules use the release's job, namespace, claims and runbook base",
          'job="kv-metrics",namespace="orbit-rs"' in by["OrbitServerDown"]["expr"]
          and 'persistentvolumeclaim=~"data-kv-[0-9]+"' in by["OrbitVolumeFillingUp"]["expr"]
          and by["OrbitServerDown"]["annotations"]["runbook_url"] == "https://wiki.example.com/orbit#orbitserverdown"
          and "orbit-server-metrics" not in text and "turingworks" not in text, by.get("OrbitServerDown"))
    objs, _ = render(helm, "examples/values-lsm_tree.yaml", ["persistence.existingClaim=restored"])
    by = {r["alert"]: r for r in rules_of(objs)}
    check("alerts: with existingClaim the fill prediction watches that claim",
          'persistentvolumeclaim="restored"' in by["OrbitVolumeFillingUp"]["expr"], by["OrbitVolumeFillingUp"]["expr"])
    svc = [s for s in kinds(objs, "Service") if s["metadata"].get("labels", {}).get("orbit-rs/service") == "metrics"]
    check("alerts: the job the rules name is the metrics Service's name (the ServiceMonitor's job label)",
          svc and f'job="{svc[0]["metadata"]["name"]}"' in by["OrbitServerDown"]["expr"], svc)


# --------------------------------------------------------------------------
# Item 9: knobs
# --------------------------------------------------------------------------
def item9(helm):
    objs, _ = render(helm, "examples/values-lsm_tree.yaml", ["orbitServer.updateStrategy.type=RollingUpdate",
                     "orbitServer.updateStrategy.rollingUpdate.partition=1", "orbitServer.minReadySeconds=15"])
    spec = workload(objs)["spec"]
    check("knobs: StatefulSet updateStrategy partition and minReadySeconds",
          spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
          and spec["minReadySeconds"] == 15, spec.get("updateStrategy"))
    objs, _ = render(helm, "examples/values-s3.yaml", ["orbitServer.updateStrategy.type=Recreate"])
    check("knobs: Deployment strategy from updateStrategy", workload(objs)["spec"]["strategy"] == {"type": "Recreate"},
          workload(objs)["spec"].get("strategy"))
    refused(helm, "knobs: partition on a Deployment is refused", "StatefulSet settings", "examples/values-s3.yaml",
            ["orbitServer.updateStrategy.rollingUpdate.partition=1"])
    objs, _ = render(helm, None, ["podDisruptionBudget.unhealthyPodEvictionPolicy=AlwaysAllow"])
    pdb = kinds(objs, "PodDisruptionBudget")[0]["spec"]
    check("knobs: PDB unhealthyPodEvictionPolicy", pdb.get("unhealthyPodEvictionPolicy") == "AlwaysAllow", pdb)
    objs, _ = render(helm, "examples/values-lsm_tree.yaml", ["persistence.existingClaim=restored-data"])
    spec = workload(objs)["spec"]
    vols = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    check("knobs: persistence.existingClaim mounts the claim, no claim template",
          "volumeClaimTemplates" not in spec
          and vols.get("data", {}).get("persistentVolumeClaim", {}).get("claimName") == "restored-data", vols.get("data"))
    refused(helm, "knobs: existingClaim with 2 replicas is refused", "every pod would mount the same claim",
            "examples/values-lsm_tree.yaml", ["persistence.existingClaim=restored-data", "orbitServer.replicaCount=2",
                                              "orbitServer.allowIndependentReplicas=true"])
    extra = REPO / "target" / "chart-values-extra.yaml"
    extra.write_text(yaml.safe_dump({"orbitServer": {
        "extraContainers": [{"name": "log-shipper", "image": "busybox:1.37", "args": ["sleep", "infinity"]}],
        "extraVolumes": [{"name": "scratch", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}}))
    objs, err = render(helm, None, files=[extra])
    extra.unlink()
    pod = workload(objs)["spec"]["template"]["spec"] if objs else {}
    check("knobs: extraContainers, extraVolumes, extraVolumeMounts",
          objs and [c["name"] for c in pod["containers"]] == ["orbit-server", "log-shipper"]
          and any(v["name"] == "scratch" for v in pod["volumes"])
          and any(m["name"] == "scratch" for m in pod["containers"][0]["volumeMounts"]), err)
    objs, _ = render(helm, None, ["service.type=LoadBalancer", "service.loadBalancerSourceRanges={10.0.0.0/8}"])
    svc = [s for s in kinds(objs, "Service") if s["metadata"]["name"] == "orbit-server"][0]["spec"]
    check("knobs: Service loadBalancerSourceRanges", svc.get("loadBalancerSourceRanges") == ["10.0.0.0/8"], svc)
    refused(helm, "knobs: loadBalancerSourceRanges without type LoadBalancer is refused", "loadBalancerSourceRanges",
            None, ["service.loadBalancerSourceRanges={10.0.0.0/8}"])
    relabel = REPO / "target" / "chart-values-relabel.yaml"
    relabel.write_text(yaml.safe_dump({"metrics": {"serviceMonitor": {
        "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}],
        "metricRelabelings": [{"sourceLabels": ["__name__"], "regex": "orbit_plugin_.*", "action": "drop"}]}}}))
    objs, err = render(helm, None, files=[relabel])
    relabel.unlink()
    ep = kinds(objs, "ServiceMonitor")[0]["spec"]["endpoints"][0] if objs else {}
    check("knobs: ServiceMonitor relabelings and metricRelabelings",
          ep.get("relabelings", [{}])[0].get("targetLabel") == "node"
          and ep.get("metricRelabelings", [{}])[0].get("action") == "drop", err or ep)
    objs, _ = render(helm, None)
    check("knobs: no NetworkPolicy by default", not kinds(objs, "NetworkPolicy"))
    objs, _ = render(helm, None, ["networkPolicy.enabled=true"])
    np = kinds(objs, "NetworkPolicy")
    ok = bool(np)
    if ok:
        rules = np[0]["spec"]["ingress"]
        ports = [[p["port"] for p in r["ports"]] for r in rules]
        ok = (np[0]["spec"]["policyTypes"] == ["Ingress"] and [8080] in ports and [9090] in ports
              and all(r.get("from") for r in rules))
    check("knobs: NetworkPolicy: API port and metrics port, each from selected peers only", ok, np)
    objs, _ = render(helm, None, ["networkPolicy.enabled=true", "networkPolicy.metrics.namespaceSelector.matchLabels"
                                  ".kubernetes\\.io/metadata\\.name=observability"])
    rule = [r for r in kinds(objs, "NetworkPolicy")[0]["spec"]["ingress"] if r["ports"][0]["port"] == 9090][0]
    check("knobs: NetworkPolicy metrics peers from the monitoring namespace selector",
          rule["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "observability"}, rule)
    objs, _ = render(helm, None, ["orbitServer.zoneSpread=true"])
    tsc = workload(objs)["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
    check("knobs: zoneSpread adds a topology.kubernetes.io/zone spread constraint",
          len(tsc) == 1 and tsc[0]["topologyKey"] == "topology.kubernetes.io/zone"
          and tsc[0]["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "orbit-rs", tsc)
    objs, _ = render(helm, None)
    check("knobs: no topologySpreadConstraints by default",
          "topologySpreadConstraints" not in workload(objs)["spec"]["template"]["spec"])
    for f in [None] + sorted(p.relative_to(REPO).as_posix() for p in (REPO / "examples").glob("values-*.yaml")):
        objs, _ = render(helm, f)
        spec = workload(objs)["spec"]["template"]["spec"]
        sa = kinds(objs, "ServiceAccount")
        check(f"rbac: no Role or RoleBinding, no token mounted ({f or 'chart defaults'})",
              not kinds(objs, "Role") and not kinds(objs, "RoleBinding") and spec.get("automountServiceAccountToken") is False
              and sa and sa[0].get("automountServiceAccountToken") is False)
    raw = [d for f in sorted((REPO / "k8s").glob("[0-9][0-9]-*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    check("rbac: raw manifests have no Role or RoleBinding and mount no token",
          not [d for d in raw if d["kind"] in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")]
          and all(d["spec"]["template"]["spec"].get("automountServiceAccountToken") is False
                  for d in raw if d["kind"] in ("StatefulSet", "Deployment")))


# --------------------------------------------------------------------------
# Item 10: memory requests cover the engine's caches
# --------------------------------------------------------------------------
# What the engine holds in memory at most, from its effective settings (the TOML
# the chart renders, overridden by ORBIT_* variables in the container's env),
# plus what the process needs besides (the server, three wasm plugin instances
# within their memoryLimit, allocator slack).
OVERHEAD = 256 * 1024 ** 2
ENGINE_MEMORY = {
    # RocksDB: block cache + write_buffer_size x max_write_buffer_number memtables.
    "rocksdb": lambda s: s["block_cache_size"] + s["write_buffer_size"] * s["max_write_buffer_number"],
    # LSM tree: block cache + memtable_size x max_memtables (active + immutable).
    "lsm_tree": lambda s: s["block_cache_size"] + s["memtable_size"] * s["max_memtables"],
}
CHART_DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())["persistence"]
KEYS = {"rocksdb": "rocksdb", "lsm_tree": "lsmTree"}


def effective(objs, backend):
    toml = tomllib.loads(kinds(objs, "ConfigMap")[0]["data"]["orbit.toml"])
    s = {}
    for k, v in CHART_DEFAULTS[KEYS[backend]].items():   # server defaults = the chart's generated defaults
        s[re.sub(r"([A-Z])", r"_\1", k).lower()] = v
    s.update(toml.get("persistence", {}).get(backend, {}))
    prefix = {"rocksdb": "ORBIT_ROCKSDB_", "lsm_tree": "ORBIT_LSM_"}[backend]
    for e in container(objs).get("env", []):
        if e["name"].startswith(prefix) and "value" in e:
            s[e["name"][len(prefix):].lower()] = e["value"]
    return s


# Smallest volume the deployment guides (../shared/seeds) recommend per backend.
SEED_MIN_VOLUME = {"memory": "1Gi", "cow_btree": "10Gi", "lsm_tree": "50Gi", "rocksdb": "100Gi"}


def claim_size(objs):
    w = workload(objs)
    t = w["spec"].get("volumeClaimTemplates") or []
    return t[0]["spec"]["resources"]["requests"]["storage"] if t else None


def item10_raw(kubectl):
    stacks = [("k8s (kubectl kustomize k8s)", REPO / "k8s")] + [
        (f"{p.relative_to(REPO).as_posix()}", p) for p in sorted((REPO / "examples").glob("k8s-*"))]
    seen = set()
    for name, path in stacks:
        p = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True)
        if p.returncode != 0:
            check(f"raw sizes: {name} renders", False, p.stderr.strip())
            continue
        objs = [d for d in yaml.safe_load_all(p.stdout) if d]
        env = {e["name"]: e.get("value") for e in container(objs).get("env", [])}
        backend = env.get("ORBIT_PERSISTENCE_BACKEND")
        seen.add(backend)
        size = claim_size(objs)
        check(f"raw sizes: {name} ({backend}) claims {size} >= the guides' {SEED_MIN_VOLUME[backend]}",
              size and bytes_of(size) >= bytes_of(SEED_MIN_VOLUME[backend]), size)
        memory_check(name, objs, backend)
    check("raw sizes: a kustomization per local backend (k8s/ and examples/k8s-*)",
          seen >= set(SEED_MIN_VOLUME), sorted(seen - {None}))


def memory_check(name, objs, backend):
    if backend not in ENGINE_MEMORY:
        return
    s = effective(objs, backend)
    need = ENGINE_MEMORY[backend]({k: bytes_of(v) if k in ("block_cache_size", "write_buffer_size", "memtable_size")
                                    else int(v) for k, v in s.items()
                                    if k in ("block_cache_size", "write_buffer_size", "max_write_buffer_number",
                                             "memtable_size", "max_memtables")}) + OVERHEAD
    req = bytes_of(container(objs)["resources"]["requests"]["memory"])
    lim = bytes_of(container(objs)["resources"].get("limits", {}).get("memory", "0"))
    mib = 1024 ** 2
    check(f"memory: {name} ({backend}) requests {req // mib} MiB >= engine {(need - OVERHEAD) // mib} MiB "
          f"+ {OVERHEAD // mib} MiB overhead, limit >= request",
          req >= need and (lim == 0 or lim >= req), f"request {req // mib} MiB, needs {need // mib} MiB")


def item10(helm):
    for f in sorted(p.relative_to(REPO).as_posix() for p in (REPO / "examples").glob("values-*.yaml")):
        objs, err = render(helm, f)
        env = {e["name"]: e.get("value") for e in container(objs).get("env", [])}
        backend = env.get("ORBIT_PERSISTENCE_BACKEND")
        size = claim_size(objs)
        if size is not None and backend in SEED_MIN_VOLUME:
            check(f"sizes: {f} ({backend}) claims {size} >= the guides' {SEED_MIN_VOLUME[backend]}",
                  bytes_of(size) >= bytes_of(SEED_MIN_VOLUME[backend]), size)
        memory_check(f, objs, backend)


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--helm", required=True)
    a.add_argument("--kubectl", help="for the raw manifests' kustomizations (item 10)")
    a.add_argument("--only", choices=["item5", "item7", "item9", "item10"])
    args = a.parse_args()
    for name, fn in (("item5", item5), ("item7", item7), ("item9", item9), ("item10", item10)):
        if args.only in (None, name):
            try:
                fn(args.helm)
            except Exception as e:  # a render that broke the check itself
                check(f"{name} checks ran", False, f"{type(e).__name__}: {e}")
    if args.only in (None, "item10"):
        if args.kubectl:
            item10_raw(args.kubectl)
        else:
            check("raw sizes: --kubectl given", False, "no kubectl")
    print(f"chart values test: {sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
