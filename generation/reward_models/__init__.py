"""Reward models (ORMs and PRMs): the registry table, input formatting and truncation, native and remote-code
loaders, batched scoring, the vLLM backend, preflight checks and GPU placement.

May import: backends (vllm_engine), costs, data, common.
"""
