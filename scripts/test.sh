#!/usr/bin/env bash
# Sets everything up, then runs every test: formatting, clippy, the Rust tests (unit tests,
# engine tests on the real default model, end-to-end tests of the real binary), the Zed
# extension's tests, and the VS Code extension's unit and end-to-end tests. Idempotent.
# Ends with one line `tests: N passed, M failed` and exits non-zero if anything failed.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo_root/scripts/bootstrap.sh"
say "set-up took $SECONDS s"

log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT
failed_suites=()

# Runs one suite, keeping its output for the count at the end.
run_suite() {
    local name="$1"
    shift
    local started=$SECONDS
    say "test suite: $name"
    if ! "$@" 2>&1 | tee "$log_dir/$(echo "$name" | tr -c 'a-zA-Z0-9' _).log"; then
        failed_suites+=("$name")
    fi
    say "test suite: $name took $((SECONDS - started)) s"
}

run_suite "cargo fmt" cargo fmt --all --check
run_suite "cargo clippy" cargo clippy --locked --all-targets -- -D warnings
run_suite "cargo test" cargo test --locked --workspace
run_suite "zed extension" bash editors/zed/scripts/test.sh
run_suite "vscode extension" bash editors/vscode/scripts/test-all.sh

# Add up what the runners reported: cargo's `test result:` lines, mocha's `N passing`/`N failing`,
# and the `N passed, M failed` lines of the end-to-end harnesses.
read -r passed failed < <(cat "$log_dir"/*.log | python3 -c '
import re, sys
passed = failed = 0
for line in sys.stdin:
    m = re.search(r"test result: \w+\. (\d+) passed; (\d+) failed", line)
    if m:
        passed += int(m[1]); failed += int(m[2]); continue
    m = re.match(r"\s*(\d+) passing\b", line)
    if m:
        passed += int(m[1]); continue
    m = re.match(r"\s*(\d+) failing\b", line)
    if m:
        failed += int(m[1]); continue
    m = re.match(r"^(?:\w+: )?(\d+) passed, (\d+) failed", line.strip())
    if m:
        passed += int(m[1]); failed += int(m[2])
print(passed, failed)
')
if [ ${#failed_suites[@]} -gt 0 ]; then
    say "failed suites: ${failed_suites[*]}"
    # A suite that failed before its runner reported (a build error) still counts as a failure.
    [ "$failed" -gt 0 ] || failed=${#failed_suites[@]}
fi
echo "tests: $passed passed, $failed failed"
[ ${#failed_suites[@]} -eq 0 ]
