"""The truth guard: attncli never answers for a different layer.

:func:`attncli.models.configs.read_hf_config` calls :func:`check` on the (text) config before it reads
a size. A ``config.json`` field that changes the attention layer's cost in a way attncli does
not model (:data:`GUARDED`, :data:`FAMILY_GUARDS`, a ``layer_types`` entry other than
:data:`MODELLED_LAYER_TYPES`) is refused with one ``--config`` line naming the field and what it
means, but only when its value changes the layer: ``attention_chunk_size: null`` or
``num_kv_shared_layers: 0`` are fine. A family whose transformers config class gives such a
field a non-neutral default (:data:`FAMILY_DEFAULTS`) is refused when the field is absent too.

:func:`refuse_unread` makes the guard an allowlist: every field of a config is read by the family's
reader (:func:`attncli.models.families.read_fields`), or known not to change the attention layer
(:mod:`attncli.models.allowlist`, a reason per group), or the config is refused naming it, unless
the user passes it with ``--ignore-field``. :func:`notes` names what attncli reads but does not
count (:data:`NOTED`, :data:`FAMILY_NOTES`) and a family it has not verified
(:data:`VERIFIED_FAMILIES`). Field names and meanings are transformers
5.24's (``models/*/configuration_*.py`` and ``modeling_*.py``). Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from attncli.spec import SpecError

# ------------------------------------------------------------------------------ families
# NOTE: architectures whose config.json does not state the attention bias. Read from each
# model's modeling_*.py in transformers: GPT-2 Conv1D, BERT/RoBERTa/ViT nn.Linear default
# bias=True (ViT's qkv_bias defaults to True); Llama/Mistral/Mixtral/Gemma/T5 bias=False; Qwen2
# q/k/v bias=True but o_proj bias=False (mapped to True: see README "Presets and configs").
ARCH_BIAS: dict[str, bool] = {
    "gpt2": True, "bert": True, "roberta": True, "vit": True, "distilbert": True, "gpt_neox": True,
    "opt": True, "bloom": True, "gptj": False, "llama": False, "mistral": False, "mixtral": False,
    "gemma": False, "gemma2": False, "t5": False, "qwen2": True,
    # NOTE: transformers' DeepseekV2Config/DeepseekV3Config default attention_bias to False.
    "deepseek_v2": False, "deepseek_v3": False, "kimi_k2": False,
    # NOTE: transformers 5.24's config classes default attention_bias to these (Gemma3TextConfig,
    # Llama4TextConfig, Qwen3Config, Qwen3MoeConfig, Qwen3NextConfig, Cohere2Config, Olmo2Config:
    # False; GptOssConfig: True); Phi-3's attention has no biases (Phi3Attention: bias=False).
    "gemma3_text": False, "gemma3": False, "llama4_text": False, "llama4": False, "qwen3": False,
    "qwen3_moe": False, "qwen3_next": False, "cohere2": False, "olmo2": False, "gpt_oss": True, "phi3": False,
    "deepseek_v32": False,
    # NOTE: configs that do not state attention_bias get the class's own (transformers 5.25): Ministral3Attention,
    # Exaone4Attention and MiniMaxM2Attention build bias=False; FalconConfig.bias defaults to False;
    # Glm4Config and SeedOssConfig default attention_bias to True (their o_proj: attncli.models.parts),
    # Glm4MoeConfig to False.
    "ministral3": False, "exaone4": False, "minimax_m2": False, "falcon": False, "glm4": True, "seed_oss": True,
    "glm4_moe": False,
    # NOTE: AfmoeConfig attention_bias False; DbrxAttention's Wqkv and out_proj have bias=False.
    "afmoe": False, "dbrx": False,
    # NOTE: NemotronHAttention builds q/k/v/o with bias=False (modeling_nemotron_h.py)
    "nemotron_h": False,
    # NOTE: Gemma4TextConfig, Gemma3nTextConfig and MiMoV2FlashConfig default attention_bias to False
    "gemma4_text": False, "gemma3n_text": False, "mimo_v2_flash": False,
    # NOTE: KimiLinearConfig attention_bias False (the MLA layers' q_a/kv_a/o_proj; KDA has no biases)
    "kimi_linear": False,
    # NOTE: Qwen3_5TextConfig / Qwen3_5MoeTextConfig and GlmMoeDsaConfig default attention_bias to False.
    **dict.fromkeys(("qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text", "glm_moe_dsa"), False),
}
DECODERS = frozenset({"gpt2", "llama", "mistral", "mixtral", "qwen2", "gemma", "gemma2", "gpt_neox", "gptj",
                      "opt", "bloom", "falcon", "phi", "phi3", "qwen3", "gpt_bigcode", "deepseek_v2", "deepseek_v3",
                      "kimi_k2", "gemma3_text", "gemma3", "gpt_oss", "llama4", "llama4_text", "qwen2_moe",
                      "qwen3_moe", "olmo2", "olmo3", "cohere2", "afmoe", "dbrx", "deepseek_v4", "gemma4", "gemma4_text",
                      "gemma3n", "gemma3n_text", "mimo_v2_flash",
                      "nemotron_h", "kimi_linear",
                      "qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text", "glm_moe_dsa"})
ENCODERS = frozenset({"bert", "roberta", "vit", "distilbert", "deit", "xlm-roberta", "electra"})


# ------------------------------------------------------------------------------ value tests
Active = Callable[[Any, Mapping[str, Any]], bool]
"""``active(value, cfg)``: True when ``value`` of the field changes the layer."""


def _set(value: Any, cfg: Mapping[str, Any]) -> bool:
    """Anything but null, 0, false or empty."""
    return value is not None and value is not False and value != 0 and value not in ("", [], {})


def _any_set(value: Any, cfg: Mapping[str, Any]) -> bool:
    """A per-layer list with one non-neutral entry, or one non-neutral value."""
    return any(_set(v, cfg) for v in value) if isinstance(value, list) else _set(value, cfg)


def _not_one(value: Any, cfg: Mapping[str, Any]) -> bool:
    """An interval or period other than 1 (1: every layer is a full-attention layer)."""
    return value is not None and value != 1


def _has_local(value: Any, cfg: Mapping[str, Any]) -> bool:
    """GPT-Neo's ``attention_types`` (``[[["global", "local"], 12]]``) or ``attention_layers``
    with a ``local`` entry anywhere."""
    if isinstance(value, str):
        return value == "local"
    return isinstance(value, list | tuple) and any(_has_local(v, cfg) for v in value)


def _bidirectional(value: Any, cfg: Mapping[str, Any]) -> bool:
    """Gemma 3's ``true`` or Gemma 4's ``"all"`` (``"vision"``: only image tokens see both ways)."""
    return value is True or value == "all"


def _local_window(value: Any, cfg: Mapping[str, Any]) -> bool:
    """ModernBERT's ``local_attention`` matters unless every layer is global."""
    return _set(value, cfg) and value != -1 and cfg.get("global_attn_every_n_layers") != 1


def _not_all_attention(value: Any, cfg: Mapping[str, Any]) -> bool:
    """A per-layer block list with an entry that is not (full) attention."""
    if not isinstance(value, list):
        return _set(value, cfg)
    return any(v not in ("attention", "full_attention") for v in value)


def _attention_type(value: Any, cfg: Mapping[str, Any]) -> bool:
    return value is not None and value not in ("original_full", "full")


def _relative(value: Any, cfg: Mapping[str, Any]) -> bool:
    return value in ("relative_key", "relative_key_query")


# ------------------------------------------------------------------------------ refused
GUARDED: tuple[tuple[str, str, Active], ...] = (
    ("num_kv_shared_layers", "Gemma-3n KV sharing across layers: the last layers reuse earlier layers' keys "
                             "and values", _set),
    ("full_attention_interval", "Qwen3-Next: Gated DeltaNet linear attention on all but every n-th layer",
     _not_one),
    ("linear_num_key_heads", "Qwen3-Next Gated DeltaNet key heads", _set),
    ("linear_num_value_heads", "Qwen3-Next Gated DeltaNet value heads", _set),
    ("linear_key_head_dim", "Qwen3-Next Gated DeltaNet key head size", _set),
    ("linear_value_head_dim", "Qwen3-Next Gated DeltaNet value head size", _set),
    ("linear_conv_kernel_dim", "Qwen3-Next Gated DeltaNet causal convolution", _set),
    ("index_topk", "DeepSeek-V3.2 sparse attention: each query attends to the top-k keys its indexer picks",
     _set),
    ("index_n_heads", "DeepSeek-V3.2 lightning indexer heads", _set),
    ("index_head_dim", "DeepSeek-V3.2 lightning indexer head size", _set),
    ("attention_window", "Longformer sliding-window plus global attention", _any_set),
    ("attention_types", "GPT-Neo local attention layers", _has_local),
    ("attention_layers", "GPT-Neo local attention layers", _has_local),
    ("attention_type", "an attention variant (BigBird block_sparse, Funnel relative_shift, Informer prob, "
                       "TimeSformer divided_space_time)", _attention_type),
    ("global_attn_every_n_layers", "ModernBERT: bidirectional local attention between its global layers",
     _not_one),
    ("local_attention", "ModernBERT bidirectional local attention window", _local_window),
    ("use_bidirectional_attention", "bidirectional (sliding-window) attention in a decoder family: "
                                    "EmbeddingGemma, Gemma 4", _bidirectional),
    ("position_embedding_type", "BERT relative position scores: a query-by-distance-embedding product per "
                                "(query, key) pair", _relative),
    ("attn_layer_period", "Jamba: Mamba layers between the attention layers", _not_one),
    ("block_types", "RecurrentGemma: recurrent blocks between local-attention blocks", _not_all_attention),
    ("attention_window_size", "RecurrentGemma local attention window", _set),
    ("hybrid_override_pattern", "Nemotron-H: Mamba, MLP and attention layers in a pattern", _set),
    ("layers_block_type", "a hybrid stack (Mamba or MLP blocks beside the attention layers)", _not_all_attention),
)
"""(field, what it means, when its value changes the layer): refused by :func:`check`."""

FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3n_text": {"num_kv_shared_layers": 15},
    "qwen3_next": {"full_attention_interval": 4},
    "deepseek_v32": {"index_topk": 2048}, "glm_moe_dsa": {"index_topk": 2048},
    "mistral_large4_text": {"index_topk": 2048},
    "longformer": {"attention_window": 512},
    "gpt_neo": {"attention_types": [[["global", "local"], 12]]},
    "big_bird": {"attention_type": "block_sparse"},
    "bigbird_pegasus": {"attention_type": "block_sparse"},
    "modernbert": {"global_attn_every_n_layers": 3},
    "jamba": {"attn_layer_period": 8}, "zamba": {"attn_layer_period": 6},
    "recurrent_gemma": {"block_types": ["recurrent", "recurrent", "attention"]},
}
"""transformers' default for a guarded field its config class sets when ``config.json`` omits it."""

FAMILY_GUARDS: dict[str, str] = {
    # NOTE: read in transformers 5.25's modeling files; their configs carry no field that says so.
    "beam": "BeamAttention gates its output: a gate_proj E x H*d and one gate bias per head",
    "minicpm5_moe": "its attention gates the queries' output with a q_gate_proj beside q_proj",
    "t5gemma2_decoder": "T5Gemma2MergedAttention: self- and cross-attention merged in one softmax",
    "canary_decoder": "the decoder of an encoder-decoder model, whose config says is_encoder_decoder: causal "
                      "self-attention beside cross-attention",
}
"""Families refused whatever their fields say, with why."""

MODELLED_LAYER_TYPES = ("full_attention", "sliding_attention", "chunked_attention")
"""The ``layer_types`` values attncli models (full causal attention, a causal sliding window,
Llama 4's chunked attention)."""

LAYER_TYPE_MEANINGS: dict[str, str] = {
    "linear_attention": "linear attention or a recurrent state (Gated DeltaNet, Mamba)",
    "indexed_attention": "sparse attention over the keys an indexer picks (DeepSeek-V3.2)",
    "window_attention": "non-overlapping windows",
    "compressed_sparse_attention": "DeepSeek-V4 compressed sparse attention",
    "heavily_compressed_attention": "DeepSeek-V4 heavily compressed attention",
    "conv": "a convolution block",
    "hybrid": "attention combined with a recurrent state",
    "hybrid_sliding": "sliding attention combined with a recurrent state",
    "mamba": "a Mamba block", "moe": "an MLP block without attention",
    "attention": "transformers' legacy name in hybrid schedules",
}
"""What the refused ``layer_types`` values transformers knows mean (``configuration_utils``)."""


MODELLED_IN_FAMILY: dict[str, frozenset[str]] = {
    # Qwen3-Next: Gated DeltaNet layers (attncli/kinds/gdn/kind.py) between gated full-attention layers
    # (attncli/kinds/gated/kind.py), as transformers' Qwen3NextConfig lays them out
    "qwen3_next": frozenset({"full_attention_interval", "linear_num_key_heads", "linear_num_value_heads",
                             "linear_key_head_dim", "linear_value_head_dim", "linear_conv_kernel_dim",
                             "linear_attention"}),
    # DeepSeek-V3.2: MLA with the lightning indexer on every layer (attncli/kinds/sparse_mla/kind.py)
    "deepseek_v32": frozenset({"index_topk", "index_n_heads", "index_head_dim", "indexed_attention"}),
    # GLM-5: DeepSeek-V3.2's layer; a layer sharing another's indexer is refused by attncli/models/glmdsa.py
    "glm_moe_dsa": frozenset({"index_topk", "index_n_heads", "index_head_dim", "indexed_attention"}),
    # Qwen3.5 (dense and MoE): Qwen3-Next's Gated DeltaNet and gated full-attention layers (kindconfig.py)
    **dict.fromkeys(("qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text"),
                    frozenset({"full_attention_interval", "linear_num_key_heads", "linear_num_value_heads",
                               "linear_key_head_dim", "linear_value_head_dim", "linear_conv_kernel_dim",
                               "linear_attention"})),
    # AFMoE: sliding layers between every n-th full one (AfmoeConfig.__post_init__), gated attention
    "afmoe": frozenset({"global_attn_every_n_layers"}),
    # DeepSeek-V4: sliding, compressed sparse (the indexer's top-k) and heavily compressed layers
    # (attncli/kinds/dsv4, read from compress_ratios / layer_types; its own fields: DSV4_READ)
    "deepseek_v4": frozenset({"index_topk", "index_n_heads", "index_head_dim", "compressed_sparse_attention",
                              "heavily_compressed_attention"}),
    # Nemotron-H / Nemotron-3: Mamba2 layers (attncli/kinds/mamba2), attention, and MLP/MoE blocks with no token
    # mixer, from hybrid_override_pattern or layers_block_type (attncli/models/hybrid.py)
    "nemotron_h": frozenset({"hybrid_override_pattern", "layers_block_type", "linear_attention", "mlp", "moe",
                             "mamba", "attention"}),
    # Gemma 3n and Gemma 4: the last layers read an earlier layer's KV cache (attncli/models/geometry.py)
    "gemma3n_text": frozenset({"num_kv_shared_layers"}), "gemma4_text": frozenset({"num_kv_shared_layers"}),
    # Kimi Linear: Kimi Delta Attention layers (attncli/kinds/kda) between MLA layers without RoPE, laid out
    # by linear_attn_config (KimiLinearConfig.__post_init__)
    "kimi_linear": frozenset({"linear_conv_kernel_dim", "linear_attention"}),
}
DSV4_READ: tuple[str, ...] = ("compress_ratios", "compress_rates", "compress_rate_csa", "compress_rate_hca",
                              "o_groups", "o_lora_rank", "q_lora_rank", "head_dim", "sliding_window", "layer_types")
"""The fields a ``deepseek_v4`` config's attention is read from (attncli/kinds/dsv4/sizes.py)."""
"""Guarded fields (and ``layer_types`` values) attncli models in these families only: elsewhere the
same field may mean another layer (GLM-5 shares indexers across layers), so it stays refused."""


def _shown(value: Any) -> str:
    return json.dumps(value)[:40]


def check(cfg: Mapping[str, Any], family: str | None, where: str) -> None:
    """Refuse ``cfg`` (one ``--config`` :class:`SpecError`) when it describes a layer attncli does
    not model. ``where`` prefixes field names (``text_config.`` for a nested text model)."""
    defaults = FAMILY_DEFAULTS.get(family or "", {})
    modelled = MODELLED_IN_FAMILY.get(family or "", frozenset())
    if family in ("deepseek_v32", "glm_moe_dsa") and cfg.get("kv_lora_rank") is None:
        modelled = frozenset()  # NOTE: the indexer is modelled over MLA only
    for name, meaning, active in GUARDED:
        if name in modelled:
            continue
        if name in cfg:
            value, shown = cfg[name], f"{where}{name} {_shown(cfg[name])}"
        elif name in defaults:
            value = defaults[name]
            shown = f"{where}{name} (absent: {family}'s default {_shown(value)})"
        else:
            continue
        if active(value, cfg):
            raise SpecError("--config", f"{shown} ({meaning}) is not modelled; attncli would count a "
                                        "different layer")
    layer_types = cfg.get("layer_types")
    if layer_types is not None:
        if not isinstance(layer_types, list) or not layer_types or not all(isinstance(t, str) for t in layer_types):
            raise SpecError("--config", f"{where}layer_types must be a non-empty list of strings")
        for i, kind in enumerate(layer_types):
            if kind not in MODELLED_LAYER_TYPES and kind not in modelled:
                meaning = LAYER_TYPE_MEANINGS.get(kind, "a layer type attncli does not know")
                raise SpecError("--config", f"{where}layer_types[{i}] {_shown(kind)} ({meaning}) is not modelled; "
                                            "attncli would count a different layer")
    if family in FAMILY_GUARDS:
        raise SpecError("--config", f"model_type {family} ({FAMILY_GUARDS[family]}) is not modelled; attncli "
                                    "would count a different layer")


def check_bidirectional_window(window: int | None, causal: bool, encoder: bool, layer_types: Any, where: str) -> None:
    """A sliding window in a layer known to be non-causal (an encoder) reaches both ways; attncli's
    ``--window`` is causal, so such a config is refused, and so is one whose causality attncli cannot tell
    (no ``is_decoder``, no causal-LM architecture, a family it does not know): T5Gemma 2's encoder windows
    reach both ways, a decoder's do not."""
    sliding = window is not None or (isinstance(layer_types, list) and "sliding_attention" in layer_types)
    if sliding and encoder:
        raise SpecError("--config", f"{where}sliding_window in a bidirectional (encoder) model (a window on both "
                                    "sides of each query) is not modelled; attncli would count a different layer")
    if sliding and not causal:
        raise SpecError("--config", f"{where}sliding_window in a model attncli cannot tell is causal (no is_decoder, "
                                    "no ...ForCausalLM architecture, a family it does not know): the window may reach "
                                    "both ways; attncli would count a different layer")


# ------------------------------------------------------------------------------ named, not counted
def schedule_notes(cfg: Mapping[str, Any], family: str | None, window: int | None) -> list[str]:
    """One line when layers alternate between full and sliding attention (layer 0 is described)."""
    layer_types = cfg.get("layer_types")
    first = "sliding" if window is not None else "full"
    if isinstance(layer_types, list) and len(set(layer_types)) > 1:
        counts = ", ".join(f"{layer_types.count(t)} {t}" for t in dict.fromkeys(layer_types))
        return [f"layer_types: {counts}, and layer 0 ({first} attention) is described"]
    if layer_types is None and cfg.get("sliding_window") is not None:
        if family == "gemma2":
            return [f"gemma2 alternates: even layers sliding (window {window}), odd layers full, and layer 0 "
                    f"({first}) is described"]
        if family in ("gemma3_text", "gemma3", "cohere2") and window is not None:
            pattern = cfg.get("sliding_window_pattern", 4 if family == "cohere2" else 6)
            return [f"{family}: layer i is full attention when (i+1) % {pattern} == 0, the others sliding "
                    f"(window {window}), and layer 0 ({first}) is described"]
    return []


NOTED: dict[str, str] = {
    "attn_logit_softcapping": "attention scores soft-capped at {v} (tanh) before the softmax: elementwise, "
                              "no multiply-adds counted",
    "final_logit_softcapping": "final_logit_softcapping {v} caps the LM head's logits, outside the attention "
                               "layer",
    "use_qk_norm": "qk-norm: queries and keys are normalised per head (use_qk_norm): no multiply-adds counted",
    "qk_layernorm": "qk-norm: LayerNorm on queries and keys (qk_layernorm): its weights are not in params, "
                    "no multiply-adds counted",
    "add_cross_attention": "add_cross_attention: each block also has a cross-attention layer, not described",
}
"""Fields present with a non-neutral value that attncli does not count but names in ``notes``."""

NOTED_DEFAULTS: dict[str, dict[str, Any]] = {"gemma2": {"attn_logit_softcapping": 50.0,
                                                        "final_logit_softcapping": 30.0}}
"""transformers' defaults for :data:`NOTED` fields (Gemma2Config soft-caps unless told not to)."""

_QK_NORM_HEAD = ("qk-norm: an RMSNorm on each query and key head (2 x {d} weights, in params, no "
                 "multiply-adds counted)")
FAMILY_NOTES: dict[str, str] = {
    "deepseek_v4": "sinks: one learned logit per head ({h} parameters, in params) joins each softmax, no "
                   "multiply-adds counted",
    "gpt_oss": "sinks: one learned logit per head ({h} parameters, in params) joins each softmax, no "
               "multiply-adds counted",
    "qwen3": _QK_NORM_HEAD, "qwen3_moe": _QK_NORM_HEAD, "gemma3_text": _QK_NORM_HEAD, "gemma3": _QK_NORM_HEAD,
    "olmo2": "qk-norm: an RMSNorm over all query and all key features (H*d + G*d weights, in params, no "
             "multiply-adds counted)",
    "olmo3": "qk-norm: an RMSNorm over all query and all key features (H*d + G*d weights, in params, no "
             "multiply-adds counted)",
    "minimax_m2": "qk-norm: an RMSNorm over all query and all key features (H*d + G*d weights, in params, no "
                  "multiply-adds counted)",
    "exaone4": _QK_NORM_HEAD,
    **dict.fromkeys(("gemma4_text", "gemma3n_text"), _QK_NORM_HEAD + "; v_norm has no weight"),
}
"""What a family's attention layer has that its config does not state ({h}: heads, {d}: head size)."""

VERIFIED_FAMILIES: frozenset[str] = frozenset({
    # known to configs.py before MLA (its ARCH_BIAS, DECODERS and ENCODERS then)
    "gpt2", "bert", "roberta", "vit", "distilbert", "gpt_neox", "opt", "bloom", "gptj", "llama", "mistral",
    "mixtral", "gemma", "gemma2", "t5", "qwen2", "falcon", "phi", "phi3", "qwen3", "gpt_bigcode", "deit",
    "xlm-roberta", "electra",
    # read and checked against the models' published config.json files (tests/data/configs)
    "deepseek_v2", "deepseek_v3", "kimi_k2", "gemma3_text", "gemma3", "gpt_oss", "deepseek_v4",
    "gemma4_text", "gemma3n_text", "mimo_v2_flash", "nemotron_h", "kimi_linear",
    # and against transformers' own modules (tests/models/test_qwen35_glm5.py)
    "qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text", "glm_moe_dsa",
})
"""Families whose config.json attncli reads as transformers builds their layer 0."""

# ------------------------------------------------------------------------------ the allowlist
def refuse_unread(cfg: Mapping[str, Any], family: str | None, where: str, read: Iterable[str],
                  ignore: Iterable[str] = ()) -> list[str]:
    """Refuse ``cfg`` (one ``--config`` line naming the fields) when a field is neither read (``read``,
    :func:`attncli.models.families.read_fields`), nor refused-when-active and inactive (:data:`GUARDED`), nor
    named in :data:`NOTED`, nor known to be harmless (:func:`attncli.models.allowlist.harmless`). The fields
    the user named with ``--ignore-field`` (bare or with ``where``) pass; they are returned, with ``where``."""
    from attncli.models.allowlist import harmless

    known = set(read) | {g[0] for g in GUARDED} | set(NOTED)
    skipped = set(ignore)
    unread = [k for k in cfg if k not in known and harmless(k, family) is None]
    passed = [f"{where}{k}" for k in unread if k in skipped or f"{where}{k}" in skipped]
    refused = sorted(f"{where}{k}" for k in unread if f"{where}{k}" not in passed)
    if refused:
        shown = ", ".join(refused[:3]) + (f" and {len(refused) - 3} more" if len(refused) > 3 else "")
        raise SpecError("--config", f"{shown} (not modelled for {family or 'a config without model_type'}); "
                                    "attncli would count a different layer (--ignore-field NAME passes a field "
                                    "you know to be harmless)")
    return passed


def notes(cfg: Mapping[str, Any], family: str | None, heads: int, head_dim: int | None,
          read: Iterable[str]) -> list[str]:
    """The lines :class:`~attncli.models.configs.LayerSettings` ``notes`` gets from :data:`NOTED`,
    :data:`FAMILY_NOTES`, an unverified family and unknown fields. ``read`` names the fields
    the reader used."""
    out: list[str] = []
    defaults = NOTED_DEFAULTS.get(family or "", {})
    for name, text in NOTED.items():
        value = cfg.get(name, defaults.get(name))
        if _set(value, cfg):
            out.append(text.format(v=value))
    if family in FAMILY_NOTES:
        out.append(FAMILY_NOTES[family].format(h=heads, d=head_dim if head_dim is not None else "d"))
    read = sorted(set(read))
    if family not in VERIFIED_FAMILIES:
        what = f"family {family}" if family else "a config without model_type"
        out.append(f"{what} is not one attncli has verified, it read {', '.join(read)}: check them against "
                   "the model's code")
    return out
