"""``attncli presets``: the built-in model presets, or what attncli reads from a config.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from attncli.cli import app
from attncli.cli.common import OUTPUT, Format, fail
from attncli.cli.helptext import AttnCommand, examples
from attncli.cli.layerflags import IgnoreFieldOption, check_ignored
from attncli.io.paths import check_run_files
from attncli.spec import SpecError


@app.command(cls=AttnCommand, short_help="List the layer and model presets, or read a config.json.",
             epilog=examples(
                 "attncli presets",
                 "attncli presets --format json",
                 "attncli presets --format markdown --output presets.md"))
def presets(
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE", rich_help_panel="Model / config",
        help="Show what attncli reads from this Hugging Face config.json (or a directory holding one, or a "
             "Hub model org/name), and where each value came from, instead of the presets.")] = None,
    ignore_field: IgnoreFieldOption = None,
    format: Annotated[Format, typer.Option(
        "--format", "-f", metavar="FORMAT", rich_help_panel=OUTPUT,
        help="table (for people), json (for scripts) or markdown.")] = Format.table,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", rich_help_panel=OUTPUT, dir_okay=False,
        help="Write the report to this file instead of stdout.")] = None,
) -> None:
    """List the presets: one layer per model (--preset NAME of flops, shapes, ...) and whole models
    with their schedule (attncli model --preset NAME).

    A layer preset shows dim, heads, KV heads, head size, window, bias and mask.

    Multi-head latent attention (DeepSeek, Kimi K2) shows its latent ranks and head sizes instead
    of KV heads and head size. Each value comes from the model's published config.json or paper
    (the link is shown). A config.json whose layer attncli does not model is refused.
    """
    from attncli.models import configs
    from attncli.render import emit
    from attncli.render import presets as view

    try:
        from attncli.models.hub import resolve_config, snapshot_of

        check_run_files(output, config=config)
        config = resolve_config(config)
        ignore = tuple(ignore_field or ())
        if ignore and config is None:
            raise SpecError("--ignore-field", "needs --config: it passes one of its fields")
        found = [configs.read_hf_config(config, ignore)] if config is not None else configs.list_presets()
        if config is not None:
            check_ignored(ignore, found[0].ignored_fields)
        models = [] if config is not None else model_presets()
        snap = None if config is None else snapshot_of(config)
        shown = f"{snap.origin}: config.json" if snap is not None else None if config is None else str(config)
        doc = {"schema": "attncli.presets/1",
               "config": {"config_file": shown, **({"ignored_fields": list(ignore)} if ignore else {})},
               "presets": [s.to_json() for s in found], "models": models}
        emit(format.value, doc, lambda: view.table(found, models), lambda: view.markdown(found, models), output)
    except SpecError as exc:
        fail(str(exc))


def model_presets() -> list[dict[str, Any]]:
    """The packaged whole models, each with its schedule in one line (``attncli model --preset``)."""
    from attncli.models.modelconfig import load_model_preset, model_preset_names

    out = []
    for name in model_preset_names():
        m = load_model_preset(name)
        out.append({"name": name, "family": m.layer.family, "kind": m.layer.kind, "layers": len(m.schedule.layers),
                    "schedule": m.schedule.summary(), "schedule_source": m.schedule.source, "dtype": m.dtype,
                    "source": m.source})
    return out
