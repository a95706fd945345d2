"""Reward-model loader kinds: one (load, read-out) row per kind (LOADERS), and load-time checks."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from generation.reward_models.inputs import Encoded, ScoreOptions
from generation.reward_models.native import (
    checkpoint_file,
    load_internlm2,
    missing_weights,
    read_checkpoint_tensors,
    read_config,
    restore_buffers,
    tensor_names,
)
from generation.reward_models.registry import RewardModelSpec

LDL_BINS = 10  # LDL-Reward: each rating distribution has 10 bins spread evenly over [0, 1]
HELPSTEER_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
MISSING_SAMPLE = "sample is missing (failed generation) or has no steps"
CLASSIFIER, BASE, CAUSAL_LM = "AutoModelForSequenceClassification", "AutoModel", "AutoModelForCausalLM"


@dataclass
class ModelRun:
    """What scoring one model produced: per-item results, failures with reasons, counts and timings."""

    results: list[Any]
    errors: dict[int, str]
    truncated: int = 0
    load_s: float = 0.0
    score_s: float = 0.0
    tokens: int = 0
    backend: str = "transformers"
    attn: str | None = None  # the attention implementation the loaded model runs (transformers backend)


def resolve_attn(spec: RewardModelSpec, options: ScoreOptions, model_class: Any = None) -> str:
    """Attention implementation: flash_attention_2 on GPU when installed (and the class supports it), else the
    registry's choice, else sdpa where the class supports it and eager where not."""
    if options.attn_implementation != "auto":
        return options.attn_implementation

    def supports(flag: str) -> bool:
        """Whether the class declares support for an attention kind (unknown class: assumed)."""
        return model_class is None or bool(getattr(model_class, flag, False))

    if options.device.startswith("cuda") and supports("_supports_flash_attn"):
        import importlib.util

        if importlib.util.find_spec("flash_attn") is not None:
            return "flash_attention_2"
    if spec.attn:
        return spec.attn
    return "sdpa" if supports("_supports_sdpa") else "eager"


def model_class(model_id: str, revision: str | None, auto: str, remote: bool) -> Any:
    """The class an auto class picks for a checkpoint: its remote code's (auto_map, when trusted) or transformers'
    own; an error naming the model when there is none."""
    import transformers
    from transformers import AutoConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module
    from transformers.models.auto.auto_factory import _get_model_class  # the auto classes' own choice

    config = AutoConfig.from_pretrained(model_id, revision=revision, trust_remote_code=remote)
    reference = (getattr(config, "auto_map", None) or {}).get(auto)
    if remote and reference:  # fetches the model's code and checks its imports (sklearn for decision trees)
        return get_class_from_dynamic_module(reference, model_id, revision=revision)
    mapping = getattr(transformers, auto)._model_mapping
    if type(config) not in mapping:
        hint = "; its remote code needs trust_remote_code" if reference else ""
        raise RuntimeError(f"{model_id}: transformers has no {auto} class for model type "
                           f"{getattr(config, 'model_type', '?')!r}{hint}")
    return _get_model_class(config, mapping)


def from_pretrained(spec: RewardModelSpec, options: ScoreOptions, dtype: Any, model_id: str, auto: str,
                    remote: bool = False, allow_unused: bool = False) -> Any:
    """Load weights with the class an auto class picks, through transformers' base loader (hub classes that
    override from_pretrained, as QRM's does, would drop our keywords); refuse a head that would be random."""
    import transformers

    cls = model_class(model_id, spec.revision, auto, remote)
    kwargs: dict[str, Any] = dict(revision=spec.revision, dtype=dtype, output_loading_info=True,
                                  attn_implementation=resolve_attn(spec, options, cls))
    if auto == CLASSIFIER and not remote:
        kwargs["num_labels"] = 1  # remote heads (URM) size their outputs from their own config: keep it
    if options.device_map:
        kwargs["device_map"] = options.device_map
    transformers.logging.set_verbosity_error()
    model, info = transformers.PreTrainedModel.from_pretrained.__func__(cls, model_id, **kwargs)
    missing = [k for k in info.get("missing_keys", []) if "rotary" not in k]
    if missing:
        raise RuntimeError(f"{model_id}: weights missing from the checkpoint would be random: {missing[:5]}")
    unused = [k for k in info.get("unexpected_keys", []) if "rotary" not in k]
    if unused and not allow_unused:
        raise RuntimeError(f"{model_id}: checkpoint weights {unused[:5]} are unused by {type(model).__name__}; "
                           f"wrong loader kind, or remote code not trusted?")
    if remote:
        model.config.use_cache = False  # legacy code builds DynamicCache.from_legacy_cache when it is on
        restored = restore_buffers(model, f"{spec.name} ({model_id})")
        if restored:
            print(f"{spec.name}: restored non-persistent buffer(s) {', '.join(restored)} that transformers "
                  "left uninitialised in the remote code's modules")
    if not options.device_map:
        model = model.to(options.device)
    return model.eval()


def input_device(model: Any) -> Any:
    """Where a model's input tensors go: the device of its input embeddings."""
    return model.get_input_embeddings().weight.device


@dataclass
class Loaded:
    """What a loader kind builds: the model, and its heads, reference model and LDL gate where the kind has them;
    the read-outs run it through the methods below."""

    spec: RewardModelSpec
    dtype: Any  # the torch dtype the model and its heads run in
    model: Any
    heads: Any = None
    reference: Any = None
    ldl_gate: tuple[bool, float] = (False, 1.0)  # LDL-Reward: whether the gate is softmaxed, at which temperature

    def run_model(self, ids, mask):
        """The loaded model's own output. Causal models with right padding need no mask (real tokens never attend
        to later pads, and the fast causal kernels apply); remote heads that pool by the mask get it."""
        return self.model(input_ids=ids, attention_mask=mask if self.spec.remote_model else None, use_cache=False)

    def hidden(self, ids):
        """Last hidden states of the base model, on the heads' device (device_map may place them elsewhere)."""
        return self.model(input_ids=ids, use_cache=False).last_hidden_state.to(input_device(self.model))

    @staticmethod
    def pooled(hidden, positions):
        """The hidden state at one position per row."""
        import torch

        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, positions.to(hidden.device)]

    def close(self) -> None:
        """Drop the references to the model and its heads (the caller frees the memory)."""
        self.model = self.reference = self.heads = None


@dataclass
class Batch:
    """One right-padded batch: its items, token ids, attention mask, each row's last real position, and the id of
    the step marker its inputs carry (step PRMs; else None)."""

    items: list[Encoded]
    ids: Any
    mask: Any
    last: Any
    step_id: int | None = None


# ---- loading: (spec, options, dtype) -> what the kind builds ---------------------------------------------------
def load_classifier(spec: RewardModelSpec, options: ScoreOptions, dtype: Any) -> Loaded:
    """A sequence classifier: transformers' own class, or the checkpoint's remote code (shims, buffers checked)."""
    return Loaded(spec, dtype, from_pretrained(spec, options, dtype, spec.hf_id, CLASSIFIER, remote=spec.remote_model))


def load_score_head(spec: RewardModelSpec, options: ScoreOptions, dtype: Any) -> Loaded:
    """transformers' base model plus the checkpoint's `score` MLP (Qwen2.5-Math RM/PRM, INF-ORM)."""
    import torch

    model = from_pretrained(spec, options, dtype, spec.hf_id, BASE, allow_unused=True)
    head = mlp_from_state(torch, read_checkpoint_tensors(spec.hf_id, spec.revision, ("score.",)), "score.",
                          torch.nn.ReLU)
    check_head(head, model.config.hidden_size, 2 if spec.kind == "step_prm" else 1, f"{spec.hf_id} score")
    return Loaded(spec, dtype, model, heads=head.to(device=input_device(model), dtype=dtype).eval())


def load_gpm(spec: RewardModelSpec, options: ScoreOptions, dtype: Any) -> Loaded:
    """GPM: base model plus its value head (preference vector) and prompt head (eigenvalues)."""
    import torch

    model = from_pretrained(spec, options, dtype, spec.hf_id, BASE, allow_unused=True)
    tensors = read_checkpoint_tensors(spec.hf_id, spec.revision, ("value_head.", "prompt_head."))
    heads = torch.nn.ModuleDict({name: linear_layer(torch, tensors[f"{name}_head.weight"])
                                 for name in ("value", "prompt")}).to(input_device(model), dtype)
    return Loaded(spec, dtype, model, heads=heads)


def load_ldl(spec: RewardModelSpec, options: ScoreOptions, dtype: Any) -> Loaded:
    """LDL-Reward: base model plus the regression and gating MLPs of its .pt files (float32, as the card's class)."""
    import torch

    model = from_pretrained(spec, options, dtype, spec.hf_id, BASE, allow_unused=True)
    files = {name: torch.load(checkpoint_file(spec.hf_id, spec.revision, f"{name}_layer.pt"), map_location="cpu",
                              weights_only=True) for name in ("regression", "gating")}
    heads = torch.nn.ModuleDict({name: mlp_from_state(torch, state, "network.", torch.nn.LeakyReLU)
                                 for name, state in files.items()}).to(input_device(model), torch.float32)
    raw = read_config(spec.hf_id, spec.revision)  # transformers drops `temperature` from the loaded config
    return Loaded(spec, dtype, model, heads=heads,
                  ldl_gate=(bool(raw.get("softmax", False)), float(raw.get("temperature", 1.0))))


def load_internlm2_reward(spec: RewardModelSpec, options: ScoreOptions, dtype: Any) -> Loaded:
    """InternLM2 reward: its weights on transformers' LlamaModel plus the v_head (no remote modeling code)."""
    import torch

    device = "cpu" if options.device_map else options.device
    model, tensors = load_internlm2(spec.hf_id, spec.revision, dtype, device, resolve_attn(spec, options))
    head = linear_layer(torch, tensors["v_head.weight"]).to(device=device, dtype=dtype)
    return Loaded(spec, dtype, model, heads=head)


def load_implicit(spec: RewardModelSpec, options: ScoreOptions, dtype: Any) -> Loaded:
    """Implicit PRM: the policy and the reference causal LMs."""
    return Loaded(spec, dtype, from_pretrained(spec, options, dtype, spec.hf_id, CAUSAL_LM),
                  reference=from_pretrained(spec, options, dtype, spec.reference_model, CAUSAL_LM))


# ---- read-outs: (what was loaded, one batch) -> one result per item --------------------------------------------
def read_first_logit(loaded: Loaded, batch: Batch) -> list[float]:
    """logits[:, 0]: the raw scalar reward of a sequence classifier (remote heads: their first output)."""
    out = loaded.run_model(batch.ids, batch.mask)
    values = out.logits if getattr(out, "logits", None) is not None else out[0]
    return values.reshape(values.shape[0], -1)[:, 0].float().tolist()


def read_score_field(loaded: Loaded, batch: Batch) -> list[float]:
    """The `score` field of a gated multi-objective head (not its logits)."""
    score = loaded.run_model(batch.ids, batch.mask).score
    return score.reshape(score.shape[0], -1)[:, 0].float().tolist()


def read_correctness(loaded: Loaded, batch: Batch) -> list[float]:
    """The HelpSteer2 `correctness` attribute of the model's attribute rewards."""
    out = loaded.run_model(batch.ids, batch.mask)
    rewards = out.logits if getattr(out, "rewards", None) is None else out.rewards
    names = tuple(getattr(loaded.model, "attributes", None) or HELPSTEER_ATTRIBUTES)
    return rewards[:, names.index("correctness")].float().tolist()


def read_head_at_last(loaded: Loaded, batch: Batch) -> list[float]:
    """The local head's first output at the last token (Qwen2.5-Math-RM, INF-ORM; InternLM2: its reward token)."""
    hidden = loaded.hidden(batch.ids)
    return loaded.heads(loaded.pooled(hidden, batch.last).to(loaded.dtype)).float()[:, 0].tolist()


def read_step_probs(loaded: Loaded, batch: Batch) -> list[list[float]]:
    """Qwen PRM: softmax of the per-token 2-class head, P(class 1) at every <extra_0>."""
    ids = batch.ids
    probs = loaded.heads(loaded.hidden(ids).to(loaded.dtype)).float().softmax(-1)[..., 1]
    at_step = (ids == batch.step_id) & (batch.mask == 1)
    results = [probs[row][at_step[row].to(probs.device)].tolist() for row in range(ids.shape[0])]
    if not all(results):
        raise ValueError("no step token survived in the input")
    return results


def read_implicit(loaded: Loaded, batch: Batch) -> list[list[float]]:
    """Eurus card: beta * (log p_policy - log p_ref) per token from the last prompt token on, summed up to each
    step's read position (the token after its separator; <|im_end|> for the last step)."""
    import torch

    ids = batch.ids
    ratio = loaded.spec.beta * (token_logps(torch, loaded.model, ids) - token_logps(torch, loaded.reference, ids))
    per_token = torch.zeros(ids.shape, dtype=torch.float32, device=ids.device)
    per_token[:, 1:] = ratio  # per_token[t]: reward of token t given the tokens before it
    results = []
    for row, enc in enumerate(batch.items):
        contrib = per_token[row].clone()
        contrib[:enc.start] = 0
        cumulative = contrib.cumsum(-1)
        results.append([float(cumulative[m]) for m in enc.marks])
    return results


def read_gpm(loaded: Loaded, batch: Batch) -> list[dict]:
    """GPM: unit preference vector of the response and the prompt's eigenvalues (softmax of the prompt head)."""
    import torch

    hidden = loaded.hidden(batch.ids)
    vectors = torch.nn.functional.normalize(loaded.heads["value"](loaded.pooled(hidden, batch.last).to(loaded.dtype))
                                            .float(), p=2, dim=-1)
    prompt_pos = torch.tensor([max(e.prompt_len - 1, 0) for e in batch.items], device=hidden.device)
    eigen = loaded.heads["prompt"](loaded.pooled(hidden, prompt_pos).to(loaded.dtype)).float().softmax(-1)
    return [{"v": v, "r": r} for v, r in zip(vectors.tolist(), eigen.tolist())]


def read_ldl(loaded: Loaded, batch: Batch) -> list[float]:
    """LDL-Reward: expected value on [0, 1] of the gate-weighted mix of the per-objective rating distributions."""
    import torch

    features = loaded.pooled(loaded.hidden(batch.ids), batch.last).float()
    bins = loaded.heads["regression"](features)
    distributions = bins.view(bins.shape[0], -1, LDL_BINS).softmax(-1)  # [B, objectives, bins]
    weights = loaded.heads["gating"](features)
    softmax, temperature = loaded.ldl_gate
    if softmax:
        weights = (weights / temperature).softmax(-1)
    mixed = torch.bmm(weights.unsqueeze(1), distributions).squeeze(1)  # [B, bins]
    return (mixed * torch.linspace(0, 1, LDL_BINS, device=mixed.device)).sum(-1).tolist()


@dataclass(frozen=True)
class Loader:
    """One loader kind's code: how its weights load, how its output is read, and the transformers auto class of
    its trunk (None: mapped natively); its input format: FORMATS."""

    load: Callable[[RewardModelSpec, ScoreOptions, Any], Loaded]
    read: Callable[[Loaded, Batch], list]
    auto: str | None


# Keyed like KINDS (the registry says per kind whether it is native, remote code, or vLLM-capable).
LOADERS = {
    "sequence_classifier": Loader(load_classifier, read_first_logit, CLASSIFIER),
    "multi_objective": Loader(load_classifier, read_score_field, CLASSIFIER),
    "decision_tree": Loader(load_classifier, read_correctness, CLASSIFIER),
    "scalar_head": Loader(load_score_head, read_head_at_last, BASE),
    "gpm": Loader(load_gpm, read_gpm, BASE),
    "inform": Loader(load_score_head, read_head_at_last, BASE),
    "ldl": Loader(load_ldl, read_ldl, BASE),
    "internlm2": Loader(load_internlm2_reward, read_head_at_last, None),
    "step_prm": Loader(load_score_head, read_step_probs, BASE),
    "implicit_prm": Loader(load_implicit, read_implicit, CAUSAL_LM),
}


NATIVE_HEADS = {"step_prm": "score.", "scalar_head": "score.", "internlm2": "v_head."}  # head tensors of native kinds
EXTRA_FILES = {"ldl": ("regression_layer.pt", "gating_layer.pt")}  # checkpoint files besides the weights


def check_loadable(spec: RewardModelSpec) -> None:
    """Fail before any work when spec cannot be loaded: no such folder, not cached offline, no access, weight shards
    missing, head weights missing, no model class, remote code that cannot be imported here (shims are installed
    first, as for loading), or a tokenizer that cannot be loaded (remote tokenizer code included)."""
    from transformers import AutoTokenizer

    if spec.trust_remote_code:
        add_remote_code_shims()
    for model_id in filter(None, (spec.hf_id, spec.reference_model)):
        if model_id.startswith(("/", ".", "~")) and not os.path.isdir(model_id):
            raise RuntimeError(f"folder {model_id} does not exist")
        raw = read_config(model_id, spec.revision)
        missing = missing_weights(model_id, spec.revision, EXTRA_FILES.get(spec.kind, ()))
        if missing:
            raise RuntimeError(f"{model_id} lacks checkpoint file(s) {', '.join(missing[:3])}"
                               f"{' ...' if len(missing) > 3 else ''} (not downloaded, or not in the hub cache)")
        if model_id == spec.hf_id and spec.kind in NATIVE_HEADS:
            if spec.kind == "internlm2" and raw.get("model_type") != "internlm2":
                raise RuntimeError(f"{model_id} has model_type {raw.get('model_type')!r}, not internlm2")
            if not any(name.startswith(NATIVE_HEADS[spec.kind]) for name in tensor_names(model_id, spec.revision)):
                raise RuntimeError(f"{model_id} has no {NATIVE_HEADS[spec.kind]}* head weights; "
                                   f"not a {spec.kind} checkpoint")
        if LOADERS[spec.kind].auto:
            model_class(model_id, spec.revision, LOADERS[spec.kind].auto, spec.remote_model and model_id == spec.hf_id)
    AutoTokenizer.from_pretrained(spec.hf_id, revision=spec.revision, trust_remote_code=spec.trust_remote_code)


def add_remote_code_shims() -> None:
    """Names that older remote reward-model code imports and transformers 5 dropped (docstring constants only);
    installed before anything imports remote code (preflight included)."""
    import importlib

    for module_name, constant in (("transformers.models.llama.modeling_llama", "LLAMA_INPUTS_DOCSTRING"),
                                  ("transformers.models.gemma2.modeling_gemma2", "GEMMA2_INPUTS_DOCSTRING")):
        module = importlib.import_module(module_name)
        if not hasattr(module, constant):
            setattr(module, constant, "")


def mlp_from_state(torch, state: dict, prefix: str, activation) -> Any:
    """A Sequential of the Linear layers stored as {prefix}{i}.weight/.bias, with activation between them."""
    indices = sorted({int(key[len(prefix):].split(".")[0]) for key in state if key.startswith(prefix)})
    layers = []
    for index in indices:
        layers += [linear_layer(torch, state[f"{prefix}{index}.weight"], state.get(f"{prefix}{index}.bias")),
                   activation()]
    return torch.nn.Sequential(*layers[:-1])


def token_logps(torch, model, ids):
    """Log-probability of each next token under model, [B, T-1]."""
    logits = model(input_ids=ids.to(model.get_input_embeddings().weight.device), use_cache=False).logits.float()
    targets = ids[:, 1:].to(logits.device)
    picked = logits[:, :-1].gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (picked - torch.logsumexp(logits[:, :-1], dim=-1)).to(ids.device)


def check_head(head, hidden: int, outputs: int, label: str) -> None:
    """A checkpoint head must read the trunk's hidden size and give the kind's number of outputs."""
    linears = [m for m in head.modules() if hasattr(m, "in_features")]
    if not linears or linears[0].in_features != hidden or linears[-1].out_features != outputs:
        shapes = [tuple(m.weight.shape) for m in linears]
        raise RuntimeError(f"{label} head has Linear shapes {shapes}; expected input {hidden} and {outputs} output(s)")


def linear_layer(torch, weight, bias=None) -> Any:
    """A Linear layer holding the given checkpoint tensors."""
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    layer.weight.data = weight
    if bias is not None:
        layer.bias.data = bias
    return layer


def is_oom(err: BaseException) -> bool:
    """Whether an exception is an out-of-memory error (CUDA or host)."""
    return isinstance(err, MemoryError) or "out of memory" in str(err).lower()
