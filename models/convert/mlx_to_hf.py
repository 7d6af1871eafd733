"""Un-stack MLX's `switch_mlp` expert tensors into the per-expert names llama.cpp's converter reads.

mlx_lm saves a qwen3_moe model's experts stacked, one tensor per projection:
    model.layers.N.mlp.switch_mlp.{gate,up,down}_proj.weight        [E, out, in]
`convert_hf_to_gguf.py` (llama.cpp, as vendored in llama-cpp-python 0.3.36) only knows the Hugging Face
names, one tensor per expert:
    model.layers.N.mlp.experts.{e}.{gate,up,down}_proj.weight       [out, in]
This holds for the production Qwen3-Coder-30B-A3B fine-tune as much as for micro-Punie.

Usage: python mlx_to_hf.py MLX_DIR HF_DIR
MLX_DIR must be dequantized (`mlx_lm fuse --dequantize` or `mlx_lm convert --dequantize`): a quantized
tensor has `.scales`/`.biases` companions the converter cannot read, so they are refused here.
Shards are processed one at a time (peak memory ≈ the largest shard twice), and every non-weight file
(config, tokenizer, chat template) is copied unchanged.
"""

import json
import re
import shutil
import sys
from pathlib import Path

import torch  # safetensors' torch backend: numpy has no bfloat16
from safetensors.torch import load_file, save_file

STACKED = re.compile(r"^(.*\.mlp)\.switch_mlp\.(gate_proj|up_proj|down_proj)\.weight$")


def unstack(tensors: dict) -> dict:
    """Return the tensors with every stacked expert tensor split into per-expert tensors."""
    out = {}
    for name, value in tensors.items():
        if name.endswith((".scales", ".biases")):
            raise SystemExit(f"{name}: the model is still quantized; dequantize it first")
        m = STACKED.match(name)
        if m is None:
            out[name] = value
            continue
        prefix, proj = m.groups()
        for e in range(value.shape[0]):
            # .clone(): save_file refuses tensors that share storage
            out[f"{prefix}.experts.{e}.{proj}.weight"] = value[e].clone()
    return out


def main(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    shards = sorted(src.glob("*.safetensors"))
    if not shards:
        raise SystemExit(f"{src}: no *.safetensors files")
    weight_map = {}
    total = 0
    for shard in shards:
        tensors = unstack(load_file(str(shard)))
        save_file(tensors, str(dst / shard.name), metadata={"format": "pt"})
        for name, t in tensors.items():
            weight_map[name] = shard.name
            total += t.numel() * t.element_size()
        print(f"{shard.name}: {len(tensors)} tensors", file=sys.stderr)
    for f in src.iterdir():
        if f.is_file() and not f.name.endswith(".safetensors") and f.name != "model.safetensors.index.json":
            shutil.copy2(f, dst / f.name)
    if len(shards) > 1:
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    else:
        (dst / "model.safetensors.index.json").unlink(missing_ok=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
