"""A whole DeepSeek-V4 model's attention, counted per layer type (no torch): the groups ``attncli
model`` will show once the kind runs there, and the numbers it must reach.

KV convention (``kv_cache_bytes``): every distinct tensor transformers' cache layers hold after the
step, once, at the dtype it keeps it (:func:`attncli.kinds.dsv4.counts.kv_parts`): a compressed
layer's window is one tensor serving as keys and values, a sliding layer's are two; the overlap
gates are float32. ``kv_cache_bytes_aliased_twice`` counts the compressed layers' window twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attncli.kinds.dsv4 import counts
from attncli.kinds.dsv4.sizes import LAYER_TYPES, SLIDING, Dsv4Sizes, read_layer_types, read_sizes
from attncli.kinds.dsv4.words import keeps_and_attends


@dataclass(frozen=True)
class Dsv4Group:
    """The layers of one type and one layer's counts (MACs, params, bytes)."""

    layer_type: str
    layers: tuple[int, ...]
    dense: dict[str, int]
    effective: dict[str, int]
    params: int
    kv_parts: dict[str, int]
    line: str
    """What the layer keeps and attends to (:func:`attncli.kinds.dsv4.words.keeps_and_attends`)."""

    @property
    def kv_cache_bytes(self) -> int:
        return sum(self.kv_parts.values())


def count_model(cfg: Mapping[str, Any], *, batch: int = 1, seq: int, cache: int = 0,
                bytes_per_element: int = 2, where: str = "") -> tuple[Dsv4Sizes, tuple[Dsv4Group, ...]]:
    """Every layer type of a ``deepseek_v4`` config.json for one step (L = ``seq`` after N = ``cache``)."""
    sizes, types = read_sizes(cfg, where), read_layer_types(cfg, where)
    s = cache + seq
    groups = []
    for t in LAYER_TYPES:
        layers = tuple(i for i, x in enumerate(types) if x == t)
        if layers:
            groups.append(Dsv4Group(t, layers, counts.dense(sizes, t, batch, seq, cache),
                                    counts.effective(sizes, t, batch, seq, cache), counts.params(sizes, t)["total"],
                                    counts.kv_parts(sizes, t, batch, s, bytes_per_element),
                                    keeps_and_attends(sizes, t)))
    return sizes, tuple(groups)


def totals(groups: tuple[Dsv4Group, ...]) -> dict[str, int]:
    """Sums over every layer: dense and effective MACs, params, KV bytes (both conventions)."""
    def total(f: Any) -> int:
        return sum(len(g.layers) * f(g) for g in groups)

    return {"fvcore_flops": total(lambda g: sum(g.dense.values())),
            "effective_fvcore_flops": total(lambda g: sum(g.effective.values())),
            "params": total(lambda g: g.params), "kv_cache_bytes": total(lambda g: g.kv_cache_bytes),
            "kv_cache_bytes_aliased_twice": total(
                lambda g: g.kv_cache_bytes + (0 if g.layer_type == SLIDING else g.kv_parts["window"]))}
