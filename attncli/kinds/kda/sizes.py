"""The sizes of a Kimi Delta Attention layer and Kimi Linear's layer schedule, as transformers reads config.json.

``KimiLinearConfig.__post_init__`` (transformers 5.25 ``configuration_kimi_linear.py``): the checkpoint keeps
the linear layers' sizes in ``linear_attn_config`` (``head_dim``, ``num_heads``, ``short_conv_kernel_size``),
which win over the attributes ``linear_head_dim`` (default 128), ``linear_num_heads`` (32) and
``linear_conv_kernel_dim`` (4). ``layer_types``, when given, wins; else, when ``linear_attn_config`` holds
both ``full_attn_layers`` and ``kda_layers`` (1-based), layer ``i - 1`` of each is ``full_attention`` or
``linear_attention`` (KDA written last); else layer i is full when ``i and i % 4 == 0``. transformers
leaves a layer named by neither list as ``None`` (then builds KDA for it and fails in its forward), wraps an
index of 0 to the last layer and fails on one past the depth: attncli refuses all three, and a layer in
both lists, in one ``--config`` line naming the field. Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.spec import AttnSpec

FULL, LINEAR = "full_attention", "linear_attention"

DEFAULTS: dict[str, int] = {"linear_head_dim": 128, "linear_num_heads": 32, "linear_conv_kernel_dim": 4}
"""``KimiLinearConfig``'s dataclass defaults (Kimi-Linear-48B-A3B's sizes)."""
NESTED: dict[str, str] = {"head_dim": "linear_head_dim", "num_heads": "linear_num_heads",
                          "short_conv_kernel_size": "linear_conv_kernel_dim"}
"""``linear_attn_config`` key -> the attribute it sets (``__post_init__``)."""
SCHEDULE_KEYS = ("full_attn_layers", "kda_layers")
LINEAR_ATTN_KEYS = (*NESTED, *SCHEDULE_KEYS)
"""Every key of ``linear_attn_config`` transformers reads; any other is refused naming it."""
CHUNK = 64
"""``chunk_kimi_delta_attention``'s ``chunk_size`` (the forward passes none)."""


@dataclass(frozen=True)
class KdaSizes:
    """One KDA layer: E ``dim``, H heads, D ``head_dim`` (queries, keys and values alike), K the short
    convolution's kernel, C the chunk of the chunked form."""

    dim: int
    heads: int
    head_dim: int
    kernel: int
    chunk: int = CHUNK

    @property
    def inner(self) -> int:
        """H*D: the width of q, k, v, the gate and the decay (transformers' ``qkv_dim``)."""
        return self.heads * self.head_dim

    @property
    def conv_dim(self) -> int:
        """The short convolution's channels: q, k and v (3*H*D)."""
        return 3 * self.inner

    def to_dict(self) -> dict[str, Any]:
        return {"linear_num_heads": self.heads, "linear_head_dim": self.head_dim,
                "linear_conv_kernel_dim": self.kernel}


def kda_sizes(spec: AttnSpec) -> KdaSizes:
    """The KDA sizes of ``spec``, with ``KimiLinearConfig``'s defaults filled in."""
    assert spec.linear_num_heads is not None
    return KdaSizes(dim=spec.dim, heads=spec.linear_num_heads,
                    head_dim=spec.linear_head_dim or DEFAULTS["linear_head_dim"],
                    kernel=spec.linear_conv_kernel_dim or DEFAULTS["linear_conv_kernel_dim"], chunk=spec.gdn_chunk)


def _shown(value: Any) -> str:
    return json.dumps(value)[:40]


def _nested(cfg: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    sub = cfg.get("linear_attn_config")
    if sub is None:
        return {}
    if not isinstance(sub, Mapping):
        raise SpecError("--config", f"{where}linear_attn_config must be a JSON object, got {_shown(sub)}")
    unknown = sorted(k for k in sub if k not in LINEAR_ATTN_KEYS)
    if unknown:
        raise SpecError("--config", f"{where}linear_attn_config.{unknown[0]} (not modelled for kimi_linear); attncli "
                                    "would count a different layer")
    return sub


def read_sizes(cfg: Mapping[str, Any], where: str = "") -> tuple[dict[str, int], dict[str, str]]:
    """The linear layers' ``linear_num_heads``, ``linear_head_dim``, ``linear_conv_kernel_dim`` of a
    ``kimi_linear`` config, and where each came from (``where`` prefixes the field names)."""
    sub = _nested(cfg, where)
    values: dict[str, int] = {}
    sources: dict[str, str] = {}
    for key, attr in NESTED.items():
        if key in sub:
            value, field, src = sub[key], f"linear_attn_config.{key}", f"config.json:{where}linear_attn_config.{key}"
        elif cfg.get(attr) is not None:
            value, field, src = cfg[attr], attr, f"config.json:{where}{attr}"
        else:
            value, field = DEFAULTS[attr], attr
            src = f"default: transformers' KimiLinearConfig {attr} ({DEFAULTS[attr]})"
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError("--config", f"{where}{field} must be a positive integer, got {_shown(value)}")
        values[attr], sources[attr] = value, src
    return values, sources


def read_layer_types(cfg: Mapping[str, Any], n: int, where: str = "") -> tuple[list[str], str, list[str]]:
    """Every layer's type, as ``KimiLinearConfig.__post_init__`` sets ``layer_types``; the rule that gave
    them; notes (a list transformers does not read)."""
    sub = _nested(cfg, where)
    declared = cfg.get("layer_types")
    notes: list[str] = []
    if declared is not None:
        if not isinstance(declared, list) or len(declared) != n or any(t not in (FULL, LINEAR) for t in declared):
            raise SpecError("--config", f"{where}layer_types must list {FULL} or {LINEAR} for each of the {n} layers")
        if any(k in sub for k in SCHEDULE_KEYS):
            notes.append(f"{where}linear_attn_config's layer lists are not read: transformers' KimiLinearConfig "
                         "takes layer_types when given")
        return list(declared), f"config.json:{where}layer_types", notes
    if not all(k in sub for k in SCHEDULE_KEYS):
        for key in SCHEDULE_KEYS:
            if key in sub:
                notes.append(f"{where}linear_attn_config.{key} is not read: transformers' KimiLinearConfig reads the "
                             "layer lists only when both are given")
        return ([FULL if i and i % 4 == 0 else LINEAR for i in range(n)],
                "family default: kimi_linear (KimiLinearConfig: layer i full when i > 0 and i % 4 == 0)", notes)
    types: list[str | None] = [None] * n
    for key, kind in (("full_attn_layers", FULL), ("kda_layers", LINEAR)):
        field = f"{where}linear_attn_config.{key}"
        entries = sub[key]
        if not isinstance(entries, list):
            raise SpecError("--config", f"{field} must be a list of 1-based layer numbers, got {_shown(entries)}")
        for j, number in enumerate(entries):
            if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= n:
                raise SpecError("--config", f"{field}[{j}] {_shown(number)} is not a layer number from 1 to {n} "
                                            "(the lists count layers from 1)")
            if types[number - 1] is not None:
                raise SpecError("--config", f"{field}[{j}]: layer {number} is listed twice (full_attn_layers and "
                                            "kda_layers together name each layer once)")
            types[number - 1] = kind
    missing = [i + 1 for i, t in enumerate(types) if t is None]
    if missing:
        raise SpecError("--config", f"{where}linear_attn_config: layer {missing[0]} of {n} is in neither "
                                    "full_attn_layers nor kda_layers (1-based)")
    return [t for t in types if t is not None], f"config.json:{where}linear_attn_config (1-based kda_layers, " \
                                               "full_attn_layers)", notes
