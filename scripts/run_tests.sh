#!/usr/bin/env bash
# Run the test suite (sets up .venv first when needed): all tests, as CI does, or with --quick the tests not marked
# slow (no vLLM, Ray, kill loops or model runs; for the inner loop). Three pytest-xdist workers share the work (more
# workers than 2 cores: many tests wait on servers and subprocesses; two for --quick), whole units, the longest first
# (tests/scheduling.py); other arguments go to pytest (`-n 0`: one process).
set -euo pipefail
cd "$(dirname "$0")/.."
selection=()
workers=3
if [ "${1:-}" = "--quick" ]; then
  selection=(-m "not slow")
  workers=2  # the quick tests hardly wait: a third worker only adds its collection and imports (124 s against 113 s)
  shift
fi
bash scripts/setup_env.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 VLLM_NO_USAGE_STATS=1
python -m pytest -q -p no:cacheprovider -n $workers ${selection[@]+"${selection[@]}"} "$@" tests
