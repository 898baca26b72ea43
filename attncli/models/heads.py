"""How a ``config.json`` names one layer's heads and their sizes: the query heads' key/value heads and
head size (standard, grouped and multi-query attention; Falcon's and DBRX's own rules) and multi-head
latent attention's five sizes (DeepSeek-V2/V3, Kimi K2), each with where it came from. Read by
:func:`attncli.models.configs.settings_from_config`; nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from attncli.models.families import HEAD_DIM_KEYS, KV_HEADS_KEYS, dbrx_kv_heads
from attncli.models.values import size as _int
from attncli.models.values import switch as _bool
from attncli.registry import MLA_FIELDS
from attncli.spec import SpecError

MLA_DEFAULTS: dict[str, int] = {"q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
                                "v_head_dim": 128}
"""transformers' ``DeepseekV3Config`` (and ``DeepseekV2Config``) defaults for an MLA field a config omits."""


def first_key(cfg: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    """The first of ``keys`` present with a non-null value."""
    return next((k for k in keys if cfg.get(k) is not None), None)


def _falcon_kv_heads(cfg: Mapping[str, Any], heads: int, where: str, prefix: str,
                     sources: dict[str, str]) -> tuple[int, str]:
    """Falcon's K/V heads as ``FalconAttention`` takes them (transformers 5.25): ``num_kv_heads``
    (default: the query heads) when ``new_decoder_architecture`` or not ``multi_query`` (default
    true), else one; a ``num_key_value_heads`` in the file is ignored, as FalconConfig recomputes it."""
    new = _bool(cfg, "new_decoder_architecture", where) if "new_decoder_architecture" in cfg else False
    multi_query = _bool(cfg, "multi_query", where) if "multi_query" in cfg else True
    key = next((k for k in ("num_kv_heads", "n_head_kv") if cfg.get(k) is not None), None)
    if new or not multi_query:
        kv = _int(cfg, key, where) if key is not None else heads
        why = prefix + key if key is not None else "default: heads (FalconConfig.num_kv_heads)"
        sources["kv_heads"] = why + (" (new_decoder_architecture)" if new else " (multi_query false)")
        return kv, key or "num_attention_heads"
    sources["kv_heads"] = (prefix + "multi_query" if "multi_query" in cfg else "default: FalconConfig.multi_query "
                           "true") + ": one K/V head (FalconAttention ignores num_kv_heads)"
    return 1, "multi_query"


def standard_heads(cfg: Mapping[str, Any], prefix: str, where: str, dim: int, heads: int, hidden_key: str,
           heads_key: str, sources: dict[str, str], family: str | None = None) -> tuple[int, int]:
    """A standard layer's key/value heads and head size, with their sources."""
    kv_key = first_key(cfg, KV_HEADS_KEYS)
    if family == "falcon":
        kv_heads, kv_key = _falcon_kv_heads(cfg, heads, where, prefix, sources)
    elif cfg.get("model_type") == "dbrx":
        kv_heads, sources["kv_heads"] = dbrx_kv_heads(cfg, prefix, where)
        kv_key = "attn_config.kv_n_heads"
    elif kv_key is not None:
        kv_heads = _int(cfg, kv_key, where)
        sources["kv_heads"] = prefix + kv_key
    elif "multi_query" in cfg and _bool(cfg, "multi_query", where):
        kv_heads, sources["kv_heads"] = 1, prefix + "multi_query"
    else:
        kv_heads, sources["kv_heads"] = heads, "default: heads"
    if heads % kv_heads:
        raise SpecError("--config", f"{where}{heads_key}={heads} is not a multiple of {kv_key}={kv_heads}")

    hd_key = first_key(cfg, HEAD_DIM_KEYS)
    if hd_key is not None:
        head_dim = _int(cfg, hd_key, where)
        sources["head_dim"] = prefix + hd_key
    else:
        if dim % heads:
            raise SpecError("--config", f"{where}{hidden_key}={dim} is not a multiple of {heads_key}={heads} "
                                        "and no head_dim is given")
        head_dim, sources["head_dim"] = dim // heads, "default: dim/heads"
    return kv_heads, head_dim


def mla_sizes(cfg: Mapping[str, Any], prefix: str, where: str, sources: dict[str, str]) -> dict[str, int | None]:
    """The five MLA sizes of ``cfg`` (``kv_lora_rank`` is set), with their sources.

    ``q_lora_rank`` null (DeepSeek-V2-Lite) or 0 (DeepSeek's own inference configs) is a direct
    ``q_proj``: ``None``. A field the file omits takes transformers' ``DeepseekV3Config`` default.
    """
    out: dict[str, int | None] = {"kv_lora_rank": _int(cfg, "kv_lora_rank", where)}
    sources["kv_lora_rank"] = prefix + "kv_lora_rank"
    for name in MLA_FIELDS[1:]:
        value = cfg.get(name, ...)
        if value is ...:
            out[name] = MLA_DEFAULTS[name]
            sources[name] = f"default: transformers' DeepseekV3Config {name} ({MLA_DEFAULTS[name]})"
        elif name == "q_lora_rank" and (value is None or (type(value) is int and value == 0)):
            out[name], sources[name] = None, prefix + f"q_lora_rank ({json.dumps(value)}: a direct q_proj)"
        elif value is None:
            raise SpecError("--config", f"{where}{name} must be an integer, got null")
        else:
            out[name], sources[name] = _int(cfg, name, where), prefix + name
    derived = cfg.get("qk_head_dim")  # NOTE: DeepseekV3Config derives it: qk_nope_head_dim + qk_rope_head_dim
    if derived is not None and derived != (out["qk_nope_head_dim"] or 0) + (out["qk_rope_head_dim"] or 0):
        raise SpecError("--config", f"{where}qk_head_dim {json.dumps(derived)[:40]} is not qk_nope_head_dim + "
                                    "qk_rope_head_dim; attncli would count a different layer")
    return out


# ------------------------------------------------------------------------------ presets
