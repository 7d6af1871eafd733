#!/usr/bin/env bash
# Everything the VS Code extension is tested with, in order: set-up of the e2e tools (idempotent,
# apt chromium when missing and root), npm ci, build, unit tests, .vsix, end-to-end in code-server
# against the real `punie lsp` (PUNIE_BIN, default <repo>/target/debug/punie).
#   PUNIE_E2E=skip   skips the end-to-end part (then it says so and exits with the unit tests' status)
#   PUNIE_E2E=mock   runs the end-to-end part against test/e2e/mock-punie.mjs (harness self-test)
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
step() { echo "== vscode: $* ($(( $(date +%s) - t0 ))s)"; }

step "npm ci"
if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "node_modules is up to date with package-lock.json"
else
  npm ci --no-audit --no-fund --prefer-offline
fi
step "build"
npm run --silent build
step "unit tests"
npm test --silent
step "package"
rm -f punie.vsix
npx --no-install vsce package --no-dependencies --no-rewrite-relative-links --out punie.vsix >/dev/null
ls -l punie.vsix

case "${PUNIE_E2E:-real}" in
  skip) step "end-to-end skipped (PUNIE_E2E=skip)"; exit 0 ;;
  mock) mode=--mock ;;
  *) mode= ;;
esac
step "e2e set-up"
bash scripts/setup-e2e.sh >/dev/null
step "end-to-end"
bash test/e2e/run-e2e.sh $mode
step "all passed"
