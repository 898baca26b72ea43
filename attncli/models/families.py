"""Which fields of a ``config.json`` attncli reads, per family, and the families that name them their own way.

:func:`read_fields` is what the guard holds a config to (:func:`attncli.models.guard.refuse_unread`):
a field is read only where the family's reader reads it (``max_window_layers`` in Qwen2/Qwen3,
``sliding_window_pattern`` in Gemma 3 and Cohere 2, ``attention_chunk_size`` where a layer is
chunked, the MLA sizes in an MLA layer), and of two names for one size (``hidden_size`` and
``d_model``) the second only when it says the same. :func:`dbrx_kv_heads` reads DBRX's key/value
heads from its nested ``attn_config`` (transformers' DbrxAttentionConfig). Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attncli.models import geometry, schedule
from attncli.models.values import size
from attncli.registry import GDN_FIELDS, MLA_FIELDS, SPARSE_FIELDS
from attncli.spec import SpecError

HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "dim")
HEADS_KEYS = ("num_attention_heads", "n_head", "num_heads", "n_heads")
KV_HEADS_KEYS = ("num_key_value_heads", "num_kv_heads", "n_kv_heads", "multi_query_group_num")
HEAD_DIM_KEYS = ("head_dim", "d_kv", "kv_channels")
BIAS_KEYS = ("attention_bias", "qkv_bias", "bias", "use_bias", "add_qkv_bias")
SIZE_GROUPS = (HIDDEN_KEYS, HEADS_KEYS, KV_HEADS_KEYS, HEAD_DIM_KEYS, BIAS_KEYS)
"""Each group names one setting; the reader takes the first present (non-null)."""

ALWAYS_READ = frozenset({"model_type", "architectures", "is_decoder", "is_encoder_decoder", "multi_query",
                         "layer_types", "sliding_window", *schedule.LAYER_COUNT_KEYS})
"""Read in every family: the kind of model, its causality, its depth and its schedule."""

QWEN_DEPTH_WINDOW = frozenset({"qwen2", "qwen3", "qwen2_moe"})
"""Families whose schedule starts the window at ``max_window_layers`` (configuration_qwen2.py, _qwen3, _qwen2_moe)."""

FAMILY_READ: dict[str, frozenset[str]] = {
    "qwen3_next": frozenset({*GDN_FIELDS, "full_attention_interval"}),
    "deepseek_v32": frozenset(SPARSE_FIELDS) | {"index_topk"},
    "afmoe": frozenset({"global_attn_every_n_layers"}),
    "dbrx": frozenset({"attn_config"}),
    "llama4_text": frozenset({"attention_chunk_size"}), "llama4": frozenset({"attention_chunk_size"}),
    # NOTE: FalconAttention's K/V heads (heads._falcon_kv_heads); the parts of a family's class that a
    # config switches (attncli.models.parts: SeedOss's o_proj bias, Glm4Moe's qk-norm)
    "falcon": frozenset({"new_decoder_architecture", "num_kv_heads", "n_head_kv"}),
    # NOTE: DeepSeek-V4's attention sizes (attncli/kinds/dsv4/sizes.py reads them as DeepseekV4Config does)
    "deepseek_v4": frozenset({"compress_ratios", "compress_rates", "compress_rate_csa", "compress_rate_hca",
                              "o_groups", "o_lora_rank", "q_lora_rank", *SPARSE_FIELDS}),
    "seed_oss": frozenset({"attention_out_bias"}),
    # NOTE: Qwen3.5 (configuration_qwen3_5.py, _qwen3_5_moe.py): Qwen3-Next's schedule and Gated DeltaNet sizes;
    # attn_output_gate (which Qwen3_5TextConfig does not define) is read to refuse false (kindconfig.py);
    # mamba_ssm_dtype, the recurrent state's dtype vLLM keeps (attncli.models.kindconfig.ssm_dtype)
    **dict.fromkeys(("qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text"),
                    frozenset({*GDN_FIELDS, "full_attention_interval", "attn_output_gate", "mamba_ssm_dtype"})),
    # NOTE: GLM-5 (configuration_glm_moe_dsa.py): the indexer's sizes and which layers run one (glmdsa.py)
    "glm_moe_dsa": frozenset({*SPARSE_FIELDS, "indexer_types", "index_topk_pattern", "index_topk_freq",
                              "index_skip_topk_offset"}),
    "glm4_moe": frozenset({"use_qk_norm"}),
    # NOTE: Nemotron-H's layout and Mamba2 sizes (attncli/models/hybrid.py, attncli/kinds/mamba2/sizes.py)
    "nemotron_h": frozenset({"hybrid_override_pattern", "layers_block_type", "mamba_num_heads", "mamba_head_dim",
                             "ssm_state_size", "n_groups", "mamba_n_groups", "conv_kernel", "mamba_d_conv",
                             "chunk_size", "mamba_chunk_size", "use_bias", "use_conv_bias", "mamba_conv_bias",
                             "mamba_ssm_cache_dtype"}),
    # NOTE: each layer type's own sizes and the layers reading another's cache (attncli/models/geometry.py)
    **geometry.READ,
    # NOTE: Kimi Linear's KDA layers and schedule (attncli/kinds/kda/sizes.py reads them as KimiLinearConfig does)
    "kimi_linear": frozenset({"linear_attn_config", "linear_head_dim", "linear_num_heads", "linear_conv_kernel_dim"}),
}
"""Fields only these families' readers read (:mod:`attncli.models.schedule`, :mod:`attncli.models.kindconfig`)."""


def read_fields(cfg: Mapping[str, Any], family: str | None) -> set[str]:
    """The fields of ``cfg`` that ``family``'s reader reads."""
    fam = family or ""
    read = {k for k in ALWAYS_READ if k in cfg}
    for keys in SIZE_GROUPS:
        first = next((k for k in keys if cfg.get(k) is not None), None)
        read |= {k for k in keys if k in cfg and (cfg[k] is None or k == first or (
            first is not None and cfg[k] == cfg[first] and type(cfg[k]) is type(cfg[first])))}
    mla = cfg.get("kv_lora_rank") is not None
    read |= {k for k in MLA_FIELDS if k in cfg and (mla or cfg[k] is None)}
    if mla and cfg.get("qk_head_dim") == _sum(cfg, "qk_nope_head_dim", "qk_rope_head_dim"):
        read.add("qk_head_dim")  # NOTE: DeepseekV3Config derives it: qk_nope_head_dim + qk_rope_head_dim
    if fam in schedule.GATED_WINDOW:
        read.add("use_sliding_window")
    if fam in QWEN_DEPTH_WINDOW:
        read.add("max_window_layers")
    if schedule.ALIASES.get(fam, fam) in schedule.PATTERN_DEFAULTS:
        read.add("sliding_window_pattern")
    types = cfg.get("layer_types")
    if isinstance(types, list) and schedule.CHUNKED in types:
        read.add("attention_chunk_size")
    read |= {k for k in FAMILY_READ.get(fam, frozenset()) if k in cfg}
    if cfg.get("pruned_heads") in ({}, None) and "pruned_heads" in cfg:
        read.add("pruned_heads")  # NOTE: no head pruned
    read |= {k for k, neutral in NEUTRAL.items() if k in cfg and neutral(cfg)}
    return read


NEUTRAL: dict[str, Any] = {
    "attention_chunk_size": lambda cfg: cfg["attention_chunk_size"] is None,
    "use_sliding_window": lambda cfg: cfg["use_sliding_window"] is False and cfg.get("sliding_window") is None,
    "max_window_layers": lambda cfg: cfg.get("sliding_window") is None and (
        cfg["max_window_layers"] is None or type(cfg["max_window_layers"]) is int),
}
"""Schedule fields other families read that say nothing in this config: no chunk, no window switched off,
where no layer has a window to start."""


def _sum(cfg: Mapping[str, Any], *keys: str) -> int | None:
    values = [cfg.get(k) for k in keys]
    return sum(v for v in values if isinstance(v, int)) if all(isinstance(v, int) for v in values) else None


def dbrx_kv_heads(cfg: Mapping[str, Any], prefix: str, where: str) -> tuple[int, str]:
    """DBRX's key/value heads: ``attn_config.kv_n_heads`` (DbrxAttention: ``num_key_value_heads =
    attn_config.kv_n_heads``), DbrxAttentionConfig's default 1 when absent."""
    sub = cfg.get("attn_config")
    if sub is None:
        sub = {}
    if not isinstance(sub, dict):
        raise SpecError("--config", f"{where}attn_config must be a JSON object")
    if "kv_n_heads" not in sub:
        kv, src = 1, "default: transformers' DbrxAttentionConfig kv_n_heads (1)"
    else:
        kv, src = size(sub, "kv_n_heads", f"{where}attn_config."), f"{prefix}attn_config.kv_n_heads"
    top = cfg.get("num_key_value_heads")
    if top is not None and top != kv:
        raise SpecError("--config", f"{where}num_key_value_heads {top} disagrees with attn_config.kv_n_heads {kv} "
                                    "(transformers' DbrxAttention reads attn_config)")
    return kv, src
