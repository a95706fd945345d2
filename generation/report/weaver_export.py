"""--export_weaver: a plain Dataset folder that Weaver's local loader reads (its column names, one value per sample).

Weaver (HazyResearch/scaling-verification, weaver/dataset.py) reads a local path with
`pd.DataFrame(load_from_disk(path))`, treats every `*_scores` column as a reward model and every `*_verdicts` column
as a judge, maps names through VERIFIER_NAME_MAP (weaver/constants.py) and raises KeyError for a name its
VERIFIER_DESCRIPTIONS lacks; each verifier column is `np.stack(...).squeeze()`d to (problems, samples).
"""
from __future__ import annotations

import numpy as np

from generation.common.cli import UserError
from generation.report.scores import Verifier

# Raw column names whose VERIFIER_NAME_MAP entry has a VERIFIER_DESCRIPTIONS entry (weaver/constants.py).
WEAVER_COLUMNS = frozenset({
    "ArmorRM_scores", "DecisionTreeReward8B_scores", "DecisionTreeReward27B_scores", "GPM_scores", "GRM_scores",
    "GRMGemma_scores", "GRMLlama32_scores", "INFORM_scores", "InternLM2Reward7B_scores",
    "InternLM2RewardModel_scores", "InternLM_scores", "LDLRewardGemma_scores", "OffsetBias_scores", "QRM_scores",
    "QRMGemma_scores", "Qwen72B_scores", "Skyworks_scores", "SkyworksGemma_scores", "URM_scores",
    *(f"{prm}_{part}_scores" for prm in ("QwenPRM", "EurusPRMStage1", "EurusPRMStage2")
      for part in ("min", "max", "avg", "step")),
    "armor_rm_score", "eurus_prm_scores", "eurus_prm2_scores", "gpm_scores", "grm_scores", "grm_gemma_scores",
    "grm_llama32_scores", "inform_scores", "internlm_scores", "internlm2_scores", "offset_bias_scores", "qrm_scores",
    "qrm_gemma_scores", "qwen25_math_scores", "skyworks_scores", "skywork_gemma_scores", "urm_scores",
    "weaver_scores",  # weaver's own output; its loader skips it in the size lookup
    "Claude-3-5-Haiku_verdicts", "Claude-3-7-Sonnet_verdicts", "DeepSeekLlama70B_verdicts",
    "DeepSeekQwen32B_verdicts", "GPT-4o_verdicts", "GPT-4o-mini_verdicts", "Llama-3.3-70B-Instruct_verdicts",
    "Llama-3.1-8B-Instruct-Together_verdicts", "Llama-3.1-70B-Instruct-Together_verdicts",
    "Meta-Llama-3.1-405B-Instruct-quantized.w8a16_verdicts", "Mixtral-8x22B-Instruct-v0.1_verdicts",
    "Qwen/Qwen2.5-72B-Instruct_verdicts", "QwQ-32B-Preview_verdicts", "SkyT1_verdicts", "WizardLM-2-8x22B_verdicts",
    "judge_claude-3-5-sonnet-latest_verdicts", "judge_gpt-4o_verdicts", "judge_qwq-32b-preview_verdicts",
    "judge_wizardlm-2-8x22b_verdicts", "judge_mixtral-8x22b-instruct-v0.1_verdicts",
    "judge_llama-3.1-nemotron-70b-instruct-hf_verdicts", "judge_llama-3.3-70b-instruct-turbo_verdicts",
    "judge_meta-llama-3.1-405b-instruct-turbo_verdicts", "judge_nous-hermes-2-mixtral-8x7b-dpo_verdicts",
    "judge_qwen2-72b-instruct_verdicts", "judge_qwen2.5-72b-instruct-turbo_verdicts",
})
EXAMPLES = "URM_scores for a reward model, GPT-4o_verdicts for a judge"
# Our column -> the name weaver's map has for the same model (claude-3-5-sonnet-latest in judge_registry.py).
WEAVER_RENAMES = {"Claude-3-5-Sonnet_verdicts": "judge_claude-3-5-sonnet-latest_verdicts"}


def weaver_name(column: str) -> str | None:
    """The column's name in the export, or None when weaver cannot map it."""
    name = WEAVER_RENAMES.get(column, column)
    return name if name in WEAVER_COLUMNS else None


def parse_renames(pairs: list[str], verifiers: list[Verifier]) -> dict[str, str]:
    """--rename OLD=NEW pairs as {our column: weaver column}; OLD is a verifier's name or column, NEW a weaver name."""
    columns = {name: v.column for v in verifiers for name in (v.name, v.column)}
    renames = {}
    for pair in pairs:
        old, _, new = pair.partition("=")
        if old not in columns or not new:
            raise UserError(f"--rename {pair!r}: write OLD=NEW with OLD one of the verifiers {sorted(columns)}")
        column = columns[old]
        if weaver_name(new) is None or new.endswith("_verdicts") != column.endswith("_verdicts"):
            raise UserError(f"--rename {pair!r}: {new!r} is no {column.rsplit('_', 1)[1][:-1]} column name Weaver "
                            f"maps (weaver/constants.py), e.g. {EXAMPLES}")
        renames[column] = new
    return renames


def export_plan(verifiers: list[Verifier], pairs: list[str]) -> dict[str, str]:
    """{our column: its name in the export} for the verifier columns Weaver can read; refuses an export with none."""
    renames = parse_renames(pairs, verifiers)
    plan = {column: renames.get(column) or weaver_name(column) for v in verifiers for column in v.columns}
    plan = {column: name for column, name in plan.items() if name is not None}
    shared = sorted({name for name in plan.values() if list(plan.values()).count(name) > 1})
    if shared:
        raise UserError(f"--export_weaver: two verifier columns would both be named {shared[0]!r} in the export; "
                        f"--rename one of them or leave it out with --verifiers")
    if not plan:
        example = "GPT-4o_verdicts" if verifiers[0].kind == "judge" else "URM_scores"
        raise UserError(f"--export_weaver: Weaver maps none of the verifier columns {[v.column for v in verifiers]} "
                        f"(weaver/constants.py); give one a name Weaver knows with --rename OLD=NEW, e.g. "
                        f"--rename {verifiers[0].column}={example}")
    return plan


def one_per_sample(scores: np.ndarray) -> list[list[list[float | None]]]:
    """K-verdict means as weaver's [[v]] per sample (None where missing)."""
    return [[[None if np.isnan(v) else float(v)] for v in row] for row in scores]


def weaver_dataset(dataset, verifiers: list[Verifier], plan: dict[str, str], judge_scores: dict[str, np.ndarray]):
    """The dataset with the plan's columns under their Weaver names (each judge's K verdicts averaged) and the other
    verifier columns dropped; columns that are no verifier's are kept as they are.

    Returns (dataset, {"renamed": {...}, "dropped": [...], "not_chosen": [...]}).
    """
    chosen = {column for v in verifiers for column in v.columns}
    dropped = [c for c in dataset.column_names if c.endswith(("_scores", "_verdicts")) and c not in plan]
    out = dataset.remove_columns(dropped)
    for verifier in verifiers:
        if verifier.kind == "judge" and verifier.column in plan:
            out = out.remove_columns(verifier.column).add_column(verifier.column,
                                                                 one_per_sample(judge_scores[verifier.name]))
    renamed = {c: name for c, name in plan.items() if name != c}
    if renamed:
        out = out.rename_columns(renamed)
    return out, {"renamed": renamed, "dropped": [c for c in dropped if c in chosen],
                 "not_chosen": [c for c in dropped if c not in chosen]}
