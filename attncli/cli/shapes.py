"""``attncli shapes``: output and weight shapes stage by stage, and parameter counts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import app
from attncli.cli.common import LAYER, MODULE, OUTPUT, spec_command
from attncli.cli.helptext import AttnCommand, examples
from attncli.cli.layerflags import DEFAULT_MODULE_TIMEOUT, CallOption, ModuleTimeoutOption, module_flags_typed
from attncli.io.interrupts import end_stuck_run
from attncli.io.streams import keep_report_apart
from attncli.registry import ALL_KINDS
from attncli.spec import AttnSpec, SpecError


@app.command(cls=AttnCommand, short_help="Shapes at every stage, every weight and the parameter count.",
             epilog=examples(
                 "attncli shapes",
                 "attncli shapes --dim 768 --heads 12 --seq 197 --verbose",
                 "attncli shapes --preset llama-3-8b --seq 16 --no-out-proj"))
@spec_command(dim=512, heads=8, batch=1, seq=10, impl="torch", kinds=ALL_KINDS)
def shapes(
    spec: AttnSpec, fmt: str, output: Path | None,
    no_out_proj: Annotated[bool, typer.Option(
        "--no-out-proj", rich_help_panel=LAYER,
        help="Build the layer without W_O.")] = False,
    module: Annotated[str | None, typer.Option(
        "--module", metavar="PKG.MOD:FACTORY", rich_help_panel=MODULE,
        help="Shape your own attention module, built as FACTORY(dim, heads) (or a Hugging Face attention "
             "class, from the layer flags), instead of --impl. Runs your code with your rights.")] = None,
    call: CallOption = None,
    module_timeout: ModuleTimeoutOption = DEFAULT_MODULE_TIMEOUT,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", rich_help_panel=OUTPUT,
        help="Explain every stage and list every weight (the default is the shapes on one "
             "screen).")] = False,
) -> None:
    """Show the shape at every stage, every weight, the parameter total and MHA's outputs.

    Defaults follow a 10-token sentence with E=512 and 8 heads: q (1, 10, 512) is split into
    (1, 8, 10, 64).
    """
    from attncli.render import emit
    from attncli.render import shapes as view
    from attncli.render.common import status

    if module is not None:
        from attncli.modules.usermodule import user_shapes
        from attncli.render import usermodule as uview

        if no_out_proj:
            raise SpecError("--no-out-proj", f"does not apply to --module {module} (the module builds its own layer)")
        keep_report_apart()  # NOTE: before the user's code is imported: its prints, and its threads', go to stderr
        with status(f"attncli shapes: tracing {module}", fmt):
            found = user_shapes(module, spec, call=None if call is None else call.value, typed=module_flags_typed(),
                                timeout=module_timeout, last_resort=end_stuck_run)
        emit(fmt, found.to_json(), lambda: uview.shapes_table(found), lambda: uview.shapes_markdown(found), output)
        return
    if no_out_proj:
        spec = spec.with_(out_proj=False)
    with status("attncli shapes: tracing the layer", fmt):
        from attncli.kinds import shapes as core

        report = core.analyse(spec)
    emit(fmt, report.to_json(), lambda: view.table(report, verbose), lambda: view.markdown(report), output)
