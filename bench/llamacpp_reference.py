"""The fixed engine workload of INTERFACES.md section 4, run by llama.cpp's own low-level API.

This is the reference `punie bench --only engine` is compared with (bench/compare_llamacpp.sh):
llama-cpp-python's raw bindings call llama.cpp's C functions directly, so this measures llama.cpp
itself with no Python work inside the timed regions except one argmax per decoded token.

Workload: the first 512 tokens of the prompt file (special tokens added, not parsed) decoded in
one batch with logits for the last position only, then 128 single-token greedy decodes with
end-of-generation ignored; n_ctx = n_batch = 2048; the KV cache cleared between repetitions; one
warm-up; medians of the repetitions. Prints one JSON object.
"""

import argparse
import ctypes
import json
import statistics
import time

import llama_cpp as lc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()

    lc.llama_backend_init()
    model_params = lc.llama_model_default_params()
    # On CPUs with AMX (Sapphire Rapids and later), llama-cpp-python 0.3.36 repacks weights for
    # AMX and then dies with SIGILL: its Release build (-O3, GCC 12) drops the stores that fill the
    # AMX tile configuration. Plain AVX-512 is used instead; see docs/benchmarks.md.
    model_params.use_extra_bufts = False
    model = lc.llama_model_load_from_file(args.model.encode(), model_params)
    vocab = lc.llama_model_get_vocab(model)
    ctx_params = lc.llama_context_default_params()
    ctx_params.n_ctx = 2048
    ctx_params.n_batch = 2048
    ctx_params.n_ubatch = 2048
    ctx_params.n_threads = args.threads
    ctx_params.n_threads_batch = args.threads
    ctx = lc.llama_init_from_model(model, ctx_params)
    n_vocab = lc.llama_vocab_n_tokens(vocab)

    text = open(args.prompt, encoding="utf-8").read().encode()
    tokens = (lc.llama_token * (len(text) + 16))()
    n_tokens = lc.llama_tokenize(vocab, text, len(text), tokens, len(tokens), True, False)
    n_prompt = min(512, n_tokens)
    batch = lc.llama_batch_init(2048, 0, 1)

    def set_batch(items):
        batch.n_tokens = len(items)
        for i, (token, pos, logits) in enumerate(items):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = logits

    prefill_times, decode_times = [], []
    for rep in range(args.repetitions + 1):
        lc.llama_memory_clear(lc.llama_get_memory(ctx), True)
        set_batch([(tokens[i], i, i == n_prompt - 1) for i in range(n_prompt)])
        started = time.perf_counter()
        assert lc.llama_decode(ctx, batch) == 0
        prefill = time.perf_counter() - started
        position = n_prompt
        started = time.perf_counter()
        for _ in range(128):
            logits = lc.llama_get_logits_ith(ctx, -1)
            row = ctypes.cast(logits, ctypes.POINTER(ctypes.c_float * n_vocab)).contents
            token = _argmax(row, n_vocab)
            set_batch([(token, position, True)])
            assert lc.llama_decode(ctx, batch) == 0
            position += 1
        decode = time.perf_counter() - started
        if rep > 0:
            prefill_times.append(prefill)
            decode_times.append(decode)

    prefill = statistics.median(prefill_times)
    decode = statistics.median(decode_times)
    print(json.dumps({
        "engine": "llama-cpp-python " + lc.__version__,
        "threads": args.threads,
        "prefill_tok_s": round(n_prompt / prefill, 1),
        "decode_tok_s": round(128 / decode, 1),
        "prompt_tokens": n_prompt,
    }))


def _argmax(row, n_vocab):
    # numpy keeps the per-token Python work small, as llama.cpp's own samplers would.
    import numpy as np

    return int(np.ctypeslib.as_array(row, shape=(n_vocab,)).argmax())


if __name__ == "__main__":
    main()
