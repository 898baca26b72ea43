"""FLOPs, parameters and attention-matrix memory over a range of one setting.

``--seq 128,256,512`` lists values; ``--seq 128:8192:x2`` multiplies from 128 up to 8192;
``--seq 128:1024:+128`` adds. For each value the layer as configured (H heads with W_O) is
counted with the same fvcore path as ``attncli flops``, and the growth exponent of every stage
is fitted on a log-log scale: d log(count) / d log(value). QK^T grows as L^2, projections as
L; heads change nothing. Under a mask (causal, a sliding window) the effective counts, over the
visible (query, key) pairs only, grow differently: a window of W keys makes the effective QK^T
grow as L^2 up to L = W and then towards W L, so the report also gives the local exponent
between neighbouring points, where that trend shows.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from attncli.analyses.roofline import Roofline
from attncli.choices import SETTING_FLAGS
from attncli.spec import AttnSpec, SpecError

if TYPE_CHECKING:
    from attncli.analyses.timemodel import Estimate

SCHEMA = "attncli.sweep/2"
"""2: ``flops`` (was ``flops_torch``) and ``effective_flops`` per point, ``convention`` an object as in
every document (docs/json-changes.md)."""

CONVENTION: dict[str, str] = {
    "fvcore_flops": "fvcore's count: one multiply-add = 1 (MACs), dense",
    "flops": "2 x fvcore_flops, dense (every (query, key) pair)",
    "effective_flops": "2 x effective.fvcore_flops: only the (query, key) pairs a mask leaves visible",
}
MAX_POINTS = 64
_RANGE = re.compile(r"^(\d+):(\d+)(?::([x+*])(\d+))?$")


def parse_values(text: str, flag: str, minimum: int = 1) -> list[int]:
    """``"128"``, ``"128,256"``, ``"128:8192:x2"``, ``"128:1024:+128"`` -> sorted unique ints.

    A range starts at ``minimum`` or above (``--cache 0:4096:+1024`` may start at 0; a
    multiplying range always starts at 1 or above).
    """
    t = text.replace(" ", "")
    m = _RANGE.match(t)
    if m:
        start, stop = int(m.group(1)), int(m.group(2))
        op, step = (m.group(3) or "x"), int(m.group(4) or 2)
        low = max(minimum, 1) if op in "x*" else minimum
        if start < low or stop < start:
            raise SpecError(flag, f"range {text!r} needs {low} <= start <= stop")
        if (op in "x*" and step < 2) or (op == "+" and step < 1):
            raise SpecError(flag, f"range {text!r} needs a step of at least {'x2' if op != '+' else '+1'}")
        values, v = [], start
        while v <= stop:
            values.append(v)
            if len(values) > MAX_POINTS:
                raise SpecError(flag, f"range {text!r} has more than {MAX_POINTS} points")
            v = v * step if op in "x*" else v + step
        return values
    try:
        values = sorted({int(part) for part in t.split(",") if part})
    except ValueError:
        raise SpecError(flag, f"expected N, N,N,... or START:STOP:xK / START:STOP:+K; got {text!r}") from None
    if not values:
        raise SpecError(flag, f"no values in {text!r}")
    if len(values) > MAX_POINTS:
        raise SpecError(flag, f"more than {MAX_POINTS} values")
    return values


def setting_name(setting: str) -> str:
    """The name the user sees for a sweepable spec field: its flag without dashes, as in the JSON
    ``config`` (``d_head`` -> ``head_dim``, ``kv_heads`` -> ``kv_heads``)."""
    # NOTE: the spec field ``d_head`` is ``--head-dim`` on the command line and ``head_dim`` in the
    # JSON config; SETTING_FLAGS is the one home of the flag, so the name is derived from it.
    return SETTING_FLAGS[setting].removeprefix("--").replace("-", "_")


def fit_exponent(xs: list[int], ys: list[int]) -> float | None:
    """Least-squares slope of log(y) on log(x) over x > 0; None with fewer than 2 such points or a
    zero count among them."""
    # NOTE: a value of 0 (--cache 0) has no logarithm: the fit uses the positive values.
    positive = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 0]
    pts = [(math.log(x), math.log(y)) for x, y in positive if y > 0]
    if len(pts) < 2 or len(pts) != len(positive) or len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


@dataclass(frozen=True)
class Step:
    """The local growth exponent between two neighbouring points, ``start`` -> ``end``:
    log(count at end / count at start) / log(end / start), per count (None where a value or a
    count is 0)."""

    start: int
    end: int
    qk: float | None
    effective_qk: float | None
    total: float | None
    effective_total: float | None

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {"from": self.start, "to": self.end, "qk": r(self.qk), "effective_qk": r(self.effective_qk),
                "total": r(self.total), "effective_total": r(self.effective_total)}


@dataclass(frozen=True)
class Point:
    value: int
    by_stage: dict[str, int]
    flops: int
    params: int
    attn_matrix_bytes: int
    problems: tuple[str, ...] = ()
    """Disagreements between fvcore, the closed form and FlopCounterMode at this value."""
    effective_by_stage: dict[str, int] = field(default_factory=dict)
    """MACs per stage over the visible (query, key) pairs only (equal to ``by_stage`` unmasked)."""
    roofline: Roofline | None = None
    """With ``--gpu``: the roofline of this point (estimated, an upper bound on speed)."""

    @property
    def effective_flops(self) -> int:
        return sum(self.effective_by_stage.values())

    def to_json(self) -> dict[str, Any]:
        doc = {"value": self.value, "fvcore_flops": self.flops, "flops": 2 * self.flops,
               "effective_flops": 2 * self.effective_flops,
               "params": self.params, "attn_matrix_bytes": self.attn_matrix_bytes,
               "by_stage": dict(self.by_stage),
               "effective": {"fvcore_flops": self.effective_flops, "by_stage": dict(self.effective_by_stage)}}
        if self.roofline is not None:
            r = self.roofline
            doc["roofline"] = {"bound": r.fused.bound, "time_s": r.fused.time_s, "intensity": r.fused.intensity,
                               "naive": {"bound": r.naive.bound, "time_s": r.naive.time_s,
                                         "intensity": r.naive.intensity}}
        return doc


@dataclass(frozen=True)
class SweepReport:
    spec: AttnSpec
    setting: str
    points: tuple[Point, ...]
    exponents: dict[str, float | None]
    dtype: str
    gpu: str | None = None

    @property
    def setting_name(self) -> str:
        """The swept setting as the user names it (``head_dim``, not the spec field ``d_head``)."""
        return setting_name(self.setting)

    @property
    def masked(self) -> bool:
        """True when a mask (causal, a window, padding) hides pairs: effective != dense somewhere."""
        return _masked(self.points)

    @property
    def steps(self) -> tuple[Step, ...]:
        """The local exponent between every two neighbouring points: where the fitted exponent
        averages over the whole range, these show its trend (a window's effective QK^T: 2 while
        L <= W, then falling towards 1)."""
        def local(a: Point, b: Point, count: Callable[[Point], int]) -> float | None:
            return fit_exponent([a.value, b.value], [count(a), count(b)])

        return tuple(Step(a.value, b.value,
                          local(a, b, lambda p: p.by_stage.get("qk", 0)),
                          local(a, b, lambda p: p.effective_by_stage.get("qk", 0)),
                          local(a, b, lambda p: p.flops), local(a, b, lambda p: p.effective_flops))
                     for a, b in itertools.pairwise(self.points))

    @property
    def crossings(self) -> tuple[tuple[int, int, str], ...]:
        """With ``--gpu``: (value before, value after, new bound) wherever the fused kernel's bound
        changes between two neighbouring points (e.g. memory -> compute as --seq grows)."""
        pts = [p for p in self.points if p.roofline is not None]
        return tuple((a.value, b.value, b.roofline.fused.bound) for a, b in itertools.pairwise(pts)
                     if a.roofline is not None and b.roofline is not None
                     and a.roofline.fused.bound != b.roofline.fused.bound)

    @property
    def problems(self) -> tuple[str, ...]:
        """Every point's cross-check disagreements, each prefixed with ``setting=value``."""
        return tuple(f"{self.setting_name}={p.value}: {msg}" for p in self.points for msg in p.problems)

    @property
    def agree(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "config": {**self.spec.to_dict(), "dtype": self.dtype, "swept": self.setting_name},
            "setting": self.setting_name,
            "convention": dict(CONVENTION),
            "points": [p.to_json() for p in self.points],
            "exponents": {k: (None if v is None else round(v, 4)) for k, v in self.exponents.items()},
            "masked": self.masked,
            "local_exponents": [s.to_json() for s in self.steps],
            "cross_checks": {"agree": self.agree, "problems": list(self.problems)},
            **({} if self.gpu is None else {
                "gpu": self.gpu,
                "crossings": [{"from": a, "to": b, "bound": bound} for a, b, bound in self.crossings]}),
        }


def _masked(points: tuple[Point, ...] | list[Point]) -> bool:
    # NOTE: a point without effective counts (a hand-built one) is taken as unmasked, not as 0 MACs.
    return any(p.effective_by_stage and p.effective_by_stage != p.by_stage for p in points)


Counter = Callable[[AttnSpec, str], Point]
"""(spec, dtype) -> the point for H heads with W_O (its ``value`` is filled in by the sweep)."""


def count_point(spec: AttnSpec, dtype: str) -> Point:
    """H heads with W_O counted as ``attncli flops`` counts it, with its cross-checks."""
    from attncli.analyses.flops import count_variant

    v = count_variant(spec, dtype)
    return Point(0, v.by_stage, v.fvcore_flops, v.params, v.memory.attention_matrix, v.problems,
                 v.effective_by_stage)


def run_sweep(spec: AttnSpec, setting: str, values: list[int], dtype: str,
              advance: Callable[[int], None] | None = None, count: Counter = count_point,
              gpu: str | None = None, on_estimate: Callable[[Estimate], None] | None = None) -> SweepReport:
    """Count every value of ``setting``; ``advance(value)`` is called after each (progress).

    ``--impl per-head`` builds one module per head at every point: the time model
    (:func:`attncli.analyses.timemodel.sweep_estimate`) refuses a sweep over its limit before any
    counting, and gives ``on_estimate`` the estimate of an allowed one.

    With ``gpu`` every point gets its roofline, and the report the values where the layer
    crosses from memory-bound to compute-bound (or back).
    """
    from attncli.analyses import timemodel
    from attncli.analyses.roofline import for_spec

    if gpu is not None:
        for_spec(spec, gpu, dtype)  # an unknown --gpu or --dtype fails before any counting
    specs = [spec.with_(**{setting: v}) for v in values]
    estimate = timemodel.check(timemodel.sweep_estimate(specs, SETTING_FLAGS[setting]))
    if on_estimate is not None:
        on_estimate(estimate)
    forms = {s.form for s in specs}
    if len(forms) > 1:
        raise SpecError("--mla-form", "auto runs the absorbed form at a decode step and the naive form elsewhere, "
                                      "and this sweep has both; give --mla-form naive or absorbed")
    points = []
    for v, point_spec in zip(values, specs, strict=True):
        point = replace(count(point_spec, dtype), value=v)
        if gpu is not None:
            point = replace(point, roofline=for_spec(point_spec, gpu, dtype))
        points.append(point)
        if advance is not None:
            advance(v)
    stages = list(points[0].by_stage) if points else []
    xs = [p.value for p in points]
    exponents: dict[str, float | None] = {
        st: fit_exponent(xs, [p.by_stage.get(st, 0) for p in points]) for st in stages}
    exponents["total"] = fit_exponent(xs, [p.flops for p in points])
    if _masked(points):
        # NOTE: a mask makes the effective attention count grow differently (a window: as W L, not L^2).
        exponents["effective_qk"] = fit_exponent(xs, [p.effective_by_stage.get("qk", 0) for p in points])
        exponents["effective_total"] = fit_exponent(xs, [p.effective_flops for p in points])
    exponents["params"] = fit_exponent(xs, [p.params for p in points])
    return SweepReport(spec, setting, tuple(points), exponents, dtype, gpu)
