"""A config's settings for the kinds beyond standard attention and MLA: which fields go to which
layers of the model.

- Qwen3-Next (``qwen3_next``): its ``linear_attention`` layers are Gated DeltaNet
  (:mod:`attncli.kinds.gdn.kind`: ``linear_num_key_heads``, ``linear_num_value_heads``,
  ``linear_key_head_dim``, ``linear_value_head_dim``, ``linear_conv_kernel_dim``); its full
  layers are gated full attention (:mod:`attncli.kinds.gated.kind`: ``attn_output_gate``).
- DeepSeek-V3.2 (``deepseek_v32``): every layer is MLA with the lightning indexer
  (:mod:`attncli.kinds.sparse_mla.kind`: ``index_topk``, ``index_n_heads``, ``index_head_dim``).
- Nemotron-H / Nemotron-3 (``nemotron_h``): its ``linear_attention`` layers (``M`` in
  ``hybrid_override_pattern``) are Mamba2 (:mod:`attncli.kinds.mamba2`, read by
  :func:`attncli.kinds.mamba2.sizes.read_fields`); its attention layers are standard attention without
  biases (``NemotronHAttention`` builds q/k/v/o with ``bias=False`` whatever ``attention_bias`` says).
- DeepSeek-V4 (``deepseek_v4``): ``q_lora_rank``, ``o_groups``, ``o_lora_rank`` and the indexer's sizes
  (:mod:`attncli.kinds.dsv4`); each layer's ``compress_ratio`` comes from its type
  (:meth:`attncli.models.configs.LayerSettings.fields_for`), and the CSA layers keep the indexer's.
- Kimi Linear (``kimi_linear``): its ``linear_attention`` layers are Kimi Delta Attention
  (:mod:`attncli.kinds.kda`: ``linear_num_heads``, ``linear_head_dim``, ``linear_conv_kernel_dim``, from
  ``linear_attn_config`` or the attributes); its full layers are MLA, whose sizes the attention layers
  keep and the linear layers drop.

:func:`kind_fields` returns (the settings of the attention layers, the settings of the linear
layers), each with its sources. Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from attncli.choices import MAX_SIZE
from attncli.models.parts import parts_fields
from attncli.registry import GDN_FIELDS, MLA_FIELDS, SPARSE_FIELDS
from attncli.spec import SpecError

QWEN35_FAMILIES = frozenset({"qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text"})
"""Qwen3.5 (dense and MoE; the outer multimodal model_type when its text_config names none): transformers'
Qwen3_5Attention is Qwen3NextAttention line for line (q_proj 2x for the gate, per-head q/k RMSNorm, partial
RoPE), and Qwen3_5GatedDeltaNet has Qwen3NextGatedDeltaNet's sizes and forward: it projects q,k,v / z / b / a
with four linears (in_proj_qkv, in_proj_z, in_proj_b, in_proj_a) where Qwen3-Next fuses them into two
(in_proj_qkvz, in_proj_ba) with the value heads grouped per key head; the same weights and multiply-adds."""
GATED_FAMILIES = frozenset({"qwen3_next", "afmoe", *QWEN35_FAMILIES})
"""Families whose attention layers carry the sigmoid output gate (transformers' Qwen3NextAttention: q_proj 2x;
AfmoeAttention: a gate_proj E x H*d beside q_proj, the same multiply-adds and weights without biases)."""
LINEAR_FAMILIES = frozenset({"qwen3_next", *QWEN35_FAMILIES})
"""Families whose linear-attention layers are Gated DeltaNet (Qwen3NextGatedDeltaNet, Qwen3_5GatedDeltaNet)."""
MAMBA2_FAMILIES = frozenset({"nemotron_h"})
"""Families whose linear-attention layers are Mamba2 (NemotronHMamba2Mixer)."""

INDEX_DEFAULTS: dict[str, int] = {"index_topk": 2048, "index_n_heads": 64, "index_head_dim": 128}
"""transformers' DeepseekV32Config defaults for an indexer field the file leaves out."""
FAMILY_INDEX_DEFAULTS: dict[str, tuple[str, dict[str, int]]] = {
    "deepseek_v32": ("DeepseekV32Config", INDEX_DEFAULTS),
    "glm_moe_dsa": ("GlmMoeDsaConfig", {"index_topk": 2048, "index_n_heads": 32, "index_head_dim": 128}),
}
"""The families whose config class builds the indexer on every MLA layer, the class and its defaults (an
``index_topk`` the file leaves out is 2048 in both; configuration_glm_moe_dsa.py: 32 heads of 128)."""


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
    if family in QWEN35_FAMILIES and cfg.get("attn_output_gate", True) is not True:
        # NOTE: Qwen3_5Attention gates whatever the field says (Qwen3_5TextConfig has no such field); a config
        # that says false describes a layer transformers does not build.
        shown = json.dumps(cfg["attn_output_gate"])[:40]
        raise SpecError("--config", f"{where}attn_output_gate {shown} (an ungated attention layer; transformers' "
                                    f"{family} always gates) is not modelled; attncli would count a different layer")
    ssm_dtype(cfg, family, where)  # NOTE: a bad mamba_ssm_dtype fails here, --engine or not
    if family == "glm_moe_dsa":
        from attncli.models.glmdsa import check_indexers

        check_indexers(cfg, where)
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
    if family in MAMBA2_FAMILIES:
        from attncli.kinds.mamba2.sizes import read_fields

        if cfg.get("attention_bias") is True:
            raise SpecError("--config", f"{where}attention_bias true: NemotronHAttention builds q/k/v/o without "
                                        "biases whatever it says; attncli would count a different layer")
        linear, mamba_sources = read_fields(cfg, family, prefix, where)
        sources.update(mamba_sources)
    if family == "kimi_linear":
        from attncli.kinds.kda.sizes import read_sizes as read_kda

        kv, heads = cfg.get("num_key_value_heads"), cfg.get("num_attention_heads")
        if kv is not None and heads is not None and kv != heads:
            # NOTE: KimiLinearAttention expands H key heads from the latent, then repeats them H / kv times
            raise SpecError("--config", f"{where}num_key_value_heads {kv!r} differs from num_attention_heads "
                                        f"{heads!r}: transformers' KimiLinearAttention repeats its {heads} key heads "
                                        "by their ratio, a layer that does not run; attncli would count a different "
                                        "layer")
        values, kda_sources = read_kda(cfg, where)
        linear.update(values)
        sources.update(kda_sources)
        # NOTE: the MLA sizes belong to the full layers; a KDA layer takes none of them
        mla = {key: cfg.get(key) for key in MLA_FIELDS if cfg.get(key) is not None}
        full.update(mla)
        linear.update(dict.fromkeys(mla))
    if family == "deepseek_v4":
        from attncli.kinds.dsv4.sizes import read_sizes

        z = read_sizes(cfg, where)
        for key, value in (("q_lora_rank", z.q_lora_rank), ("o_groups", z.o_groups), ("o_lora_rank", z.o_lora_rank),
                           ("index_topk", z.index_topk), ("index_n_heads", z.index_heads),
                           ("index_head_dim", z.index_head_dim)):
            full[key] = value
            sources[key] = prefix + key if key in cfg else f"default: transformers' DeepseekV4Config {key} ({value})"
        return full, linear, sources
    indexed = cfg.get("index_topk") is not None or (family in FAMILY_INDEX_DEFAULTS and "index_topk" not in cfg)
    if indexed and cfg.get("kv_lora_rank") is not None:
        for key in SPARSE_FIELDS:
            if cfg.get(key) is not None:
                full[key], sources[key] = _size(cfg, key, where), prefix + key
            else:
                cls, defaults = FAMILY_INDEX_DEFAULTS.get(family or "", ("DeepseekV32Config", INDEX_DEFAULTS))
                full[key] = defaults[key]
                sources[key] = f"default: transformers' {cls} {key} ({defaults[key]})"
    parts, parts_sources = parts_fields(cfg, family, prefix, where)
    full.update(parts)
    sources.update(parts_sources)
    return full, linear, sources


SSM_DTYPES = ("float32", "bfloat16", "float16")
"""The ``mamba_ssm_dtype`` values vLLM's Qwen3.5 config hook takes (``MambaDType`` less ``auto``)."""


def ssm_dtype(cfg: Mapping[str, Any], family: str | None, where: str) -> tuple[str, str] | None:
    """The recurrent state's dtype vLLM keeps for a Qwen3.5 model when ``--mamba-ssm-cache-dtype`` is auto, and
    where it came from: vLLM's ``Qwen3_5ForConditionalGenerationConfig`` hook sets ``mamba_ssm_cache_dtype``
    from the config's ``mamba_ssm_dtype`` (vLLM PR 34489); None for other families or without the field.
    transformers ignores the field: its torch rule keeps the state in float32 whatever it says."""
    if family not in QWEN35_FAMILIES or cfg.get("mamba_ssm_dtype") is None:
        return None
    value = cfg["mamba_ssm_dtype"]
    if value not in SSM_DTYPES:
        raise SpecError("--config", f"{where}mamba_ssm_dtype must be one of {', '.join(SSM_DTYPES)}, got "
                                    f"{json.dumps(value)[:40]}")
    return str(value), f"config.json:{where}mamba_ssm_dtype (vLLM's Qwen3.5 config hook)"
