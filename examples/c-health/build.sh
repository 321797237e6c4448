#!/usr/bin/env bash
# Builds dist/c-health.wasm from health.c:
#   1. wit-bindgen's C bindings of world health-policy (gen/health_policy.{h,c}
#      and gen/health_policy_component_type.o), generated from ../../wit by the
#      wit-bindgen-c library inside orbit-plugin-build, so they always match
#      the WIT;
#   2. Debian's clang compiles health.c, the bindings and libc/tiny_libc.c for
#      wasm32-unknown-unknown with no libc and no WASI, and wasm-ld links them
#      into a core module that carries its component type;
#   3. orbit-plugin-build encodes the core module as a component (what
#      `wasm-tools component new` does).
# Needs clang and lld (scripts/install-wasm-toolchain.sh installs them) and the
# workspace's Rust toolchain. Set ORBIT_PLUGIN_BUILD to a built
# orbit-plugin-build binary to skip `cargo run`.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=../..

CC="${CC:-}"
if [ -z "$CC" ]; then
    for c in clang clang-16 clang-15 clang-14; do
        if command -v "$c" >/dev/null; then CC="$c"; break; fi
    done
fi
if [ -z "$CC" ] || ! command -v wasm-ld >/dev/null; then
    bash "$ROOT/scripts/install-wasm-toolchain.sh"
    CC="${CC:-clang}"
fi

if [ -n "${ORBIT_PLUGIN_BUILD:-}" ]; then
    plugin_build() { "$ORBIT_PLUGIN_BUILD" "$@"; }
else
    plugin_build() {
        cargo run --release --locked -q --manifest-path "$ROOT/Cargo.toml" --bin orbit-plugin-build -- "$@"
    }
fi

rm -rf gen build
mkdir -p gen build dist
plugin_build c-bindings "$ROOT/wit" health-policy gen >/dev/null

# -ffreestanding: no hosted libc (libc/ has the few declarations needed) and
# no builtin recognition, so tiny_libc.c's memcpy stays a loop.
"$CC" --target=wasm32-unknown-unknown -std=c11 -O2 -ffreestanding -nostdlib \
    -Wall -Wextra -Werror -Wno-unused-parameter \
    -Ilibc -Igen \
    -Wl,--no-entry -Wl,--strip-all \
    -o build/c-health.core.wasm \
    health.c gen/health_policy.c libc/tiny_libc.c gen/health_policy_component_type.o

plugin_build componentize build/c-health.core.wasm dist/c-health.wasm >/dev/null
ls -l dist/c-health.wasm
