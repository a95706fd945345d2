"""--export_weaver: a plain Dataset folder that Weaver's local loader reads (its column names, one value per sample).

Weaver (HazyResearch/scaling-verification, weaver/dataset.py) reads a local path with
`pd.DataFrame(load_from_disk(path))`, treats every `*_scores` column as a reward model and every `*_verdicts` column
as a judge, maps names through VERIFIER_NAME_MAP (weaver/constants.py) and raises KeyError for a name its
VERIFIER_DESCRIPTIONS lacks; each verifier column is `np.stack(...).squeeze()`d to (problems, samples). Its majority
vote (weaver/models.py, MajorityVote) groups `extracted_answers` by exact string, skips only its sentinel
'NO_ANSWER' (None is an answer group of its own) and fails on a row where every answer is skipped.
"""
from __future__ import annotations

import json

import numpy as np

from generation.common.cli import UserError
from generation.report.metrics import vote_groups
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
# Columns VERIFIER_NAME_MAP maps to a name VERIFIER_DESCRIPTIONS lacks: the description goes under the mapped name.
MAPPED_UNDESCRIBED = {"judge_gemma-2-27b-it_verdicts": "Gemma-2-27B"}
NO_ANSWER = "NO_ANSWER"  # weaver's sentinel for a sample without an answer (its majority vote skips it)
ADDITIONS = "weaver_constants_additions.py"  # written into the export when Weaver's constants lack a verifier


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
    """{our column: its name in the export}: --rename's name, else the name Weaver's map has for the same model, else
    the column's own name (never another model's)."""
    renames = parse_renames(pairs, verifiers)
    plan = {column: renames.get(column) or weaver_name(column) or column for v in verifiers for column in v.columns}
    shared = sorted({name for name in plan.values() if list(plan.values()).count(name) > 1})
    if shared:
        raise UserError(f"--export_weaver: two verifier columns would both be named {shared[0]!r} in the export; "
                        f"--rename one of them or leave it out with --verifiers")
    return plan


def constants_additions(plan: dict[str, str]) -> str | None:
    """The lines to add to weaver/constants.py so that Weaver reads the exported columns it does not describe
    (None when it describes them all); a column is described under its own name (what Weaver's loader looks up for
    a name its map lacks), so no verifier passes for another model."""
    missing = [name for name in plan.values() if name not in WEAVER_COLUMNS]
    if not missing:
        return None
    lines = ["# Weaver (HazyResearch/scaling-verification) reads a verifier column only when weaver/constants.py",
             "# describes it. These columns of the export next to this file have no entry there: add these lines at",
             "# the end of weaver/constants.py before running Weaver's selection on the export. num_parameters is",
             "# unknown (None): Weaver's verifier_size filters other than \"all\" leave such verifiers out.",
             "VERIFIER_DESCRIPTIONS.update({"]
    for name in missing:
        kind = "judge" if name.endswith("_verdicts") else "reward"
        key = json.dumps(MAPPED_UNDESCRIBED.get(name, name))
        lines.append(f'    {key}: {{"num_parameters": None, "type": "{kind}"}},')
    return "\n".join([*lines, "})", ""])


def weaver_answers(answers: list[list[str | None]], dataset_type: str) -> list[list[str | None]]:
    """extracted_answers as Weaver's majority vote should read them: answers Step 2's vote holds equal written with
    the spelling of their first sample, a missing answer as NO_ANSWER (rows with no answer at all left as they are:
    Weaver's vote cannot take a row whose answers it all skips)."""
    groups = vote_groups(answers, dataset_type)
    written = []
    for row, ids in zip(answers, groups):
        spelling = {int(i): answer for i, answer in reversed(list(zip(ids, row)))}  # the first sample's wins
        written.append(row if (ids < 0).all() else [spelling[int(i)] if i >= 0 else NO_ANSWER for i in ids])
    return written


def one_per_sample(scores: np.ndarray) -> list[list[list[float | None]]]:
    """K-verdict means as weaver's [[v]] per sample (None where missing)."""
    return [[[None if np.isnan(v) else float(v)] for v in row] for row in scores]


def weaver_dataset(dataset, verifiers: list[Verifier], plan: dict[str, str], judge_scores: dict[str, np.ndarray],
                   answers: list[list[str | None]] | None, dataset_type: str):
    """The dataset with the plan's columns under their Weaver names (each judge's K verdicts averaged), the verifier
    columns not chosen dropped, extracted_answers as Weaver's vote should read them; other columns kept as they are.

    Returns (dataset, {"renamed": {...}, "not_chosen": [...], "not_in_weaver_constants": [...]}).
    """
    dropped = [c for c in dataset.column_names if c.endswith(("_scores", "_verdicts")) and c not in plan]
    out = dataset.remove_columns(dropped)
    if answers is not None:
        out = out.remove_columns("extracted_answers").add_column("extracted_answers",
                                                                 weaver_answers(answers, dataset_type))
    for verifier in verifiers:
        if verifier.kind == "judge" and verifier.column in plan:
            out = out.remove_columns(verifier.column).add_column(verifier.column,
                                                                 one_per_sample(judge_scores[verifier.name]))
    renamed = {c: name for c, name in plan.items() if name != c}
    if renamed:
        out = out.rename_columns(renamed)
    return out, {"renamed": renamed, "not_chosen": dropped,
                 "not_in_weaver_constants": [name for name in plan.values() if name not in WEAVER_COLUMNS]}
