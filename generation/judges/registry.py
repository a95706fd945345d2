"""The LM-judge registry: one row per judge of VERIFIERS (local vLLM or API), plus judges named on the command line."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

from generation.common.cli import UserError

API_PROVIDERS = ("openai", "anthropic", "together", "openai_compatible")
CUSTOM_MAX_TOKENS = 2048


@dataclass(frozen=True)
class JudgeSpec:
    """How to run one judge: the model, where it runs, and what its chat template and outputs look like."""

    name: str  # the column prefix: {name}_verdicts
    model: str  # HF id or local path (vllm), or the provider's model name (api)
    backend: str  # "vllm" or "api"
    provider: str | None = None  # api only: openai, anthropic, together, openai_compatible
    system_role: bool = True  # False: the template rejects a system turn (or the card advises against it): fold it
    reasoning: bool = False  # emits a thinking block before the verdict (DeepSeek-R1 style)
    max_tokens: int = CUSTOM_MAX_TOKENS  # suggested judgment budget (thinking included)
    tensor_parallel: int = 1  # suggested GPUs for vLLM
    memory_gb: int = 0  # approximate weight memory (bf16 unless quantised); 0 for API judges
    trust_remote_code: bool = False
    temperature: float | None = None  # the card's sampling temperature when it advises against greedy decoding
    notes: str = ""


def _vllm(name: str, model: str, memory_gb: int, tp: int = 1, **extra) -> JudgeSpec:
    """A local vLLM judge row."""
    reasoning = extra.get("reasoning", False)
    return JudgeSpec(name, model, "vllm", tensor_parallel=tp, memory_gb=memory_gb,
                     max_tokens=extra.pop("max_tokens", 8192 if reasoning else CUSTOM_MAX_TOKENS), **extra)


def _api(name: str, provider: str, model: str, **extra) -> JudgeSpec:
    """An API judge row."""
    return JudgeSpec(name, model, "api", provider=provider, **extra)


R1_NOTE = "R1 card: no system prompt, instructions in the user turn; temperature 0.6, not greedy (repetitions)"
CLAUDE_RETIRED = ("RETIRED by Anthropic (requests fail; released columns stay usable): judge with a "
                  "current model as NAME=anthropic:<model id> under a new NAME; no `n`: K verdicts are K calls")
CARD_TEMPERATURE = 0.6  # DeepSeek-R1 distills and QwQ-32B: greedy decoding can repeat endlessly
JUDGES: tuple[JudgeSpec, ...] = (
    _vllm("DeepSeekLlama70B", "deepseek-ai/DeepSeek-R1-Distill-Llama-70B", 141, 4, reasoning=True,
          system_role=False, temperature=CARD_TEMPERATURE, notes=R1_NOTE),
    _vllm("DeepSeekQwen32B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", 66, 2, reasoning=True,
          system_role=False, temperature=CARD_TEMPERATURE, notes=R1_NOTE),
    _vllm("SkyT1", "NovaSky-AI/Sky-T1-32B-Preview", 66, 2, reasoning=True,
          notes="thinks between <|begin_of_thought|> and <|end_of_thought|>"),
    _vllm("Llama-3.3-70B-Instruct", "meta-llama/Llama-3.3-70B-Instruct", 141, 4),
    _vllm("Meta-Llama-3.1-405B-Instruct-quantized.w8a16",
          "neuralmagic/Meta-Llama-3.1-405B-Instruct-quantized.w8a16", 410, 8, notes="INT8 weights"),
    _vllm("Qwen/Qwen2.5-72B-Instruct", "Qwen/Qwen2.5-72B-Instruct", 146, 4,
          notes="the name contains a slash, as in the released datasets"),
    _vllm("QwQ-32B", "Qwen/QwQ-32B", 66, 2, reasoning=True, temperature=CARD_TEMPERATURE,
          notes="card: temperature 0.6, not greedy; weaver's name map knows QwQ-32B-Preview, not QwQ-32B"),
    _vllm("WizardLM-2-8x22B", "alpindale/WizardLM-2-8x22B", 282, 8, notes="Vicuna format if no chat template"),
    _vllm("Mixtral-8x22B-Instruct-v0.1", "mistralai/Mixtral-8x22B-Instruct-v0.1", 282, 8),
    _vllm("DeepSeekLlama8B", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", 16, reasoning=True,
          system_role=False, temperature=CARD_TEMPERATURE, notes=R1_NOTE),
    _vllm("DeepSeekQwen7B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 16, reasoning=True,
          system_role=False, temperature=CARD_TEMPERATURE, notes=R1_NOTE),
    _vllm("Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", 16),
    _vllm("Gemma-3-12B-Instruct", "google/gemma-3-12b-it", 24, notes="template merges the system turn itself"),
    _vllm("Gemma-3-4B-Instruct", "google/gemma-3-4b-it", 9, notes="template merges the system turn itself"),
    _vllm("Phi-4-4B-Instruct", "microsoft/Phi-4-mini-instruct", 8, notes="3.8B parameters"),
    _vllm("Qwen-2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct", 15),
    _vllm("Qwen-2.5-Math-7B-Instruct", "Qwen/Qwen2.5-Math-7B-Instruct", 15, max_tokens=1024,
          notes="4k context: long samples are counted as too long"),
    _vllm("Mistral-7B-Instruct-v0.2", "mistralai/Mistral-7B-Instruct-v0.2", 15, system_role=False,
          notes="template rejects the system role"),
    _api("GPT-4o", "openai", "gpt-4o"),
    _api("GPT-4o-mini", "openai", "gpt-4o-mini"),
    _api("Claude-3-7-Sonnet", "anthropic", "claude-3-7-sonnet-latest", notes=CLAUDE_RETIRED),
    _api("Claude-3-5-Sonnet", "anthropic", "claude-3-5-sonnet-latest", notes=CLAUDE_RETIRED),
    _api("Claude-3-5-Haiku", "anthropic", "claude-3-5-haiku-latest", notes=CLAUDE_RETIRED),
    _api("Llama-3.1-8B-Instruct-Together", "together", "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"),
    _api("Llama-3.1-70B-Instruct-Together", "together", "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"),
)
JUDGE_REGISTRY: dict[str, JudgeSpec] = {spec.name: spec for spec in JUDGES}


def parse_judge(entry: str) -> JudgeSpec:
    """One --lm_judges entry: a registry name, NAME=provider:model (API), NAME=vllm:model or NAME=PATH/HF-id (vLLM)."""
    entry = entry.strip()
    if entry in JUDGE_REGISTRY:
        return JUDGE_REGISTRY[entry]
    if "=" not in entry:
        if os.path.isdir(entry):
            return JudgeSpec(os.path.basename(os.path.normpath(entry)), entry, "vllm")
        raise UserError(f"unknown LM judge {entry!r}; known judges: {', '.join(JUDGE_REGISTRY)}; "
                        "or name any model as NAME=PATH, NAME=HF-ID or NAME=provider:model "
                        f"(providers: {', '.join(API_PROVIDERS)})")
    name, target = (part.strip() for part in entry.split("=", 1))
    if not name or not target:
        raise UserError(f"bad --lm_judges entry {entry!r}: expected NAME=PATH or NAME=provider:model")
    if name.endswith(("_scores", "_verdicts", "_judgments")):
        raise UserError(f"judge name {name!r} must not end in _scores, _verdicts or _judgments")
    prefix, _, rest = target.partition(":")
    if rest and prefix in API_PROVIDERS:
        return JudgeSpec(name, rest, "api", provider=prefix)
    if rest and prefix == "vllm":
        target = rest
    if target.startswith((".", "/", "~")) and not os.path.isdir(os.path.expanduser(target)):
        raise UserError(f"judge {name}: model folder {target} does not exist")
    base = JUDGE_REGISTRY.get(name)
    if base is not None and base.backend == "vllm":  # a registry judge loaded from a local copy keeps its traits
        return replace(base, model=os.path.expanduser(target))
    return JudgeSpec(name, os.path.expanduser(target), "vllm")


def markdown_table() -> str:
    """The registry as a Markdown table (for VERIFIERS.md)."""
    head = ("| Judge (column prefix) | Model | Backend | System role | Reasoning | max_tokens | Temperature "
            "| GPUs (TP) | Weights (GB) | Notes |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for spec in JUDGES:
        where = f"API ({spec.provider})" if spec.backend == "api" else "vLLM"
        tp = str(spec.tensor_parallel) if spec.backend == "vllm" else "-"
        memory = str(spec.memory_gb) if spec.memory_gb else "-"
        system = "yes" if spec.system_role else "folded into user turn"
        temperature = f"{spec.temperature:g}" if spec.temperature is not None else "default"
        rows.append(f"| `{spec.name}` | `{spec.model}` | {where} | {system} | {'yes' if spec.reasoning else 'no'} "
                    f"| {spec.max_tokens} | {temperature} | {tp} | {memory} | {spec.notes} |")
    return "\n".join([head, *rows])
