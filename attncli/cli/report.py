"""``attncli report``: shapes, FLOPs and the permutation test in one document, with CI checks."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import app, budget
from attncli.cli.common import CHECKS, OUTPUT, Dtype, DtypeOption, GpuOption, spec_command
from attncli.cli.helptext import AttnCommand, examples
from attncli.cli.runtime import counting, single_threaded
from attncli.registry import ALL_KINDS
from attncli.spec import AttnSpec


@app.command(cls=AttnCommand, short_help="Shapes, FLOPs and the permutation test in one document.",
             epilog=examples(
                 "attncli report",
                 "attncli report --preset llama-3-8b --seq 4096 --format markdown",
                 "attncli report --max-flops 68.72G --max-params 1.1M --check"))
@spec_command(dim=512, heads=8, batch=32, seq=1024, impl="fused", kinds=ALL_KINDS)
@counting()
def report(
    spec: AttnSpec, fmt: str, output: Path | None,
    dtype: DtypeOption = Dtype.float32,
    gpu: GpuOption = None,
    max_flops: budget.MaxFlops = None,
    max_params: budget.MaxParams = None,
    baseline: budget.Baseline = None,
    tolerance: budget.Tolerance = "0",
    baseline_any_layer: budget.BaselineAnyLayer = False,
    check: Annotated[bool, typer.Option(
        "--check", rich_help_panel=CHECKS,
        help="Exit 1 when the FLOP cross-checks disagree or the permutation test does not hold.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", rich_help_panel=OUTPUT,
        help="The three reports whole: FLOP stages, every shape and weight, the permutation "
             "cases (the default is the answer on one screen).")] = False,
) -> None:
    """One document for CI or people: shapes, the four FLOP variants with their cross-checks, and
    the permutation test. With the defaults it shows the classic fvcore experiment on a ViT
    attention layer, 32 x 1024 x 512 (60,129,542,144 / 68,719,476,736 MACs). Budgets and a
    baseline exit 1 when exceeded.
    """
    from attncli.render import emit
    from attncli.render.common import status

    budget.preflight(max_flops, max_params, baseline, tolerance, None if baseline_any_layer else spec.to_dict(),
                     baseline_any_layer)
    with status("attncli report: counting FLOPs, tracing shapes, running the permutation test", fmt), \
            single_threaded():
        from attncli.analyses.report import build_report

        doc_report = build_report(spec, dtype.value, gpu)
    checks, failed = budget.apply(doc_report.flops.variants, spec.heads, max_flops, max_params, baseline,
                                  tolerance, config=None if baseline_any_layer else doc_report.to_json()["config"])
    doc_report = doc_report.with_checks(checks)
    emit(fmt, doc_report.to_json(), lambda: _view().table(doc_report, verbose), lambda: _view().markdown(doc_report),
         output)
    for problem in doc_report.flops.problems:
        print(f"attncli: CROSS-CHECK DISAGREES: {problem}", file=sys.stderr)
    budget.print_failures(checks)
    perm_failed = doc_report.permute is not None and not doc_report.permute.holds
    if failed or (check and (not doc_report.flops.agree or perm_failed)):
        raise typer.Exit(1)


def _view() -> types.ModuleType:
    """The report renderer, imported when a table or Markdown is drawn: it imports rich, which
    a ``--format json`` run never needs."""
    from attncli.render import report

    return report
