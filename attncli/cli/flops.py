"""``attncli flops``: fvcore FLOPs of one head and H heads, with and without W_O, at any size."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from attncli.cli import app, budget
from attncli.cli.common import CHECKS, MODULE, OUTPUT, Dtype, DtypeOption, GpuOption, fail, spec_command
from attncli.cli.helptext import AttnCommand, examples
from attncli.cli.layerflags import DEFAULT_MODULE_TIMEOUT, CallOption, ModuleTimeoutOption, module_flags_typed
from attncli.cli.runtime import counting
from attncli.io.interrupts import end_stuck_run
from attncli.io.streams import keep_report_apart
from attncli.registry import ALL_KINDS
from attncli.spec import AttnSpec


@app.command(cls=AttnCommand, short_help="Count one layer's FLOPs, cross-checked three ways.", epilog=examples(
    "attncli flops",
    "attncli flops --dim 4096 --heads 32 --kv-heads 8 --seq 8192 --mask causal",
    "attncli flops --preset llama-3-8b --seq 1 --cache 131072 --gpu h100-sxm",
    "attncli flops --max-flops 68.72G --format json --output flops.json"))
@spec_command(dim=512, heads=8, batch=32, seq=1024, impl="fused", kinds=ALL_KINDS)
@counting()
def flops(
    spec: AttnSpec, fmt: str, output: Path | None,
    dtype: DtypeOption = Dtype.float32,
    gpu: GpuOption = None,
    check: Annotated[bool, typer.Option(
        "--check", rich_help_panel=CHECKS,
        help="Exit 1 when fvcore, the closed form and FlopCounterMode disagree.")] = False,
    max_flops: budget.MaxFlops = None,
    max_params: budget.MaxParams = None,
    baseline: budget.Baseline = None,
    tolerance: budget.Tolerance = "0",
    baseline_any_layer: budget.BaselineAnyLayer = False,
    module: Annotated[str | None, typer.Option(
        "--module", metavar="PKG.MOD:FACTORY", rich_help_panel=MODULE,
        help="Count your own attention module, built as FACTORY(dim, heads) (or a Hugging Face attention "
             "class, from the layer flags), instead of --impl. Runs your code with your rights.")] = None,
    call: CallOption = None,
    module_timeout: ModuleTimeoutOption = DEFAULT_MODULE_TIMEOUT,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", rich_help_panel=OUTPUT,
        help="Show every stage, the uncounted ops, memory, notes and conventions (the default "
             "table is the answer on one screen).")] = False,
) -> None:
    """Count FLOPs with fvcore for 1 and H heads, with and without W_O, on the meta device.

    Defaults are the classic fvcore experiment on a ViT attention layer (fused qkv, 32 images x
    1024 tokens x 512 features, 8 heads): 1 head and 8 heads without W_O both cost
    60,129,542,144 MACs; with W_O, 68,719,476,736. fvcore counts
    one multiply-add as one flop (MACs); FLOPs are 2x. Every count is checked per stage against
    the closed form and torch's FlopCounterMode; a disagreement goes to stderr (exit 1 with
    --check). Any size works: nothing is allocated. For CI: --max-flops, --max-params and
    --baseline exit 1 when exceeded.
    """
    from attncli.render import emit
    from attncli.render.common import status

    budget.preflight(max_flops, max_params, baseline, tolerance, None if baseline_any_layer else spec.to_dict(),
                     baseline_any_layer)
    counted: Any
    table: Callable[[Any], Any]
    markdown: Callable[[Any], str]
    if module is not None:
        if gpu is not None:
            fail("--gpu: the roofline needs the layer's closed form; it is not available with --module")
        from attncli.cli.runtime import without_placeholder
        from attncli.modules.usermodule import count_user_module
        from attncli.render import usermodule as uview

        without_placeholder()
        keep_report_apart()  # NOTE: before the user's code is imported: its prints, and its threads', go to stderr

        with status(f"attncli flops: counting {module}", fmt):
            counted = count_user_module(module, spec, call=None if call is None else call.value,
                                        typed=module_flags_typed(), timeout=module_timeout, dtype=dtype.value,
                                        last_resort=end_stuck_run)
        table, markdown = (lambda c: uview.flops_table(c, verbose)), uview.flops_markdown
    else:
        with status("attncli flops: counting 4 variants with fvcore and FlopCounterMode", fmt):
            from attncli.analyses.flops import count_flops

            counted = count_flops(spec, dtype=dtype.value, gpu=gpu)
        table, markdown = (lambda c: _view().table(c, verbose)), (lambda c: _view().markdown(c))
    doc = counted.to_json()
    checks, failed = budget.apply(counted.variants, spec.heads, max_flops, max_params, baseline, tolerance,
                                  config=None if baseline_any_layer else doc.get("config"))
    doc = {**doc, "checks": [c.to_json() for c in checks]}
    emit(fmt, doc, lambda: _checks_view().with_checks(lambda: table(counted), checks)(),
         lambda: _checks_view().md_with_checks(lambda: markdown(counted), checks)(), output)
    for problem in counted.problems:
        print(f"attncli: CROSS-CHECK DISAGREES: {problem}", file=sys.stderr)
    budget.print_failures(checks)
    if check and counted.agree:
        print("attncli: --check passed: fvcore, the closed form and FlopCounterMode agree", file=sys.stderr)
    if failed or (check and not counted.agree):
        raise typer.Exit(1)


def _view() -> types.ModuleType:
    """The flops renderer, imported when a table or Markdown is drawn: it imports rich, which a
    ``--format json`` run never needs."""
    from attncli.render import flops

    return flops


def _checks_view() -> types.ModuleType:
    from attncli.render import checks

    return checks
