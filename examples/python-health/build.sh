#!/usr/bin/env bash
# Builds dist/python-health.wasm from app.py with componentize-py (PyPI,
# pinned). The component embeds CPython and imports WASI 0.2, which the host
# links with an empty, deny-by-default context.
set -euo pipefail
cd "$(dirname "$0")"
VERSION=0.25.0
CPY="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/componentize-py"
if ! "$CPY" --version 2>/dev/null | grep -q "$VERSION"; then
    python3 -m pip install -q --disable-pip-version-check "componentize-py==$VERSION"
fi
mkdir -p dist
"$CPY" -d ../../wit -w health-policy componentize app -o dist/python-health.wasm
ls -l dist/python-health.wasm
