"""The CI options ``flops`` and ``report`` share: budgets, a baseline and its tolerance."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.analyses.checks import CheckResult, CountedVariant

MaxFlops = Annotated[str | None, typer.Option(
    "--max-flops", metavar="N", rich_help_panel="Checks (CI)",
    help="Exit 1 when H heads with W_O exceed N fvcore MACs (exact: 1e9, 68.72G, 68,719,476,736; "
         "68.7G means 68,700,000,000).")]
MaxParams = Annotated[str | None, typer.Option(
    "--max-params", metavar="N", rich_help_panel="Checks (CI)",
    help="Exit 1 when H heads with W_O hold more than N parameters.")]
Baseline = Annotated[Path | None, typer.Option(
    "--baseline", metavar="FILE", dir_okay=False, rich_help_panel="Checks (CI)",
    help="An earlier flops/report JSON: exit 1 when a count grew beyond --tolerance.")]
Tolerance = Annotated[str, typer.Option(
    "--tolerance", metavar="FRACTION", rich_help_panel="Checks (CI)",
    help="Allowed growth over --baseline: a fraction (0.05) or a percentage (5%).")]
BaselineAnyLayer = Annotated[bool, typer.Option(
    "--baseline-any-layer", rich_help_panel="Checks (CI)",
    help="Compare with a --baseline made for another layer (by default its config must match).")]


def apply(variants: Iterable[CountedVariant], heads: int, max_flops: str | None, max_params: str | None,
          baseline: Path | None, tolerance: str | float, config: Mapping[str, Any] | None = None
          ) -> tuple[list[CheckResult], bool]:
    """Run the checks the user asked for; return (checks, failed). With ``config`` a baseline
    made for another layer is refused. Print the failures with :func:`print_failures` once
    the report is written (an --output error then stays the only line on stderr)."""
    from attncli.analyses.checks import run_checks

    checks = run_checks(variants, heads, max_flops=max_flops, max_params=max_params, baseline=baseline,
                        tolerance=tolerance, config=config)
    return checks, any(not c.passed for c in checks)


def preflight(max_flops: str | None, max_params: str | None, baseline: Path | None, tolerance: str | float,
              config: Mapping[str, Any] | None, any_layer: bool = False) -> None:
    """Refuse bad budgets, a bad tolerance and a bad or other-layer baseline before counting
    (SpecError, exit 2 in a moment instead of after the count); --tolerance or --baseline-any-layer
    without --baseline, which would check nothing."""
    from attncli.analyses.checks import baseline_variants, check_same_layer, load_baseline, parse_count, parse_tolerance

    parse_tolerance(tolerance)
    if baseline is None:
        for flag, given in (("--tolerance", str(tolerance) != "0"), ("--baseline-any-layer", any_layer)):
            if given:
                raise SpecError(flag, "applies to a --baseline comparison; give --baseline FILE too")
    for flag, text in (("--max-flops", max_flops), ("--max-params", max_params)):
        if text is not None:
            parse_count(text, flag)
    if baseline is not None:
        doc = load_baseline(baseline)
        if config is not None:
            check_same_layer(doc, config, f"the baseline {str(baseline)!r}")
        baseline_variants(doc)


def print_failures(checks: Iterable[CheckResult]) -> None:
    """``attncli: CHECK FAILED: ...`` on stderr for each failed check; when every check passed, one
    ``attncli: checks passed: ...`` line naming them (a CI log shows the gate ran)."""
    checks = list(checks)
    for c in checks:
        if not c.passed:
            print(f"attncli: CHECK FAILED: {c.message}", file=sys.stderr)
    if checks and all(c.passed for c in checks):
        print(f"attncli: checks passed: {', '.join(c.name for c in checks)}", file=sys.stderr)
