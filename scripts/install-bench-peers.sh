#!/usr/bin/env bash
# Installs what http-bench runs beside orbit-server (Debian 12): wrk (the load
# generator), redis-server and redis-benchmark, and etcd (scripts/install-etcd.sh).
# Idempotent; uses sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-etcd.sh
if command -v wrk >/dev/null && command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk redis-server redis-tools >/dev/null
echo "bench peers: $(command -v wrk) $(command -v redis-server) $(command -v redis-benchmark)"
