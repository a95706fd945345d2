"""Model backends: API providers (routing and parameter rules, the live runner, batch APIs, reply parsing) and local
engines (vLLM's step loop, transformers generation).

Entry points: calls.run_chat_jobs / calls.run_cached / calls.api_config_for (from ApiSettings) for API models;
local_generation and vllm_engine for local ones. Layering inside: rules <- replies <- runner <- batch <- calls.
May import: costs, data, common.
"""
