"""Reward-model scoring by loader kind: tokenise once, keep the answer when truncating, length-sorted batches."""
from __future__ import annotations

import gc
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from cli_support import error_line
from reward_model_native import (checkpoint_file, load_internlm2, read_checkpoint_tensors, read_config,
                                 restore_buffers, tensor_names)
from reward_model_registry import REMOTE_MODEL_KINDS, RewardModelSpec

STEP_TOKEN = "<extra_0>"
# a transformers base model plus heads built here from the checkpoint's own tensors (no remote code)
LOCAL_HEAD_KINDS = ("gpm", "inform", "ldl", "step_prm", "scalar_head", "internlm2")
HEAD_OUTPUTS = {"step_prm": 2, "scalar_head": 1}  # Qwen2.5-Math PRM / RM: score = Linear-ReLU-Linear to 2 / 1
AUTO_CLASSES = {"sequence_classifier": "AutoModelForSequenceClassification",
                "multi_objective": "AutoModelForSequenceClassification",
                "decision_tree": "AutoModelForSequenceClassification",
                "implicit_prm": "AutoModelForCausalLM", "causal_lm": "AutoModelForCausalLM"}  # other kinds: AutoModel
LDL_BINS = 10  # LDL-Reward: each rating distribution has 10 bins spread evenly over [0, 1]
HELPSTEER_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
TORCH_DTYPES = ("float32", "bfloat16", "float16")
MISSING_SAMPLE = "sample is missing (failed generation) or has no steps"


@dataclass
class ScoreOptions:
    """How to run a model: device, dtype, attention, batching and truncation."""

    device: str = "cpu"
    dtype: str = "auto"
    attn_implementation: str = "auto"
    batch_size: int = 4
    max_input_length: int = 2048
    device_map: str | None = None  # "auto" spreads a model over every visible GPU
    backend: str = "transformers"  # or "vllm": sequence classifiers through vLLM's pooling runner


@dataclass
class Encoded:
    """One tokenised (instruction, sample) pair ready for the model."""

    ids: list[int]
    truncated: bool = False
    prompt_len: int = 0
    marks: list[int] = field(default_factory=list)  # step-end token positions (implicit PRM)


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


def resolve_dtype(spec: RewardModelSpec, options: ScoreOptions) -> str:
    """The dtype to load with: the registry's on GPU, float32 on CPU, unless --dtype says otherwise."""
    if options.dtype != "auto":
        return options.dtype
    return spec.dtype if options.device.startswith("cuda") else "float32"


def resolve_attn(spec: RewardModelSpec, options: ScoreOptions) -> str | None:
    """Attention implementation: flash_attention_2 on GPU when installed, else the registry's choice or sdpa."""
    if options.attn_implementation != "auto":
        return options.attn_implementation
    if options.device.startswith("cuda"):
        import importlib.util

        if importlib.util.find_spec("flash_attn") is not None:
            return "flash_attention_2"
    if spec.attn:
        return spec.attn
    return None if uses_remote_model(spec) else "sdpa"


def cut_middle(ids: list[int], max_len: int, keep_head: int) -> tuple[list[int], Callable[[int], int | None]]:
    """Drop tokens from the middle so the start (prompt side) and the end (the final answer) survive."""
    if len(ids) <= max_len:
        return ids, lambda p: p
    head = max(0, min(keep_head, max_len // 4))
    tail_start = len(ids) - (max_len - head)
    shift = tail_start - head

    def remap(pos: int) -> int | None:
        """New index of an old position, None if it was cut."""
        if pos < head:
            return pos
        return pos - shift if pos >= tail_start else None

    return ids[:head] + ids[tail_start:], remap


def split_steps(sample: str) -> list[str]:
    """Reasoning steps: the non-empty blocks between blank lines, as the Qwen PRM and Eurus cards do."""
    return [step.strip() for step in sample.split("\n\n") if step.strip()]


class Scorer:
    """A loaded reward model of any kind: encode() one pair, forward() a batch, close() to free memory."""

    def __init__(self, spec: RewardModelSpec, options: ScoreOptions) -> None:
        if spec.trust_remote_code:
            add_remote_code_shims()
        self._init_tokenizer(spec, options)
        self.reward_token_id = self._internlm2_reward_token() if spec.kind == "internlm2" else None
        self.heads = None
        self.model = self._load(spec.hf_id, spec.kind)
        self.pad_id = self._pick_pad()
        self.model.config.pad_token_id = self.pad_id  # the pooling of HF and remote heads compares against it
        self.reference = self._load(spec.reference_model, "causal_lm") if spec.kind == "implicit_prm" else None
        if spec.kind in LOCAL_HEAD_KINDS and self.heads is None:
            self.heads = self._load_heads()
        self.expected_bos = self._template_bos()
        self.step_id = self._special_id(STEP_TOKEN) if spec.kind == "step_prm" else None

    # ---- loading -------------------------------------------------------------------------------------------
    def _init_tokenizer(self, spec: RewardModelSpec, options: ScoreOptions) -> None:
        """Settings and the model's own tokenizer (chat template included)."""
        import torch
        from transformers import AutoTokenizer

        self.spec, self.options, self.torch = spec, options, torch
        self.dtype = getattr(torch, resolve_dtype(spec, options))
        self.tokenizer = AutoTokenizer.from_pretrained(spec.hf_id, revision=spec.revision,
                                                       trust_remote_code=spec.trust_remote_code)

    def _internlm2_reward_token(self) -> int:
        """The reward token id InternLM2 reward models append to every chat (config.json `reward_token_id`)."""
        token_id = read_config(self.spec.hf_id, self.spec.revision).get("reward_token_id")
        if not isinstance(token_id, int):
            raise RuntimeError(f"{self.spec.hf_id} has no reward_token_id in its config; "
                               "is it an InternLM2 reward model?")
        return token_id

    def _load(self, model_id: str, kind: str):
        """Load weights with the auto class of the kind; refuse a checkpoint whose head would be random."""
        import transformers

        if kind == "internlm2":
            device = "cpu" if self.options.device_map else self.options.device
            model, tensors = load_internlm2(model_id, self.spec.revision, self.dtype, device)
            self.heads = linear_layer(self.torch, tensors["v_head.weight"]).to(device=device, dtype=self.dtype)
            return model
        remote = uses_remote_model(self.spec) and kind != "causal_lm"
        auto = AUTO_CLASSES.get(kind, "AutoModel")
        kwargs: dict[str, Any] = dict(revision=self.spec.revision, trust_remote_code=remote, dtype=self.dtype,
                                      output_loading_info=True)
        if kind == "sequence_classifier" and not remote:
            kwargs["num_labels"] = 1  # remote heads (URM) size their outputs from their own config: keep it
        attn = resolve_attn(self.spec, self.options)
        if attn:
            kwargs["attn_implementation"] = attn
        if self.options.device_map:
            kwargs["device_map"] = self.options.device_map
        transformers.logging.set_verbosity_error()
        model, info = getattr(transformers, auto).from_pretrained(model_id, **kwargs)
        missing = [k for k in info.get("missing_keys", []) if "rotary" not in k]
        if missing:
            raise RuntimeError(f"{model_id}: weights missing from the checkpoint would be random: {missing[:5]}")
        unused = [k for k in info.get("unexpected_keys", []) if "rotary" not in k]
        if unused and kind not in LOCAL_HEAD_KINDS:
            raise RuntimeError(f"{model_id}: checkpoint weights {unused[:5]} are unused by {type(model).__name__}; "
                               f"wrong loader kind, or remote code not trusted?")
        if remote:
            model.config.use_cache = False  # legacy code builds DynamicCache.from_legacy_cache when it is on
            restored = restore_buffers(model, f"{self.spec.name} ({model_id})")
            if restored:
                print(f"{self.spec.name}: restored {restored} non-persistent buffer(s) that transformers left "
                      "uninitialised in the remote code's modules")
        if not self.options.device_map:
            model = model.to(self.options.device)
        return model.eval()

    def _pick_pad(self) -> int:
        """A padding id that never occurs in real inputs, so "last non-pad token" pooling finds the true last token.

        Many RMs set pad = EOS/<|eot_id|>, which ends every chat: padding with it would move the pooled position.
        """
        tok = self.tokenizer
        rendered = tok.apply_chat_template([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
                                           tokenize=False)
        avoid = set(self._encode_text(rendered)) | {tok.eos_token_id, tok.bos_token_id}
        for candidate in (getattr(self.model.config, "pad_token_id", None), tok.pad_token_id, tok.unk_token_id):
            if isinstance(candidate, int) and candidate not in avoid:
                return candidate
        return self.model.get_input_embeddings().num_embeddings - 1

    def _load_heads(self):
        """Build the locally defined heads from the checkpoint: GPM value/prompt, INF-ORM score MLP, LDL MLPs."""
        torch, kind = self.torch, self.spec.kind
        if kind == "ldl":  # float32 heads, as the card's class runs them
            files = {name: torch.load(checkpoint_file(self.spec.hf_id, self.spec.revision, f"{name}_layer.pt"),
                                      map_location="cpu", weights_only=True) for name in ("regression", "gating")}
            heads = torch.nn.ModuleDict({name: mlp_from_state(torch, state, "network.", torch.nn.LeakyReLU)
                                         for name, state in files.items()})
            # the gating options live in config.json; transformers drops `temperature` from the loaded config
            with open(checkpoint_file(self.spec.hf_id, self.spec.revision, "config.json"), encoding="utf-8") as fh:
                raw = json.load(fh)
            self.ldl_gate = (bool(raw.get("softmax", False)), float(raw.get("temperature", 1.0)))
            return heads.to(device=self.input_device, dtype=torch.float32).eval()
        tensors = read_checkpoint_tensors(self.spec.hf_id, self.spec.revision,
                                          ("value_head.", "prompt_head.") if kind == "gpm" else ("score.",))
        if kind == "gpm":
            heads = torch.nn.ModuleDict({name: linear_layer(torch, tensors[f"{name}_head.weight"])
                                         for name in ("value", "prompt")})
        else:
            heads = mlp_from_state(torch, tensors, "score.", torch.nn.ReLU)
            check_head(heads, self.model.config.hidden_size, HEAD_OUTPUTS.get(kind, 1), f"{self.spec.hf_id} score")
        return heads.to(device=self.input_device, dtype=self.dtype).eval()

    @property
    def input_device(self):
        """Where input tensors go: the device of the input embeddings."""
        return self.model.get_input_embeddings().weight.device

    def _special_id(self, token: str) -> int:
        """Id of a special token the kind needs; an error if the tokenizer lacks it."""
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise RuntimeError(f"{self.spec.hf_id}: tokenizer has no {token} token")
        return token_id

    def _template_bos(self) -> int:
        """How many BOS ids every input must start with: 1 if the chat template renders the BOS token, else 0."""
        bos = self.tokenizer.bos_token
        if not bos:
            return 0
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
        return 1 if text.startswith(bos) else 0

    # ---- encoding ------------------------------------------------------------------------------------------
    def messages(self, instruction: str, sample: str) -> list[dict]:
        """The chat the model is shown, by kind (steps marked for PRMs, card system prompts)."""
        content = sample
        if self.spec.kind == "step_prm":
            steps = split_steps(sample)
            if not steps:
                raise ValueError("sample has no reasoning steps")
            content = STEP_TOKEN.join(steps) + STEP_TOKEN
        elif self.spec.kind == "implicit_prm":
            steps = split_steps(sample)
            if not steps:
                raise ValueError("sample has no reasoning steps")
            content = "\n\n".join(steps)
        chat = [{"role": "user", "content": instruction}, {"role": "assistant", "content": content}]
        if self.spec.system_prompt:
            chat.insert(0, {"role": "system", "content": self.spec.system_prompt})
        return chat

    def _encode_text(self, text: str) -> list[int]:
        """Token ids of rendered text; the template already holds the special tokens, so none are added."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode(self, instruction: str, sample: str) -> Encoded:
        """Render the chat template once, tokenise once, check the BOS count, and cut the middle if too long."""
        chat = self.messages(instruction, sample)
        text = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=False)
        ids = self._encode_text(text)
        if self.reward_token_id is not None:
            ids = ids + [self.reward_token_id]
        if self.spec.kind == "gpm" and self.tokenizer.eos_token_id is not None:
            ids[-1] = self.tokenizer.eos_token_id  # the GPM card forces the last token to EOS
        bos_id = self.tokenizer.bos_token_id
        leading = 0
        while bos_id is not None and leading < len(ids) and ids[leading] == bos_id:
            leading += 1
        if leading != self.expected_bos:  # a systematic tokenisation error: fails the whole model, never silently
            raise AssertionError(f"{self.spec.name}: input starts with {leading} BOS tokens, "
                                 f"expected exactly {self.expected_bos}")
        prompt_len = self._prompt_len(chat, text, ids)
        marks = self._step_ends(text, chat[-1]["content"]) if self.spec.kind == "implicit_prm" else []
        cut, remap = cut_middle(ids, self.options.max_input_length, prompt_len)
        truncated = len(cut) < len(ids)
        if truncated:
            marks = [m for m in (remap(p) for p in marks) if m is not None]
            new_prompt = remap(prompt_len - 1) if prompt_len else None
            head = min(prompt_len, self.options.max_input_length // 4)
            prompt_len = new_prompt + 1 if new_prompt is not None else head
        return Encoded(ids=cut, truncated=truncated, prompt_len=prompt_len, marks=marks)

    def _prompt_len(self, chat: list[dict], text: str, ids: list[int]) -> int:
        """Number of tokens before the response (GPM: the prompt without the generation header, as its card)."""
        gen_prompt = self.spec.kind != "gpm"
        prefix = self.tokenizer.apply_chat_template(chat[:-1], tokenize=False, add_generation_prompt=gen_prompt)
        if not text.startswith(prefix):
            return 0
        prefix_ids = self._encode_text(prefix)
        return len(prefix_ids) if ids[:len(prefix_ids)] == prefix_ids else 0

    def _step_ends(self, text: str, content: str) -> list[int]:
        """Token index of the last token of each step (implicit PRM), found through character offsets."""
        start = text.rfind(content)
        if start < 0:
            raise ValueError("response not found in the rendered chat")
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        ends, position = [], start
        for step in content.split("\n\n"):
            position += len(step)
            ends.append(max(i for i, (a, _) in enumerate(offsets) if a < position))
            position += 2
        return ends

    # ---- forward -------------------------------------------------------------------------------------------
    def forward(self, batch: list[Encoded]) -> list[Any]:
        """Score a batch (right-padded); returns one result per item (float, step list, or GPM vectors)."""
        torch = self.torch
        width = max(len(e.ids) for e in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, enc in enumerate(batch):
            ids[row, :len(enc.ids)] = torch.tensor(enc.ids)
            mask[row, :len(enc.ids)] = 1
        ids, mask = ids.to(self.input_device), mask.to(self.input_device)
        last = mask.sum(-1) - 1
        # Causal models with right padding: real tokens never attend to the pads after them, so no mask is needed
        # (and the fast causal attention kernels apply). Heads whose own pooling reads the mask still get it.
        self.model_mask = mask if uses_remote_model(self.spec) else None
        with torch.no_grad():
            kind = self.spec.kind
            if kind == "implicit_prm":
                return self._implicit(batch, ids)
            if kind in LOCAL_HEAD_KINDS:
                hidden = self.model(input_ids=ids, attention_mask=self.model_mask, use_cache=False).last_hidden_state
                # with device_map the last hidden state may sit on another GPU than the heads
                hidden = hidden.to(self.input_device)
                if kind == "step_prm":
                    return self._step_probs(self.heads(hidden.to(self.dtype)), ids, mask)
                pooled = hidden[torch.arange(len(batch), device=hidden.device), last.to(hidden.device)]
                if kind in ("inform", "scalar_head", "internlm2"):
                    return self.heads(pooled.to(self.dtype)).float()[:, 0].tolist()
                if kind == "ldl":
                    return self._ldl(pooled)
                return self._gpm(batch, hidden, pooled)
            out = self.model(input_ids=ids, attention_mask=self.model_mask, use_cache=False)
            values = self._read(out)
        return values.float().tolist()

    def _read(self, out):
        """The field the kind reads: score, an attribute, or the first output column, as a [B] tensor."""
        if self.spec.kind == "multi_objective":
            return out.score.reshape(out.score.shape[0], -1)[:, 0]
        if self.spec.kind == "decision_tree":
            rewards = getattr(out, "rewards", None)
            rewards = out.logits if rewards is None else rewards
            names = tuple(getattr(self.model, "attributes", None) or HELPSTEER_ATTRIBUTES)
            return rewards[:, names.index("correctness")]
        values = out.logits if getattr(out, "logits", None) is not None else out[0]
        return values.reshape(values.shape[0], -1)[:, 0]

    def _step_probs(self, logits, ids, mask) -> list[list[float]]:
        """Qwen PRM: P(class 1) of the per-token 2-class logits at every step token."""
        probs = logits.float().softmax(-1)[..., 1]
        at_step = (ids == self.step_id) & (mask == 1)
        results = [probs[row][at_step[row].to(probs.device)].tolist() for row in range(ids.shape[0])]
        for steps in results:
            if not steps:
                raise ValueError("no step token survived in the input")
        return results

    def _implicit(self, batch: list[Encoded], ids) -> list[list[float]]:
        """Eurus implicit PRM: cumulative beta * (log p_policy - log p_ref) over the response, read at step ends."""
        torch = self.torch

        def token_logps(model):
            """Log-probability of each next token under model, [B, T-1]."""
            logits = model(input_ids=ids.to(model.get_input_embeddings().weight.device), use_cache=False).logits.float()
            targets = ids[:, 1:].to(logits.device)
            picked = logits[:, :-1].gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            return (picked - torch.logsumexp(logits[:, :-1], dim=-1)).to(ids.device)

        ratio = self.spec.beta * (token_logps(self.model) - token_logps(self.reference))
        per_token = torch.zeros(ids.shape, dtype=torch.float32, device=ids.device)
        per_token[:, 1:] = ratio  # per_token[t]: reward of token t given the tokens before it
        results = []
        for row, enc in enumerate(batch):
            contrib = per_token[row].clone()
            contrib[:max(enc.prompt_len, 1)] = 0
            cumulative = contrib.cumsum(-1)
            if not enc.marks:
                raise ValueError("no step end survived in the input")
            results.append([float(cumulative[m]) for m in enc.marks])
        return results

    def _gpm(self, batch: list[Encoded], hidden, pooled) -> list[dict]:
        """GPM: unit preference vector of the response and the prompt's eigenvalues (softmax of the prompt head)."""
        torch = self.torch
        vectors = torch.nn.functional.normalize(self.heads["value"](pooled.to(self.dtype)).float(), p=2, dim=-1)
        prompt_pos = torch.tensor([max(e.prompt_len - 1, 0) for e in batch], device=hidden.device)
        prompt_hidden = hidden[torch.arange(len(batch), device=hidden.device), prompt_pos]
        eigen = self.heads["prompt"](prompt_hidden.to(self.dtype)).float().softmax(-1)
        return [{"v": v, "r": r} for v, r in zip(vectors.tolist(), eigen.tolist())]

    def _ldl(self, pooled) -> list[float]:
        """LDL-Reward: expected value on [0, 1] of the gate-weighted mix of the per-objective rating distributions."""
        torch = self.torch
        features = pooled.float()
        bins = self.heads["regression"](features)
        distributions = bins.view(bins.shape[0], -1, LDL_BINS).softmax(-1)  # [B, objectives, bins]
        weights = self.heads["gating"](features)
        softmax, temperature = self.ldl_gate
        if softmax:
            weights = (weights / temperature).softmax(-1)
        mixed = torch.bmm(weights.unsqueeze(1), distributions).squeeze(1)  # [B, bins]
        return (mixed * torch.linspace(0, 1, LDL_BINS, device=mixed.device)).sum(-1).tolist()

    def close(self) -> None:
        """Free the model memory."""
        self.model = self.reference = self.heads = None
        gc.collect()
        if self.torch.cuda.is_available():
            self.torch.cuda.empty_cache()


def uses_remote_model(spec: RewardModelSpec) -> bool:
    """Whether the model class comes from the checkpoint's own (remote) code rather than from transformers."""
    return spec.trust_remote_code and spec.kind in REMOTE_MODEL_KINDS + ("sequence_classifier",)


NATIVE_HEADS = {"step_prm": "score.", "scalar_head": "score.", "internlm2": "v_head."}  # head tensors of native kinds


def check_loadable(spec: RewardModelSpec) -> None:
    """Fail before any work when spec cannot be loaded: no such folder, not cached offline, no access, head weights
    missing, or remote code that cannot be imported here (shims are installed first, as for loading)."""
    from transformers import AutoConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    if spec.trust_remote_code:
        add_remote_code_shims()
    for model_id in filter(None, (spec.hf_id, spec.reference_model)):
        if model_id.startswith(("/", ".", "~")) and not os.path.isdir(model_id):
            raise RuntimeError(f"folder {model_id} does not exist")
        if model_id == spec.hf_id and spec.kind in NATIVE_HEADS:
            raw = read_config(model_id, spec.revision)
            if spec.kind == "internlm2" and raw.get("model_type") != "internlm2":
                raise RuntimeError(f"{model_id} has model_type {raw.get('model_type')!r}, not internlm2")
            if not any(name.startswith(NATIVE_HEADS[spec.kind]) for name in tensor_names(model_id, spec.revision)):
                raise RuntimeError(f"{model_id} has no {NATIVE_HEADS[spec.kind]}* head weights; "
                                   f"not a {spec.kind} checkpoint")
            continue
        remote = uses_remote_model(spec) and model_id == spec.hf_id
        config = AutoConfig.from_pretrained(model_id, revision=spec.revision, trust_remote_code=remote)
        remote_class = (getattr(config, "auto_map", None) or {}).get(AUTO_CLASSES.get(spec.kind, "AutoModel"))
        if remote and remote_class:  # fetches the model's code and checks its imports (sklearn for decision trees)
            get_class_from_dynamic_module(remote_class, model_id, revision=spec.revision)


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


def run_batches(scorer: Scorer, encoded: dict[int, Encoded], batch_size: int,
                on_result: Callable[[int, Any], None], on_error: Callable[[int, str], None],
                progress: Callable[[int], None] = lambda n: None) -> None:
    """Score items longest-first in batches of up to batch_size; halve the batch on OOM; isolate failing items."""
    order = sorted(encoded, key=lambda i: -len(encoded[i].ids))
    position, size, restore_at = 0, batch_size, -1
    while position < len(order):
        chunk = order[position:position + size]
        try:
            values = scorer.forward([encoded[i] for i in chunk])
        except Exception as err:  # noqa: BLE001 - any model error is isolated to the items that cause it
            _free_cuda(scorer)
            if is_oom(err) and size > 1:
                size = max(1, size // 2)  # longest first: later batches are shorter, so the smaller size is kept
                continue
            if len(chunk) > 1:
                size, restore_at = 1, position + len(chunk)  # retry this batch one item at a time
                continue
            on_error(chunk[0], error_line(err))
            values = None
        if values is not None:
            for index, value in zip(chunk, values):
                if isinstance(value, float) and not math.isfinite(value):
                    on_error(index, "non-finite score")
                else:
                    on_result(index, value)
        position += len(chunk)
        progress(len(chunk))
        if position == restore_at:
            size, restore_at = batch_size, -1


def _free_cuda(scorer: Scorer) -> None:
    """Release cached CUDA blocks after an error."""
    gc.collect()
    if scorer.torch.cuda.is_available():
        scorer.torch.cuda.empty_cache()


def make_scorer(spec: RewardModelSpec, options: ScoreOptions) -> tuple[Scorer, str]:
    """The scorer for the backend asked for; vLLM (sequence classifiers only) falls back to transformers."""
    if options.backend != "vllm":
        return Scorer(spec, options), "transformers"
    if spec.kind != "sequence_classifier":
        return Scorer(spec, options), f"transformers (vLLM serves only sequence_classifier, not {spec.kind})"
    try:
        from reward_models_vllm import VllmScorer

        return VllmScorer(spec, options), "vllm"
    except Exception as err:  # noqa: BLE001 - vLLM missing or the architecture unsupported: use transformers
        return Scorer(spec, options), f"transformers (vLLM failed: {error_line(err)[:200]})"


def score_items(spec: RewardModelSpec, items: list[tuple[str, str | None]], options: ScoreOptions,
                done: dict[int, Any] | None = None, on_result: Callable[[int, Any], None] = lambda i, v: None,
                progress: Callable[[int], None] = lambda n: None) -> ModelRun:
    """Load spec, score every (instruction, sample) item not in done, free the model; failures are None + reason."""
    done = dict(done or {})
    results: list[Any] = [done.get(i) for i in range(len(items))]
    errors: dict[int, str] = {}
    todo = [i for i in range(len(items)) if i not in done]
    run = ModelRun(results=results, errors=errors)
    progress(len(items) - len(todo))
    if not todo:
        return run
    started = time.time()
    scorer, run.backend = make_scorer(spec, options)
    run.load_s = time.time() - started
    try:
        encoded: dict[int, Encoded] = {}
        for i in todo:
            instruction, sample = items[i]
            if not isinstance(sample, str) or (spec.is_prm and not sample.strip()):
                errors[i] = MISSING_SAMPLE  # a failed generation, or no steps for a PRM to score
                progress(1)
                continue
            try:
                encoded[i] = scorer.encode(instruction, sample)
            except AssertionError:
                raise  # a BOS mismatch is systematic: the whole model fails loudly
            except Exception as err:  # noqa: BLE001 - one odd sample (template error, no steps) is None, not fatal
                errors[i] = f"cannot encode: {type(err).__name__}: {err}"
                progress(1)
        run.truncated = sum(e.truncated for e in encoded.values())
        run.tokens = sum(len(e.ids) for e in encoded.values())

        def keep(index: int, value: Any) -> None:
            """Record a scored item here and in the caller's store."""
            results[index] = value
            on_result(index, value)

        started = time.time()
        chunk = options.batch_size if run.backend == "transformers" else max(options.batch_size, 512)
        run_batches(scorer, encoded, chunk, keep, errors.__setitem__, progress)
        run.score_s = time.time() - started
    finally:
        scorer.close()
    return run


def gpm_pair_score(a: dict, b: dict) -> float:
    """GPM preference score s(a > b | x) = <R(x) v_a, v_b> with R block-diagonal skew-symmetric (eigenvalues r)."""
    va, vb, r = a["v"], b["v"], a["r"]
    return sum(lam * (va[2 * m] * vb[2 * m + 1] - va[2 * m + 1] * vb[2 * m]) for m, lam in enumerate(r))


def row_columns(spec: RewardModelSpec, results: list[Any], errors: dict[int, str],
                row_sizes: list[int]) -> tuple[dict[str, list], dict[int, str]]:
    """Turn per-item results into the model's per-row columns; a failed item is None (never 0.0)."""
    errors = dict(errors)
    columns: dict[str, list] = {name: [] for name in spec.columns()}
    start = 0
    for size in row_sizes:
        indices = list(range(start, start + size))
        start += size
        values = [None if i in errors else results[i] for i in indices]
        if spec.kind == "gpm":
            valid = [i for i, v in zip(indices, values) if v is not None]
            scores = []
            for i, value in zip(indices, values):
                others = [results[j] for j in valid if j != i]
                if value is None or not others:
                    errors.setdefault(i, "GPM needs at least two scored samples per prompt")
                    scores.append(None)
                else:
                    scores.append(sum(gpm_pair_score(value, other) for other in others) / len(others))
            columns[f"{spec.name}_scores"].append(scores)
        elif spec.is_prm:
            steps = [v if v is not None else [] for v in values]
            columns[f"{spec.name}_min_scores"].append([min(s) if s else None for s in steps])
            columns[f"{spec.name}_max_scores"].append([max(s) if s else None for s in steps])
            columns[f"{spec.name}_avg_scores"].append([sum(s) / len(s) if s else None for s in steps])
            columns[f"{spec.name}_step_scores"].append(steps)
        else:
            columns[f"{spec.name}_scores"].append(values)
    return columns, errors
