"""``attncli presets``: the built-in model presets, or what attncli reads from a config.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import app
from attncli.cli.common import Format, fail
from attncli.spec import SpecError


@app.command()
def presets(
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="CONFIG.JSON",
        help="Show what attncli reads from this Hugging Face config.json (or a directory holding one), "
             "and where each value came from, instead of the presets.")] = None,
    format: Annotated[Format, typer.Option(
        "--format", "-f", help="table (for people), json (for scripts) or markdown.")] = Format.table,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the report to this file instead of stdout.", dir_okay=False)] = None,
) -> None:
    """List the model presets (--preset NAME): dim, heads, KV heads, head size, window, bias, mask.

    Multi-head latent attention (DeepSeek, Kimi K2) shows its latent ranks and head sizes instead
    of KV heads and head size. Each value comes from the model's published config.json or paper
    (the link is shown). A config.json whose layer attncli does not model is refused.
    """
    from attncli.models import configs
    from attncli.render import emit
    from attncli.render import presets as view

    try:
        found = [configs.read_hf_config(config)] if config is not None else configs.list_presets()
        doc = {"schema": "attncli.presets/1",
               "config": {"config_file": str(config) if config is not None else None},
               "presets": [s.to_json() for s in found]}
        emit(format.value, doc, lambda: view.table(found), lambda: view.markdown(found), output)
    except SpecError as exc:
        fail(str(exc))
