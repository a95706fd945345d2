"""Checkpoint access and native loading for reward models whose hub code was written for an older transformers.

InternLM2 reward models are mapped onto transformers' own Llama layout; the non-persistent buffers of remote-code
models (rotary caches computed in __init__, which transformers 5 leaves uninitialised) are rebuilt and restored.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
from typing import Any, Iterator

INTERNLM2_LAYER_NAMES = {"attention.wo.": "self_attn.o_proj.", "feed_forward.w1.": "mlp.gate_proj.",
                         "feed_forward.w3.": "mlp.up_proj.", "feed_forward.w2.": "mlp.down_proj.",
                         "attention_norm.": "input_layernorm.", "ffn_norm.": "post_attention_layernorm."}


def checkpoint_file(model_id: str, revision: str | None, filename: str) -> str:
    """Path of one file of a checkpoint: in its local folder, or fetched into the hub cache."""
    if os.path.isdir(model_id):
        return os.path.join(model_id, filename)
    from huggingface_hub import hf_hub_download

    return hf_hub_download(model_id, filename, revision=revision)


def file_present(model_id: str, revision: str | None, filename: str) -> bool:
    """Whether a checkpoint file is there without fetching it: in the local folder, in the hub cache, or (online)
    on the hub."""
    if os.path.isdir(model_id):
        return os.path.isfile(os.path.join(model_id, filename))
    from huggingface_hub import constants, file_exists, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model_id, filename, revision=revision), str):
        return True
    return not constants.HF_HUB_OFFLINE and file_exists(model_id, filename, revision=revision)


def missing_weights(model_id: str, revision: str | None, extra: tuple[str, ...] = ()) -> list[str]:
    """The weight files a checkpoint lacks: every shard its index names (safetensors or .bin), else its single
    weights file, plus extra files (LDL's head .pt files); nothing is downloaded but the index."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if not file_present(model_id, revision, index_name):
            continue
        with open(checkpoint_file(model_id, revision, index_name), encoding="utf-8") as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
        names = shards + list(extra)
        break
    else:
        single = [name for name in ("model.safetensors", "pytorch_model.bin") if file_present(model_id, revision, name)]
        names = (single[:1] or ["model.safetensors"]) + list(extra)
    return [name for name in names if not file_present(model_id, revision, name)]


def read_config(model_id: str, revision: str | None) -> dict:
    """The checkpoint's config.json as a dict; a one-line error when the folder or id holds no model."""
    try:
        with open(checkpoint_file(model_id, revision, "config.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except Exception as err:  # noqa: BLE001 - missing file, no access, bad JSON: one reason for the user
        raise RuntimeError(f"{model_id} is not a model checkpoint (cannot read its config.json: "
                           f"{type(err).__name__})") from err


def read_checkpoint_tensors(model_id: str, revision: str | None, prefixes: tuple[str, ...]) -> dict:
    """Tensors whose names start with one of prefixes, from a local folder or the shards the index names."""
    from safetensors import safe_open

    if os.path.isdir(model_id):
        files = sorted(glob.glob(os.path.join(model_id, "*.safetensors")))
    else:
        from huggingface_hub import hf_hub_download

        try:
            index = hf_hub_download(model_id, "model.safetensors.index.json", revision=revision)
            with open(index, encoding="utf-8") as handle:
                weight_map = json.load(handle)["weight_map"]
            names = sorted({f for k, f in weight_map.items() if k.startswith(prefixes)})
        except Exception:  # noqa: BLE001 - single-file checkpoint: no index
            names = ["model.safetensors"]
        files = [hf_hub_download(model_id, name, revision=revision) for name in names]
    tensors = {}
    for path in files:
        with safe_open(path, framework="pt") as handle:
            for key in handle.keys():
                if key.startswith(prefixes):
                    tensors[key] = handle.get_tensor(key)
    if not tensors:
        raise RuntimeError(f"{model_id}: checkpoint has no tensors named {'/'.join(prefixes)}*")
    return tensors


def tensor_names(model_id: str, revision: str | None) -> set[str]:
    """Names of a checkpoint's tensors, from its safetensors index (or the single file's header)."""
    from safetensors import safe_open

    try:
        with open(checkpoint_file(model_id, revision, "model.safetensors.index.json"), encoding="utf-8") as handle:
            return set(json.load(handle)["weight_map"])
    except Exception:  # noqa: BLE001 - no index: a single-file checkpoint
        pass
    files = (sorted(glob.glob(os.path.join(model_id, "*.safetensors"))) if os.path.isdir(model_id)
             else [checkpoint_file(model_id, revision, "model.safetensors")])
    names: set[str] = set()
    for path in files:
        with safe_open(path, framework="pt") as handle:
            names.update(handle.keys())
    return names


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Build modules whose parameters live on the meta device (no memory) while buffers are computed on the CPU."""
    import torch

    original = torch.nn.Module.register_parameter

    def register(module, name, param):
        if param is not None:
            param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    torch.nn.Module.register_parameter = register
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = original


def float_buffers(model, non_persistent_only: bool = True) -> dict[str, Any]:
    """The floating-point (non-persistent) buffers of model by qualified name."""
    found = {}
    for module_name, module in model.named_modules():
        for name, buffer in module.named_buffers(recurse=False):
            if buffer is None or not buffer.is_floating_point():
                continue
            if non_persistent_only and name not in module._non_persistent_buffers_set:
                continue
            found[f"{module_name}.{name}" if module_name else name] = buffer
    return found


def restore_buffers(model, label: str) -> list[str]:
    """Rebuild model's non-persistent float buffers by instantiating its class on the CPU in float32 from a copy of
    its config (an __init__ may edit the config it is given); restore any that differ and return their names. A
    buffer that cannot be rebuilt, is non-finite, or still differs is an error naming the model."""
    import copy

    import torch

    loaded = float_buffers(model)
    if not loaded:
        return []
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with parameters_on_meta(), torch.device("cpu"):
            fresh = float_buffers(type(model)(copy.deepcopy(model.config)))
    except Exception as err:  # noqa: BLE001 - the class cannot be rebuilt: its buffers cannot be trusted
        raise RuntimeError(f"{label}: cannot rebuild {type(model).__name__} on the CPU to check its "
                           f"non-persistent buffers ({type(err).__name__}: {err})") from err
    finally:
        torch.set_default_dtype(previous)
    restored = []
    with torch.no_grad():
        for name, buffer in loaded.items():
            reference = fresh.get(name)
            if reference is None or reference.shape != buffer.shape or not torch.isfinite(reference).all():
                raise RuntimeError(f"{label}: non-persistent buffer {name} cannot be rebuilt as a finite tensor of "
                                   f"shape {tuple(buffer.shape)}; its scores would be wrong")
            target = reference.to(device=buffer.device, dtype=buffer.dtype)
            if not torch.equal(buffer, target):
                buffer.copy_(target)
                restored.append(name)
            if not torch.isfinite(buffer).all() or not torch.equal(buffer, target):
                raise RuntimeError(f"{label}: non-persistent buffer {name} differs from its rebuilt value and "
                                   f"cannot be restored; its scores would be wrong")
    return restored


def internlm2_reward_token(model_id: str, revision: str | None) -> int:
    """The reward token id InternLM2 reward models append to every chat (config.json `reward_token_id`)."""
    token_id = read_config(model_id, revision).get("reward_token_id")
    if not isinstance(token_id, int):
        raise RuntimeError(f"{model_id} has no reward_token_id in its config; is it an InternLM2 reward model?")
    return token_id


def internlm2_llama_config(raw: dict):
    """A LlamaConfig with the shapes, norms and rotary settings of an InternLM2 config.json."""
    from transformers import LlamaConfig

    scaling = raw.get("rope_scaling") or {}
    rope = {"rope_type": scaling.get("type", scaling.get("rope_type", "default")),
            "rope_theta": float(raw.get("rope_theta", 10000.0))}
    if "factor" in scaling:
        rope["factor"] = float(scaling["factor"])
    return LlamaConfig(vocab_size=raw["vocab_size"], hidden_size=raw["hidden_size"],
                       intermediate_size=raw["intermediate_size"], num_hidden_layers=raw["num_hidden_layers"],
                       num_attention_heads=raw["num_attention_heads"],
                       num_key_value_heads=raw.get("num_key_value_heads", raw["num_attention_heads"]),
                       max_position_embeddings=raw.get("max_position_embeddings", 4096),
                       rms_norm_eps=raw.get("rms_norm_eps", 1e-6), attention_bias=bool(raw.get("bias", False)),
                       hidden_act=raw.get("hidden_act", "silu"), rope_parameters=rope,
                       pad_token_id=raw.get("pad_token_id"), bos_token_id=raw.get("bos_token_id"),
                       eos_token_id=raw.get("eos_token_id"), tie_word_embeddings=False)


def split_wqkv(tensor, config) -> tuple[Any, Any, Any]:
    """InternLM2's fused wqkv holds, per key/value head, its query group then its key then its value rows."""
    kv_heads = config.num_key_value_heads
    group = config.num_attention_heads // kv_heads
    head_dim = config.hidden_size // config.num_attention_heads
    grouped = tensor.reshape(kv_heads, group + 2, head_dim, *tensor.shape[1:])
    return (grouped[:, :group].reshape(-1, *tensor.shape[1:]), grouped[:, group].reshape(-1, *tensor.shape[1:]),
            grouped[:, group + 1].reshape(-1, *tensor.shape[1:]))


def internlm2_to_llama(tensors: dict, config) -> dict:
    """Rename and split InternLM2 trunk tensors (model.*) into LlamaModel state-dict names."""
    state = {}
    for key, tensor in tensors.items():
        name = key[len("model."):]
        if name.startswith("tok_embeddings."):
            state[name.replace("tok_embeddings.", "embed_tokens.")] = tensor
        elif ".attention.wqkv." in name:
            layer, _, suffix = name.partition("attention.wqkv.")
            for proj, part in zip(("q_proj", "k_proj", "v_proj"), split_wqkv(tensor, config)):
                state[f"{layer}self_attn.{proj}.{suffix}"] = part
        else:
            for old, new in INTERNLM2_LAYER_NAMES.items():
                name = name.replace(old, new)
            state[name] = tensor
    return state


def load_internlm2(model_id: str, revision: str | None, dtype, device: str,
                   attn: str | None = None) -> tuple[Any, dict]:
    """An InternLM2 reward checkpoint as transformers' LlamaModel plus its v_head tensors (no remote code)."""
    import torch
    from transformers import LlamaModel

    raw = read_config(model_id, revision)
    if raw.get("model_type") != "internlm2":
        raise RuntimeError(f"{model_id}: config model_type is {raw.get('model_type')!r}, not an InternLM2 model")
    config = internlm2_llama_config(raw)
    config._attn_implementation = attn or "sdpa"
    tensors = read_checkpoint_tensors(model_id, revision, ("model.", "v_head."))
    heads = {k: v for k, v in tensors.items() if k.startswith("v_head.")}
    if "v_head.weight" not in heads:
        raise RuntimeError(f"{model_id}: checkpoint has no v_head.weight; is it an InternLM2 reward model?")
    state = {k: v.to(dtype) for k, v in internlm2_to_llama(
        {k: v for k, v in tensors.items() if k.startswith("model.")}, config).items()}
    with parameters_on_meta(), torch.device("cpu"):
        model = LlamaModel(config)
    expected = {name for name, _ in model.named_parameters()}
    missing, unused = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unused:
        raise RuntimeError(f"{model_id}: InternLM2 weights do not map onto Llama's layout "
                           f"(missing {missing[:3]}, unused {unused[:3]})")
    model.load_state_dict(state, strict=False, assign=True)
    return model.to(device).eval(), heads
