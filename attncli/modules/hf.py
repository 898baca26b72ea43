"""Hugging Face ``transformers`` attention classes, built and called the way their model does.

``--module transformers.models.llama.modeling_llama:LlamaAttention`` names a class whose
constructor takes a model config, not ``(dim, heads)``. :func:`is_hf_attention` recognises such
a class; :func:`build_hf_attention` finds the model's own config class (``LlamaConfig`` for
``modeling_llama``), fills it from attncli's settings (``hidden_size``, ``num_attention_heads``,
``num_key_value_heads``, ``head_dim``, ``sliding_window``, the bias switch,
``_attn_implementation``) and constructs the layer as the model does (``layer_idx=0``,
``has_relative_attention_bias`` for T5's first layer) on the given device, meta included.
:class:`HfLayer` then calls it as its model calls it: hidden states (B, L, E), the model's own
rotary ``position_embeddings`` (Llama, Mistral, Qwen2), the attention mask made by the model's
own mask function (a 4-D additive mask for eager attention), and takes the output tensor out of
the model's return tuple.

Verified families: Llama, Mistral, Qwen2, GPT-2, BERT (``BertSelfAttention``: no W_O, which
sits in ``BertSelfOutput``), T5 (encoder self-attention), DeepSeek-V3's multi-head latent
attention (``DeepseekV3Attention``: a config with ``kv_lora_rank`` gets the spec's MLA sizes,
:func:`_mla_kwargs`, and :attr:`HfSizes.mla` says what was built), Phi-3 (its fused ``qkv_proj``
split by the widths of its slices, :func:`split_fused`) and Gemma 3 (its rotary embedding called
with layer 0's type). Other classes that take a config are tried the same way and say so in ``notes``.

``transformers`` (5.24 and 5.25: pyproject's ``hf`` extra) is an optional extra
(``pip install 'attncli[hf]'``) imported only inside the functions; without it every entry point
raises ``SpecError("--module", ...)``.
"""

from __future__ import annotations

import inspect
import sys
import typing
from dataclasses import dataclass
from typing import Any

from attncli.models.schedule import CHUNKED, FULL, GATED_WINDOW, SLIDING
from attncli.modules.hfcall import (
    HfLayer,
    HfSizes,
    _fused_projections,
    _rotary_class,
    _rotary_layer_type,
    cache_keyword,
    extra_params,
    layer_kind,
    mask_function,
    transformers_logs,
)
from attncli.modules.hfconfig import check_reached, mla_kwargs, model_kwargs, setting
from attncli.spec import SpecError

FLAG = "--module"
INSTALL = "pip install 'attncli[hf]'"
ATTN_IMPLEMENTATIONS = ("eager", "sdpa")


@dataclass(frozen=True)
class Family:
    """What one model family's attention class can express and how its model calls it.

    ``call``: ``rope`` (hidden states, rotary ``position_embeddings``, ``attention_mask``),
    ``gpt2``/``bert`` (hidden states, ``attention_mask``) or ``t5`` (hidden states, ``mask``).
    ``bias`` is the key that switches the projection biases, or a fixed bool.
    """

    call: str
    gqa: bool
    head_dim: bool
    window: bool
    bias: str | bool
    out_proj: bool = True
    causal: bool = True
    bias_note: str = ""


FAMILIES: dict[str, Family] = {
    "llama": Family("rope", gqa=True, head_dim=True, window=False, bias="attention_bias"),
    "mistral": Family("rope", gqa=True, head_dim=True, window=True, bias=False),
    "qwen2": Family("rope", gqa=True, head_dim=True, window=True, bias=True,
                    bias_note="Qwen2Attention: q/k/v projections have biases, o_proj has none"),
    "gpt2": Family("gpt2", gqa=False, head_dim=False, window=False, bias=True),
    "bert": Family("bert", gqa=False, head_dim=False, window=False, bias=True, out_proj=False, causal=False),
    "t5": Family("t5", gqa=False, head_dim=True, window=False, bias=False, causal=False),
}


MLA_FIELDS: tuple[str, ...] = ("kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
"""Multi-head latent attention's sizes, named as transformers' DeepSeek configs (and ``AttnSpec``) name them."""


VERIFIED: frozenset[str] = frozenset({"deepseek_v3", "phi3", "gemma3_text", "gpt_oss", "llama4_text", "qwen3_next",
                                      "cohere2", "qwen3_5_text"})
"""Families outside :data:`FAMILIES`, built and called like Llama, that the tests check against their
own models and the closed form (``tests/models/test_hf_layers.py``): DeepSeek-V3 (multi-head latent
attention), Phi-3 (a fused ``qkv_proj``, :func:`split_fused`), Gemma 3 (a rotary table per layer
type), gpt-oss (sinks; sliding and full layers), Llama 4 (chunked and NoPE layers), Qwen3-Next (its
gated full-attention layers), Cohere 2 (its sliding pattern) and Qwen3.5 (its gated layers, built from
its text config: tests/models/test_qwen35_glm5.py)."""


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise SpecError(FLAG, f"Hugging Face attention classes need transformers: {INSTALL}") from None
    return transformers


def _config_base() -> type:
    base: type = _transformers().PretrainedConfig
    return base


def _passes_through(fn: Any) -> bool:
    """Whether ``fn`` is ``(self, *args, **kwargs)``: a wrapper that says nothing of what it takes."""
    try:
        params = list(inspect.signature(fn).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    return bool(params) and all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def own_init(cls: type) -> Any:
    """``cls.__init__`` as its source writes it, unwrapped from the decorators that replace it.

    ``functools.wraps`` wrappers are followed through ``__wrapped__``. transformers 5.25 decorates
    its attention classes with ``@use_kernelized_func(...)``, which (with the ``kernels`` package
    that 5.25 depends on) replaces ``__init__`` by ``new_init(self, *args, **kwargs)`` calling the
    original it keeps in its closure, without ``functools.wraps``: such a pass-through wrapper is
    followed to the one ``__init__`` in its closure.
    """
    fn: Any = cls.__init__  # type: ignore[misc]
    for _ in range(8):  # NOTE: bounded; decorators nest a few deep at most
        inner = getattr(fn, "__wrapped__", None)
        if inner is None and _passes_through(fn):
            cells = []
            for cell in getattr(fn, "__closure__", None) or ():
                try:
                    cells.append(cell.cell_contents)
                except ValueError:  # NOTE: an empty cell
                    continue
            inits = [c for c in cells if inspect.isfunction(c) and c.__name__ == "__init__"]
            inner = inits[0] if len(inits) == 1 else None
        if inner is None:
            return fn
        fn = inner
    return fn


def init_parameters(cls: type) -> list[inspect.Parameter]:
    """The parameters of the class's own constructor (:func:`own_init`), ``self`` left out."""
    params = list(inspect.signature(own_init(cls)).parameters.values())
    return params[1:] if params and params[0].name == "self" else params


def is_hf_attention(cls: Any) -> bool:
    """Whether ``cls`` is a torch module class whose constructor takes a ``PretrainedConfig``.

    A class from the ``transformers`` package whose first parameter is named ``config`` also
    counts (many leave it unannotated). False, without importing transformers, for classes
    that cannot be one (not a class, or a first parameter that is not ``config``-like).
    """
    if not isinstance(cls, type):
        return False
    try:
        params = init_parameters(cls)
    except (TypeError, ValueError):
        return False
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        return False
    first = params[0]
    from_transformers = cls.__module__.startswith("transformers.")
    if not from_transformers and first.name != "config" and first.annotation is first.empty:
        return False
    try:
        base = _config_base()
    except SpecError:
        return False
    import torch

    if not issubclass(cls, torch.nn.Module):
        return False
    annotation = _annotation(cls, first.name)
    if isinstance(annotation, type) and issubclass(annotation, base):
        return True
    return from_transformers and first.name == "config"


def _annotation(cls: type, name: str) -> Any:
    try:
        return typing.get_type_hints(own_init(cls)).get(name)
    except Exception:  # NOTE: unresolvable string annotations in third-party code
        return None


def config_class(cls: type) -> type:
    """The model's own config class: the annotation of ``config``, else ``<Model>Config`` in its module."""
    base = _config_base()
    annotation = _annotation(cls, "config")
    if isinstance(annotation, type) and issubclass(annotation, base) and annotation is not base:
        # NOTE: Qwen3_5Attention annotates the multimodal Qwen3_5Config and is built from its text_config
        subs = getattr(annotation, "sub_configs", None) or {}
        text = subs.get("text_config") if isinstance(subs, dict) else None
        return text if isinstance(text, type) and issubclass(text, base) else annotation
    module = sys.modules.get(cls.__module__)
    package = cls.__module__.rsplit(".", 1)[0]
    model_type = package.rsplit(".", 1)[-1]
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, base) and v is not base] if module else []
    exact = [c for c in found if getattr(c, "model_type", None) == model_type]
    same_package = [c for c in found if c.__module__.startswith(package + ".")]
    for group in (exact, same_package, found):
        if len(group) >= 1:
            return group[0]
    raise SpecError(FLAG, f"cannot find the config class of {cls.__name__} in {cls.__module__}")


def _family(config_cls: type) -> str:
    return str(getattr(config_cls, "model_type", "") or "")


def is_mla_config(config_cls: type) -> bool:
    """Whether the config class describes multi-head latent attention (it has ``kv_lora_rank``)."""
    return hasattr(config_cls, "kv_lora_rank")


def _config_kwargs(cls: type, family: str, fam: Family | None, settings: Any) -> tuple[dict[str, Any], list[str]]:
    """The config keywords for ``settings``; SpecError for what the class cannot express."""
    if getattr(settings, "kv_lora_rank", None) is not None:
        raise SpecError("--kv-lora-rank", f"{cls.__name__} is not multi-head latent attention (its config "
                                          "has no kv_lora_rank)")
    dim, heads = int(settings.dim), int(settings.heads)
    kv_heads = int(setting(settings, "kv_heads", heads))
    head_dim = setting(settings, "head_dim")
    window = setting(settings, "window")
    bias = setting(settings, "bias")
    name = cls.__name__
    notes: list[str] = []
    kw: dict[str, Any] = {"hidden_size": dim, "num_attention_heads": heads, "num_hidden_layers": 1,
                          "attention_dropout": 0.0}
    if fam is None or fam.gqa:
        kw["num_key_value_heads"] = kv_heads
    elif kv_heads != heads:
        raise SpecError("--kv-heads", f"{name} has one KV head per query head: --kv-heads must equal --heads")
    if head_dim is not None:
        if fam is not None and not fam.head_dim and head_dim * heads != dim:
            raise SpecError("--head-dim", f"{name} fixes head_dim = dim/heads = {dim / heads:g}")
        kw["head_dim"] = int(head_dim)
    if window is not None:
        config_cls = config_class(cls)
        if (fam is not None and not fam.window) or not hasattr(config_cls, "sliding_window"):
            raise SpecError("--window", f"{name} has no sliding window ({config_cls.__name__} has no sliding_window)")
        kw["sliding_window"] = int(window)
        if hasattr(config_cls, "layer_types"):
            # NOTE: the model picks each layer's mask by its type: layer 0 must be a sliding one.
            kw["layer_types"] = ["sliding_attention"]
        if family in GATED_WINDOW:
            kw.update(use_sliding_window=True, max_window_layers=0)
    elif fam is not None and fam.window:
        kw["sliding_window"] = None
    if fam is None or isinstance(fam.bias, str):
        if bias is not None:
            kw["attention_bias"] = bool(bias)
    elif bias is not None and bool(bias) != fam.bias:
        notes.append(f"{name} always has {'biases' if fam.bias else 'no biases'}; the bias setting is ignored")
    if fam is not None and fam.bias_note:
        notes.append(fam.bias_note)
    if family == "t5":
        kw.update(is_decoder=False, is_encoder_decoder=False, dropout_rate=0.0)
    if family in ("gpt2",):
        kw.update(attn_pdrop=0.0, resid_pdrop=0.0, embd_pdrop=0.0)
    if family == "bert":
        kw.update(attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0)
    return kw, notes


def _construct(cls: type, config: Any, family: str, layer_idx: int = 0) -> Any:
    """The layer built as its model builds layer ``layer_idx``."""
    if family == "t5":
        # NOTE: T5Stack gives only the first layer the relative position bias table
        # (has_relative_attention_bias=bool(i == 0)).
        return cls(config, has_relative_attention_bias=layer_idx == 0, layer_idx=layer_idx)
    if family == "bert":
        return cls(config)
    params = {p.name for p in init_parameters(cls)}
    return cls(config, layer_idx=layer_idx) if "layer_idx" in params else cls(config)


def build_hf_attention(cls: type, settings: Any, device: Any = "meta", attn_implementation: str = "eager") -> HfLayer:
    """Build ``cls`` from attncli's settings as its model builds the layer, on ``device``.

    ``settings`` is anything with ``dim`` and ``heads`` and optionally ``kv_heads``,
    ``head_dim``, ``window``, ``bias``, ``cache`` (an ``AttnSpec`` or a
    :class:`attncli.models.configs.LayerSettings`), and ``model_config`` (the model's config.json:
    the config is built from it) with ``layer`` (the ``layer_idx`` to build; 0 by default).
    ``attn_implementation`` is transformers' ``_attn_implementation``: ``eager`` (explicit matmuls,
    which every counter sees) or ``sdpa``.
    """
    import torch

    _transformers()
    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise SpecError(FLAG, f"attention implementation {attn_implementation!r}: choose from "
                              f"{', '.join(ATTN_IMPLEMENTATIONS)}")
    if not is_hf_attention(cls):
        raise SpecError(FLAG, f"{getattr(cls, '__name__', cls)!r} does not take a transformers config")
    config_cls = config_class(cls)
    family = _family(config_cls)
    fam = FAMILIES.get(family)
    if int(setting(settings, "cache", 0)) > 0:
        raise SpecError("--cache", f"{cls.__name__}: counting with past tokens in a KV cache is not supported for "
                                   "Hugging Face classes")
    mla = is_mla_config(config_cls)
    model_config = getattr(settings, "model_config", None)
    layer_idx = int(setting(settings, "layer", 0))
    if model_config is not None:
        kw = model_kwargs(cls, config_cls, family, model_config, settings, mla)
        notes: list[str] = []
    else:
        kw, notes = mla_kwargs(cls, config_cls, settings) if mla else _config_kwargs(cls, family, fam, settings)
    if fam is None and family not in VERIFIED:
        notes.append(f"{cls.__name__}: family {family or '?'} is not one attncli has verified; "
                     "built and called like Llama")
    try:
        with transformers_logs() as said:
            config = config_cls(**kw)
        notes += [f"transformers says: {line}" for line in said]
        config._attn_implementation = attn_implementation
        with torch.device(device):
            module = _construct(cls, config, family, layer_idx)
            rotary_cls = _rotary_class(cls) if fam is None or fam.call == "rope" else None
            rotary = rotary_cls(config) if rotary_cls is not None else None
    except SpecError:
        raise
    except Exception as exc:  # NOTE: third-party constructors raise anything
        raise SpecError(FLAG, f"{cls.__name__}({config_cls.__name__}) failed: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())}") from None
    call_kind = fam.call if fam is not None else ("rope" if rotary is not None else "gpt2")
    causal = fam.causal if fam is not None else True
    layer_type, window, chunk, rope = layer_kind(cls, config, layer_idx)
    if layer_type not in (FULL, SLIDING, CHUNKED) and model_config is None:
        # NOTE: from flags, an attention class whose config makes layer 0 another kind (Qwen3-Next: linear)
        # is built as the model builds its attention layers: full.
        config.layer_types = [FULL] * len(config.layer_types)
        layer_type, window, chunk, rope = layer_kind(cls, config, layer_idx)
        notes.append(f"{cls.__name__} built as a full-attention layer ({config_cls.__name__}'s default layer 0 is "
                     "another kind of layer)")
    if layer_type not in (FULL, SLIDING, CHUNKED):
        raise SpecError("--layer" if model_config is not None else FLAG,
                        f"layer {layer_idx} of the model is {layer_type}; {cls.__name__} is not that layer's class")
    mask_fn = mask_function(layer_type, causal)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    # NOTE: BERT's W_O sits in BertSelfOutput: BertSelfAttention lacks it, BertAttention (self + output) has it.
    out_proj = fam is None or fam.out_proj or not cls.__name__.endswith("SelfAttention")
    mla_sizes = {f: getattr(config, f) for f in MLA_FIELDS} if mla else None
    if mla:
        head_dim = int(config.qk_nope_head_dim + config.qk_rope_head_dim)
        notes.append(f"{cls.__name__} expands every latent through kv_b_proj into per-head keys and values: "
                     "the naive form of multi-head latent attention")
        notes.append(f"rope_interleave {getattr(config, 'rope_interleave', None)} as {config_cls.__name__} holds it "
                     "(the layout of the RoPE features: no multiply-adds)")
    heads = int(config.num_attention_heads)
    q_width = getattr(getattr(module, "q_proj", None), "out_features", None)
    gated = not mla and q_width == 2 * heads * head_dim
    bias_setting = getattr(config, "attention_bias", None)
    sizes = HfSizes(dim=int(config.hidden_size), heads=heads, kv_heads=kv_heads,
                    head_dim=head_dim, out_proj=out_proj, window=window, causal=causal, mla=mla_sizes,
                    bias=None if bias_setting is None else bool(bias_setting), chunk=chunk, gated=gated,
                    extra_params=extra_params(module, heads, standard=not mla and not gated), layer_type=layer_type)
    where = f"layer {layer_idx}" if model_config is not None else "the layer it builds"
    check_reached(cls, module, sizes, settings, where)
    if model_config is not None:
        what = {SLIDING: f"sliding, window {window}", CHUNKED: f"chunked, chunk {chunk}", FULL: "full"}[layer_type]
        notes.append(f"{cls.__name__} built from the model's config as layer {layer_idx} ({what}"
                     f"{'' if rope else ', NoPE: no rotary embedding'}), with the mask its model makes for it "
                     f"({mask_fn.__name__})")
    elif window is not None:
        notes.append(f"sliding window {window}: a query sees keys q-{window} < k <= q (transformers' convention, "
                     f"{mask_fn.__name__})")
    elif chunk is not None:
        notes.append(f"chunked attention, chunk {chunk} (the config's attention_chunk_size; {mask_fn.__name__})")
    if gated:
        notes.append(f"{cls.__name__}.q_proj is 2*H*d wide: a query and a sigmoid output gate per head")
    notes += [why for _, _, why in sizes.extra_params]
    if not out_proj:
        notes.append(f"{cls.__name__} has no output projection W_O (it sits in the model's next block)")
    rotary_type = _rotary_layer_type(rotary, config, layer_idx)
    fused = _fused_projections(module, sizes.heads, sizes.kv_heads, sizes.head_dim) if not mla else ()
    for name, parts in fused:
        notes.append(f"{cls.__name__}.{name} is q, k and v in one matmul: its count is split by the slices of "
                     f"its output, " + ", ".join(f"{st.removesuffix('_proj')} {n}" for st, n in parts))
    return HfLayer(module=module.eval(), config=config, family=family, call_kind=call_kind, sizes=sizes,
                   rotary=rotary, mask_fn=mask_fn, notes=tuple(notes), mask_cache_keyword=cache_keyword(mask_fn),
                   rotary_layer_type=rotary_type, fused=fused, layer_idx=layer_idx, layer_type=layer_type, rope=rope)
