"""The CI options ``flops`` and ``report`` share: budgets, a baseline and its tolerance."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from attncli.checks import CheckResult, CountedVariant

MaxFlops = Annotated[str | None, typer.Option(
    "--max-flops", metavar="N",
    help="Exit 1 when H heads with W_O exceed N fvcore MACs (1e9, 68.7G, 68,719,476,736).")]
MaxParams = Annotated[str | None, typer.Option(
    "--max-params", metavar="N", help="Exit 1 when H heads with W_O hold more than N parameters.")]
Baseline = Annotated[Path | None, typer.Option(
    "--baseline", dir_okay=False, help="An earlier flops/report JSON: exit 1 when a count grew beyond --tolerance.")]
Tolerance = Annotated[float, typer.Option(
    "--tolerance", help="Allowed growth over --baseline, as a fraction (0.05 = 5%).")]


def apply(variants: Iterable[CountedVariant], heads: int, max_flops: str | None, max_params: str | None,
          baseline: Path | None, tolerance: float) -> tuple[list[CheckResult], bool]:
    """Run the checks the user asked for; print failures to stderr; return (checks, failed)."""
    from attncli.checks import run_checks

    checks = run_checks(variants, heads, max_flops=max_flops, max_params=max_params, baseline=baseline,
                        tolerance=tolerance)
    failed = [c for c in checks if not c.passed]
    for c in failed:
        print(f"attncli: CHECK FAILED: {c.message}", file=sys.stderr)
    return checks, bool(failed)
