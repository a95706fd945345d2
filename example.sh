#!/usr/bin/env bash
# The whole pipeline on one benchmark: Step 1 (generate samples), Step 2 (grade them), Step 3 (reward model + LM judge),
# Step 4 (report). Defaults run offline on CPU, with no API key: a tiny chat model, reward model and judge taught small
# sums on the spot (once per SEED, about two minutes; scripts/example_training.py), so the report shows real signal on
# 64 problems: the chat model is right on some samples and wrong on others, the reward model ranks right answers higher
# and picks a right one more often than the first sample is right, the judge's K verdicts per sample lean to the right
# ones. With the tiny defaults every step computes the same numbers on any x86 CPU (torch's portable kernels, MKL's
# reproducible mode). VERBOSE=1 shows the libraries' logs. BACKEND=vllm runs Step 1 through vLLM. Override any default
# with environment variables, e.g.
#   MODEL=Qwen/Qwen2.5-0.5B-Instruct DATASET_PATH= MAX_ROWS=20 bash example.sh      # a real model, MATH-500 from the hub
#   MODEL=gpt-4o-mini LLM_FALLBACK=auto LM_JUDGES=GPT-4o-mini bash example.sh         # API models (OPENAI_API_KEY set)
#   REWARD_MODELS=SkyworkV2-Qwen3-0.6B bash example.sh                                  # a real reward model (hub)
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
. .venv/bin/activate

OUT=${OUT:-datasets/example}                      # where the three outputs go
INPUTS=${INPUTS:-$OUT/inputs}                     # tiny offline models and benchmark files
DATASET=${DATASET:-math}                          # mmlu, mmlu_pro, math, gpqa, gpqa_diamond
TINY_MODEL=$([ -z "${MODEL:-}" ] && echo yes || true)   # the tiny defaults get tiny token budgets, real models not
TINY_JUDGE=$([ -z "${LM_JUDGES+x}" ] && echo yes || true)
TINY_RM=$([ -z "${REWARD_MODELS+x}" ] && echo yes || true)
SEED=${SEED:-0}                                   # training seed of the tiny models and Step 1's sampling seed
if [ -z "${MODEL:-}" ] || [ -z "${REWARD_MODELS+x}" ] || [ -z "${LM_JUDGES+x}" ] || [ -z "${DATASET_PATH+x}" ]; then
  python scripts/make_example_inputs.py "$INPUTS" --seed "$SEED" $([ "${VERBOSE:-}" = 1 ] && echo --verbose) >/dev/null
fi
MODEL=${MODEL:-$INPUTS/tiny-chat}                 # an API model name, a hub id or a local folder
DATASET_PATH=${DATASET_PATH-$INPUTS/$DATASET.jsonl}  # set it empty (DATASET_PATH=) to read the benchmark from the hub
BACKEND=${BACKEND:-${TINY_MODEL:+transformers}}     # auto, api, vllm, transformers (tiny model: transformers starts
BACKEND=${BACKEND:-auto}                          # in seconds, vLLM on CPU in about a minute)
SAMPLES=${SAMPLES:-4}                             # samples per problem
MAX_ROWS=${MAX_ROWS:-}                            # first N problems (empty: all)
MAX_NEW_TOKENS=${MAX_NEW_TOKENS-${TINY_MODEL:+32}}   # empty: Step 1's default (512; none for reasoning API models)
TEMPERATURE=${TEMPERATURE:-0.7}
LLM_FALLBACK=${LLM_FALLBACK:-never}               # Step 2: auto asks an LLM only for undecidable samples (needs a key)
REWARD_MODELS=${REWARD_MODELS-TinyRM=$INPUTS/tiny-rm:sequence_classifier}
LM_JUDGES=${LM_JUDGES-TinyJudge=$INPUTS/tiny-judge}
JUDGE_MAX_TOKENS=${JUDGE_MAX_TOKENS-${TINY_JUDGE:+64}}  # empty: each judge's registry budget (2048, 8192 reasoning)
VERDICTS=${VERDICTS-${TINY_JUDGE:+5}}             # verdicts per sample (at temperature 0.7); empty: Step 3's default 1
WEAVER_RENAMES=${WEAVER_RENAMES:-}                # Step 4 --rename pairs for verifiers that are a model Weaver names
if [ -n "$TINY_MODEL" ] && [ -n "$TINY_RM" ] && [ -n "$TINY_JUDGE" ]; then  # all tiny: the same numbers on every
  export ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE,STRICT            # x86 CPU (portable kernels, MKL's CNR)
fi

step1_args=(--model "$MODEL" --dataset "$DATASET" --output_path "$OUT/samples.hf" --backend "$BACKEND"
            --samples_per_instruction "$SAMPLES" --temperature "$TEMPERATURE" --seed "$SEED")
[ -n "$MAX_NEW_TOKENS" ] && step1_args+=(--max_new_tokens "$MAX_NEW_TOKENS")
judge_args=()
report_args=()
verbose=()
[ "${VERBOSE:-}" = 1 ] && verbose=(--verbose)
for pair in $WEAVER_RENAMES; do report_args+=(--rename "$pair"); done
[ -n "$JUDGE_MAX_TOKENS" ] && judge_args+=(--judge_max_tokens "$JUDGE_MAX_TOKENS")
[ -n "$VERDICTS" ] && judge_args+=(--verdicts_per_sample "$VERDICTS")
[ -n "$DATASET_PATH" ] && step1_args+=(--dataset_path "$DATASET_PATH")
[ -n "$MAX_ROWS" ] && step1_args+=(--max_rows "$MAX_ROWS")

echo "== Step 1: generate samples"
python generation/generate_reasoning_samples.py "${step1_args[@]}" "${verbose[@]}"
echo "== Step 2: grade samples"
python generation/unified_evaluation.py --input_path "$OUT/samples.hf" --output_path "$OUT/evaluated.hf" \
    --dataset_type "$DATASET" --llm_fallback "$LLM_FALLBACK" "${verbose[@]}"
echo "== Step 3: reward models and LM judges"
python generation/unified_RMs_and_LM_Judges.py --dataset_path "$OUT/evaluated.hf" --output_path "$OUT/verified.hf" \
    --reward_models "$REWARD_MODELS" --lm_judges "$LM_JUDGES" "${judge_args[@]}" --batch_size 8 "${verbose[@]}"
if [ -n "$REWARD_MODELS$LM_JUDGES" ]; then
  echo "== Step 4: verifier report (which verifiers pick correct samples; figures; a copy for Weaver)"
  python generation/verifier_report.py --dataset_path "$OUT/verified.hf" --output_dir "$OUT/report" \
      --export_weaver "$OUT/weaver.hf" "${report_args[@]}" "${verbose[@]}"
fi
echo "== Done: load it with  datasets.load_dataset('$OUT/verified.hf')['data']; report: $OUT/report/report.html"
