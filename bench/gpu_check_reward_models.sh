#!/usr/bin/env bash
# Every reward-model loader kind on tiny models: CPU float32 against the GPU in bf16, one row per kind with the
# largest |difference| and pass/fail at bf16 tolerance. One command from the repo root; needs torch and transformers
# only (no network, no vLLM). DEVICE=cpu runs the same comparison on the CPU (float32 vs bf16); DTYPE=float16 etc.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_DISABLE_PROGRESS_BARS=1
export HF_MODULES_CACHE=${HF_MODULES_CACHE:-$(mktemp -d)}  # the remote-code stand-ins' modules, kept apart
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
if [ "$DEVICE" != cpu ]; then nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true; fi
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
exec $PY bench/compare_reward_model_devices.py --device "$DEVICE" --dtype "${DTYPE:-bfloat16}"
