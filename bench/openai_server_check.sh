#!/usr/bin/env bash
# The `openai` engine against a real OpenAI-compatible server: llama-cpp-python's server on the
# default model, on loopback. Runs server/examples/openai_check.rs (streaming, stop strings,
# cancellation) and one `punie ask` through the server. The server's venv is cached under ~/.cache/punie-bench.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
venv="${PUNIE_BENCH_VENV:-$HOME/.cache/punie-bench/llama-cpp-python-0.3.36}"
port="${PORT:-18089}"
model="$(target/debug/punie models list | awk -F'\t' '$1 == "smollm2-135m-instruct-q4_1" { print $3 }' | sed 's/ (default)//')"

if [ ! -x "$venv/bin/python" ]; then
    echo "==> building llama-cpp-python 0.3.36 from source (cached in $venv)" >&2
    python3 -m venv "$venv"
    CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install --quiet --no-binary llama-cpp-python "llama-cpp-python==0.3.36" numpy
fi
if ! "$venv/bin/python" -c "import llama_cpp.server.app, uvicorn, sse_starlette, starlette_context, pydantic_settings" 2>/dev/null; then
    # The `[server]` extra's requirements of llama-cpp-python 0.3.36, without rebuilding it.
    echo "==> installing the server's Python packages" >&2
    "$venv/bin/pip" install --quiet "uvicorn>=0.22.0" "fastapi>=0.100.0" "pydantic-settings>=2.0.1" \
        "sse-starlette>=1.6.1" "starlette-context>=0.3.6,<0.4" "PyYAML>=5.1"
fi

echo "==> starting llama_cpp.server on 127.0.0.1:$port with $model" >&2
# bench/openai_server.py is `python -m llama_cpp.server` with llama.cpp's extra buffer types off
# (its -O3 build miscompiles the AMX kernels: SIGILL on CPUs with AMX).
"$venv/bin/python" bench/openai_server.py --model "$model" --model_alias smollm2 --host 127.0.0.1 --port "$port" --n_ctx 2048 >/tmp/punie-openai-server.log 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true' EXIT
server_up=false
for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null 2>&1; then server_up=true; break; fi
    kill -0 $server_pid 2>/dev/null || break
    sleep 0.5
done
if [ "$server_up" != true ]; then
    echo "==> the server did not come up; its log (/tmp/punie-openai-server.log) ends with:" >&2
    tail -20 /tmp/punie-openai-server.log >&2
    exit 1
fi

export PUNIE_OPENAI_URL="http://127.0.0.1:$port/v1#smollm2"
cargo run --quiet --example openai_check -- "$PUNIE_OPENAI_URL"
workspace="$(mktemp -d)"
cp -R tests/fixtures/workspace/. "$workspace/"
target/debug/punie ask --engine "openai:$PUNIE_OPENAI_URL" --workspace "$workspace" --max-turns 2 "What is in README.md?"
