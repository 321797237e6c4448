#!/usr/bin/env bash
# Installs what building the WebAssembly plugins needs on Debian 12, if it is
# missing: Debian's Rust (rustc-web: /usr/bin/cargo and /usr/bin/rustc, with
# the standard library's sources so std can be built for wasm32), wasm-ld
# (lld), and clang for the C example plugin (examples/c-health: Debian's clang
# 14 targets wasm32-unknown-unknown; no wasi-libc is needed).
# rustup's toolchain here has no wasm32 standard library and cannot fetch one.
set -euo pipefail
if [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && command -v wasm-ld >/dev/null \
    && [ -d /usr/lib/rustlib/src/rust/library ] && command -v clang >/dev/null; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends rustc-web cargo-web rust-web-src lld clang
