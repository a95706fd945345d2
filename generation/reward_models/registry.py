"""The reward-model table: one row per model (hub id, loader kind, input format, read-out, dtype, memory)."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from generation.common.cli import UserError

QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."

NATIVE, REMOTE = "native", "remote code"


@dataclass(frozen=True)
class Kind:
    """A loader kind: where its model class comes from, what vLLM has built in for it, how it is read."""

    loading: str
    text: str
    vllm: str | None = None  # vLLM's own class used with --rm_backend vllm


# Loader kinds: how a checkpoint is loaded and which output is read. Each is one row of LOADERS in reward_models.py.
KINDS = {
    "sequence_classifier": Kind(NATIVE, "AutoModelForSequenceClassification; reads logits[:, 0] (the raw scalar "
                                "reward). Remote code only when the entry trusts it (URM)",
                                "its own *ForSequenceClassification"),
    "multi_objective": Kind(REMOTE, "AutoModelForSequenceClassification with the model's own gating/quantile head; "
                            "reads the `score` field (the preference score), not `logits`"),
    "decision_tree": Kind(REMOTE, "RLHFlow multi-objective model; reads the HelpSteer2 `correctness` attribute from "
                          "the model's attribute rewards"),
    "scalar_head": Kind(NATIVE, "Qwen2.5-Math-RM: transformers' Qwen2Model plus the checkpoint's `score` head "
                        "(Linear-ReLU-Linear to 1), read at the last token", "Qwen2ForRewardModel"),
    "gpm": Kind(NATIVE, "General Preference Model: base LM plus value head (2k dims) and prompt head (k eigenvalues) "
                "built locally; score = mean preference score s(y_i > y_j | x) against the other samples of the "
                "same prompt"),
    "inform": Kind(NATIVE, "INF-ORM: LlamaModel plus a Linear-ReLU-Linear head built locally, pooled at the last "
                   "token"),
    "ldl": Kind(NATIVE, "LDL-Reward (label distribution learning): base model plus the regression and gating MLPs of "
                "regression_layer.pt / gating_layer.pt, built locally and pooled at the last token; score = expected "
                "value on [0, 1] of the gated 10-bin rating distribution"),
    "internlm2": Kind(NATIVE, "InternLM2 reward: its weights mapped onto transformers' LlamaModel (wqkv split per "
                      "key/value group) plus the checkpoint's `v_head`, read at the reward token appended to the "
                      "chat; remote code only for the tokenizer", "InternLM2ForRewardModel"),
    "step_prm": Kind(NATIVE, "Qwen2.5-Math PRM: transformers' Qwen2Model plus the checkpoint's `score` head "
                     "(Linear-ReLU-Linear to 2); steps split on blank lines, joined by <extra_0>; per-step softmax "
                     "P(correct) at each <extra_0>", "Qwen2ForProcessRewardModel"),
    "implicit_prm": Kind(NATIVE, "Implicit PRM (Eurus card): beta * (log p_policy - log p_reference) per token from "
                         "the last prompt token on, summed up to each step's separator plus the next token "
                         "(<|im_end|> for the last step)"),
}
PRM_KINDS = ("step_prm", "implicit_prm")
REMOTE_CODE_KINDS = ("multi_objective", "decision_tree", "internlm2")  # internlm2: remote code for its tokenizer


@dataclass(frozen=True)
class RewardModelSpec:
    """One reward model: where it lives, how to load and call it, what to read."""

    name: str
    hf_id: str
    kind: str
    revision: str | None = None
    dtype: str = "bfloat16"
    trust_remote_code: bool = False
    memory_gb: float = 18.0
    params_b: float = 8.0
    input_format: str = "chat template [user: instruction, assistant: sample], tokenised once"
    system_prompt: str | None = None
    reference_model: str | None = None
    beta: float = 0.001
    value_head_dim: int = 6
    attn: str | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse what no loader can run: an implicit PRM without its reference model."""
        if self.kind == "implicit_prm" and not self.reference_model:
            raise ValueError(f"reward model {self.name}: an implicit PRM needs reference_model (the reference "
                             "causal LM whose log-probabilities are subtracted)")

    @property
    def remote_model(self) -> bool:
        """Whether the model class comes from the checkpoint's own (remote) code rather than from transformers."""
        return self.trust_remote_code and self.kind in ("sequence_classifier", "multi_objective", "decision_tree")

    @property
    def loading(self) -> str:
        """How the model is loaded: native (transformers' own classes) or remote code."""
        return REMOTE if self.remote_model else KINDS[self.kind].loading

    @property
    def is_prm(self) -> bool:
        """Whether the model scores steps (min/max/avg/step columns) rather than whole responses."""
        return self.kind in PRM_KINDS

    def columns(self) -> list[str]:
        """The output columns this model writes."""
        if self.is_prm:
            return [f"{self.name}_{part}_scores" for part in ("min", "max", "avg", "step")]
        return [f"{self.name}_scores"]


def _rm(name: str, hf_id: str, kind: str, **fields) -> RewardModelSpec:
    """Shorthand constructor for the table below."""
    return RewardModelSpec(name=name, hf_id=hf_id, kind=kind, **fields)


INTERNLM2_NOTE = ("Remote code only for the tokenizer; the model is loaded natively (its hub code targets "
                  "transformers 4).")
INTERNLM2_INPUT = "chat template [user: instruction, assistant: sample] plus the reward token (config reward_token_id)"
GEMMA_ATTN = "eager"  # Gemma-2 RMs: flash_attention_2 or eager, never SDPA (reward-bench #169)

REGISTRY: tuple[RewardModelSpec, ...] = (
    _rm("GRM", "Ray2333/GRM-Llama3-8B-rewardmodel-ft", "sequence_classifier", dtype="float16",
        notes="The card renders the template to text then encode_plus, which adds a second BOS; here one BOS."),
    _rm("ArmorRM", "RLHFlow/ArmoRM-Llama3-8B-v0.1", "multi_objective", trust_remote_code=True,
        notes="Gating over 19 objectives; `score` is the gated preference score. Llama-3 chat format required."),
    _rm("URM", "LxzGordon/URM-LLaMa-3.1-8B", "sequence_classifier", trust_remote_code=True, dtype="float16",
        notes="Uncertainty-aware RM; reads logits[:, 0] as the reference does."),
    _rm("QRM", "nicolinho/QRM-Llama3.1-8B-v2", "multi_objective", trust_remote_code=True,
        notes="Quantile RM; `score` (mean reward), quantiles ignored. reward-bench runs it with batch 1."),
    _rm("GPM", "general-preference/GPM-Llama-3.1-8B", "gpm", value_head_dim=6,
        notes="The reference wrote the norm of a unit vector (always 1.0). Here the card's preference score "
              "<R(x) v_i, v_j> averaged over the other samples of the prompt; needs >= 2 samples per row."),
    _rm("GRMLlama32", "Ray2333/GRM-Llama3.2-3B-rewardmodel-ft", "sequence_classifier", dtype="float16",
        memory_gb=8.0, params_b=3.2),
    _rm("OffsetBias", "NCSOFT/Llama-3-OffsetBias-RM-8B", "sequence_classifier",
        notes="The reference used a text-classification pipeline with function_to_apply='none': the same raw logit."),
    _rm("GRMGemma", "Ray2333/GRM-Gemma2-2B-rewardmodel-ft", "sequence_classifier", dtype="float32",
        memory_gb=12.0, params_b=2.6, attn=GEMMA_ATTN),
    _rm("Skyworks", "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2", "sequence_classifier",
        notes="VERIFIERS names v0.1 but the reference code loads v0.2; v0.2 is kept for continuity."),
    _rm("SkyworksGemma", "Skywork/Skywork-Reward-Gemma-2-27B-v0.2", "sequence_classifier", memory_gb=60.0,
        params_b=27.2, attn=GEMMA_ATTN,
        notes="The reference could not load it (tokenizer path built with dirname); loaded from its own id here."),
    _rm("QRMGemma", "nicolinho/QRM-Gemma-2-27B", "multi_objective", trust_remote_code=True, memory_gb=60.0,
        params_b=27.2, attn=GEMMA_ATTN),
    _rm("LDLRewardGemma", "ShikaiChen/LDL-Reward-Gemma-2-27B-v0.1", "ldl", memory_gb=60.0, params_b=27.2,
        attn=GEMMA_ATTN,
        notes="The card and reward-bench load it with their own LDLRewardModel27B class (Gemma2Model plus heads "
              "stored as .pt files); the reference loaded a plain sequence classifier, whose `score` head is random."),
    _rm("QwenPRM", "Qwen/Qwen2.5-Math-PRM-7B", "step_prm", memory_gb=17.0, params_b=7.1,
        system_prompt=QWEN_MATH_SYSTEM,
        input_format="system (card prompt) + user + assistant steps joined by <extra_0> plus a final <extra_0>",
        notes="Card: steps split on blank lines ('\\n\\n') and the boxed system prompt. The reference split on every "
              "line and used 'Please reason step by step.'"),
    _rm("Qwen72B", "Qwen/Qwen2.5-Math-RM-72B", "scalar_head", memory_gb=150.0,
        params_b=72.7, system_prompt=QWEN_MATH_SYSTEM,
        input_format="system (card prompt) + user + assistant, tokenised once",
        notes="Card system prompt; the reference used 'Please reason step by step.' and averaged outputs[0]."),
    _rm("Qwen72BPRM", "Qwen/Qwen2.5-Math-PRM-72B", "step_prm", memory_gb=150.0,
        params_b=72.7, system_prompt=QWEN_MATH_SYSTEM,
        input_format="system (card prompt) + user + assistant steps joined by <extra_0> plus a final <extra_0>",
        notes="The reference never treated it as a PRM, so every score was None. Same calling as QwenPRM."),
    _rm("EurusPRMStage1", "PRIME-RL/EurusPRM-Stage1", "implicit_prm", memory_gb=34.0, params_b=7.6,
        reference_model="Qwen/Qwen2.5-Math-7B-Instruct", beta=0.001,
        input_format="user + assistant steps joined by '\\n\\n' (policy and reference model see the same ids)",
        notes="The reference lacked get_step_scores, so every score was None. Step score = beta-scaled log-ratio "
              "summed from the last prompt token through each step's separator and the next token, as the card's "
              "code computes it."),
    _rm("EurusPRMStage2", "PRIME-RL/EurusPRM-Stage2", "implicit_prm", memory_gb=34.0, params_b=7.6,
        reference_model="Qwen/Qwen2.5-Math-7B-Instruct", beta=0.001,
        input_format="user + assistant steps joined by '\\n\\n' (policy and reference model see the same ids)",
        notes="As EurusPRMStage1."),
    _rm("InternLM2RewardModel", "internlm/internlm2-20b-reward", "internlm2", trust_remote_code=True,
        dtype="float16", memory_gb=45.0, params_b=19.9, notes=INTERNLM2_NOTE, input_format=INTERNLM2_INPUT),
    _rm("InternLM2Reward7B", "internlm/internlm2-7b-reward", "internlm2", trust_remote_code=True, dtype="float16",
        memory_gb=17.0, params_b=7.7, notes=INTERNLM2_NOTE, input_format=INTERNLM2_INPUT),
    _rm("DecisionTreeReward8B", "RLHFlow/Decision-Tree-Reward-Llama-3.1-8B", "decision_tree",
        trust_remote_code=True,
        notes="The reference called compare(x, y, y) one sample at a time and kept the correctness attribute; "
              "the same attribute is read here in batches (the tree itself only ranks pairs)."),
    _rm("DecisionTreeReward27B", "RLHFlow/Decision-Tree-Reward-Gemma-2-27B", "decision_tree",
        trust_remote_code=True, memory_gb=60.0, params_b=27.2, attn=GEMMA_ATTN,
        notes="The reference could not load it (paths built with dirname); loaded from its own id here."),
    _rm("INFORM", "infly/INF-ORM-Llama3.1-70B", "inform", memory_gb=150.0, params_b=70.6,
        notes="Needs several GPUs: spread with device_map over the GPUs the allocator assigns."),
    _rm("SkyworkV2-Qwen3-0.6B", "Skywork/Skywork-Reward-V2-Qwen3-0.6B", "sequence_classifier", memory_gb=2.0,
        params_b=0.6, notes="Small modern RM, usable on CPU."),
    _rm("SkyworkV2-Qwen3-1.7B", "Skywork/Skywork-Reward-V2-Qwen3-1.7B", "sequence_classifier", memory_gb=5.0,
        params_b=1.7),
    _rm("SkyworkV2-Qwen3-4B", "Skywork/Skywork-Reward-V2-Qwen3-4B", "sequence_classifier", memory_gb=10.0,
        params_b=4.0),
    _rm("SkyworkV2-Qwen3-8B", "Skywork/Skywork-Reward-V2-Qwen3-8B", "sequence_classifier", params_b=8.2),
    _rm("SkyworkV2-Llama-3.2-1B", "Skywork/Skywork-Reward-V2-Llama-3.2-1B", "sequence_classifier", memory_gb=3.0,
        params_b=1.2),
    _rm("SkyworkV2-Llama-3.2-3B", "Skywork/Skywork-Reward-V2-Llama-3.2-3B", "sequence_classifier", memory_gb=8.0,
        params_b=3.2),
    _rm("SkyworkV2-Llama-3.1-8B", "Skywork/Skywork-Reward-V2-Llama-3.1-8B", "sequence_classifier"),
)
BY_NAME = {spec.name: spec for spec in REGISTRY}
FIELD_NAMES = {f.name for f in dataclasses.fields(RewardModelSpec)}


PATH_OPTIONS = ("trust_remote_code", "reference_model")  # what NAME=PATH:KIND[:key=value,...] can set
PATH_SPEC = "NAME=PATH:KIND[:key=value,...]"


def parse_path_spec(text: str) -> RewardModelSpec:
    """A model registered on the command line as NAME=PATH:KIND[:key=value,...] (PATH a local folder or hub id;
    options trust_remote_code=true|false and reference_model=PATH); other fields need a --rm_registry file."""
    name, _, rest = text.partition("=")
    options: dict[str, str] = {}
    if "=" in rest.rpartition(":")[2]:
        rest, _, listed = rest.rpartition(":")
        options = dict(option.partition("=")[::2] for option in listed.split(","))
    path, _, kind = rest.rpartition(":")
    if not name or not path or not kind:
        raise UserError(f"cannot parse reward model {text!r}; use {PATH_SPEC} with KIND one of {sorted(KINDS)}")
    if kind not in KINDS:
        raise UserError(f"unknown loader kind {kind!r} in {text!r}; known kinds: {', '.join(sorted(KINDS))}")
    unknown = sorted(set(options) - set(PATH_OPTIONS))
    if unknown:
        raise UserError(f"{text!r}: {PATH_SPEC} options are {', '.join(PATH_OPTIONS)}, not {', '.join(unknown)}; "
                        "set other fields in a JSON file passed as --rm_registry (see VERIFIERS.md)")
    trust = options.get("trust_remote_code", str(kind in REMOTE_CODE_KINDS)).lower()
    if trust not in ("true", "false") or (trust == "false" and kind in REMOTE_CODE_KINDS):
        raise UserError(f"{text!r}: trust_remote_code must be true or false"
                        + (f" (true for {kind}, which needs the checkpoint's remote code)"
                           if kind in REMOTE_CODE_KINDS else ""))
    if "reference_model" in options and kind != "implicit_prm":
        raise UserError(f"{text!r}: reference_model applies to implicit_prm entries only")
    if kind == "implicit_prm" and not options.get("reference_model"):
        raise UserError(f"{text!r}: an implicit PRM needs its reference model: "
                        "NAME=PATH:implicit_prm:reference_model=REFERENCE_PATH_OR_HUB_ID")
    return RewardModelSpec(name=name, hf_id=local_path(path), kind=kind, trust_remote_code=trust == "true",
                           reference_model=local_path(options["reference_model"]) if "reference_model" in options
                           else None, notes="registered by path")


def local_path(path: str) -> str:
    """An existing local folder as an absolute path; anything else (a hub id) as given."""
    expanded = os.path.expanduser(path)
    return os.path.abspath(expanded) if os.path.isdir(expanded) else path


def load_registry_file(path: str) -> list[RewardModelSpec]:
    """Extra entries from a JSON file: a list of objects with RewardModelSpec fields (name, hf_id, kind, ...)."""
    try:
        with open(path, encoding="utf-8") as handle:
            rows = json.load(handle)
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read reward-model registry file {path}: {err}") from err
    specs = []
    for row in rows if isinstance(rows, list) else []:
        unknown = set(row) - FIELD_NAMES
        if unknown or not {"name", "hf_id", "kind"} <= set(row) or row["kind"] not in KINDS:
            raise UserError(f"bad entry in {path}: {row}; needs name, hf_id, kind (one of {sorted(KINDS)}), "
                            f"optional fields {sorted(FIELD_NAMES - {'name', 'hf_id', 'kind'})}")
        try:
            specs.append(RewardModelSpec(**row))
        except ValueError as err:
            raise UserError(f"bad entry in {path}: {err}") from None
    if not specs:
        raise UserError(f"reward-model registry file {path} holds no entries; expected a JSON list of objects")
    return specs


def csv_entries(names_csv: str) -> list[str]:
    """The --reward_models items: comma-separated, where a key=value item without ':' continues the options of the
    NAME=PATH:KIND entry before it (NAME=PATH:implicit_prm:reference_model=REF,trust_remote_code=true)."""
    entries: list[str] = []
    for item in (part.strip() for part in names_csv.split(",")):
        if "=" in item and ":" not in item and entries and "=" in entries[-1].rpartition(":")[2]:
            entries[-1] += "," + item
        elif item:
            entries.append(item)
    return entries


def resolve(names_csv: str, extra: list[RewardModelSpec] = ()) -> list[RewardModelSpec]:
    """Turn the --reward_models CSV (names or NAME=PATH:KIND items) into specs; unknown names list the known ones."""
    known = {**BY_NAME, **{spec.name: spec for spec in extra}}
    specs, unknown = [], []
    for item in csv_entries(names_csv):
        if "=" in item:
            specs.append(parse_path_spec(item))
        elif item in known:
            specs.append(known[item])
        else:
            unknown.append(item)
    if unknown:
        raise UserError(f"unknown reward model(s) {', '.join(unknown)}; known: {', '.join(sorted(known))} "
                        f"(or register one as {PATH_SPEC})")
    names = [spec.name for spec in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"reward model(s) listed twice: {', '.join(duplicates)}")
    return specs


def markdown_table(specs: tuple[RewardModelSpec, ...] = REGISTRY) -> str:
    """The reward-model table of VERIFIERS.md."""
    lines = ["| name | HF id (revision) | size | memory | kind | loaded | dtype | input | columns | notes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in specs:
        columns = ", ".join(f"`{c}`" for c in s.columns())
        system = f"; system: \"{s.system_prompt}\"" if s.system_prompt else ""
        reference = f"; reference model `{s.reference_model}`, beta {s.beta}" if s.reference_model else ""
        attn = f"; attention {s.attn}" if s.attn else ""
        vllm = f"; vLLM: {KINDS[s.kind].vllm}" if KINDS[s.kind].vllm and not s.remote_model else ""
        lines.append(f"| {s.name} | `{s.hf_id}` ({s.revision or 'main'}) | {s.params_b:g}B | ~{s.memory_gb:g} GB "
                     f"| {s.kind} | {s.loading}{vllm} | {s.dtype} "
                     f"| {s.input_format}{system}{reference}{attn} | {columns} | {s.notes} |")
    return "\n".join(lines)


def vllm_backend_text() -> str:
    """What --rm_backend vllm scores, from KINDS (the table VERIFIERS.md shows): the kinds with a vLLM class."""
    scored = "; ".join(f"{kind}: {k.vllm}" for kind, k in KINDS.items() if k.vllm)
    return (f"vllm: score these loader kinds with vLLM's pooling runner ({scored}); other kinds, remote-code models "
            "and models vLLM cannot load use transformers (recorded in the provenance)")


def kinds_table() -> str:
    """The loader-kind table of VERIFIERS.md."""
    rows = ["| kind | loaded | with --rm_backend vllm | loading and read-out |", "|---|---|---|---|"]
    rows += [f"| {kind} | {k.loading} | {k.vllm or 'transformers'} | {k.text} |" for kind, k in KINDS.items()]
    return "\n".join(rows)
