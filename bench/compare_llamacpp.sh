#!/usr/bin/env bash
# Punie's llama.cpp engine against llama.cpp itself on the same GGUF and the same workload
# (INTERFACES.md section 4), in interleaved rounds so that load from other jobs hits all alike;
# prints the medians and the ratios Punie / anchor.
#
# Two anchors:
# - same version (the one the goal is judged on): server/examples/llamacpp_reference.rs, llama.cpp's
#   C API from the very llama-cpp-sys-2 build Punie links, run with the settings Punie reports
#   (weight repacking, flash attention, KV cache type) and llama.cpp's default thread count (the
#   physical cores);
# - history: llama-cpp-python 0.3.36 built from source with native CPU flags (an older llama.cpp,
#   its default attention, no repacking), in a venv cached under ~/.cache/punie-bench (the first
#   run builds it: several minutes on 2 cores). PUNIE_BENCH_HISTORY=0 leaves it out.
#
# PUNIE_BENCH_CONTENTION=1 repeats every round with one competing busy process (`sh` spinning),
# started and stopped here: decode on a machine in use, against llama.cpp under the same load.
#
# Punie runs with its defaults (the decode threads chosen from measured step times) unless THREADS
# is given, twice per round: with llama.cpp's weight repacking and without.
#
#   bench/compare_llamacpp.sh [MODEL.gguf] [THREADS] [ROUNDS] [SUMMARY.json]
#
# SUMMARY.json, when given, receives the medians for `punie bench --report --reference`.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
punie="$repo_root/target/debug/punie"
anchor="$repo_root/target/debug/examples/llamacpp_reference"
(cd "$repo_root" && cargo build --locked --quiet --bin punie --example llamacpp_reference)
model="${1:-$("$punie" models list | awk -F'\t' '$1 == "smollm2-135m-instruct-q4_1" { print $3 }' | sed 's/ (default)//')}"
threads="${2:-}"
rounds="${3:-3}"
summary="${4:-}"
prompt="$repo_root/bench/prompt.txt"
history="${PUNIE_BENCH_HISTORY:-1}"
venv="${PUNIE_BENCH_VENV:-$HOME/.cache/punie-bench/llama-cpp-python-0.3.36}"
# llama.cpp's own default: the physical cores, as Punie counts them.
anchor_threads="${threads:-$(lscpu -p=Socket,Core 2>/dev/null | grep -v '^#' | sort -u | wc -l)}"
[ "$anchor_threads" -gt 0 ] || anchor_threads="$(nproc)"

if [ "$history" != 0 ] && { [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import llama_cpp, numpy" 2>/dev/null; }; then
    echo "==> building the history anchor: llama-cpp-python 0.3.36 from source with native CPU flags (cached in $venv)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install --quiet --no-binary llama-cpp-python \
        "llama-cpp-python==0.3.36" numpy
fi

results="$(mktemp)"
busy_pid=""
trap '[ -z "$busy_pid" ] || kill "$busy_pid" 2>/dev/null; rm -f "$results" "$results.log"' EXIT
# One row per measurement: {"who", "condition", figures}.
tag() { python3 -c 'import json,sys; e=json.load(sys.stdin); e.update(who=sys.argv[1], condition=sys.argv[2]); print(json.dumps(e))' "$1" "$condition"; }
conditions=quiet
[ "${PUNIE_BENCH_CONTENTION:-0}" = 0 ] || conditions="quiet busy"
for condition in $conditions; do
    if [ "$condition" = busy ]; then
        # One competing busy process, as a user's editor, build or browser would be.
        sh -c 'while :; do :; done' &
        busy_pid=$!
    fi
    for round in $(seq 1 "$rounds"); do
        for repack in 0 1; do
            echo "==> $condition, round $round/$rounds: punie, PUNIE_REPACK_WEIGHTS=$repack" >&2
            PUNIE_REPACK_WEIGHTS=$repack "$punie" bench --only engine --engine "llama:$model" ${threads:+--threads "$threads"} --json |
                python3 -c 'import json,sys; e=json.load(sys.stdin)["engine"]; print(json.dumps({"prefill":e["prefill_tok_s"],"decode":e["decode_tok_s"],"ttft_cold":e["ttft_cold_ms"],"ttft_warm":e["ttft_warm_ms"],"flash_attention":e["flash_attention"],"cache_type":e["cache_type"],"decode_threads":e["decode_threads"]}))' |
                tag "punie repack=$repack" >>"$results"
            # The anchor with the settings this Punie run reported.
            read -r flash cache < <(tail -n 1 "$results" | python3 -c 'import json,sys; e=json.load(sys.stdin); print(int(e["flash_attention"] == "on"), e["cache_type"])')
            echo "==> $condition, round $round/$rounds: llama.cpp same version, repack=$repack flash_attn=$flash cache=$cache" >&2
            # llama.cpp logs every tensor it loads: keep the anchors' logs out of the report.
            "$anchor" --model "$model" --prompt "$prompt" --threads "$anchor_threads" \
                --repack "$repack" --flash-attn "$flash" --cache-type "$cache" 2>>"$results.log" |
                python3 -c 'import json,sys; e=json.load(sys.stdin); print(json.dumps({"engine":e["engine"],"prefill":e["prefill_tok_s"],"decode":e["decode_tok_s"]}))' |
                tag "same repack=$repack" >>"$results"
        done
        if [ "$history" != 0 ]; then
            echo "==> $condition, round $round/$rounds: llama-cpp-python 0.3.36 (history)" >&2
            "$venv/bin/python" "$repo_root/bench/llamacpp_reference.py" --model "$model" --prompt "$prompt" --threads "$anchor_threads" 2>>"$results.log" |
                python3 -c 'import json,sys; e=json.load(sys.stdin); print(json.dumps({"engine":e["engine"],"prefill":e["prefill_tok_s"],"decode":e["decode_tok_s"]}))' |
                tag reference >>"$results"
        fi
    done
    if [ -n "$busy_pid" ]; then
        kill "$busy_pid"
        wait "$busy_pid" 2>/dev/null || true
        busy_pid=""
    fi
done

python3 - "$results" "$model" "${threads:-default}" "$anchor_threads" "$rounds" "$summary" <<'PY'
import json, statistics, sys
results, model, threads, anchor_threads, rounds, summary = sys.argv[1:]
rows = [json.loads(line) for line in open(results)]
conditions = list(dict.fromkeys(r["condition"] for r in rows))
def med(condition, who, key):
    return statistics.median(r[key] for r in rows if r["who"] == who and r["condition"] == condition)
def engine(who):
    return next((r["engine"] for r in rows if r["who"] == who), None)
has_history = engine("reference") is not None
print(f"model {model}, punie threads {threads}, anchor threads {anchor_threads}, {rounds} interleaved rounds (medians)")
for condition in conditions:
    print(f"{condition:26}{'prefill tok/s':>14}{'decode tok/s':>14}{'vs same prefill':>17}{'vs same decode':>16}{'TTFT cold ms':>14}{'TTFT warm ms':>14}")
    for repack in ("0", "1"):
        punie, same = "punie repack=" + repack, "same repack=" + repack
        pre, dec = med(condition, punie, "prefill"), med(condition, punie, "decode")
        s_pre, s_dec = med(condition, same, "prefill"), med(condition, same, "decode")
        cold, warm = med(condition, punie, "ttft_cold"), med(condition, punie, "ttft_warm")
        print(f"{'punie, repack=' + repack:26}{pre:>14.1f}{dec:>14.1f}{pre / s_pre:>17.3f}{dec / s_dec:>16.3f}{cold:>14.1f}{warm:>14.1f}")
        print(f"{'llama.cpp same, repack=' + repack:26}{s_pre:>14.1f}{s_dec:>14.1f}")
    if has_history:
        print(f"{'llama-cpp-python 0.3.36':26}{med(condition, 'reference', 'prefill'):>14.1f}{med(condition, 'reference', 'decode'):>14.1f}")
if summary:
    def figures(condition):
        def of(who, keys=("prefill", "decode")):
            return {key: med(condition, who, key) for key in keys}
        out = {
            "punie": of("punie repack=1", ("prefill", "decode", "ttft_cold", "ttft_warm")),
            "punie_no_repack": of("punie repack=0", ("prefill", "decode", "ttft_cold", "ttft_warm")),
            "same_version": of("same repack=1"),
            "same_version_no_repack": of("same repack=0"),
        }
        if has_history:
            out["reference"] = of("reference")
        return out
    last = [r for r in rows if r["who"] == "punie repack=1"][-1]
    out = {
        "model": model, "threads": threads, "anchor_threads": int(anchor_threads), "rounds": int(rounds),
        "settings": {key: last[key] for key in ("flash_attention", "cache_type")},
        "same_version_engine": engine("same repack=1"),
        "reference_engine": engine("reference"),
        **{condition: figures(condition) for condition in conditions},
    }
    with open(summary, "w") as f:
        json.dump(out, f, indent=2)
PY
