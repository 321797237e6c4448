#!/usr/bin/env bash
# The whole test suite: the host workspace (unit, conformance, HTTP and
# process tests, plugins built from source and loaded), then the native tests
# of the default plugins and of the example plugin.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-wasm-toolchain.sh
bash scripts/install-native-deps.sh
bash scripts/install-stand-ins.sh
bash scripts/install-bench-peers.sh   # wrk, redis, etcd: http-bench --quick (host/bench/tests/http_bench.rs)
cargo test --release --workspace --locked
cargo test --locked --manifest-path plugins/Cargo.toml --workspace
cargo test --locked --manifest-path examples/custom-selector/Cargo.toml
