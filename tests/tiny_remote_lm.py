"""Remote-code causal LM for tests: copied into a tiny model folder and loaded only with trust_remote_code."""
from transformers import LlamaConfig, LlamaForCausalLM


class TinyRemoteConfig(LlamaConfig):
    """A Llama config under a model type transformers does not know, as custom-code models have."""

    model_type = "tiny_remote_llama"


class TinyRemoteForCausalLM(LlamaForCausalLM):
    """A Llama causal LM whose class exists only in the model folder's code."""

    config_class = TinyRemoteConfig
