"""``attncli report``: shapes, FLOPs (four variants and cross-checks) and the permutation test
for one set of flags, in one document.

The permutation test runs on a small slice of the same layer (one batch item, at most
:data:`PERMUTE_TOKENS` tokens, the same dim, heads and impl): equivariance does not depend on
the sizes, and a real forward pass of the full layer would need the attention matrix in
memory. The document says so in its notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attncli.analyses.checks import CheckResult
from attncli.analyses.flops import FlopsReport
from attncli.analyses.permute import PermuteReport
from attncli.kinds.shapes import ShapesReport
from attncli.spec import AttnSpec, SpecError

SCHEMA = "attncli.report/2"
"""2: its ``flops`` is an ``attncli.flops/2`` document (docs/json-changes.md)."""
PERMUTE_TOKENS = 8


@dataclass(frozen=True)
class Report:
    spec: AttnSpec
    shapes: ShapesReport
    flops: FlopsReport
    permute: PermuteReport | None
    permute_skipped: str | None
    checks: tuple[CheckResult, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())

    def with_checks(self, checks: list[CheckResult]) -> Report:
        return Report(self.spec, self.shapes, self.flops, self.permute, self.permute_skipped,
                      tuple(checks), self.notes)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "config": {**self.spec.to_dict(), "dtype": self.flops.dtype},
            "shapes": self.shapes.to_json(),
            "flops": self.flops.to_json(),
            "permute": None if self.permute is None else self.permute.to_json(),
            "permute_skipped": self.permute_skipped,
            "checks": [c.to_json() for c in self.checks],
            "notes": list(self.notes),
        }


def permute_spec(spec: AttnSpec) -> AttnSpec:
    """The small slice of the layer the permutation test runs on."""
    return spec.with_(batch=1, seq=min(spec.seq, PERMUTE_TOKENS), kv_seq=None, out_proj=True)


def build_report(spec: AttnSpec, dtype: str = "float32", gpu: str | None = None) -> Report:
    """Count, shape and permute ``spec`` (with ``gpu``: the roofline too, in the flops part)."""
    from attncli.analyses.flops import count_flops
    from attncli.analyses.permute import permute_test
    from attncli.kinds.shapes import analyse

    flops = count_flops(spec, dtype=dtype, gpu=gpu)
    shapes = analyse(spec)
    notes: list[str] = []
    perm: PermuteReport | None = None
    skipped: str | None = None
    from attncli.registry import kind_of

    why_not = kind_of(spec).PERMUTE_SKIPPED
    if why_not is not None:
        skipped = why_not
    elif spec.chunk is not None:
        skipped = "not run: the permutation test does not take chunked attention (--chunk) yet"
    elif not spec.is_self_attention:
        skipped = ("cross-attention (--kdim/--vdim/--kv-seq): queries and keys are different "
                   "sequences, so permuting 'the tokens' is not defined")
    else:
        small = permute_spec(spec)
        try:
            perm = permute_test(small)
        except SpecError as exc:
            skipped = f"not run: {exc}"
        else:
            notes.append(f"the permutation test ran on batch 1 and {small.seq} tokens of the same layer "
                         "(equivariance does not depend on the sizes)")
    return Report(spec, shapes, flops, perm, skipped, (), tuple(notes))
