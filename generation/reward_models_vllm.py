"""Sequence-classifier reward models through vLLM's pooling runner (raw logits at the last token, no sigmoid)."""
from __future__ import annotations

from reward_model_inputs import ChatEncoder, Encoded, ScoreOptions, resolve_dtype
from reward_model_registry import RewardModelSpec
from vllm_engine import start_engine, stop_engine


class VllmScorer:
    """Same encoding as the transformers Scorer; the forward pass runs in a vLLM pooling engine."""

    def __init__(self, spec: RewardModelSpec, options: ScoreOptions) -> None:
        import torch

        self.spec, self.torch = spec, torch
        self.encoder = ChatEncoder(spec, options)
        gpus = torch.cuda.device_count() if options.device.startswith("cuda") else 0
        self.llm = start_engine(model=spec.hf_id, revision=spec.revision, tokenizer=spec.hf_id, runner="pooling",
                                convert="classify", trust_remote_code=spec.trust_remote_code,
                                dtype=resolve_dtype(spec, options), max_model_len=options.max_input_length,
                                max_num_seqs=options.batch_size, enforce_eager=not gpus,
                                tensor_parallel_size=gpus if options.device_map and gpus > 1 else 1)

    def encode(self, instruction: str, sample: str) -> Encoded:
        """The model's input for one (instruction, sample) pair, as the transformers Scorer builds it."""
        return self.encoder.encode(instruction, sample)

    def forward(self, batch: list[Encoded]) -> list[float]:
        """Raw classifier logit of each sequence (use_activation=False: vLLM would apply a sigmoid otherwise)."""
        from vllm import PoolingParams
        from vllm.inputs import TokensPrompt

        outputs = self.llm.classify([TokensPrompt(prompt_token_ids=e.ids) for e in batch],
                                    pooling_params=PoolingParams(use_activation=False), use_tqdm=False)
        return [float(o.outputs.probs[0]) for o in outputs]

    def close(self) -> None:
        """Stop the engine's processes and free their memory."""
        stop_engine(self.llm)
        self.llm = None
