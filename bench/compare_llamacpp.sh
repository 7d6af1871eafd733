#!/usr/bin/env bash
# Punie's llama.cpp engine against llama.cpp's own reference on the same GGUF, same threads,
# same workload (INTERFACES.md section 4), interleaved A/B/A/B so that load from other jobs hits
# both alike; prints the medians and the ratios Punie / reference.
#
# The reference is llama-cpp-python built from source with native CPU flags, in a venv cached
# under ~/.cache/punie-bench (the first run builds it: several minutes on 2 cores).
#
#   bench/compare_llamacpp.sh [MODEL.gguf] [THREADS] [ROUNDS]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
punie="$repo_root/target/debug/punie"
model="${1:-$("$punie" models list | awk -F'\t' '$1 == "smollm2-135m-instruct-q4_1" { print $3 }' | sed 's/ (default)//')}"
threads="${2:-2}"
rounds="${3:-3}"
prompt="$repo_root/bench/prompt.txt"
venv="${PUNIE_BENCH_VENV:-$HOME/.cache/punie-bench/llama-cpp-python-0.3.36}"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import llama_cpp, numpy" 2>/dev/null; then
    echo "==> building the reference: llama-cpp-python 0.3.36 from source with native CPU flags (cached in $venv)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install --quiet --no-binary llama-cpp-python \
        "llama-cpp-python==0.3.36" numpy
fi

[ -x "$punie" ] || (cd "$repo_root" && cargo build --bin punie)

results="$(mktemp)"
for round in $(seq 1 "$rounds"); do
    echo "==> round $round/$rounds: punie" >&2
    "$punie" bench --only engine --engine "llama:$model" --threads "$threads" --json |
        python3 -c 'import json,sys; e=json.load(sys.stdin)["engine"]; print(json.dumps({"who":"punie","prefill":e["prefill_tok_s"],"decode":e["decode_tok_s"]}))' >>"$results"
    echo "==> round $round/$rounds: llama.cpp reference" >&2
    "$venv/bin/python" "$repo_root/bench/llamacpp_reference.py" --model "$model" --prompt "$prompt" --threads "$threads" |
        python3 -c 'import json,sys; e=json.load(sys.stdin); print(json.dumps({"who":"reference","prefill":e["prefill_tok_s"],"decode":e["decode_tok_s"]}))' >>"$results"
done

python3 - "$results" "$model" "$threads" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def med(who, key):
    return statistics.median(r[key] for r in rows if r["who"] == who)
p_pre, p_dec = med("punie", "prefill"), med("punie", "decode")
r_pre, r_dec = med("reference", "prefill"), med("reference", "decode")
print(f"model {sys.argv[2]}, {sys.argv[3]} threads, {len(rows) // 2} interleaved rounds (medians)")
print(f"{'':12}{'prefill tok/s':>15}{'decode tok/s':>15}")
print(f"{'punie':12}{p_pre:>15.1f}{p_dec:>15.1f}")
print(f"{'llama.cpp':12}{r_pre:>15.1f}{r_dec:>15.1f}")
print(f"{'ratio':12}{p_pre / r_pre:>15.3f}{p_dec / r_dec:>15.3f}")
PY
rm -f "$results"
