"""--export_weaver: a plain Dataset folder that Weaver's local loader reads (its column names, one value per sample).

Weaver (HazyResearch/scaling-verification, weaver/dataset.py) reads a local path with
`pd.DataFrame(load_from_disk(path))`, treats every `*_scores` column as a reward model and every `*_verdicts` column
as a judge, maps names through VERIFIER_NAME_MAP (weaver/constants.py) and raises KeyError for a name its
VERIFIER_DESCRIPTIONS lacks; each verifier column is `np.stack(...).squeeze()`d to (problems, samples).
"""
from __future__ import annotations

import numpy as np

from report.scores import Verifier

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
})
# Our column -> the name weaver's map has for the same model (claude-3-5-sonnet-latest in judge_registry.py).
WEAVER_RENAMES = {"Claude-3-5-Sonnet_verdicts": "judge_claude-3-5-sonnet-latest_verdicts"}


def weaver_name(column: str) -> str | None:
    """The column's name in the export, or None when weaver cannot map it."""
    name = WEAVER_RENAMES.get(column, column)
    return name if name in WEAVER_COLUMNS else None


def one_per_sample(scores: np.ndarray) -> list[list[list[float | None]]]:
    """K-verdict means as weaver's [[v]] per sample (None where missing)."""
    return [[[None if np.isnan(v) else float(v)] for v in row] for row in scores]


def weaver_dataset(dataset, verifiers: list[Verifier], judge_scores: dict[str, np.ndarray]):
    """The dataset with unmappable verifier columns dropped, names mapped and each judge's K verdicts averaged.

    Returns (dataset, {"renamed": {...}, "dropped": [...]}). Columns that are no verifier's are kept as they are.
    """
    chosen = {column for v in verifiers for column in v.columns}
    verifier_columns = [c for c in dataset.column_names if c.endswith(("_scores", "_verdicts"))]
    dropped = [c for c in verifier_columns if c not in chosen or weaver_name(c) is None]
    out = dataset.remove_columns(dropped)
    for verifier in verifiers:
        if verifier.kind == "judge" and verifier.column not in dropped:
            out = out.remove_columns(verifier.column).add_column(verifier.column,
                                                                 one_per_sample(judge_scores[verifier.name]))
    renamed = {c: WEAVER_RENAMES[c] for c in out.column_names if c in WEAVER_RENAMES}
    if renamed:
        out = out.rename_columns(renamed)
    return out, {"renamed": renamed, "dropped": [c for c in dropped if c in chosen],
                 "not_chosen": [c for c in dropped if c not in chosen]}
