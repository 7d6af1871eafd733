#!/usr/bin/env bash
# Punie's llama.cpp engine against llama.cpp's own reference on the same GGUF, same threads,
# same workload (INTERFACES.md section 4), interleaved A/B/C rounds so that load from other jobs
# hits all alike; prints the medians, the ratios Punie / reference, and Punie's TTFT cold and warm.
#
# The reference is llama-cpp-python built from source with native CPU flags, in a venv cached
# under ~/.cache/punie-bench (the first run builds it: several minutes on 2 cores).
#
#   bench/compare_llamacpp.sh [MODEL.gguf] [THREADS] [ROUNDS] [SUMMARY.json]
#
# SUMMARY.json, when given, receives the medians for `punie bench --report --reference`.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
punie="$repo_root/target/debug/punie"
model="${1:-$("$punie" models list | awk -F'\t' '$1 == "smollm2-135m-instruct-q4_1" { print $3 }' | sed 's/ (default)//')}"
threads="${2:-2}"
rounds="${3:-3}"
summary="${4:-}"
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
# Punie runs twice per round: with llama.cpp's weight repacking (extra buffer types: AMX tiles on
# CPUs that have them) and without, as the reference runs (see bench/llamacpp_reference.py).
for round in $(seq 1 "$rounds"); do
    for repack in 0 1; do
        echo "==> round $round/$rounds: punie, PUNIE_REPACK_WEIGHTS=$repack" >&2
        PUNIE_REPACK_WEIGHTS=$repack "$punie" bench --only engine --engine "llama:$model" --threads "$threads" --json |
            python3 -c 'import json,sys; e=json.load(sys.stdin)["engine"]; print(json.dumps({"who":"punie repack="+sys.argv[1],"prefill":e["prefill_tok_s"],"decode":e["decode_tok_s"],"ttft_cold":e["ttft_cold_ms"],"ttft_warm":e["ttft_warm_ms"]}))' "$repack" >>"$results"
    done
    echo "==> round $round/$rounds: llama.cpp reference" >&2
    # llama.cpp logs every tensor it loads: keep the reference's log out of the report.
    "$venv/bin/python" "$repo_root/bench/llamacpp_reference.py" --model "$model" --prompt "$prompt" --threads "$threads" 2>>"$results.log" |
        python3 -c 'import json,sys; e=json.load(sys.stdin); print(json.dumps({"who":"reference","engine":e["engine"],"prefill":e["prefill_tok_s"],"decode":e["decode_tok_s"]}))' >>"$results"
done

python3 - "$results" "$model" "$threads" "$summary" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
reference_engine = next(r.get("engine") for r in rows if r["who"] == "reference")
def med(who, key):
    return statistics.median(r[key] for r in rows if r["who"] == who)
r_pre, r_dec = med("reference", "prefill"), med("reference", "decode")
print(f"model {sys.argv[2]}, {sys.argv[3]} threads, {len(rows) // 3} interleaved rounds (medians)")
print(f"{'':18}{'prefill tok/s':>14}{'decode tok/s':>14}{'vs ref prefill':>16}{'vs ref decode':>15}{'TTFT cold ms':>14}{'TTFT warm ms':>14}")
for who, label in (("punie repack=0", "punie, no repack"), ("punie repack=1", "punie, repack")):
    pre, dec = med(who, "prefill"), med(who, "decode")
    cold, warm = med(who, "ttft_cold"), med(who, "ttft_warm")
    print(f"{label:18}{pre:>14.1f}{dec:>14.1f}{pre / r_pre:>16.3f}{dec / r_dec:>15.3f}{cold:>14.1f}{warm:>14.1f}")
print(f"{'llama.cpp':18}{r_pre:>14.1f}{r_dec:>14.1f}")
if sys.argv[4]:
    def figures(who):
        return {key: med(who, key) for key in ("prefill", "decode", "ttft_cold", "ttft_warm")}
    summary = {
        "model": sys.argv[2], "threads": int(sys.argv[3]), "rounds": len(rows) // 3,
        "punie": figures("punie repack=1"), "punie_no_repack": figures("punie repack=0"),
        "reference": {"engine": reference_engine, "prefill": r_pre, "decode": r_dec},
    }
    with open(sys.argv[4], "w") as out:
        json.dump(summary, out, indent=2)
PY
rm -f "$results" "$results.log"
