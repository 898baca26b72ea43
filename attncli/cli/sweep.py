"""``attncli sweep``: FLOPs, parameters and attention memory over a range of one setting."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from attncli.choices import SETTING_FLAGS
from attncli.cli import app
from attncli.cli.common import CHECKS, OUTPUT, Dtype, DtypeOption, GpuOption, fail, spec_command
from attncli.cli.helptext import AttnCommand, examples
from attncli.cli.runtime import counting
from attncli.registry import ALL_KINDS
from attncli.spec import AttnSpec


@app.command(cls=AttnCommand, short_help="FLOPs, parameters and memory over a range of one setting.",
             epilog=examples(
                 "attncli sweep",
                 "attncli sweep --heads 1:64:x2",
                 "attncli sweep --preset llama-3-8b --window 4096 --seq 1024:65536:x2",
                 "attncli sweep --seq 1 --cache 0:131072:+32768 --gpu h100-sxm"))
@spec_command(sweep=True, dim=512, heads=8, batch=1, seq=1024, impl="fused", sweep_default=("seq", "128:8192:x2"),
               kinds=ALL_KINDS)
@counting()
def sweep(
    spec: AttnSpec, fmt: str, output: Path | None, swept: tuple[str | None, list[int]],
    dtype: DtypeOption = Dtype.float32,
    gpu: GpuOption = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", metavar="FILE", dir_okay=False, rich_help_panel=OUTPUT,
        help="Also draw the sweep to this PNG (needs attncli[plot]).")] = None,
    check: Annotated[bool, typer.Option(
        "--check", rich_help_panel=CHECKS,
        help="Exit 1 when fvcore, the closed form and FlopCounterMode disagree.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", rich_help_panel=OUTPUT,
        help="Add the exponent table, the effective counts' local exponents and a chart (the "
             "default is the answer on one screen).")] = False,
) -> None:
    """Count H heads with W_O over a range of one setting (default: --seq 128:8192:x2).

    Any of --seq, --heads, --dim, --batch, --kv-heads, --head-dim, --window or --cache takes a
    range. With --gpu every point gets a roofline estimate and the output says where the layer
    crosses from memory-bound to compute-bound.

    Shows a table, a terminal chart and the fitted growth exponent per stage: QK^T grows as
    L^2, the projections as L, and heads change nothing. Under a causal mask or a window it also
    shows the effective counts (visible pairs only) and the local exponent between neighbouring
    values: with --window W the effective QK^T grows as L^2 up to L = W, then towards W L.
    """
    setting, values = swept
    if setting is None:
        fail("give one of --seq, --heads, --dim, --batch, --kv-heads, --head-dim, --window, --cache a range, "
             "e.g. --seq 128:8192:x2")
    if plot is not None:
        check_plot(plot, output)

    from attncli.analyses.sweep import run_sweep
    from attncli.analyses.timemodel import announce
    from attncli.render import emit
    from attncli.render import sweep as view
    from attncli.render.common import progress

    with progress(f"counting {len(values)} values of {SETTING_FLAGS[setting]}", len(values)) as advance:
        report = run_sweep(spec, setting, values, dtype.value, advance, gpu=gpu, on_estimate=announce)
    if plot is not None:  # NOTE: before the report: a --plot failure exits 2 with stdout empty
        write_plot(lambda: view.plot(report, plot), plot)
    emit(fmt, report.to_json(), lambda: view.table(report, verbose), lambda: view.markdown(report), output)
    for problem in report.problems:
        print(f"attncli: CROSS-CHECK DISAGREES: {problem}", file=sys.stderr)
    if check and not report.agree:
        raise typer.Exit(1)


def check_plot(plot: Path, output: Path | None) -> None:
    """Refuse a --plot matplotlib is missing for, or cannot write, before any counting (exit 2); and one beside
    a report that cannot be written (stdout closed, no ``--output``), which would leave the plot and fail."""
    from attncli.io.streams import stdout_closed

    if output is None and stdout_closed():
        fail("--output: cannot write to stdout: stdout is closed (pass --output FILE to write a file instead)")
    try:
        import matplotlib.figure
    except ImportError:
        fail("--plot needs matplotlib: pip install 'attncli[plot]' (with pipx: pipx inject attncli matplotlib)")
    kinds = matplotlib.figure.Figure().canvas.get_supported_filetypes()
    if plot.suffix.lstrip(".").lower() not in kinds:
        fail(f"--plot: {plot.name!r} needs one of the suffixes {', '.join('.' + k for k in sorted(kinds))}")
    if not plot.parent.is_dir():
        fail(f"--plot: the folder {str(plot.parent)!r} does not exist")


def write_plot(draw: Callable[[], None], plot: Path) -> None:
    """Draw the plot (before the report, so a failure leaves stdout empty) and say where it went."""
    try:
        draw()
    except OSError as exc:
        fail(f"--plot: cannot write {str(plot)!r}: {exc.strerror or exc}")
    print(f"attncli: wrote the plot to {str(plot)!r}", file=sys.stderr)
