#!/usr/bin/env bash
# Installs the C/C++ build dependencies of the native backends on Debian 12,
# if missing: libclang (bindgen, for librocksdb-sys) and a C++ compiler.
set -euo pipefail
if dpkg -s libclang-dev >/dev/null 2>&1 && command -v g++ >/dev/null; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends libclang-dev g++
