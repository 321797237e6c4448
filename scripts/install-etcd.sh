#!/usr/bin/env bash
# Installs etcd (Debian etcd-server / etcd-client, 3.4) for the lease
# benchmark (`target/release/lease-bench`, which runs etcd beside
# orbit-server). Idempotent; uses sudo when not root. Debian's package
# enables an etcd.service; the benchmark starts its own etcd on free ports
# and never uses that one.
set -euo pipefail
if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
  echo "etcd: $(command -v etcd) already installed ($(etcd --version | head -1))"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends etcd-server etcd-client >/dev/null
echo "etcd: installed $(command -v etcd) ($(etcd --version | head -1))"
