"""Reward-model scoring: the Scorer (a pair's encoding, what its loader kind built, the kind's read-out), length-sorted
batches with OOM back-off, per-row columns."""
from __future__ import annotations

import gc
import math
import time
from typing import Any, Callable

from generation.common.cli import error_line
from generation.reward_models.inputs import ChatEncoder, Encoded, ScoreOptions, resolve_dtype
from generation.reward_models.loaders import (
    LOADERS,
    MISSING_SAMPLE,
    Batch,
    ModelRun,
    add_remote_code_shims,
    input_device,
    is_oom,
)
from generation.reward_models.native import internlm2_reward_token
from generation.reward_models.registry import KINDS, RewardModelSpec


class Scorer:
    """A loaded reward model of any kind: encode() one pair, forward() a batch, close() to free memory."""

    def __init__(self, spec: RewardModelSpec, options: ScoreOptions) -> None:
        import torch

        if spec.trust_remote_code:
            add_remote_code_shims()
        self.spec, self.torch = spec, torch
        reward_token = internlm2_reward_token(spec.hf_id, spec.revision) if spec.kind == "internlm2" else None
        self.encoder = ChatEncoder(spec, options, reward_token)
        self.tokenizer = self.encoder.tokenizer
        self.loaded = LOADERS[spec.kind].load(spec, options, getattr(torch, resolve_dtype(spec, options)))
        self.pad_id = self._pick_pad()
        self.model.config.pad_token_id = self.pad_id  # the pooling of HF and remote heads compares against it

    @property
    def model(self) -> Any:
        """The loaded model (None once closed)."""
        return self.loaded.model

    def encode(self, instruction: str, sample: str) -> Encoded:
        """The model's input for one (instruction, sample) pair."""
        return self.encoder.encode(instruction, sample)

    def _pick_pad(self) -> int:
        """A padding id that never occurs in real inputs, so "last non-pad token" pooling finds the true last token.

        Many RMs set pad = EOS/<|eot_id|>, which ends every chat: padding with it would move the pooled position.
        """
        tok = self.tokenizer
        rendered = self.encoder.render([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}])
        avoid = set(self.encoder.encode_text(rendered)) | {tok.eos_token_id, tok.bos_token_id}
        for candidate in (getattr(self.model.config, "pad_token_id", None), tok.pad_token_id, tok.unk_token_id):
            if isinstance(candidate, int) and candidate not in avoid:
                return candidate
        return self.model.get_input_embeddings().num_embeddings - 1

    def forward(self, batch: list[Encoded]) -> list[Any]:
        """Score a batch (right-padded); returns one result per item (float, step list, or GPM vectors)."""
        torch = self.torch
        width = max(len(e.ids) for e in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, enc in enumerate(batch):
            ids[row, :len(enc.ids)] = torch.tensor(enc.ids)
            mask[row, :len(enc.ids)] = 1
        device = input_device(self.model)
        ids, mask = ids.to(device), mask.to(device)
        with torch.no_grad():
            return LOADERS[self.spec.kind].read(self.loaded, Batch(batch, ids, mask, mask.sum(-1) - 1,
                                                                   self.encoder.step_id))

    def close(self) -> None:
        """Free the model memory."""
        self.loaded.close()
        gc.collect()
        if self.torch.cuda.is_available():
            self.torch.cuda.empty_cache()


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


def make_scorer(spec: RewardModelSpec, options: ScoreOptions) -> tuple[Any, str]:
    """The scorer for the backend asked for; vLLM (kinds it has a built-in class for) falls back to transformers."""
    if options.backend != "vllm":
        return Scorer(spec, options), "transformers"
    if not KINDS[spec.kind].vllm or spec.remote_model:
        return Scorer(spec, options), f"transformers (vLLM has no built-in class for {spec.kind}" + (
            " with remote code)" if KINDS[spec.kind].vllm else ")")
    try:
        from generation.reward_models.vllm_backend import VllmScorer

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
    run.attn = getattr(getattr(getattr(scorer, "model", None), "config", None), "_attn_implementation", None)
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
        chunk = max(options.batch_size, 512) if run.backend == "vllm" else options.batch_size
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
