"""Which layer ``flops --config`` describes, and how: layer 0's window, chunk, type and causality.

A config describes a stack of layers; ``attncli flops --config`` counts one, layer 0, as
transformers builds it (``attncli model`` counts them all, :mod:`attncli.models.schedule`).
Split from :mod:`attncli.models.configs`, which calls these. Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from attncli.models.guard import DECODERS, ENCODERS
from attncli.spec import SpecError

MAX_SIZE = 2**31 - 1
"""Largest size accepted from a file (hidden sizes and head counts are far below it)."""

QWEN_WINDOW_FAMILIES = frozenset({"qwen2", "qwen2_moe", "qwen3", "qwen3_moe"})
"""Families whose window starts at ``max_window_layers`` (transformers' Qwen2/Qwen3 config classes)."""


def _int(cfg: Mapping[str, Any], key: str, where: str, flag: str = "--config") -> int:
    value = cfg[key]
    # NOTE: bool is an int subclass and 4096.0 is a float; neither is a size in a config.json.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(flag, f"{where}{key} must be an integer, got {json.dumps(value)[:40]}")
    if value <= 0:
        raise SpecError(flag, f"{where}{key} must be positive, got {value}")
    if value > MAX_SIZE:
        raise SpecError(flag, f"{where}{key} is too large ({value} > {MAX_SIZE})")
    return value


def _bool(cfg: Mapping[str, Any], key: str, where: str, flag: str = "--config") -> bool:
    value = cfg[key]
    if not isinstance(value, bool):
        raise SpecError(flag, f"{where}{key} must be true or false, got {json.dumps(value)[:40]}")
    return value


def _layer0_type(cfg: Mapping[str, Any], family: str | None, where: str) -> str:
    """Layer 0's type by the schedule (:mod:`attncli.models.schedule`)."""
    from attncli.models.schedule import read_schedule

    return read_schedule(cfg, family, where).layers[0].layer_type


def _chunk(cfg: Mapping[str, Any], family: str | None, where: str, prefix: str) -> tuple[int | None, str]:
    """Layer 0's chunk C when the schedule (:mod:`attncli.models.schedule`) makes it a chunked layer."""
    from attncli.models.schedule import read_schedule

    types = cfg.get("layer_types")
    if "attention_chunk_size" not in cfg and family not in ("llama4_text", "llama4") and not (
            isinstance(types, list) and "chunked_attention" in types):
        return None, "default: no attention_chunk_size"
    probe = dict(cfg)
    if not any(k in cfg for k in ("num_hidden_layers", "n_layer", "num_layers")):
        # NOTE: layer 0's type does not depend on the depth; a layer's config may leave it out.
        probe["num_hidden_layers"] = len(types) if isinstance(types, list) and types else 4
    first = read_schedule(probe, family, where).layers[0]
    if first.chunk is None:
        return None, "default: layer 0 is not chunked"
    return first.chunk, prefix + "attention_chunk_size (layer 0 is chunked)"


def _window(cfg: Mapping[str, Any], prefix: str, where: str) -> tuple[int | None, str]:
    """Layer 0's causal sliding window, honouring ``use_sliding_window`` and ``layer_types``.

    NOTE: ``sliding_window`` W is taken as attncli's ``--window`` W unchanged. transformers'
    mask rule (``masking_utils.sliding_window_overlay``, used by Mistral, Qwen2 and Gemma-2's
    ``create_sliding_window_causal_mask``) keeps key k for query q when ``q - W < k <= q``:
    keys q-W+1 .. q, W keys, which is exactly ``--window W``
    (tests/models/test_hf.py::test_sliding_window_keeps_as_many_keys_as_attncli).
    """
    if cfg.get("sliding_window") is None:
        return None, "default: no sliding_window"
    window = _int(cfg, "sliding_window", where)
    if "use_sliding_window" in cfg and not _bool(cfg, "use_sliding_window", where):
        return None, prefix + "use_sliding_window (false)"
    family = cfg.get("model_type")
    if family in QWEN_WINDOW_FAMILIES and "use_sliding_window" not in cfg:
        return None, f"default: {family} use_sliding_window false"
    layer_types = cfg.get("layer_types")  # NOTE: its form was checked by guard.check
    if layer_types is not None:
        if layer_types[0] != "sliding_attention":
            return None, prefix + f"layer_types[0] ({layer_types[0]})"
        return window, prefix + "sliding_window"
    # NOTE: Gemma 3 / Cohere 2: layer i is global when (i+1) % pattern == 0, so layer 0 only when it is 1.
    if cfg.get("sliding_window_pattern") == 1:
        return None, prefix + "sliding_window_pattern (1: every layer is full attention)"
    # NOTE: Qwen2/Qwen3 window only layers >= max_window_layers (default 28): layer 0 is full unless it is 0.
    if family in QWEN_WINDOW_FAMILIES and cfg.get("max_window_layers", 28) != 0:
        if "max_window_layers" not in cfg:
            return None, "default: max_window_layers 28 (layer 0 is full attention)"
        _int(cfg, "max_window_layers", where)
        return None, prefix + "max_window_layers (layer 0 is full attention)"
    return window, prefix + "sliding_window"


def _causal(top: Mapping[str, Any], cfg: Mapping[str, Any], prefix: str, where: str) -> tuple[bool, str]:
    """Whether layer 0's self-attention is causal, and why."""
    if top.get("is_encoder_decoder") is not None and _bool(top, "is_encoder_decoder", "") is True:
        return False, "config.json:is_encoder_decoder (encoder self-attention)"
    if cfg.get("is_decoder") is not None and _bool(cfg, "is_decoder", where):
        return True, prefix + "is_decoder"
    archs = top.get("architectures")
    if archs is not None:
        if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
            raise SpecError("--config", "architectures must be a list of strings")
        for arch in archs:
            if arch.endswith(("ForCausalLM", "LMHeadModel")) and not arch.endswith("MaskedLMHeadModel"):
                return True, f"config.json:architectures ({arch})"
    family = cfg.get("model_type", top.get("model_type"))
    if family in DECODERS:
        return True, f"architecture default: {family} is a decoder"
    if family in ENCODERS:
        return False, f"architecture default: {family} is an encoder"
    return False, "default: not known to be a decoder"
