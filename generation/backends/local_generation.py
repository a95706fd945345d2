"""Local generation backends for Step 1: vLLM (one engine, `n` samples per prompt) and transformers (batched)."""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from generation.backends.replies import finish_word
from generation.backends.vllm_engine import (
    chunks,
    default_tensor_parallel,
    generate_streaming,
    sequences_in_flight,
    start_engine,
    stop_engine,
)
from generation.common.cli import UserError, error_line

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

S1_END = "<|im_end|>"
TEMPLATE_DATE = "2024-07-26"  # "today" for chat templates (Llama 3.1's own fallback date), recorded in provenance

# (key, texts, generated tokens, each text's finish reason: "stop" (a stop token), "length" (the token limit), ...)
OnResult = Callable[[str, list[str], int, list[str | None]], None]


@dataclass
class LocalRequest:
    """One prompt to sample: checkpoint key, token ids, samples wanted, per-request seed."""

    key: str
    token_ids: list[int]
    n: int
    seed: int


@dataclass
class SamplingSettings:
    """Sampling parameters shared by every request."""

    temperature: float
    top_p: float
    max_new_tokens: int
    max_length: int


def remote_code_hint(err: Exception, trust_remote_code: bool) -> str:
    """What to do when a model failed to load because it needs its own code (else nothing)."""
    needs_code = not trust_remote_code and "trust_remote_code" in str(err)
    return "; the model runs its own code: pass --trust_remote_code if you trust it" if needs_code else ""


def load_tokenizer(model: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """The model's tokenizer, after checking its config loads; a model that cannot be loaded is a UserError."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
        return AutoTokenizer.from_pretrained(model, padding_side="left", trust_remote_code=trust_remote_code)
    except Exception as err:  # hub errors, missing files, bad configs all mean "cannot use this model"
        hint = remote_code_hint(err, trust_remote_code) or "; for an API model pass --provider or --base_url"
        raise UserError(f"model {model!r} is not a known API model, and its tokenizer cannot be loaded as a local "
                        f"path or hub id ({error_line(err)}){hint}") from err


def check_weights(model: str) -> None:
    """Fail before any work when a local model folder's safetensors files cannot be read (corrupt or cut short)."""
    if not os.path.isdir(model):
        return
    from safetensors import safe_open

    for name in sorted(f for f in os.listdir(model) if f.endswith(".safetensors")):
        try:
            with safe_open(os.path.join(model, name), framework="pt") as weights:
                weights.keys()
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for every defect
            raise UserError(f"model folder {model}: weights file {name} is unreadable ({error_line(err)}); "
                            "download or save the model again") from err


def s1_chatml(messages: list[dict]) -> str:
    """The hand-written Qwen/s1 ChatML prompt with an open assistant turn."""
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}\n<|im_end|>\n" for m in messages)
    return f"{turns}<|im_start|>assistant\n"


def fixed_date_kwargs() -> dict:
    """Chat-template variables that pin "today" to TEMPLATE_DATE (Llama 3.x templates insert the date), so that a
    rerun on another day renders the same prompts and resumes its checkpoint."""
    day = datetime.date.fromisoformat(TEMPLATE_DATE)
    return {"date_string": day.strftime("%d %b %Y"), "strftime_now": day.strftime}


def prompt_text(tokenizer: PreTrainedTokenizerBase | None, messages: list[dict], s1: bool) -> str:
    """The exact text the model sees: s1 ChatML, else the chat template with the generation prompt, else raw."""
    if s1:
        return s1_chatml(messages)
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                             **fixed_date_kwargs())
    return "\n\n".join(m["content"] for m in messages)


def prompt_ids(tokenizer: PreTrainedTokenizerBase, text: str, s1: bool) -> list[int]:
    """Token ids of a prompt; templated prompts already carry their special tokens (no second BOS)."""
    templated = s1 or bool(tokenizer.chat_template)
    return tokenizer(text, add_special_tokens=not templated)["input_ids"]


def stop_token_ids(tokenizer: PreTrainedTokenizerBase, s1: bool) -> list[int]:
    """Token ids that end a sample: the tokenizer's EOS, plus `<|im_end|>` in s1 mode."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if s1:
        end = tokenizer.convert_tokens_to_ids(S1_END)
        if end is not None and end != tokenizer.unk_token_id:
            ids.append(end)
    return ids


def model_stop_ids(stop_ids: list[int], generation_config: Any) -> list[int]:
    """stop_ids plus the model's generation_config EOS ids (Llama-3's <|eot_id|>, Gemma's <end_of_turn>)."""
    configured = getattr(generation_config, "eos_token_id", None)
    configured = configured if isinstance(configured, list) else [] if configured is None else [configured]
    return list(dict.fromkeys([*stop_ids, *configured]))


def lowered_max_new_tokens(id_lists: list[list[int]], max_new_tokens: int, max_length: int) -> dict[str, Any]:
    """Prompts whose --max_new_tokens is lowered to fit --max_length: said once (when any), returned for provenance."""
    rooms = [max_length - len(ids) for ids in id_lists if len(ids) + max_new_tokens > max_length]
    summary = {"prompts": len(rooms), "of": len(id_lists), "lowest": min(rooms, default=None),
               "highest": max(rooms, default=None)}
    if rooms:
        print(f"--max_new_tokens {max_new_tokens} lowered to fit --max_length {max_length}: {len(rooms)} of "
              f"{len(id_lists)} prompts get {min(rooms)} to {max(rooms)} new tokens")
    return summary


def context_length(model: str, trust_remote_code: bool = False) -> int | None:
    """The model's maximum positions from its config, or None when the config does not say."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    return getattr(config.get_text_config(), "max_position_embeddings", None)


def check_context(model: str, trust_remote_code: bool, **lengths: int) -> None:
    """Fail before any work when a token length (--max_length, --max_new_tokens) is above the model's context."""
    context = context_length(model, trust_remote_code)
    for flag, value in lengths.items():
        if context is not None and value is not None and value > context:
            raise UserError(f"--{flag} {value} is above the context of {model} ({context} tokens, its config's "
                            f"max_position_embeddings); pass --{flag} {context} or less")


def check_prompt_lengths(id_lists: list[list[int]], max_length: int) -> None:
    """Fail before loading the model when a prompt leaves no room for output within --max_length."""
    too_long = [len(ids) for ids in id_lists if len(ids) >= max_length]
    if too_long:
        longest = max(too_long)
        raise UserError(f"{len(too_long)} prompts are at least --max_length {max_length} tokens long "
                        f"(longest {longest}); raise --max_length")


class VllmBackend:
    """One vLLM engine fed through its step loop; each prompt (with `n` samples) is reported as soon as it finishes."""

    def __init__(self, model: str, settings: SamplingSettings, stop_ids: list[int], seed: int,
                 tensor_parallel_size: int | None, gpu_memory_utilization: float,
                 trust_remote_code: bool = False, per_request_seeds: bool = False) -> None:
        import torch

        self.settings = settings
        self.stop_ids = stop_ids
        self.per_request_seeds = per_request_seeds
        self.llm = start_engine(model=model, gpu_memory_utilization=gpu_memory_utilization,
                                tensor_parallel_size=tensor_parallel_size
                                or default_tensor_parallel(model, torch.cuda.device_count(), trust_remote_code),
                                max_model_len=settings.max_length, seed=seed, trust_remote_code=trust_remote_code)

    def run(self, requests: list[LocalRequest], on_result: OnResult, sequences: int | None = None) -> None:
        """Generate every request with about `sequences` samples in flight (default: a few engine batches),
        calling on_result(key, texts, tokens, finishes) for each prompt as soon as all its samples are done."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        s = self.settings
        # vLLM refuses n > 1 without sampling (temperature 0): then each sample is a request of its own
        parts = [(r, 1) for r in requests for _ in range(r.n)] if s.temperature == 0 else [(r, r.n) for r in requests]
        stream = ((TokensPrompt(prompt_token_ids=r.token_ids),
                   SamplingParams(n=n, seed=r.seed if self.per_request_seeds else None, temperature=s.temperature,
                                  top_p=s.top_p, max_tokens=min(s.max_new_tokens, s.max_length - len(r.token_ids)),
                                  stop_token_ids=self.stop_ids)) for r, n in parts)

        def finished(index: int, output) -> None:
            on_result(parts[index][0].key, [c.text for c in output.outputs],
                      sum(len(c.token_ids) for c in output.outputs),
                      [finish_word("vllm", c.finish_reason) for c in output.outputs])

        generate_streaming(self.llm, stream, finished, sequences_in_flight(self.llm, sequences))

    def close(self) -> None:
        """Stop the engine's worker processes (left running, they can keep the interpreter from exiting)."""
        stop_engine(self.llm)


class TransformersBackend:
    """Batched `generate` with left padding; `batch_size` sequences (prompt copies) per call."""

    def __init__(self, model: str, tokenizer: PreTrainedTokenizerBase, settings: SamplingSettings, stop_ids: list[int],
                 batch_size: int, trust_remote_code: bool = False) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            loaded = AutoModelForCausalLM.from_pretrained(model, dtype="auto", trust_remote_code=trust_remote_code)
        except Exception as err:  # unreadable weights, unknown architecture, remote code: the model cannot be used
            hint = remote_code_hint(err, trust_remote_code) or "; download or save the model again"
            raise UserError(f"cannot load {model!r} with transformers ({error_line(err)}){hint}") from err
        self.model = loaded.to(self.device).eval()
        self.tokenizer = tokenizer
        self.settings = settings
        self.stop_ids = model_stop_ids(stop_ids, self.model.generation_config)
        self.batch_size = batch_size
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def run(self, requests: list[LocalRequest], on_result: OnResult) -> None:
        """Generate every request, calling on_result(key, texts, tokens, finishes) per prompt's samples per batch."""
        copies = [(r, i) for r in requests for i in range(r.n)]
        for batch in chunks(copies, self.batch_size):
            outputs = self._generate([r.token_ids for r, _ in batch], seed=batch[0][0].seed + batch[0][1])
            grouped: dict[str, tuple[list[str], int, list[str | None]]] = {}
            for (request, _), (text, tokens, finish) in zip(batch, outputs):
                texts, total, finishes = grouped.get(request.key, ([], 0, []))
                grouped[request.key] = (texts + [text], total + tokens, finishes + [finish])
            for key, (texts, tokens, finishes) in grouped.items():
                on_result(key, texts, tokens, finishes)

    def _generate(self, id_lists: list[list[int]], seed: int) -> list[tuple[str, int, str]]:
        """One left-padded generate call; returns each decoded continuation, its token count (padding excluded) and
        its finish reason: "stop" when it generated a stop token (EOS), "length" when cut at the token limit.

        Each row keeps at most min(--max_new_tokens, --max_length - its own prompt) tokens, as with vLLM.
        """
        import torch

        s = self.settings
        width = max(len(ids) for ids in id_lists)
        caps = [max(1, min(s.max_new_tokens, s.max_length - len(ids))) for ids in id_lists]
        input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + ids for ids in id_lists], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in id_lists], device=self.device)
        sampling = {"do_sample": True, "temperature": s.temperature, "top_p": s.top_p} if s.temperature > 0 \
            else {"do_sample": False}
        torch.manual_seed(seed)
        with torch.no_grad():
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, pad_token_id=self.pad_id,
                                      eos_token_id=self.stop_ids or None,
                                      max_new_tokens=max(caps), **sampling)
        generated = [row[:cap] for row, cap in zip(out[:, width:], caps)]
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        stops = torch.tensor(self.stop_ids, dtype=out.dtype, device=out.device)
        return [(text, int((row != self.pad_id).sum()), "stop" if bool(torch.isin(row, stops).any()) else "length")
                for text, row in zip(texts, generated)]
