"""``--config``, ``--preset`` and ``--call`` for the commands: options and the one call that applies them.

A command's spec builder calls :func:`layer_values` with the spec option values it got from
typer; the config or preset fills every layer setting the user did not type, the typed flags
win, and the provenance says which is which. Which flags were typed comes from the click
context (a default and a typed value equal to it are told apart). Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from attncli.choices import NOT_FOR_MODULES
from attncli.cli.helptext import complete_layer_presets
from attncli.spec import SpecError


class Call(str, Enum):
    x = "x"
    qkv = "qkv"


ConfigOption = Annotated[Path | None, typer.Option(
    "--config", metavar="FILE", rich_help_panel="Model / config",
    help="Take the layer settings from a Hugging Face config.json, its directory, or a Hub model (org/name or "
         "org/name@revision, through huggingface_hub: its cache, HF_TOKEN, HF_HUB_OFFLINE; a request gives up "
         "after 10 s, ATTNCLI_HUB_TIMEOUT); flags you give win.")]
PresetOption = Annotated[str | None, typer.Option(
    "--preset", metavar="NAME", rich_help_panel="Model / config", autocompletion=complete_layer_presets,
    help="Take the layer settings from a preset: one layer, or a whole model's (names: attncli presets).")]
LayerOption = Annotated[int | None, typer.Option(
    "--layer", metavar="N", min=0, rich_help_panel="Model / config",
    help="With --config or --preset: count layer N of the model (default 0), with its own type, window or "
         "chunk, as the model builds it.")]
IgnoreFieldOption = Annotated[list[str] | None, typer.Option(
    "--ignore-field", metavar="NAME", rich_help_panel="Model / config",
    help="Count past a config.json field attncli refuses as unread (NAME, or text_config.NAME) when you know it "
         "does not change the attention layer; repeatable; titles and JSON name it.")]
CallOption = Annotated[Call | None, typer.Option(
    "--call", metavar="CALL", rich_help_panel="Module",
    help="x: call --module as module(x); qkv: as module(q, k, v) (default: read from its forward signature).")]

DEFAULT_MODULE_TIMEOUT = 60.0
"""``--module-timeout``'s default, seconds (attncli.modules.fence.DEFAULT_TIMEOUT is the same)."""
MAX_MODULE_TIMEOUT = 1e6
"""The largest ``--module-timeout``, seconds (about 11.6 days); more (``inf``, ``1e10``) is refused
naming the flag: the watchdog's timer cannot wait that long (``OverflowError`` in its thread, and a
looping module then ran forever). ``0`` is the way to ask for no limit."""
ModuleTimeoutOption = Annotated[float, typer.Option(
    "--module-timeout", metavar="SECONDS", min=0.0, max=MAX_MODULE_TIMEOUT, rich_help_panel="Module",
    help="Stop --module's code (import, build, run) after this many seconds (0: no limit; at most "
         "1000000, about 11 days).")]

MODULE_REFUSED = tuple(NOT_FOR_MODULES)
"""Spec flags --module refuses when typed (attncli.choices.NOT_FOR_MODULES names their flags)."""


def module_flags_typed() -> set[str]:
    """The flags among :data:`MODULE_REFUSED` and ``bias`` the user typed (``--bias`` goes to a
    Hugging Face class's config, and is refused by a ``FACTORY(dim, heads)``)."""
    return explicit_names((*MODULE_REFUSED, "bias"))


def explicit_names(names: Iterable[str]) -> set[str]:
    """The parameters among ``names`` the user gave on the command line or in the environment."""
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return set()
    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return {n for n in names if ctx.get_parameter_source(n) in given}


SPEC_KEYWORDS: dict[str, str] = {"head_dim": "d_head"}
"""Settings whose ``AttnSpec`` keyword differs from the config's name (``--head-dim`` is ``d_head``)."""


def layer_values(values: dict[str, Any], config: Path | None, preset: str | None,
                 explicit: set[str] | None = None,
                 notes: list[str] | None = None, layer: int | None = None,
                 ignore: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """The spec option ``values`` with ``--config``/``--preset`` laid under the flags the user typed.

    Returns the new values (keys as ``AttnSpec`` keywords, ready for ``spec_from``: the config's
    ``head_dim`` becomes ``d_head``; a causal model's ``mask`` is ``causal``) and the provenance
    of each layer setting, keyed as in ``AttnSpec.to_dict`` (``{}`` without a config or preset).
    ``explicit`` names the typed flags; by default it is read from the current click context.
    ``notes``, when given, receives what a ``--config`` says attncli reads but does not count
    (sinks, softcapping, qk-norm, the layer of a schedule described, an unverified family).
    ``layer`` (``--layer N``) selects layer N of the whole model (:mod:`attncli.models.modellayer`);
    the values then carry ``layer``, ``layer_type`` and ``model_config``, and so does layer 0 of a
    config or whole-model preset (``model_config`` only: what ``--module`` builds a class from). ``ignore``
    (``--ignore-field``) names the unread fields to count past (:func:`check_ignored`).
    """
    from attncli.models import modellayer
    from attncli.models.configs import load_preset, merge, read_hf_config

    if config is not None and preset is not None:
        raise SpecError("--preset", "give --config or --preset, not both")
    if config is None and preset is None:
        if layer is not None:
            raise SpecError("--layer", "needs --config or --preset: it selects one layer of that model")
        if ignore:
            raise SpecError("--ignore-field", "needs --config or --preset: it passes one of their fields")
        return values, {}
    extra: dict[str, Any] = {}
    if layer is not None or modellayer.is_model_preset_only(preset):
        settings, extra = modellayer.select(config, preset, 0 if layer is None else layer, ignore)
        if layer is None:
            extra = {"model_config": extra["model_config"]}
    else:
        settings = read_hf_config(config, ignore) if config is not None else load_preset(str(preset))
        model_config = modellayer.model_config(config, preset, ignore)
        if model_config is not None:
            extra = {"model_config": model_config}
    if notes is not None and config is not None and settings.notes:
        notes += [f"config.json: {n}" for n in settings.notes.split("; ")]
    typed = explicit_names(values) if explicit is None else explicit
    to_config = {v: k for k, v in SPEC_KEYWORDS.items()}
    given = {to_config.get(k, k): (v.value if isinstance(v, Enum) else v)
             for k, v in values.items() if k in typed}
    merged = merge(settings, given)
    if config is not None:
        from attncli.models.values import refuse_unknown_mask

        refuse_unknown_mask(settings.sources.get("causal", ""), settings.family, "mask" in given)
    out = dict(values)
    out.update({SPEC_KEYWORDS.get(k, k): v for k, v in merged.values.items()})
    out.update(extra)
    out["model"] = _model_name(config, preset)
    check_ignored(ignore, settings.ignored_fields)
    if settings.ignored_fields:
        out["ignored_fields"] = settings.ignored_fields
    return out, {k: v for k, v in merged.sources.items() if k in merged.values}


def check_ignored(ignore: tuple[str, ...], passed: tuple[str, ...]) -> None:
    """Refuse an ``--ignore-field`` that names no field the config would be refused for: the title would claim
    a judgement the count does not rest on (a typo, a field attncli reads)."""
    bare = {p.rsplit(".", 1)[-1] for p in passed}
    for name in ignore:
        if name not in passed and name not in bare:
            raise SpecError("--ignore-field", f"{name}: not a field of this config that attncli refuses as unread"
                                              + (f" (it passed {', '.join(passed)})" if passed else ""))


def _model_name(config: Path | None, preset: str | None) -> str:
    """What a title calls the model: the preset's name, or the config's folder (or file) name."""
    if preset is not None:
        return preset.lower()
    assert config is not None
    from attncli.models.hub import snapshot_of

    snap = snapshot_of(config)
    if snap is not None:
        return snap.repo
    if config.name == "config.json" and not config.is_dir():
        return config.resolve().parent.name or config.name
    return config.name


def spec_keywords(settings: Any) -> dict[str, Any]:
    """A config's or preset's :class:`~attncli.models.configs.LayerSettings` as ``AttnSpec`` keywords
    (``head_dim`` becomes ``d_head``; the mask of a decoder is ``causal``)."""
    from attncli.models.configs import merge

    merged = merge(settings, {})
    return {SPEC_KEYWORDS.get(k, k): v for k, v in merged.values.items()}
