"""Train micro-Punie in torch on CPU: every parameter, loss on assistant turns only.

Usage: python train.py IN_DIR OUT_DIR STEPS [DATA_JSONL]

IN_DIR is an HF directory written by build.py (per-expert names, f32). transformers 5 loads qwen3_moe
experts fused (`mlp.experts.gate_up_proj` [E, 2I, H], gate rows first; `mlp.experts.down_proj`
[E, H, I]); `hf_state_dict` writes them back per expert so that mlx_lm's `sanitize` can read OUT_DIR,
and a round-trip check against IN_DIR guards that layout before any step is taken.

Why torch and not MLX: on a Linux CPU MLX's matmul against the 151936-row output projection is ~15x
slower (see the recipe). Only the positions whose next token is an assistant token go through
lm_head, which is most of the cost.

Knobs (env): SEED (0), BATCH (8), LR (3e-3, AdamW, cosine to 0), MAX_LEN (1024 tokens), THREADS,
SAVE_EVERY (0: also write OUT_DIR every N steps, so a run cut short on a busy machine still leaves
a usable checkpoint; OUT_DIR/step.txt says which step it holds).
"""

import json
import math
import os
import random
import re
import shutil
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

ASSISTANT = re.compile(r"<\|im_start\|>assistant\n(.*?<\|im_end\|>)", re.S)


def encode(tok: Tokenizer, text: str, max_len: int):
    """Token ids of a training row and, per token, whether it is inside an assistant turn
    (the content and its closing <|im_end|>; not the role header)."""
    enc = tok.encode(text, add_special_tokens=False)
    spans = [m.span(1) for m in ASSISTANT.finditer(text)]
    mask = [any(a <= start < b for a, b in spans) for start, _ in enc.offsets]
    return enc.ids[:max_len], mask[:max_len]


def hf_state_dict(model, tied: bool) -> dict:
    """The model's weights under the per-expert Hugging Face names, contiguous f32."""
    out = {}
    for name, t in model.state_dict().items():
        t = t.detach().to(torch.float32).contiguous()
        if name.endswith("mlp.experts.gate_up_proj"):
            prefix = name[: -len("gate_up_proj")]
            half = t.shape[1] // 2
            for e in range(t.shape[0]):
                out[f"{prefix}{e}.gate_proj.weight"] = t[e, :half].clone()
                out[f"{prefix}{e}.up_proj.weight"] = t[e, half:].clone()
        elif name.endswith("mlp.experts.down_proj"):
            prefix = name[: -len("down_proj")]
            for e in range(t.shape[0]):
                out[f"{prefix}{e}.down_proj.weight"] = t[e].clone()
        elif tied and name == "lm_head.weight":
            continue  # the same tensor as model.embed_tokens.weight
        else:
            out[name] = t.clone()
    return out


def main() -> None:
    src, dst, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    data = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    seed = int(os.environ.get("SEED", "0"))
    batch = int(os.environ.get("BATCH", "8"))
    lr = float(os.environ.get("LR", "3e-3"))
    max_len = int(os.environ.get("MAX_LEN", "1024"))
    save_every = int(os.environ.get("SAVE_EVERY", "0"))
    random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(int(os.environ.get("THREADS", str(os.cpu_count() or 1))))

    config = json.loads((src / "config.json").read_text())
    tied = bool(config.get("tie_word_embeddings"))
    model = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32)
    original = load_file(str(src / "model.safetensors"))
    roundtrip = hf_state_dict(model, tied)
    assert roundtrip.keys() == original.keys(), sorted(set(roundtrip) ^ set(original))
    for k, v in original.items():
        assert torch.equal(roundtrip[k], v), f"layout of {k} changed on load"

    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    rows = [json.loads(line)["text"] for line in data.read_text().splitlines() if line.strip()]
    examples = [encode(tok, r, max_len) for r in rows]
    print(f"{len(examples)} rows, {sum(len(i) for i, _ in examples)} tokens, "
          f"{sum(sum(m) for _, m in examples)} assistant tokens", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    order = []
    started = time.time()
    for step in range(1, steps + 1):
        if len(order) < batch:
            order += random.sample(range(len(examples)), len(examples))
        picked, order = [examples[i] for i in order[:batch]], order[batch:]
        width = max(len(ids) for ids, _ in picked)
        ids = torch.zeros((batch, width), dtype=torch.long)
        attn = torch.zeros((batch, width), dtype=torch.long)
        target = torch.zeros((batch, width), dtype=torch.bool)
        for b, (i, m) in enumerate(picked):
            ids[b, : len(i)] = torch.tensor(i)
            attn[b, : len(i)] = 1
            target[b, : len(m)] = torch.tensor(m)
        hidden = model.model(input_ids=ids, attention_mask=attn).last_hidden_state
        # Position t predicts token t+1: keep the positions whose next token is an assistant token.
        keep = target[:, 1:]
        logits = model.lm_head(hidden[:, :-1][keep])
        loss = torch.nn.functional.cross_entropy(logits, ids[:, 1:][keep])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 10 == 0 or step == 1:
            print(f"step {step}/{steps} loss {loss.item():.3f} ({time.time() - started:.0f} s)", flush=True)
        if save_every and step % save_every == 0 and step < steps:
            save(model, tied, src, dst, step)

    save(model, tied, src, dst, steps)
    print(f"saved {dst} after {steps} steps in {time.time() - started:.0f} s", flush=True)


def save(model, tied: bool, src: Path, dst: Path, step: int) -> None:
    """Writes the HF directory into a sibling temporary directory, then swaps it in."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(hf_state_dict(model, tied), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    for f in src.iterdir():
        if f.is_file() and f.name not in ("model.safetensors", "step.txt"):
            shutil.copy2(f, tmp / f.name)
    (tmp / "step.txt").write_text(f"{step}\n")
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)


if __name__ == "__main__":
    main()
