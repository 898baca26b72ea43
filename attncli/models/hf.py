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

``transformers`` (5.0 up to, not including, 5.40: pyproject's ``hf`` extra) is an optional extra
(``pip install 'attncli[hf]'``) imported only inside the functions; without it every entry point
raises ``SpecError("--module", ...)``.
"""

from __future__ import annotations

import inspect
import sys
import typing
from dataclasses import dataclass
from typing import Any

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


VERIFIED: frozenset[str] = frozenset({"deepseek_v3", "phi3", "gemma3_text"})
"""Families outside :data:`FAMILIES`, built and called like Llama, that the tests check against their
own models and the closed form: DeepSeek-V3 (multi-head latent attention), Phi-3 (a fused
``qkv_proj``, :func:`split_fused`) and Gemma 3 (a rotary table per layer type)."""


@dataclass(frozen=True)
class HfSizes:
    """The sizes the built layer really has: E, H, G, d, whether it holds W_O, and W.

    ``mla`` holds the config's multi-head latent attention sizes (:data:`MLA_FIELDS`, ``q_lora_rank``
    ``None`` without a query LoRA) when the class is MLA (``DeepseekV3Attention``), else ``None``;
    ``bias`` is the config's ``attention_bias`` (``None`` when it has none).
    """

    dim: int
    heads: int
    kv_heads: int
    head_dim: int
    out_proj: bool
    window: int | None
    causal: bool
    mla: dict[str, int | None] | None = None
    bias: bool | None = None


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise SpecError(FLAG, f"Hugging Face attention classes need transformers: {INSTALL}") from None
    return transformers


def _config_base() -> type:
    base: type = _transformers().PretrainedConfig
    return base


def is_hf_attention(cls: Any) -> bool:
    """Whether ``cls`` is a torch module class whose constructor takes a ``PretrainedConfig``.

    A class from the ``transformers`` package whose first parameter is named ``config`` also
    counts (many leave it unannotated). False, without importing transformers, for classes
    that cannot be one (not a class, or a first parameter that is not ``config``-like).
    """
    if not isinstance(cls, type):
        return False
    try:
        params = list(inspect.signature(cls).parameters.values())
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
        return typing.get_type_hints(cls.__init__).get(name)  # type: ignore[misc]
    except Exception:  # NOTE: unresolvable string annotations in third-party code
        return None


def config_class(cls: type) -> type:
    """The model's own config class: the annotation of ``config``, else ``<Model>Config`` in its module."""
    base = _config_base()
    annotation = _annotation(cls, "config")
    if isinstance(annotation, type) and issubclass(annotation, base) and annotation is not base:
        return annotation
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


def _setting(settings: Any, name: str, default: Any = None) -> Any:
    value = getattr(settings, name, default)
    return default if value is None else value


def is_mla_config(config_cls: type) -> bool:
    """Whether the config class describes multi-head latent attention (it has ``kv_lora_rank``)."""
    return hasattr(config_cls, "kv_lora_rank")


def _mla_kwargs(cls: type, config_cls: type, settings: Any) -> tuple[dict[str, Any], list[str]]:
    """The config keywords of a multi-head latent attention class (``DeepseekV3Attention``).

    With the MLA sizes in ``settings`` (``--kv-lora-rank``, a DeepSeek preset) every one of them
    goes to the config (``q_lora_rank`` 0 or ``None``: a direct ``q_proj``; the head sizes
    default to :data:`attncli.kinds.mla.DEFAULTS`); without them the config class's defaults
    stay, and a note says so. The config's ``head_dim`` is its RoPE width (transformers sets it
    to ``qk_rope_head_dim``), so no ``head_dim`` is passed.
    """
    from attncli.kinds.mla import DEFAULTS

    name = cls.__name__
    heads = int(settings.heads)
    if int(_setting(settings, "kv_heads", heads)) != heads:
        raise SpecError("--kv-heads", f"{name} is multi-head latent attention: its keys and values come from one "
                                      "shared latent (--kv-lora-rank), not from K/V heads")
    if _setting(settings, "d_head") is not None:
        raise SpecError("--head-dim", f"{name} is multi-head latent attention: its head sizes are "
                                      "--qk-nope-head-dim, --qk-rope-head-dim and --v-head-dim")
    if _setting(settings, "window") is not None:
        raise SpecError("--window", f"{name} has no sliding window")
    kw: dict[str, Any] = {"hidden_size": int(settings.dim), "num_attention_heads": heads,
                          "num_key_value_heads": heads, "num_hidden_layers": 1, "attention_dropout": 0.0}
    notes: list[str] = []
    if getattr(settings, "kv_lora_rank", None) is None:
        defaults = ", ".join(f"{f} {getattr(config_cls, f, None)}" for f in MLA_FIELDS)
        notes.append(f"{name} is multi-head latent attention, built with {config_cls.__name__}'s default sizes "
                     f"({defaults}): --kv-lora-rank, --q-lora-rank, --qk-nope-head-dim, --qk-rope-head-dim and "
                     "--v-head-dim choose them")
    else:
        kw["kv_lora_rank"] = int(settings.kv_lora_rank)
        kw["q_lora_rank"] = getattr(settings, "q_lora_rank", None) or None
        for f in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
            kw[f] = int(_setting(settings, f, DEFAULTS[f]))
    if getattr(settings, "mla_form", None) == "absorbed":
        raise SpecError("--mla-form", f"{name} runs the naive form (it expands every latent through kv_b_proj); "
                                      "drop --mla-form absorbed, or count attncli's own layer without --module")
    bias = _setting(settings, "bias")
    if bias is not None:
        kw["attention_bias"] = bool(bias)
    return kw, notes


def _config_kwargs(cls: type, family: str, fam: Family | None, settings: Any) -> tuple[dict[str, Any], list[str]]:
    """The config keywords for ``settings``; SpecError for what the class cannot express."""
    if getattr(settings, "kv_lora_rank", None) is not None:
        raise SpecError("--kv-lora-rank", f"{cls.__name__} is not multi-head latent attention (its config "
                                          "has no kv_lora_rank)")
    dim, heads = int(settings.dim), int(settings.heads)
    kv_heads = int(_setting(settings, "kv_heads", heads))
    head_dim = _setting(settings, "head_dim")
    window = _setting(settings, "window")
    bias = _setting(settings, "bias")
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
        if fam is not None and not fam.window:
            raise SpecError("--window", f"{name} has no sliding window")
        kw["sliding_window"] = int(window)
        if family == "qwen2":
            kw.update(use_sliding_window=True, max_window_layers=0)
        notes.append(f"sliding window {window}: a query sees keys q-{window} < k <= q (transformers' convention)")
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


def _construct(cls: type, config: Any, family: str) -> Any:
    """The layer built as its model builds layer 0."""
    if family == "t5":
        # NOTE: T5Stack gives only the first layer the relative position bias table
        # (has_relative_attention_bias=bool(i == 0)).
        return cls(config, has_relative_attention_bias=True, layer_idx=0)
    if family == "bert":
        return cls(config)
    params = inspect.signature(cls).parameters
    return cls(config, layer_idx=0) if "layer_idx" in params else cls(config)


@dataclass(frozen=True)
class HfLayer:
    """A built Hugging Face attention layer and how its model calls it.

    ``rotary`` is the model's rotary embedding module (``None`` without RoPE); ``mask_fn`` the
    model's mask function from ``transformers.masking_utils`` (``None``: the model passes no mask).
    """

    module: Any
    config: Any
    family: str
    call_kind: str
    sizes: HfSizes
    rotary: Any = None
    mask_fn: Any = None
    notes: tuple[str, ...] = ()
    mask_cache_keyword: str | None = "cache"
    """The name the installed transformers gives the mask functions' cache argument (:func:`cache_keyword`)."""
    rotary_layer_type: str | None = None
    """The layer type a rotary embedding with one table per layer type is called with (Gemma 3's
    ``forward(x, position_ids, layer_type)``): layer 0's, ``None`` for a single table."""
    fused: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    """Fused projections by submodule name, with the stage and width of each slice of their output
    (Phi-3's ``qkv_proj``: q H*d, k G*d, v G*d), for :func:`split_fused`."""

    def inputs_for(self, x: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments the model passes with hidden states ``x`` (B, L, E)."""
        import torch

        kwargs: dict[str, Any] = {}
        mask = None
        if self.mask_fn is not None:
            # NOTE: position_ids=None: the model's default positions are arange(L), and passing them makes
            # transformers look for packed sequences with .item(), which meta tensors cannot answer.
            no_cache = {} if self.mask_cache_keyword is None else {self.mask_cache_keyword: None}
            mask = self.mask_fn(config=self.config, inputs_embeds=x, attention_mask=None, position_ids=None,
                                **no_cache)
        if self.call_kind == "rope":
            positions = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
            by_type = {} if self.rotary_layer_type is None else {"layer_type": self.rotary_layer_type}
            kwargs["position_embeddings"] = self.rotary(x, positions, **by_type)
            kwargs["attention_mask"] = mask
        elif self.call_kind == "t5":
            kwargs["mask"] = mask
        else:
            kwargs["attention_mask"] = mask
        return (x,), kwargs

    def call_args(self, batch: int, seq: int, device: Any = "cpu", dtype: Any = None,
                  seed: int = 0) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Random hidden states (batch, seq, E) on ``device`` and the arguments that go with them."""
        import torch

        dtype = dtype or torch.float32
        if str(device) == "meta":
            x = torch.empty(batch, seq, self.sizes.dim, device="meta", dtype=dtype)
        else:
            gen = torch.Generator().manual_seed(seed)
            x = torch.randn(batch, seq, self.sizes.dim, generator=gen, dtype=dtype).to(device)
        return self.inputs_for(x)

    def call(self, x: Any) -> Any:
        """Run the layer on hidden states ``x`` (B, L, E); the output tensor (B, L, E)."""
        args, kwargs = self.inputs_for(x)
        return self.output(self.module(*args, **kwargs))

    @staticmethod
    def output(result: Any) -> Any:
        """The output tensor out of the model's return convention (a tuple whose first item it is)."""
        return result[0] if isinstance(result, tuple | list) else result

    def wrapper(self) -> Any:
        """An ``nn.Module`` whose ``forward(x)`` makes this call and returns the tensor (for fvcore tracing)."""
        import torch

        layer = self

        class HfCall(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.attn = layer.module

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                args, kwargs = layer.inputs_for(x)
                out: torch.Tensor = layer.output(self.attn(*args, **kwargs))
                return out

        return HfCall().eval()


def cache_keyword(mask_fn: Any) -> str | None:
    """The cache argument of one of transformers' mask functions, as the installed version names it.

    transformers 5.0 to 5.23 call it ``past_key_values``; 5.24 renames it ``cache`` and warns
    (a FutureWarning, with a source line, on stderr) for the old name until 5.40 removes it. The
    signature says which (``inspect.signature`` follows the deprecation wrapper to the function);
    ``None`` when it takes neither.
    """
    try:
        params = inspect.signature(mask_fn).parameters
    except (TypeError, ValueError):
        return None
    return next((name for name in ("cache", "past_key_values") if name in params), None)


def _rotary_layer_type(rotary: Any, config: Any) -> str | None:
    """Layer 0's type, for a rotary embedding that keeps one table per layer type (Gemma 3)."""
    if rotary is None:
        return None
    try:
        params = inspect.signature(rotary.forward).parameters
    except (TypeError, ValueError):
        return None
    if "layer_type" not in params:
        return None
    layer_types = getattr(config, "layer_types", None)
    if not layer_types:
        raise SpecError(FLAG, f"{type(rotary).__name__} needs a layer type and the config names none")
    return str(layer_types[0])


def _fused_projections(module: Any, heads: int, kv_heads: int, head_dim: int
                       ) -> tuple[tuple[str, tuple[tuple[str, int], ...]], ...]:
    """A fused ``qkv_proj`` (Phi-3) and its slices q H*d, k G*d, v G*d, when its width is their sum."""
    fused = getattr(module, "qkv_proj", None)
    widths = (("q_proj", heads * head_dim), ("k_proj", kv_heads * head_dim), ("v_proj", kv_heads * head_dim))
    if fused is None or getattr(module, "q_proj", None) is not None:
        return ()
    if getattr(fused, "out_features", None) != sum(n for _, n in widths):
        return ()
    return (("qkv_proj", widths),)


def split_fused(ops: Any, fused: Any) -> Any:
    """``ops`` (:class:`attncli.engine.handles.OpCount`) with every matmul of a fused projection
    re-split between its slices by their widths (``fused``: :attr:`HfLayer.fused`).

    A linear layer's MACs are tokens x E x its output width, so each slice's share is exact;
    the data flow alone cannot tell Phi-3's slices apart (its rotary joins q and k again).
    """
    from attncli.engine.handles import OpCount
    from attncli.engine.trace import relative_name

    table = dict(fused)
    out = []
    for op in ops:
        parts = table.get(relative_name(op.scope).rsplit(".", 1)[-1])
        macs = sum(n for _, n in op.stages)
        width = sum(n for _, n in parts) if parts else 0
        if not parts or not macs or macs % width:
            out.append(op)
            continue
        out.append(OpCount(op.kind, op.scope, op.flops, tuple((st, macs // width * n) for st, n in parts)))
    return tuple(out)


def _rotary_class(cls: type) -> Any:
    module = sys.modules.get(cls.__module__)
    found: list[type] = [v for k, v in (vars(module).items() if module else ())
                         if k.endswith("RotaryEmbedding") and isinstance(v, type)]
    prefix = cls.__name__.removesuffix("Attention")
    exact = [c for c in found if c.__name__ == f"{prefix}RotaryEmbedding"]
    return (exact or found)[0] if found else None


def build_hf_attention(cls: type, settings: Any, device: Any = "meta", attn_implementation: str = "eager") -> HfLayer:
    """Build ``cls`` from attncli's settings as its model builds layer 0, on ``device``.

    ``settings`` is anything with ``dim`` and ``heads`` and optionally ``kv_heads``,
    ``head_dim``, ``window``, ``bias``, ``cache`` (an ``AttnSpec`` or a
    :class:`attncli.models.configs.LayerSettings`). ``attn_implementation`` is transformers'
    ``_attn_implementation``: ``eager`` (explicit matmuls, which every counter sees) or ``sdpa``.
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
    if int(_setting(settings, "cache", 0)) > 0:
        raise SpecError("--cache", f"{cls.__name__}: counting with past tokens in a KV cache is not supported for "
                                   "Hugging Face classes")
    mla = is_mla_config(config_cls)
    kw, notes = _mla_kwargs(cls, config_cls, settings) if mla else _config_kwargs(cls, family, fam, settings)
    if fam is None and family not in VERIFIED:
        notes.append(f"{cls.__name__}: family {family or '?'} is not one attncli has verified; "
                     "built and called like Llama")
    try:
        config = config_cls(**kw)
        config._attn_implementation = attn_implementation
        with torch.device(device):
            module = _construct(cls, config, family)
            rotary_cls = _rotary_class(cls) if fam is None or fam.call == "rope" else None
            rotary = rotary_cls(config) if rotary_cls is not None else None
    except SpecError:
        raise
    except Exception as exc:  # NOTE: third-party constructors raise anything
        raise SpecError(FLAG, f"{cls.__name__}({config_cls.__name__}) failed: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())}") from None
    from transformers import masking_utils

    call_kind = fam.call if fam is not None else ("rope" if rotary is not None else "gpt2")
    causal = fam.causal if fam is not None else True
    window = getattr(config, "sliding_window", None) if (fam is None or fam.window) else None
    layer_types = getattr(config, "layer_types", None)
    if window is not None and layer_types and layer_types[0] != "sliding_attention":
        window = None
    mask_fn: Any
    if not causal:
        mask_fn = masking_utils.create_bidirectional_mask
    elif window is not None:
        mask_fn = masking_utils.create_sliding_window_causal_mask
    else:
        mask_fn = masking_utils.create_causal_mask
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
    bias_setting = getattr(config, "attention_bias", None)
    sizes = HfSizes(dim=int(config.hidden_size), heads=int(config.num_attention_heads), kv_heads=kv_heads,
                    head_dim=head_dim, out_proj=out_proj, window=window, causal=causal, mla=mla_sizes,
                    bias=None if bias_setting is None else bool(bias_setting))
    if not out_proj:
        notes.append(f"{cls.__name__} has no output projection W_O (it sits in the model's next block)")
    rotary_type = _rotary_layer_type(rotary, config)
    fused = _fused_projections(module, sizes.heads, sizes.kv_heads, sizes.head_dim) if not mla else ()
    for name, parts in fused:
        notes.append(f"{cls.__name__}.{name} is q, k and v in one matmul: its count is split by the slices of "
                     f"its output, " + ", ".join(f"{st.removesuffix('_proj')} {n}" for st, n in parts))
    return HfLayer(module=module.eval(), config=config, family=family, call_kind=call_kind, sizes=sizes,
                   rotary=rotary, mask_fn=mask_fn, notes=tuple(notes), mask_cache_keyword=cache_keyword(mask_fn),
                   rotary_layer_type=rotary_type, fused=fused)
