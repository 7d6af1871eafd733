#!/usr/bin/env bash
# Every benchmark in one command, written into docs/benchmarks.md as its generated section:
# Punie against llama.cpp of the same version and the older llama-cpp-python build, quiet and
# with one busy process (bench/compare_llamacpp.sh), then `punie bench` with every section
# (engine with --contention, sandbox, language server, prompt-lookup rewrite, follow-up TTFT,
# Code Mode vs tool-per-turn with the chart).
# Run it on a quiet machine (under /work/bin/heavy on a shared one): other jobs on the same cores
# make llama.cpp many times slower.
#
#   bench/report.sh [THREADS] [ROUNDS]
#
# THREADS empty (the default): Punie's own thread choice, as a user gets it.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
threads="${1:-}"
rounds="${2:-3}"
summary="$(mktemp --suffix .json)"
trap 'rm -f "$summary"' EXIT

cargo build --locked --bin punie --example llamacpp_reference
PUNIE_BENCH_CONTENTION=1 bash bench/compare_llamacpp.sh "" "$threads" "$rounds" "$summary"
target/debug/punie bench ${threads:+--threads "$threads"} --contention \
    --tokenizer models/micro/tokenizer.json --chart docs/strategy-latency.svg \
    --reference "$summary" --report docs/benchmarks.md
echo "==> wrote the generated section of docs/benchmarks.md and docs/strategy-latency.svg" >&2
