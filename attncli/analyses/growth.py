"""``attncli model`` over a range of contexts (``--cache 1k:1M:x4`` or a range of ``--seq``): the step at
each value, its KV bytes per group and in total and, with a GPU, its roofline time and whether the cache
fits beside the weights. Closed forms over the groups of one :class:`~attncli.analyses.model.ModelReport`
(each layer traced once for the report, none again here): a grid costs about what one point costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attncli.analyses.model import ModelReport, device_spec, kv_bytes


@dataclass(frozen=True)
class GrowthPoint:
    """The step at one value of the swept ``--cache`` (or ``--seq``): the cache it leaves, per group
    and in total, and with a GPU its roofline time (a decode step's time per token with ``--seq 1``)."""

    value: int
    context: int
    """S after the step: the tokens a full layer's cache holds."""
    kv_cache_bytes: tuple[int, ...]
    """Per group (theoretical, all layers of the group), in the report's group order."""
    time_s: float | None = None
    fits: bool | None = None

    @property
    def total(self) -> int:
        return sum(self.kv_cache_bytes)

    def to_json(self, labels: list[str]) -> dict[str, Any]:
        return {"value": self.value, "context": self.context, "kv_cache_bytes": self.total,
                "by_group": dict(zip(labels, self.kv_cache_bytes, strict=True)), "time_s": self.time_s,
                "fits": self.fits}


def growth(report: ModelReport, setting: str, values: list[int]) -> tuple[GrowthPoint, ...]:
    """The step at every value of ``setting`` (``cache`` or ``seq``): the KV bytes per group and in
    total and, with a GPU, the roofline time and whether the cache fits beside the weights. Closed
    forms: the same the traced step is checked against."""
    from attncli.analyses.roofline import for_spec

    room = None
    if report.gpu is not None and report.weights_bytes is not None:
        room = report.gpu.memory_bytes - report.weights_bytes // report.tp
    points = []
    for v in values:
        per_group, device_bytes, time_s = [], 0, 0.0
        for g in report.groups:
            step = g.spec.with_(**{setting: v})
            per_group.append(g.n * kv_bytes(step, report.kv_dtype, report.block_size)[1])
            device_bytes += g.n * kv_bytes(device_spec(step, report.tp), report.kv_dtype, report.block_size)[1]
            if report.gpu is not None:
                time_s += g.n * for_spec(step, report.gpu, report.dtype).fused.time_s
        context = report.spec.with_(**{setting: v}).s
        points.append(GrowthPoint(v, context, tuple(per_group), time_s if report.gpu is not None else None,
                                  None if room is None else device_bytes <= room))
    return tuple(points)
