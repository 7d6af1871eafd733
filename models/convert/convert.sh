#!/usr/bin/env bash
# Fused MLX (5-bit) qwen3_moe model directory -> Q5_K_M GGUF that Punie's llama.cpp loads.
#
# Usage: models/convert/convert.sh FUSED_MLX_DIR OUT.gguf
#
# Steps (each one's output is kept in WORK_DIR until the next step no longer needs it):
#   1. mlx_lm convert --dequantize      MLX 5-bit -> MLX full precision (the converter cannot read MLX quants)
#   2. mlx_to_hf.py                     un-stack `switch_mlp` experts into per-expert HF names
#   3. convert_hf_to_gguf.py --outtype f16   (from the llama-cpp-python 0.3.36 sdist: the copy in the
#                                        llama-cpp-sys-2 crate lacks its `conversion/` package and gguf-py)
#   4. punie models quantize --type q5_k_m   Punie's own llama.cpp, so no second llama.cpp build
#   5. punie models check               architecture, quantization, chat template, special tokens
#
# Environment:
#   PUNIE            the punie binary (default: target/release/punie, else target/debug/punie, else PATH)
#   PUNIE_CONVERT_VENV   venv with requirements.txt (default ~/.cache/punie-convert/venv; created if absent)
#   PUNIE_CONVERT_CACHE  where the sdist is downloaded and unpacked (default ~/.cache/punie-convert)
#   WORK_DIR         intermediates (default: OUT.gguf's directory/.convert-<name>); KEEP_WORK=1 keeps them
#   KEEP_F16=1       also keep the f16 GGUF next to OUT.gguf as OUT.f16.gguf (for logit comparisons)
#   MODEL_NAME       general.name written into the GGUF (default: the converter's guess)
set -euo pipefail

if [[ $# -ne 2 ]]; then
    sed -n '2,20p' "$0" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
out=$(realpath -m "$2")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

cache=${PUNIE_CONVERT_CACHE:-$HOME/.cache/punie-convert}
venv=${PUNIE_CONVERT_VENV:-$cache/venv}
work=${WORK_DIR:-$(dirname "$out")/.convert-$(basename "$out" .gguf)}

# The converter tree pinned by URL and digest: PyPI's simple index is the only host we rely on.
sdist_name=llama_cpp_python-0.3.36
sdist_url=https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/$sdist_name.tar.gz
sdist_sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e

if [[ -n ${PUNIE:-} ]]; then
    punie=$PUNIE
elif [[ -x $repo/target/release/punie ]]; then
    punie=$repo/target/release/punie
elif [[ -x $repo/target/debug/punie ]]; then
    punie=$repo/target/debug/punie
else
    punie=$(command -v punie) || { echo "no punie binary: run 'cargo build -p punie' or set PUNIE" >&2; exit 1; }
fi

step() { echo "== $* ($(date +%T))" >&2; }

mkdir -p "$cache" "$work"

if [[ ! -x $venv/bin/python ]]; then
    step "creating $venv (torch makes it ~5.7 GB on Linux; ~2-3 min)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$here/requirements.txt"
fi
py=$venv/bin/python

llamacpp=$cache/$sdist_name/vendor/llama.cpp
if [[ ! -f $llamacpp/convert_hf_to_gguf.py ]]; then
    step "fetching the converter ($sdist_name sdist, 76.6 MB)"
    curl -sSfL -o "$cache/$sdist_name.tar.gz.part" "$sdist_url"
    echo "$sdist_sha256  $cache/$sdist_name.tar.gz.part" | sha256sum -c --quiet -
    mv "$cache/$sdist_name.tar.gz.part" "$cache/$sdist_name.tar.gz"
    # Only the converter, its `conversion/` package and gguf-py are needed (2 MB of the 77).
    tar xzf "$cache/$sdist_name.tar.gz" -C "$cache" \
        "$sdist_name/vendor/llama.cpp/convert_hf_to_gguf.py" \
        "$sdist_name/vendor/llama.cpp/conversion" \
        "$sdist_name/vendor/llama.cpp/gguf-py"
fi

if [[ -f $src/config.json ]] && grep -q '"quantization"' "$src/config.json"; then
    step "1/5 dequantize (mlx_lm convert --dequantize)"
    rm -rf "$work/dequantized"
    "$py" -m mlx_lm convert --hf-path "$src" --mlx-path "$work/dequantized" --dequantize
    deq=$work/dequantized
else
    step "1/5 $src is not quantized: no dequantize step"
    deq=$src
fi

step "2/5 un-stack switch_mlp experts (mlx_to_hf.py)"
rm -rf "$work/hf"
"$py" "$here/mlx_to_hf.py" "$deq" "$work/hf"
[[ $deq == "$work/dequantized" && -z ${KEEP_WORK:-} ]] && rm -rf "$work/dequantized"

step "3/5 convert_hf_to_gguf.py --outtype f16"
f16=$work/model.f16.gguf
"$py" "$llamacpp/convert_hf_to_gguf.py" "$work/hf" --outtype f16 --outfile "$f16" \
    ${MODEL_NAME:+--model-name "$MODEL_NAME"}

step "4/5 punie models quantize --type q5_k_m"
"$punie" models quantize "$f16" "$out" --type q5_k_m

step "5/5 punie models check"
"$punie" models check "$out"

if [[ -n ${KEEP_F16:-} ]]; then
    mv "$f16" "${out%.gguf}.f16.gguf"
fi
if [[ -z ${KEEP_WORK:-} ]]; then
    rm -rf "$work"
fi
step "done: $out"
