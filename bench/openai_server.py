"""llama-cpp-python's OpenAI-compatible server with llama.cpp's extra buffer types turned off.

Its ggml (0.3.36) repacks weights for AMX on CPUs that have it and then dies with SIGILL before
serving a single request: its Release build (-O3, GCC 12) drops the stores that fill the AMX tile
configuration (docs/benchmarks.md). Turning the extra buffer types off (what `--no-repack` does in llama.cpp's own server) gives plain AVX-512 kernels instead; the
server is otherwise unchanged. Arguments are `python -m llama_cpp.server`'s.
"""

import llama_cpp.llama_cpp as llama_cpp_api
from llama_cpp.server.__main__ import main

_library_defaults = llama_cpp_api.llama_model_default_params


def _defaults_without_extra_buffer_types():
    params = _library_defaults()
    params.use_extra_bufts = False
    return params


# `Llama.__init__` reads the defaults through this module attribute.
llama_cpp_api.llama_model_default_params = _defaults_without_extra_buffer_types

if __name__ == "__main__":
    main()
