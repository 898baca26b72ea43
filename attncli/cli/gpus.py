"""``attncli gpus``: the accelerators ``--gpu`` accepts, with their datasheet figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import app
from attncli.cli.common import OUTPUT, Format, fail
from attncli.cli.helptext import AttnCommand, examples
from attncli.spec import SpecError


@app.command(cls=AttnCommand, short_help="List the accelerators --gpu takes, with datasheet figures.",
             epilog=examples(
                 "attncli gpus",
                 "attncli gpus --format markdown"))
def gpus(
    format: Annotated[Format, typer.Option(
        "--format", "-f", metavar="FORMAT", rich_help_panel=OUTPUT,
        help="table (for people), json (for scripts) or markdown.")] = Format.table,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", rich_help_panel=OUTPUT, dir_okay=False,
        help="Write the report to this file instead of stdout.")] = None,
) -> None:
    """List the accelerators of the roofline estimate (--gpu NAME): dense peak FLOP/s per dtype
    (no 2:4 sparsity; datasheets that quote the sparsity figure are halved, see the notes),
    memory bandwidth, memory and the datasheet each figure comes from.
    """
    from attncli.analyses.gpus import gpus as table
    from attncli.analyses.gpus import gpus_document
    from attncli.render import emit
    from attncli.render import gpus as view

    try:
        emit(format.value, gpus_document(), lambda: view.table(table()), lambda: view.markdown(table()), output)
    except SpecError as exc:
        fail(str(exc))
