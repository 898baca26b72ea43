"""What ``attncli bench`` reports: the rows it measured, what it skipped, and its JSON.

:class:`BenchReport` holds every :class:`Row` timed for one spec on one device (one per
implementation, and per SDPA backend on CUDA) and every :class:`Skipped` one with the reason;
``to_json`` writes the ``attncli.bench/2`` document, with :data:`CONVENTION` saying what each
field means. :mod:`attncli.analyses.bench` measures the rows; :mod:`attncli.render.bench` draws the
table. Importing this module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attncli.analyses.roofline import Roofline
from attncli.spec import AttnSpec

SCHEMA = "attncli.bench/2"
"""2: ``flops`` is the dense count (it was the effective one), ``effective_flops`` the effective
one (docs/json-changes.md)."""

MIN_BLOCKS_FOR_IQR = 4
"""Fewer timed blocks than this have no interquartile range worth the name (1 block gave 0.0)."""

CONVENTION: dict[str, str] = {
    "flops": "2 x MACs, dense count (masked scores computed too)",
    "effective_flops": "2 x MACs, effective count (only the (query, key) pairs a mask leaves visible)",
    "backward": "forward + backward counted as 3 x forward (backward = 2 x forward by convention)",
    "median_s": "median per-call time over torch.utils.benchmark blocks (blocked_autorange)",
    "iqr_s": f"interquartile range of the blocks' per-call times; null with fewer than {MIN_BLOCKS_FOR_IQR} "
             "blocks (no spread was measured: raise --min-run-time)",
    "achieved_flops_per_s": "effective_flops / median_s",
    "roofline_fraction": "fused-kernel roofline time on the GPU (3x with backward) / median_s (1.0 = the roofline)",
    "predicted_memory_bytes": "memory model: forward activations (attncli.analyses.flops.memory) + weights + inputs",
    "peak_memory_bytes": "torch.cuda.max_memory_allocated during the row (CPU: none reported)",
}


def row_name(spec: AttnSpec) -> str:
    """A row's ``impl``: the implementation, or with MLA its form (``mla naive``, ``mla absorbed``)."""
    return spec.impl if spec.form is None else f"{spec.impl} {spec.form}"


# ---------------------------------------------------------------------------- results
NOISY_IQR = 0.5
"""A row whose IQR is over half its median is marked noisy (``!``): another process, frequency
scaling or too few blocks moved the times more than the comparison between rows can bear."""


@dataclass(frozen=True)
class Row:
    """One measured implementation (and SDPA backend)."""

    impl: str
    backend: str | None
    median_s: float
    iqr_s: float | None
    flops: int
    dense_flops: int
    runs: int
    blocks: int
    predicted_memory_bytes: int
    peak_memory_bytes: int | None = None
    roofline_time_s: float | None = None

    @property
    def achieved_flops_per_s(self) -> float:
        return self.flops / self.median_s

    @property
    def roofline_fraction(self) -> float | None:
        return None if self.roofline_time_s is None else self.roofline_time_s / self.median_s

    @property
    def label(self) -> str:
        return self.impl if self.backend is None else f"{self.impl} [{self.backend}]"

    @property
    def noisy(self) -> bool:
        """Whether the spread of the timed blocks (IQR) exceeds :data:`NOISY_IQR` of the median: the
        median of such a row is not a measurement to compare or gate on."""
        return self.iqr_s is not None and self.iqr_s > NOISY_IQR * self.median_s

    def to_json(self) -> dict[str, Any]:
        return {"impl": self.impl, "backend": self.backend, "median_s": self.median_s, "iqr_s": self.iqr_s,
                "flops": self.dense_flops, "effective_flops": self.flops,
                "achieved_flops_per_s": self.achieved_flops_per_s, "roofline_fraction": self.roofline_fraction,
                "peak_memory_bytes": self.peak_memory_bytes, "predicted_memory_bytes": self.predicted_memory_bytes,
                "runs": self.runs, "blocks": self.blocks}


@dataclass(frozen=True)
class Skipped:
    impl: str
    reason: str
    backend: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"impl": self.impl, "backend": self.backend, "reason": self.reason}


@dataclass(frozen=True)
class BenchReport:
    """Every row measured for one spec on one device, and what was skipped."""

    spec: AttnSpec
    device: str
    dtype: str
    backward: bool
    min_run_time: float
    environment: dict[str, Any]
    rows: tuple[Row, ...]
    skipped: tuple[Skipped, ...]
    roofline: Roofline | None = None
    checks: tuple[dict[str, Any], ...] = field(default=())

    def row(self, impl: str, backend: str | None = None) -> Row | None:
        return next((r for r in self.rows if r.impl == impl and r.backend == backend), None)

    def to_json(self) -> dict[str, Any]:
        config = {**self.spec.to_dict(), "device": self.device, "dtype": self.dtype, "backward": self.backward,
                  "min_run_time_s": self.min_run_time}
        return {"schema": SCHEMA, "config": config, "environment": dict(self.environment),
                "convention": dict(CONVENTION), "measured": True,
                "results": [r.to_json() for r in self.rows], "skipped": [s.to_json() for s in self.skipped],
                "roofline": None if self.roofline is None else self.roofline.to_json(),
                "checks": [dict(c) for c in self.checks]}
