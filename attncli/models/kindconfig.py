"""A config's settings for the kinds beyond standard attention and MLA: which fields go to which
layers of the model.

- Qwen3-Next (``qwen3_next``): its ``linear_attention`` layers are Gated DeltaNet
  (:mod:`attncli.kinds.gdn`: ``linear_num_key_heads``, ``linear_num_value_heads``,
  ``linear_key_head_dim``, ``linear_value_head_dim``, ``linear_conv_kernel_dim``); its full
  layers are gated full attention (:mod:`attncli.kinds.gated`: ``attn_output_gate``).
- DeepSeek-V3.2 (``deepseek_v32``): every layer is MLA with the lightning indexer
  (:mod:`attncli.kinds.sparse_mla`: ``index_topk``, ``index_n_heads``, ``index_head_dim``).
- DeepSeek-V4 (``deepseek_v4``): ``q_lora_rank``, ``o_groups``, ``o_lora_rank`` and the indexer's sizes
  (:mod:`attncli.kinds.dsv4`); each layer's ``compress_ratio`` comes from its type
  (:meth:`attncli.models.configs.LayerSettings.fields_for`), and the CSA layers keep the indexer's.

:func:`kind_fields` returns (the settings of the attention layers, the settings of the linear
layers), each with its sources. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attncli.models.parts import parts_fields
from attncli.models.values import MAX_SIZE
from attncli.spec import GDN_FIELDS, SPARSE_FIELDS, SpecError

GATED_FAMILIES = frozenset({"qwen3_next", "afmoe"})
"""Families whose attention layers carry the sigmoid output gate (transformers' Qwen3NextAttention: q_proj 2x;
AfmoeAttention: a gate_proj E x H*d beside q_proj, the same multiply-adds and weights without biases)."""
LINEAR_FAMILIES = frozenset({"qwen3_next"})
"""Families whose linear-attention layers are Gated DeltaNet (Qwen3NextGatedDeltaNet)."""

INDEX_DEFAULTS: dict[str, int] = {"index_n_heads": 64, "index_head_dim": 128}
"""transformers' DeepseekV32Config defaults for an indexer field the file leaves out."""


def _size(cfg: Mapping[str, Any], key: str, where: str) -> int:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError("--config", f"{where}{key} must be a positive integer, got {value!r}"[:200])
    if value > MAX_SIZE:  # NOTE: 2**64 reached torch as a shape and overflowed (a traceback)
        raise SpecError("--config", f"{where}{key} is too large ({value} > {MAX_SIZE})"[:200])
    return value


def kind_fields(cfg: Mapping[str, Any], family: str | None, prefix: str,
                where: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(attention-layer settings, linear-layer settings, their sources) of ``cfg``."""
    full: dict[str, Any] = {}
    linear: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if family in GATED_FAMILIES:
        full["attn_output_gate"] = True
        sources["attn_output_gate"] = f"architecture: {family}'s attention layers gate their output (q_proj 2x)"
        if family == "afmoe" and cfg.get("attention_bias") is True:
            # NOTE: AfmoeAttention's gate_proj has no bias while q_proj has one; the gated layer biases both.
            raise SpecError("--config", f"{where}attention_bias true (AFMoE's gate_proj has no bias, q_proj has one) "
                                        "is not modelled; attncli would count a different layer")
    if family in LINEAR_FAMILIES:
        for key in GDN_FIELDS:
            if cfg.get(key) is None:
                raise SpecError("--config", f"{where}{key} is missing: {family}'s linear layers need it")
            linear[key], sources[key] = _size(cfg, key, where), prefix + key
    if family == "deepseek_v4":
        from attncli.kinds.dsv4.sizes import read_sizes

        z = read_sizes(cfg, where)
        for key, value in (("q_lora_rank", z.q_lora_rank), ("o_groups", z.o_groups), ("o_lora_rank", z.o_lora_rank),
                           ("index_topk", z.index_topk), ("index_n_heads", z.index_heads),
                           ("index_head_dim", z.index_head_dim)):
            full[key] = value
            sources[key] = prefix + key if key in cfg else f"default: transformers' DeepseekV4Config {key} ({value})"
        return full, linear, sources
    if cfg.get("index_topk") is not None and cfg.get("kv_lora_rank") is not None:
        for key in SPARSE_FIELDS:
            if cfg.get(key) is not None:
                full[key], sources[key] = _size(cfg, key, where), prefix + key
            else:
                full[key] = INDEX_DEFAULTS[key]
                sources[key] = f"default: transformers' DeepseekV32Config {key} ({INDEX_DEFAULTS[key]})"
    parts, parts_sources = parts_fields(cfg, family, prefix, where)
    full.update(parts)
    sources.update(parts_sources)
    return full, linear, sources
