"""Reward models through vLLM's pooling runner: sequence classifiers (raw logit at the last token) and vLLM's built-in
Qwen2ForProcessRewardModel, Qwen2ForRewardModel and InternLM2ForRewardModel (per-token outputs read as the
transformers path reads its heads)."""
from __future__ import annotations

import math

from generation.backends.vllm_engine import start_engine, stop_engine
from generation.reward_models.inputs import ChatEncoder, Encoded, ScoreOptions, resolve_dtype
from generation.reward_models.native import internlm2_reward_token
from generation.reward_models.registry import KINDS, RewardModelSpec


class VllmScorer:
    """Same encoding as the transformers Scorer; the forward pass runs in a vLLM pooling engine."""

    def __init__(self, spec: RewardModelSpec, options: ScoreOptions) -> None:
        import torch

        if not KINDS[spec.kind].vllm or spec.remote_model:
            raise ValueError(f"vLLM has no built-in class for {spec.kind} models loaded with remote code")
        self.spec, self.torch = spec, torch
        reward_token = internlm2_reward_token(spec.hf_id, spec.revision) if spec.kind == "internlm2" else None
        self.encoder = ChatEncoder(spec, options, reward_token)
        self.per_token = spec.kind != "sequence_classifier"  # a built-in reward class: its head on every token
        gpus = torch.cuda.device_count() if options.device.startswith("cuda") else 0
        engine = dict(model=spec.hf_id, revision=spec.revision, tokenizer=spec.hf_id, runner="pooling",
                      trust_remote_code=spec.trust_remote_code, dtype=resolve_dtype(spec, options),
                      max_model_len=options.max_input_length, max_num_seqs=options.batch_size,
                      enforce_eager=not gpus, tensor_parallel_size=gpus if options.device_map and gpus > 1 else 1)
        if self.per_token:  # every token's raw head outputs; the read-out picks the positions the card reads
            from vllm.config import PoolerConfig

            engine["pooler_config"] = PoolerConfig(tok_pooling_type="ALL")
            engine["hf_overrides"] = {"architectures": [KINDS[spec.kind].vllm]}  # the kind decides the class
        else:
            engine["convert"] = "classify"
        self.llm = start_engine(None, **engine)  # no flag: vLLM's default share of each GPU

    def encode(self, instruction: str, sample: str) -> Encoded:
        """The model's input for one (instruction, sample) pair, as the transformers Scorer builds it."""
        return self.encoder.encode(instruction, sample)

    def forward(self, batch: list[Encoded]) -> list:
        """Raw outputs (use_activation=False: no sigmoid), read like the transformers path: the classifier logit,
        P(class 1) at every <extra_0> (PRM), or the scalar head at the last token (Qwen2.5-Math-RM; InternLM2: its
        reward token)."""
        from vllm import PoolingParams
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=e.ids) for e in batch]
        params = PoolingParams(use_activation=False)
        if not self.per_token:
            return [float(o.outputs.probs[0]) for o in self.llm.classify(prompts, pooling_params=params,
                                                                         use_tqdm=False)]
        outputs = self.llm.encode(prompts, pooling_params=params, pooling_task="token_classify", use_tqdm=False)
        if self.spec.kind != "step_prm":
            return [float(out.outputs.data[-1].reshape(-1)[0]) for out in outputs]
        results = []
        for enc, out in zip(batch, outputs):
            probs = out.outputs.data.float().softmax(-1)[:, 1].tolist()
            steps = [p for p, token in zip(probs, enc.ids) if token == self.encoder.step_id]
            if not steps or not all(math.isfinite(p) for p in steps):
                raise ValueError("no finite step score in the input")
            results.append(steps)
        return results

    def close(self) -> None:
        """Stop the engine's processes and free their memory."""
        stop_engine(self.llm)
        self.llm = None
