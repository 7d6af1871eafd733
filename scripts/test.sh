#!/usr/bin/env bash
# Sets everything up, then runs every test: formatting, clippy, the Rust tests (unit, engine
# tests on the real default model, end-to-end tests of the real binary), and the editor
# extensions' tests. Idempotent. Exits non-zero if anything fails.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo_root/scripts/bootstrap.sh"

passed=0
failed=0
failed_names=()
run_suite() {
    local name="$1"
    shift
    say "test suite: $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
}

run_suite "cargo fmt --check" cargo fmt --all --check
run_suite "cargo clippy" cargo clippy --locked --all-targets -- -D warnings
run_suite "cargo test" cargo test --locked --workspace
for suite in editors/zed/scripts/test.sh editors/vscode/scripts/test-all.sh; do
    if [ -f "$suite" ]; then
        run_suite "$suite" bash "$suite"
    fi
done

if [ "$failed" -gt 0 ]; then
    say "failed suites: ${failed_names[*]}"
fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
