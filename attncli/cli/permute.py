"""``attncli permute-test``: show, correctly, why attention needs positional encoding.

A thin command over :func:`attncli.analyses.permute.permute_test`; torch, the core and rich are
imported inside the function so ``attncli --help`` stays fast.
"""

# NOTE: no ``from __future__ import annotations`` here: spec_command copies this function's
# parameters into the command signature as they are, and typer reads the ``Annotated``
# options from it; string annotations would lose the option names and help texts.

import sys
from pathlib import Path
from typing import Annotated

import typer

from attncli.choices import dtype_name
from attncli.cli import app
from attncli.cli.common import OUTPUT, spec_command
from attncli.cli.helptext import AttnCommand, examples
from attncli.spec import AttnSpec, SpecError


@app.command("permute-test", cls=AttnCommand, short_help="Show why attention needs positional encoding.",
             epilog=examples(
                 "attncli permute-test",
                 "attncli permute-test --encoding rope --permutation 2,0,1",
                 "attncli permute-test --dim 8 --seq 5 --dtype float32 --verbose"))
@spec_command(dim=2, heads=1, batch=1, seq=3, impl="torch")
def permute_test(
    spec: AttnSpec, fmt: str, output: Path | None,
    permutation: Annotated[str | None, typer.Option(
        "--permutation", "-p", metavar="ORDER", rich_help_panel="Permutation",
        help="The new token order, 0-based: entry j names the token placed at slot j. "
             "Default: 0,2,1 (the classic demo's swap of the last two) for 3 tokens, "
             "else a seeded random non-identity order.",
    )] = None,
    encoding: Annotated[list[str] | None, typer.Option(
        "--encoding", "-e", metavar="NAME", rich_help_panel="Permutation",
        help="none, sinusoidal, learned or rope; repeatable (default: all). "
             "The no-encoding case is always run as the baseline.",
    )] = None,
    tolerance: Annotated[float | None, typer.Option(
        "--tolerance", metavar="X", rich_help_panel="Permutation",
        help="Largest |f(Px) - P f(x)| still called equivariant "
             "(default: 1e-6 in float64, 1e-5 in float32).",
    )] = None,
    dtype: Annotated[str, typer.Option(
        "--dtype", metavar="DTYPE", rich_help_panel="Permutation", parser=dtype_name,
        help="float64 (default: rounding stays near 1e-16) or float32.",
    )] = "float64",
    tokens: Annotated[str, typer.Option(
        "--tokens", metavar="TOKENS", rich_help_panel="Permutation",
        help="auto (the classic demo's tokens (1,2), (2,3), (3,4) when --dim 2 --seq 3, else seeded random), "
             "seed, random, or the tokens themselves: '1,2;2,3;2,3' (';' between tokens).",
    )] = "auto",
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", rich_help_panel=OUTPUT,
        help="Add what each encoding does, every encoding's token outputs and the notes (the "
             "default is the demonstration on one screen).")] = False,
) -> None:
    """Permute the tokens and compare f(Px) with P f(x), with and without positional encoding.

    Without positional encoding self-attention only permutes its outputs along with its
    inputs (b1 stays the same when a1 stays in place); each encoding breaks that symmetry.
    Exit 0 when the demonstration holds, 1 when it does not or the request proves nothing
    (one token, the identity, a swap of identical tokens), 2 for bad flags.
    """
    from attncli.render import emit
    from attncli.render import permute as view
    from attncli.render.common import status

    if spec.chunk is not None:
        raise SpecError("--chunk", "attncli permute-test does not take chunked attention yet (flops, shapes, sweep, "
                                   "report and bench do)")
    with status("attncli permute-test: running the layer on permuted tokens", fmt):
        from attncli.analyses import permute as core
        from attncli.analyses.timemodel import announce

        report = core.permute_test(spec, permutation=permutation, encodings=encoding,
                                   tolerance=tolerance, dtype=dtype, tokens=tokens, on_estimate=announce)
    emit(fmt, report.to_json(), lambda: view.table(report, verbose), lambda: view.markdown(report), output)
    if not report.holds:
        print("attncli: CHECK FAILED: permute-test: the demonstration does not hold for this request "
              "(see the verdict in the report)", file=sys.stderr)
        raise typer.Exit(1)
