#!/usr/bin/env bash
# The Zed extension on the host: cargo check and cargo test (the wasm32-wasip2 build is Zed's job
# when it installs the extension). Its own target dir and lockfile; not part of the main workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_ZED:-$PWD/target}"
cargo check --locked --all-targets
cargo test --locked
