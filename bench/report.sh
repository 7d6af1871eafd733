#!/usr/bin/env bash
# Every benchmark in one command, written into docs/benchmarks.md as its generated section:
# Punie against llama.cpp's reference (bench/compare_llamacpp.sh), then `punie bench` (engine,
# warm and cold TTFT, sandbox, language server, Code Mode vs tool-per-turn with the chart).
# Run it on a quiet machine: other jobs on the same cores make llama.cpp many times slower.
#
#   bench/report.sh [THREADS] [ROUNDS]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
threads="${1:-2}"
rounds="${2:-3}"
summary="$(mktemp --suffix .json)"
trap 'rm -f "$summary"' EXIT

cargo build --locked --bin punie
bash bench/compare_llamacpp.sh "" "$threads" "$rounds" "$summary"
target/debug/punie bench --threads "$threads" \
    --tokenizer models/micro/tokenizer.json --chart docs/strategy-latency.svg \
    --reference "$summary" --report docs/benchmarks.md
echo "==> wrote the generated section of docs/benchmarks.md and docs/strategy-latency.svg" >&2
