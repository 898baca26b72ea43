"""How a built Hugging Face attention layer is called: :class:`HfLayer`, the sizes it was built with
(:class:`HfSizes`), the model's mask function for its layer type (:func:`mask_function`), the rotary
embedding and a fused ``qkv_proj`` split by its slices (:func:`split_fused`).

:mod:`attncli.modules.hf` builds the layer; this module holds what calling and counting it needs.
transformers and torch are imported inside the functions.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from attncli.models.schedule import CHUNKED, FULL, SLIDING
from attncli.spec import SpecError

FLAG = "--module"

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
    chunk: int | None = None
    """The chunk C of a chunked layer (Llama 4's ``attention_chunk_size``), else ``None``."""
    gated: bool = False
    """``q_proj`` is 2*H*d wide: a query and a sigmoid output gate per head (Qwen3-Next's full layers)."""
    extra_params: tuple[tuple[str, int, str], ...] = ()
    """Parameters of the class that no projection holds, as (name, count, what): gpt-oss's ``sinks``."""
    layer_type: str = FULL
    """The layer's type as its model reads it (:func:`layer_kind`)."""



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
    ``forward(x, position_ids, layer_type)``): the layer's, ``None`` for a single table."""
    fused: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    """Fused projections by submodule name, with the stage and width of each slice of their output
    (Phi-3's ``qkv_proj``: q H*d, k G*d, v G*d), for :func:`split_fused`."""
    layer_idx: int = 0
    """The model layer built (``layer_idx`` of the class; ``--layer``)."""
    layer_type: str = FULL
    """Its type as the model reads it (:func:`layer_kind`): which mask function the model calls for it."""
    rope: bool = True
    """Whether the layer rotates queries and keys (Llama 4's NoPE layers do not)."""

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


def _rotary_layer_type(rotary: Any, config: Any, layer_idx: int = 0) -> str | None:
    """The layer's type, for a rotary embedding that keeps one table per layer type (Gemma 3)."""
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
    return str(layer_types[layer_idx])


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
    # NOTE: a multimodal file (Qwen3.5) has its text model's Qwen3_5TextRotaryEmbedding beside a vision one
    exact = [c for c in found if c.__name__ in (f"{prefix}RotaryEmbedding", f"{prefix}TextRotaryEmbedding")]
    text = [c for c in found if "Vision" not in c.__name__]
    return (exact or text or found)[0] if found else None



def _model_makes_sliding_mask(cls: type) -> bool:
    """Whether the class's modeling file builds a sliding-window mask at all (Mistral, Phi-3: for every
    layer when ``config.sliding_window`` is set); read from the model's own source."""
    module = sys.modules.get(cls.__module__)
    try:
        source = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        return False
    return "create_sliding_window_causal_mask" in source


def layer_kind(cls: type, config: Any, layer_idx: int) -> tuple[str, int | None, int | None, bool]:
    """(layer type, window W, chunk C, RoPE) of layer ``layer_idx`` as the model builds it.

    The config's ``layer_types`` when it has them (Gemma 2/3, gpt-oss, Qwen2/3, Cohere 2, Llama 4:
    the model picks each layer's mask by its type); else a sliding layer when the config has a
    ``sliding_window`` and the modeling file builds a sliding-window mask (Mistral, Phi-3), else full.
    RoPE is off on Llama 4's ``no_rope_layers`` zeros (``use_rope = config.no_rope_layers[layer_idx]``).
    """
    types = getattr(config, "layer_types", None)
    if types:
        if layer_idx >= len(types):
            raise SpecError("--layer", f"{layer_idx}: the config has {len(types)} layer_types")
        layer_type = str(types[layer_idx])
    elif getattr(config, "sliding_window", None) is not None and _model_makes_sliding_mask(cls):
        layer_type = SLIDING
    else:
        layer_type = FULL
    window = getattr(config, "sliding_window", None) if layer_type == SLIDING else None
    chunk = getattr(config, "attention_chunk_size", None) if layer_type == CHUNKED else None
    if layer_type == SLIDING and window is None:
        raise SpecError("--config", f"layer {layer_idx} is sliding_attention but the config has no sliding_window")
    if layer_type == CHUNKED and chunk is None:
        raise SpecError("--config", f"layer {layer_idx} is chunked_attention but the config has no "
                                    "attention_chunk_size")
    no_rope = getattr(config, "no_rope_layers", None)
    rope = bool(no_rope[layer_idx]) if isinstance(no_rope, list | tuple) and layer_idx < len(no_rope) else True
    return layer_type, None if window is None else int(window), None if chunk is None else int(chunk), rope


def mask_function(layer_type: str, causal: bool) -> Any:
    """The mask function of ``transformers.masking_utils`` the model calls for a layer of this type."""
    from transformers import masking_utils

    if not causal:
        return masking_utils.create_bidirectional_mask
    if layer_type == SLIDING:
        return masking_utils.create_sliding_window_causal_mask
    if layer_type == CHUNKED:
        return masking_utils.create_chunked_causal_mask
    return masking_utils.create_causal_mask


def extra_params(module: Any, heads: int, standard: bool) -> tuple[tuple[str, int, str], ...]:
    """Parameters of the class that standard attention's closed form leaves out, by name, with what
    they are: gpt-oss's ``sinks`` (one learned logit per head, joined to each softmax) and, for a
    standard layer, the per-head qk-norms (``q_norm``/``k_norm``: Gemma 3, Qwen3, Olmo 2). No
    multiply-adds either way; the gated and MLA kinds count their norms themselves."""
    name = type(module).__name__
    out: list[tuple[str, int, str]] = []
    sinks = getattr(module, "sinks", None)
    if sinks is not None and hasattr(sinks, "numel"):
        out.append(("sinks", int(sinks.numel()), f"{name}.sinks: one learned logit per head ({heads}) joins each "
                                                 "softmax (parameters, no multiply-adds)"))
    for part in ("q_norm", "k_norm") if standard else ():
        norm = getattr(module, part, None)
        n = sum(int(p.numel()) for p in norm.parameters()) if norm is not None else 0
        if n:
            out.append((part, n, f"{name}.{part}: an RMSNorm on each {part[0]} head ({n} weights, in params, "
                                 "no multiply-adds)"))
    return tuple(out)


@contextmanager
def transformers_logs() -> Iterator[list[str]]:
    """Collect what transformers logs (its own stderr handler) instead of printing it: the lines go
    into the count's notes, prefixed ``transformers says:`` (a published config such as Llama 4
    Scout's draws a rope_parameters warning when its class reads it)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                text = " ".join(record.getMessage().split())
                if text not in lines:
                    lines.append(text)

    root = logging.getLogger("transformers")
    saved = root.handlers[:], root.propagate
    root.handlers, root.propagate = [Collect()], False
    try:
        yield lines
    finally:
        root.handlers, root.propagate = saved
