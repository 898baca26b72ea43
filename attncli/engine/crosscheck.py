"""The second opinion: ``torch.utils.flop_counter.FlopCounterMode`` on the same call, lined up
op by op with fvcore's count so it can be compared per stage.

FlopCounterMode counts 2 per multiply-add (FLOPs). It runs on meta tensors: on CPU tensors it
counts 0 for SDPA in torch 2.13, on meta SDPA decomposes into two bmm and is counted. Importing
this module does not import torch; checking does.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attncli.choices import STAGES
from attncli.engine.trace import relative_name

if TYPE_CHECKING:
    from attncli.engine.handles import OpCount


_COMPATIBLE: dict[str, frozenset[str]] = {
    "aten::linear": frozenset({"aten.addmm", "aten.mm"}),
    "aten::matmul": frozenset({"aten.mm", "aten.bmm"}),
    "aten::mm": frozenset({"aten.mm"}),
    "aten::bmm": frozenset({"aten.bmm"}),
    "aten::addmm": frozenset({"aten.addmm"}),
    "aten::baddbmm": frozenset({"aten.baddbmm"}),
    "aten::scaled_dot_product_attention": frozenset({"aten.bmm"}),
}
"""fvcore op -> the ops it dispatches to on meta (what FlopCounterMode sees)."""


@dataclass(frozen=True)
class FlopCounterCheck:
    """``torch.utils.flop_counter.FlopCounterMode`` on the same module and meta inputs.

    It counts 2 per multiply-add. ``ops`` are its counted ops in execution order; when they line
    up one to one with fvcore's (SDPA is two bmm on meta), ``by_stage`` gives its FLOPs per
    stage, each op labelled with the stage of the fvcore op it matches.
    """

    flops: int
    by_stage: dict[str, int] | None
    ops: tuple[tuple[str, int], ...]
    mismatches: tuple[str, ...]
    """Ops whose count differs from 2x fvcore's, or why the sequences do not line up."""
    skipped: tuple[tuple[str, int], ...] = ()
    """fvcore ops FlopCounterMode has no formula for (:data:`FC_UNCOUNTED`), with their MACs:
    compare ``flops`` with 2 x (fvcore's total - these)."""

    @property
    def skipped_macs(self) -> int:
        return sum(n for _, n in self.skipped)

    @property
    def macs(self) -> int:
        return self.flops // 2

    def to_json(self) -> dict[str, Any]:
        return {"flops": self.flops, "macs": self.macs,
                "by_stage": None if self.by_stage is None else dict(self.by_stage),
                "by_stage_macs": None if self.by_stage is None
                else {k: v // 2 for k, v in self.by_stage.items()},
                "lined_up_with_fvcore": self.by_stage is not None,
                "not_counted_by_flop_counter": [{"op": k, "fvcore_flops": n} for k, n in self.skipped],
                "mismatches": list(self.mismatches)}


FC_UNCOUNTED: frozenset[str] = frozenset({
    "aten::layer_norm", "aten::group_norm", "aten::batch_norm", "aten::instance_norm",
    "aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::adaptive_avg_pool2d",
})
"""Ops fvcore's own handles count and FlopCounterMode has no formula for (norms, resampling):
left out of the line-up and of the compared total, and named in ``skipped``."""


def _expected_ops(ops: Sequence[OpCount]
                  ) -> tuple[list[tuple[OpCount, tuple[tuple[str, int], ...]]] | None, OpCount | None]:
    """fvcore's ops as FlopCounterMode will see them on meta, or None and the op that cannot line up."""
    from attncli.engine.handles import SDPA

    expected: list[tuple[OpCount, tuple[tuple[str, int], ...]]] = []
    for op in ops:
        if op.kind == SDPA:
            expected += [(op, (st,)) for st in op.stages]  # the math path: two bmm
        elif op.kind in _COMPATIBLE:
            expected.append((op, op.stages))
        elif op.kind not in FC_UNCOUNTED:
            return None, op
    return expected, None


def flop_counter_check(call: Callable[..., Any], args: Sequence[Any], ops: Sequence[OpCount],
                       stage_names: Sequence[str] = STAGES) -> FlopCounterCheck:
    """Run ``call(*args)`` under FlopCounterMode and line its ops up with fvcore's ``ops``."""
    from torch.utils.flop_counter import FlopCounterMode, flop_registry

    log: list[tuple[str, int]] = []

    def recording(packet: Any, formula: Callable[..., int]) -> Callable[..., int]:
        def count(*a: Any, out_val: Any = None, **kw: Any) -> int:
            n = int(formula(*a, out_val=out_val, **kw))
            log.append((str(packet), n))
            return n

        count._get_raw = True  # type: ignore[attr-defined]  # NOTE: formula unwraps shapes itself
        return count

    mapping = {packet: recording(packet, formula) for packet, formula in flop_registry.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            call(*args)
    total = int(counter.get_total_flops())
    expected, stray = _expected_ops(ops)
    skipped: dict[str, int] = {}
    for op in ops:
        if op.kind in FC_UNCOUNTED:
            skipped[op.kind] = skipped.get(op.kind, 0) + op.flops
    mismatches: list[str] = []
    by_stage: dict[str, int] | None = None
    if expected is None:
        where = relative_name(stray.scope) or "(layer)" if stray is not None else "?"
        kind = stray.kind if stray is not None else "?"
        mismatches.append(f"fvcore counted {kind} in {where}, an op FlopCounterMode has no matching "
                          "formula for: per-stage comparison not possible")
    elif len(expected) != len(log):
        mismatches.append(f"FlopCounterMode counted {len(log)} ops, fvcore {len(expected)}: "
                          "per-stage comparison not possible")
    else:
        by_stage = dict.fromkeys(stage_names, 0)
        for i, ((op, stages), (packet, n)) in enumerate(zip(expected, log, strict=True)):
            macs = sum(v for _, v in stages)
            where = f"op {i + 1} ({op.kind} in {relative_name(op.scope) or '(layer)'})"
            if packet not in _COMPATIBLE[op.kind]:
                mismatches.append(f"{where}: FlopCounterMode saw {packet}; per-stage comparison not possible")
                by_stage = None
                break
            if n != 2 * macs:
                mismatches.append(f"{where}: fvcore {macs:,} MACs, FlopCounterMode {n:,} FLOPs "
                                  f"(expected {2 * macs:,})")
            for stage, part in stages:  # split n the way fvcore split the op
                by_stage[stage] = by_stage.get(stage, 0) + (n * part // macs if macs else 0)
    return FlopCounterCheck(total, by_stage, tuple(log), tuple(mismatches), tuple(skipped.items()))


