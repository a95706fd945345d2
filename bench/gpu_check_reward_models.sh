#!/usr/bin/env bash
# GPU variant of the Step 3a checks (run on a CUDA machine from the repo root; needs torch, transformers, datasets).
# 1) bench: batch 1 vs length-sorted batches on the GPU (random RMs; a real cached RM with MODEL=...);
# 2) Step 3 on tiny RMs in the default GPU mode (one worker process per GPU) and with --sequential_rm_processing,
#    checking both give the same scores.
set -uo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
ls "${HF_HOME:-$HOME/.cache/huggingface}/hub" 2>/dev/null | grep -i -E "reward|prm" || echo "no reward model in the HF cache"
$PY bench/bench_reward_models.py --device cuda --samples 2000 --batch_size 32
$PY bench/bench_reward_models.py --device cuda --samples 2000 --batch_size 32 --hidden 1024 --layers 12
if [ -n "${MODEL:-}" ]; then $PY bench/bench_reward_models.py --device cuda --model "$MODEL" --batch_size 32; fi
WORK=$(mktemp -d)
$PY - "$WORK" <<'PYEOF'
import os, sys
sys.path[:0] = ["generation", "tests"]
import datasets
import tiny_reward_models as tiny
work = sys.argv[1]
rows = [{"instruction": f"Q{i}: {i} + {i}?", "samples": [f"Step 1.\n\nThe answer is: {2 * i}", "the of " * (10 * i + 3), "x"]}
        for i in range(6)]
datasets.DatasetDict({"data": datasets.Dataset.from_list(rows)}).save_to_disk(f"{work}/in.hf")
tiny.build_sequence_classifier(f"{work}/seq")
tiny.build_qwen2_rm(f"{work}/prm", 2)
PYEOF
RMS="Seq=$WORK/seq:sequence_classifier,PRM=$WORK/prm:step_prm"
$PY generation/unified_RMs_and_LM_Judges.py --dataset_path "$WORK/in.hf" --output_path "$WORK/par.hf" --reward_models "$RMS" --device cuda; echo "parallel rc=$?"
$PY generation/unified_RMs_and_LM_Judges.py --dataset_path "$WORK/in.hf" --output_path "$WORK/seq.hf" --reward_models "$RMS" --device cuda --sequential_rm_processing; echo "sequential rc=$?"
$PY - "$WORK" <<'PYEOF'
import json, sys
import datasets
work = sys.argv[1]
par, seq = (datasets.load_from_disk(f"{work}/{n}.hf")["data"] for n in ("par", "seq"))
for column in ("Seq_scores", "PRM_avg_scores"):
    diff = max(abs(a - b) for ra, rb in zip(par[column], seq[column]) for a, b in zip(ra, rb))
    print(column, "max |parallel - sequential| =", diff)
prov = json.load(open(f"{work}/par.hf.provenance.json"))
print("mode:", prov["rm_mode"], "| Seq:", {k: prov["verifiers"]["Seq"][k] for k in ("device", "dtype", "attn_implementation")})
PYEOF
