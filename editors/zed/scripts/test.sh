#!/usr/bin/env bash
# The Zed extension on the host: cargo test of every target (the wasm32-wasip2 build is Zed's job
# when it installs the extension). No separate `cargo check`: the test build compiles the same code. Its own target dir and lockfile; not part of the main workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_ZED:-$PWD/target}"
cargo test --locked --all-targets
