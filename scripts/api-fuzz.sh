#!/usr/bin/env bash
# The API fuzzer (issue 17): schemathesis, from PyPI (pinned), generates requests
# from the OpenAPI description the real binary serves at /openapi.json and checks
# every answer against it: no 5xx for any input, every status, content type,
# header and body as described.
#
#   bash scripts/api-fuzz.sh
#
# The server: target/release/orbit-server (or ORBIT_SERVER_BIN; built if
# missing), memory backend, a temporary data directory, an API token, and small
# key and value limits so the 413 answers are reached. Two runs against it:
#   1. with the token: every phase (examples, coverage, fuzzing, stateful),
#      positive and negative inputs;
#   2. without it: the 401 answers of /v1/* must be described too.
# Cases are bounded (ORBIT_FUZZ_EXAMPLES per operation, default 100) and the seed
# fixed (ORBIT_FUZZ_SEED, default 17) so a run is repeatable and takes about two
# minutes on two cores. schemathesis is installed into .tools/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started=$(date +%s)
# Loopback only: never through a proxy from the environment.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

st_version=4.32.5
venv=$root/.tools/fuzz
st=$venv/bin/st
if [ "$("$st" --version 2>/dev/null)" != "st, version $st_version" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$st_version"
    echo "schemathesis: installed $st_version into $venv"
fi

bin=${ORBIT_SERVER_BIN:-target/release/orbit-server}
if [ ! -x "$bin" ]; then
    cargo build --release --locked -q --bin orbit-server
fi
examples=${ORBIT_FUZZ_EXAMPLES:-100}
seed=${ORBIT_FUZZ_SEED:-17}
checks=${ORBIT_FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}

work=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# GET with python3 (no curl needed); non-zero for a failed request or a non-2xx.
fetch() { python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=5).read())' "$1"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
metrics_port=$(free_port)
token=fuzz-$(date +%s)-$RANDOM
base=http://127.0.0.1:$port
env -i PATH="$PATH" HOME="$work" \
    ORBIT_DATA_DIR="$work/data" \
    ORBIT_PERSISTENCE_BACKEND=memory \
    ORBIT_MEMORY_DISK_BACKUP=false \
    ORBIT_HTTP_ADDR="127.0.0.1:$port" \
    ORBIT_METRICS_ADDR="127.0.0.1:$metrics_port" \
    ORBIT_API_TOKEN="$token" \
    ORBIT_MAX_KEY_BYTES=64 \
    ORBIT_MAX_VALUE_BYTES=1024 \
    RUST_LOG=warn \
    "$bin" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 600); do
    if fetch "$base/health/startup" > /dev/null 2>&1; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then cat "$work/server.log"; echo "api-fuzz: the server exited before it listened" >&2; exit 1; fi
    sleep 0.1
done
fetch "$base/health/startup" > /dev/null || { cat "$work/server.log"; echo "api-fuzz: the server did not start" >&2; exit 1; }

# The description served is the one committed.
if ! fetch "$base/openapi.json" | cmp -s - docs/openapi.json; then
    echo "api-fuzz: /openapi.json differs from docs/openapi.json; run \`orbit-server config generate\`" >&2
    exit 1
fi

# Runs schemathesis; prints its output and the number of test cases it reports.
total=0
run() { # label, schemathesis arguments...
    local label=$1 out rc cases
    shift
    echo "=== $label"
    set +e
    # From the temporary directory: schemathesis keeps a cache in the current one.
    out=$(cd "$work" && "$st" run "$base/openapi.json" --checks "$checks" --seed "$seed" \
        --max-examples "$examples" --workers 1 --no-color --request-timeout 10 \
        --generation-database none --suppress-health-check all "$@" 2>&1)
    rc=$?
    set -e
    echo "$out"
    cases=$(grep -A1 '^Test cases:' <<<"$out" | grep -oE '[0-9]+ generated' | grep -oE '[0-9]+' | tail -1)
    total=$((total + ${cases:-0}))
    return $rc
}

status=0
run "with the token: every operation, positive and negative inputs, stateful" \
    -H "Authorization: Bearer $token" --phases examples,coverage,fuzzing,stateful || status=1
run "without a token: /v1/* answers 401 as described" \
    --include-path-regex '^/v1' --phases examples,coverage,fuzzing --max-examples 10 || status=1

if kill -0 "$server" 2>/dev/null; then
    echo "=== answers by route, method and status (the server's orbit_http_requests_total)"
    fetch "http://127.0.0.1:$metrics_port/metrics" | grep '^orbit_http_requests_total{' \
        | sed -E 's/^orbit_http_requests_total\{(.*)\} ([0-9]+)$/\2 \1/' | sort -t' ' -k2 || true
else
    echo "api-fuzz: the server died" >&2; status=1
fi
if grep -E ' ERROR ' "$work/server.log" | head -20 | grep .; then echo "api-fuzz: the server logged errors" >&2; status=1; fi
echo
echo "api-fuzz: schemathesis $st_version tried $total test cases in $(( $(date +%s) - started )) s (seed $seed, $examples examples per operation)"
[ "$status" = 0 ] && echo "api-fuzz: passed" || echo "api-fuzz: FAILED"
exit "$status"
