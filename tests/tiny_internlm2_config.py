"""Stand-in for the InternLM2 hub checkpoints' configuration_internlm2.py (copied into tiny InternLM2 folders): the
config class their auto_map names, with the hub file's fields and defaults (vLLM loads it with trust_remote_code)."""
from transformers import PretrainedConfig


class InternLM2Config(PretrainedConfig):
    """InternLM2 configuration: Llama-like sizes plus `bias`, fused-qkv layout implied by the heads."""

    model_type = "internlm2"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(self, vocab_size=103168, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=None, hidden_act="silu", max_position_embeddings=2048,
                 initializer_range=0.02, rms_norm_eps=1e-6, use_cache=True, pad_token_id=0, bos_token_id=1,
                 eos_token_id=2, tie_word_embeddings=False, bias=True, rope_theta=10000, rope_scaling=None,
                 attn_implementation="eager", **kwargs):
        self.vocab_size, self.hidden_size, self.intermediate_size = vocab_size, hidden_size, intermediate_size
        self.num_hidden_layers, self.num_attention_heads = num_hidden_layers, num_attention_heads
        self.num_key_value_heads = num_key_value_heads or num_attention_heads
        self.hidden_act, self.max_position_embeddings = hidden_act, max_position_embeddings
        self.initializer_range, self.rms_norm_eps, self.use_cache = initializer_range, rms_norm_eps, use_cache
        self.bias, self.rope_theta, self.rope_scaling = bias, rope_theta, rope_scaling
        self.attn_implementation = attn_implementation
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)
