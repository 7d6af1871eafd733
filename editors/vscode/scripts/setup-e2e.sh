#!/usr/bin/env bash
# Installs what the end-to-end test needs, once, into a cache folder (idempotent, offline-friendly:
# only the npm registry, PyPI and Debian apt). See ../../shared/recipes/vscode-e2e-offline.md.
#   code-server 4.100.3 (VS Code 1.100.3, the last release on Node 20) under $CACHE/cs
#   a Python venv with Playwright under $CACHE/pwenv (driving Debian's chromium; no browser download)
set -euo pipefail
CACHE="${PUNIE_E2E_CACHE:-$HOME/.cache/punie-e2e}"
CS_VERSION=4.100.3
RG_PKG_VERSION=1.15.11   # @vscode/ripgrep version that code-server 4.100.3 depends on
mkdir -p "$CACHE"

need_apt=()
[ -x /usr/lib/chromium/chromium ] || need_apt+=(chromium)
command -v rg >/dev/null || need_apt+=(ripgrep)
command -v g++ >/dev/null || need_apt+=(build-essential)
python3 -c 'import ensurepip' 2>/dev/null || need_apt+=(python3-venv)
for p in pkg-config libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ] && [ ! -x "$CACHE/cs/node_modules/.bin/code-server" -o ! -x /usr/lib/chromium/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup-e2e: apt-get install ${need_apt[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup-e2e: missing Debian packages: ${need_apt[*]}; install them with apt-get (as root) and rerun" >&2
    exit 1
  fi
fi

if [ ! -x "$CACHE/cs/node_modules/.bin/code-server" ]; then
  echo "setup-e2e: installing code-server@$CS_VERSION into $CACHE/cs (about 2 minutes cold)" >&2
  # @vscode/ripgrep's postinstall downloads rg from GitHub: seed its cache with Debian's rg.
  RGC="${TMPDIR:-/tmp}/vscode-ripgrep-cache-$RG_PKG_VERSION"
  mkdir -p "$RGC"
  [ -f "$RGC/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" ] ||
    tar czf "$RGC/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$(dirname "$(command -v rg)")" rg
  rm -rf "$CACHE/cs.tmp"
  npm_config_unsafe_perm=true npm_config_yes=true npm install --no-audit --no-fund \
    --prefix "$CACHE/cs.tmp" "code-server@$CS_VERSION" >"$CACHE/cs-install.log" 2>&1 ||
    { tail -30 "$CACHE/cs-install.log" >&2; echo "setup-e2e: code-server install failed (log: $CACHE/cs-install.log)" >&2; exit 1; }
  rm -rf "$CACHE/cs" && mv "$CACHE/cs.tmp" "$CACHE/cs"
fi

if [ ! -x "$CACHE/pwenv/bin/python" ] || ! "$CACHE/pwenv/bin/python" -c 'import playwright' 2>/dev/null; then
  echo "setup-e2e: creating the Playwright venv in $CACHE/pwenv" >&2
  python3 -m venv "$CACHE/pwenv"
  "$CACHE/pwenv/bin/pip" install -q playwright   # never `playwright install`: we use Debian's chromium
fi
echo "$CACHE"
