"""Logit agreement: MLX (fused, dequantized) vs GGUF f16 vs GGUF Q5_K_M, on the same token ids.

Usage: python compare.py MLX_DEQ_DIR MLX_5BIT_DIR F16.gguf Q5_K_M.gguf VALID.jsonl LOGITS.json

LOGITS.json comes from the hidden `punie models logits` (llama.cpp through Punie's own
llama-cpp-2 build), run by run.sh on the prompts this script writes with `--prompts`:
    python compare.py --prompts VALID.jsonl PROMPTS.json
The prompts are the first assistant turn of validation rows (system + user + assistant header):
two that the data answers with a tool call, one it answers in prose. Logits are compared at the
last prompt position (the first token the model generates). Prints a markdown table.
"""

import json
import sys
from pathlib import Path

import numpy as np

HEADER = "<|im_start|>assistant\n"


def pick_prompts(valid: Path) -> list:
    rows = [json.loads(l)["text"] for l in valid.read_text().splitlines() if l.strip()]
    calls, prose = [], []
    for row in rows:
        cut = row.index(HEADER) + len(HEADER)
        prompt, answer = row[:cut], row[cut:]
        (calls if answer.startswith(("I'll use", "<tool_call>")) else prose).append(prompt)
    return calls[:2] + prose[:1]


def mlx_logits(model_dir: str, ids: list) -> np.ndarray:
    import mlx.core as mx
    from mlx_lm import load

    model, _ = load(model_dir)
    if "quantization" not in json.loads((Path(model_dir) / "config.json").read_text()):
        model.set_dtype(mx.float32)  # MLX-CPU's gather_mm (the MoE experts) is f32-only
    out = model(mx.array([ids]))[0, -1].astype(mx.float32)
    return np.array(out)


def stats(a: np.ndarray, b: np.ndarray) -> str:
    top5a, top5b = set(np.argsort(-a)[:5]), set(np.argsort(-b)[:5])
    return (f"{np.max(np.abs(a - b)):.4f} | {np.corrcoef(a, b)[0, 1]:.5f} | "
            f"{'yes' if a.argmax() == b.argmax() else 'NO'} | {len(top5a & top5b)}/5")


def main() -> None:
    if sys.argv[1] == "--prompts":
        Path(sys.argv[3]).write_text(json.dumps(pick_prompts(Path(sys.argv[2]))))
        return
    deq, q5_mlx, f16, q5, _valid, logits_json = sys.argv[1:7]
    results = json.loads(Path(logits_json).read_text())
    by_gguf = {}
    for r in results:
        by_gguf.setdefault(r["gguf"], []).append(r)
    print("| prompt | tokens | pair | max abs diff | correlation | same top-1 | top-5 overlap |")
    print("|---|---|---|---|---|---|---|")
    for i, (rf, rq) in enumerate(zip(by_gguf[f16], by_gguf[q5])):
        assert rf["ids"] == rq["ids"]
        ids = rf["ids"]
        lf = np.array(rf["logits"], dtype=np.float32)
        lq = np.array(rq["logits"], dtype=np.float32)
        ld = mlx_logits(deq, ids)[: lf.shape[0]]
        l5 = mlx_logits(q5_mlx, ids)[: lf.shape[0]]
        for name, a, b in [
            ("MLX dequantized vs GGUF f16", ld, lf),
            ("MLX dequantized vs GGUF Q5_K_M", ld, lq),
            ("GGUF f16 vs GGUF Q5_K_M", lf, lq),
            ("MLX 5-bit vs GGUF Q5_K_M", l5, lq),
        ]:
            print(f"| {i + 1} | {len(ids)} | {name} | {stats(a, b)} |")


if __name__ == "__main__":
    main()
