#!/usr/bin/env bash
# Runs orbit-server from source on a fresh Debian machine: installs the native
# build dependencies first if missing (libclang and a C++ compiler, which
# RocksDB's bindings need; see install-native-deps.sh), then builds and runs
# the release binary with the embedded default plugins.
#
#   bash scripts/serve.sh                      # memory backend, data in ./data
#   bash scripts/serve.sh config check --env   # any orbit-server arguments
#
# ORBIT_DATA_DIR defaults to ./data here (the binary's own default, /app/data,
# is the container image's). The first build took 38 minutes on a fresh
# 2-core Debian 12 root (scripts/check-fresh-machine.sh); RocksDB's C++ is
# most of it, then wasmtime's compiler.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install-native-deps.sh"
export ORBIT_DATA_DIR="${ORBIT_DATA_DIR:-./data}"
exec cargo run --release --locked --manifest-path "$root/Cargo.toml" --bin orbit-server -- "$@"
