#!/usr/bin/env python3
"""Upgrade test of the chart (issue 17, item 1), offline, from rendered objects.

For each scenario: render the chart at the previous values (or the previous
chart, from git), take its workload as the "live" object, then render the chart
at the new values with that object in upgradeGuard.previous (what lookup returns
in a cluster). Two independent answers must agree:

  - the oracle: Kubernetes' own rule, applied to the two rendered objects. A
    StatefulSet update may change only spec.replicas, ordinals, template,
    updateStrategy, revisionHistoryLimit, persistentVolumeClaimRetentionPolicy and
    minReadySeconds (apps/validation ValidateStatefulSetUpdate); a Deployment's
    spec.selector is immutable. A kind change (StatefulSet <-> Deployment) is a
    delete and a create, which Helm does.
  - the chart's guard (templates/_helpers.tpl, orbit-rs.upgradeGuard): the
    render fails with the documented procedure exactly when the oracle refuses.

The previous object is given as the API server would return it (apiVersion,
kind and status on each claim template, volumeMode, status of the object), so
the guard is also shown not to trip over server-side defaults.

  python3 k8s/tests/upgrade_test.py --helm target/deploy-tools/helm/helm [--previous-ref REF]
"""
import argparse
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "orbit-rs"
STS_MUTABLE = {"replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
               "persistentVolumeClaimRetentionPolicy", "minReadySeconds"}
# What the refusal must say: the procedure of docs/deployment.md.
STS_MESSAGE = ["UPGRADE REFUSED", "--cascade=orphan", "docs/deployment.md", "Changing the volume claims"]
DEPLOY_MESSAGE = ["UPGRADE REFUSED", "delete deployment"]

LSM = "examples/values-lsm_tree.yaml"
S3 = "examples/values-s3.yaml"

# (name, previous values file, previous --set, new --set, expected: "accepted" | "refused")
SCENARIOS = [
    ("StatefulSet: same values", LSM, [], [], "accepted"),
    ("StatefulSet: image.tag", LSM, [], ["image.tag=0.2.0"], "accepted"),
    ("StatefulSet: resources", LSM, [], ["orbitServer.resources.requests.memory=5Gi"], "accepted"),
    ("StatefulSet: backend tuning", LSM, [], ["persistence.lsmTree.compactionThreshold=6"], "accepted"),
    ("StatefulSet: retentionPolicy", LSM, [], ["persistence.retentionPolicy.whenScaled=Delete"], "accepted"),
    ("StatefulSet: updateStrategy partition", LSM, [], ["orbitServer.updateStrategy.rollingUpdate.partition=1"],
     "accepted"),
    ("StatefulSet: minReadySeconds", LSM, [], ["orbitServer.minReadySeconds=10"], "accepted"),
    ("StatefulSet: podAnnotations / rolloutToken", LSM, [], ["orbitServer.rolloutToken=2025-01-01"], "accepted"),
    ("StatefulSet -> Deployment: persistence.enabled=false", LSM, [], ["persistence.enabled=false"], "accepted"),
    ("StatefulSet: persistence.size", LSM, [], ["persistence.size=300Gi"], "refused"),
    ("StatefulSet: persistence.storageClass", LSM, [], ["persistence.storageClass=fast-ssd"], "refused"),
    ("StatefulSet: persistence.storageClass '-'", LSM, [], ["persistence.storageClass=-"], "refused"),
    ("StatefulSet: persistence.accessMode", LSM, [], ["persistence.accessMode=ReadWriteOncePod"], "refused"),
    ("StatefulSet: persistence.annotations", LSM, [], ["persistence.annotations.backup\\.io/policy=daily"],
     "refused"),
    ("StatefulSet: nameOverride", LSM, [], ["nameOverride=kv"], "refused"),
    ("StatefulSet: persistence.existingClaim", LSM, [], ["persistence.existingClaim=restored"], "refused"),
    ("StatefulSet: storageClass set before, unchanged", LSM, ["persistence.storageClass=fast-ssd"],
     ["persistence.storageClass=fast-ssd", "image.tag=0.2.0"], "accepted"),
    ("StatefulSet: size back to the previous", LSM, ["persistence.size=300Gi"], ["persistence.size=300Gi"],
     "accepted"),
    ("Deployment: image.tag", S3, [], ["image.tag=0.2.0"], "accepted"),
    ("Deployment: replicas", S3, [], ["orbitServer.replicaCount=3"], "accepted"),
    ("Deployment: nameOverride", S3, [], ["nameOverride=kv"], "refused"),
]


def helm(helm_bin, chart, values, sets, extra_files=()):
    cmd = [helm_bin, "template", "orbit-rs", str(chart), "--namespace", "orbit-rs", "-f", str(REPO / values)]
    for f in extra_files:
        cmd += ["-f", str(f)]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, capture_output=True, text=True)
    objs = [d for d in yaml.safe_load_all(p.stdout) if d] if p.returncode == 0 else []
    return p.returncode, objs, p.stderr


def workload(objs):
    w = [o for o in objs if o["kind"] in ("StatefulSet", "Deployment")]
    return w[0] if w else None


def as_live(obj):
    """The object as the API server returns it: defaults and status added."""
    live = copy.deepcopy(obj)
    live["metadata"].update({"uid": "5c0ffee0-0000-4000-8000-000000000000", "resourceVersion": "4711",
                             "generation": 3, "creationTimestamp": "2025-01-01T00:00:00Z"})
    spec = live["spec"]
    spec.setdefault("revisionHistoryLimit", 10)
    if live["kind"] == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec["updateStrategy"].setdefault("rollingUpdate", {"partition": 0})
        for t in spec.get("volumeClaimTemplates", []):
            t["apiVersion"] = "v1"
            t["kind"] = "PersistentVolumeClaim"
            t["spec"].setdefault("volumeMode", "Filesystem")
            t["status"] = {"phase": "Pending"}
        live["status"] = {"replicas": 1, "readyReplicas": 1, "currentRevision": "orbit-server-7d9f"}
    else:
        live["status"] = {"replicas": 1, "readyReplicas": 1}
    return live


def oracle(prev, new):
    """Kubernetes' answer: the list of forbidden changes (empty: allowed)."""
    if prev is None or new is None or prev["kind"] != new["kind"] or prev["metadata"]["name"] != new["metadata"]["name"]:
        return []
    p, n = prev["spec"], new["spec"]
    if new["kind"] == "Deployment":
        return ["spec.selector"] if p["selector"] != n["selector"] else []
    return sorted(k for k in set(p) | set(n) if k not in STS_MUTABLE and p.get(k) != n.get(k))


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--helm", required=True)
    a.add_argument("--previous-ref", default="",
                   help="git ref of the previous chart: its renders must upgrade to this chart unchanged")
    args = a.parse_args()
    passed = failed = 0
    refused = accepted = 0

    def report(ok, name, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"PASS upgrade: {name}" + (f" [{detail}]" if detail else ""))
        else:
            failed += 1
            print(f"FAIL upgrade: {name}: {detail}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = [(name, CHART, values, pset, nset, want) for name, values, pset, nset, want in SCENARIOS]
        if args.previous_ref:
            prev_chart = tmp / "previous"
            prev_chart.mkdir()
            arch = subprocess.run(["git", "-C", str(REPO), "archive", args.previous_ref, "helm/orbit-rs"],
                                  capture_output=True)
            if arch.returncode != 0:
                report(False, f"previous chart {args.previous_ref}",
                       f"git archive failed (fetch the history: git fetch --unshallow): {arch.stderr.decode().strip()}")
            else:
                subprocess.run(["tar", "-x", "-C", str(prev_chart)], input=arch.stdout, check=True)
                for values in sorted(p.relative_to(REPO).as_posix() for p in (REPO / "examples").glob("values-*.yaml")):
                    cases.append((f"chart {args.previous_ref} -> this chart, {values}",
                                  prev_chart / "helm" / "orbit-rs", values, [], [], "accepted"))
        for name, prev_chart, values, pset, nset, want in cases:
            rc, objs, err = helm(args.helm, prev_chart, values, pset)
            prev = workload(objs)
            if rc != 0 or prev is None:
                report(False, name, f"the previous render failed: {err.strip()}")
                continue
            snap = tmp / "previous.yaml"
            snap.write_text(yaml.safe_dump({"upgradeGuard": {"previous": as_live(prev)}}))
            # The oracle compares the new render without the guard (it may refuse).
            rc_plain, new_objs, err_plain = helm(args.helm, CHART, values, pset + nset + ["upgradeGuard.enabled=false"])
            if rc_plain != 0:
                report(False, name, f"the new values do not render: {err_plain.strip()}")
                continue
            forbidden = oracle(prev, workload(new_objs))
            rc_new, _, err_new = helm(args.helm, CHART, values, pset + nset, [snap])
            expect_refused = want == "refused"
            if bool(forbidden) != expect_refused:
                report(False, name, f"the scenario expects {want}, but Kubernetes would "
                       + (f"refuse {forbidden}" if forbidden else "accept it"))
            elif not forbidden and rc_new != 0:
                report(False, name, f"Kubernetes accepts the change but the chart refuses it:\n{err_new.strip()}")
            elif forbidden and rc_new == 0:
                report(False, name, f"Kubernetes refuses {forbidden} but the chart let it through")
            elif forbidden:
                need = STS_MESSAGE if prev["kind"] == "StatefulSet" else DEPLOY_MESSAGE
                missing = [m for m in need if m not in err_new]
                if missing:
                    report(False, name, f"refused without {missing} in the message:\n{err_new.strip()}")
                else:
                    refused += 1
                    first = [ln.strip() for ln in err_new.splitlines() if ln.strip().startswith("- ")]
                    report(True, name, f"refused ({', '.join(forbidden)}): {'; '.join(first)}")
            else:
                accepted += 1
                report(True, name, "accepted")
        # The bypass.
        rc, objs, err = helm(args.helm, CHART, LSM, [])
        snap = tmp / "previous.yaml"
        snap.write_text(yaml.safe_dump({"upgradeGuard": {"previous": as_live(workload(objs))}}))
        rc, _, err = helm(args.helm, CHART, LSM, ["persistence.size=300Gi", "upgradeGuard.enabled=false"], [snap])
        report(rc == 0, "upgradeGuard.enabled=false lets a refused change through", err.strip())
    print(f"upgrade test: {accepted} accepted and {refused} refused as Kubernetes would; {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
