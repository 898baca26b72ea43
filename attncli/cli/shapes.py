"""``attncli shapes``: output and weight shapes stage by stage, and parameter counts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import app
from attncli.cli.common import spec_command
from attncli.spec import AttnSpec


@app.command()
@spec_command(dim=512, heads=8, batch=1, seq=10, impl="torch")
def shapes(
    spec: AttnSpec, fmt: str, output: Path | None,
    no_out_proj: Annotated[bool, typer.Option("--no-out-proj", help="Build the layer without W_O.")] = False,
) -> None:
    """Show the shape at every stage, every weight, the parameter total and MHA's outputs.

    Defaults follow a 10-token sentence with E=512 and 8 heads: q (1, 10, 512) is split into
    (1, 8, 10, 64).
    """
    from attncli import shapes as core
    from attncli.render import emit
    from attncli.render import shapes as view

    if no_out_proj:
        spec = spec.with_(out_proj=False)
    report = core.analyse(spec)
    emit(fmt, report.to_json(), lambda: view.table(report), lambda: view.markdown(report), output)
