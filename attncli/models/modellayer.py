"""``--layer N`` with ``--config``/``--preset``: one layer of a whole model, as the model builds it.

A model's layers differ (Gemma 3: five sliding layers of window 1024, then a full one; gpt-oss:
sliding 128 and full in turn; Llama 4: chunked layers with RoPE, full NoPE ones). Without
``--layer`` a config describes layer 0, as it always has. :func:`select` reads the whole model
(:func:`attncli.models.modelconfig.read_model` or a whole-model preset), takes layer N's type,
window and chunk from its schedule (:mod:`attncli.models.schedule`, transformers' own rules) and
returns the layer's settings with the spec keywords that name it: ``layer``, ``layer_type`` and
``model_config``, the text config a Hugging Face class given with ``--module`` is built from.
Nothing here imports torch.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

from attncli.models.configs import LayerSettings
from attncli.spec import SpecError

FLAG = "--layer"


def _model(config: Path | None, preset: str | None, ignore: tuple[str, ...] = ()) -> Any:
    """The whole model of ``--config``/``--preset``, read once per run (``select``, ``model_config`` and
    ``model_dtype`` all ask; callers copy what they change). A config file is read again when it changed."""
    stamp: tuple[int, int] | None = None
    if config is not None:
        try:
            st = (config / "config.json" if config.is_dir() else config).stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
    return _read_model(config, preset, stamp, ignore)


@functools.lru_cache(maxsize=8)
def _read_model(config: Path | None, preset: str | None, stamp: tuple[int, int] | None,
                ignore: tuple[str, ...]) -> Any:
    from attncli.models.modelconfig import load_model_preset, model_preset_names, read_model

    if config is not None:
        return read_model(config, ignore)
    assert preset is not None
    if preset.lower() not in model_preset_names():
        raise SpecError(FLAG, f"preset {preset!r} describes one layer, not a whole model; the whole-model presets "
                              f"are {', '.join(model_preset_names())}")
    return load_model_preset(preset, ignore)


def is_model_preset_only(preset: str | None) -> bool:
    """Whether ``--preset NAME`` names a whole-model preset and no one-layer preset."""
    from attncli.models.configs import preset_names
    from attncli.models.modelconfig import model_preset_names

    if preset is None:
        return False
    key = preset.lower()
    return key not in preset_names() and key in model_preset_names()


def model_config(config: Path | None, preset: str | None, ignore: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The text config.json of ``--config``/``--preset`` when it describes a whole model, else ``None``
    (a one-layer preset, or a config whose schedule attncli cannot read: layer 0 is still described)."""
    try:
        model = _model(config, preset, ignore)
    except SpecError:
        return None
    cfg = model.config
    return None if cfg is None else dict(cfg)


def select(config: Path | None, preset: str | None, layer: int,
           ignore: tuple[str, ...] = ()) -> tuple[LayerSettings, dict[str, Any]]:
    """Layer ``layer`` of the model of ``--config``/``--preset``: its settings and the spec keywords
    ``layer``, ``layer_type`` and ``model_config``. A layer the model does not have exits 2 naming ``--layer``."""
    if layer < 0:
        raise SpecError(FLAG, f"{layer}: a layer index counts from 0")
    model = _model(config, preset, ignore)
    layers = model.schedule.layers
    if layer >= len(layers):
        raise SpecError(FLAG, f"{layer}: {model.name} has {len(layers)} layers, 0 to {len(layers) - 1}")
    info = layers[layer]
    from attncli.models.schedule import NO_MIXER, SHORT

    if info.layer_type in NO_MIXER:
        mixers = [i.index for i in layers if i.layer_type not in NO_MIXER]
        near = min(mixers, key=lambda i: abs(i - layer)) if mixers else None
        hint = f" (layer {near} has one)" if near is not None else ""
        raise SpecError(FLAG, f"{layer}: layer {layer} of {model.name} is {SHORT[info.layer_type]}, a block with no "
                              f"token mixer: nothing to count{hint}")
    base: LayerSettings = model.layer
    origin = f"layer {layer} of {model.schedule.source}"
    sources = dict(base.sources)
    sources["window"] = origin if info.window is not None else f"layer {layer} has no sliding window"
    sources["chunk"] = origin if info.chunk is not None else f"layer {layer} has no chunks"
    described = f"layer {layer} of {len(layers)} ({info.key.label()}) is described ({model.schedule.source})"
    notes = [n for n in base.note_lines if "is described" not in n]
    from attncli.models.geometry import settings_fields

    own, own_fields = settings_fields(info.sizes, info.kv_source)  # NOTE: the layer type's own sizes
    sources.update(dict.fromkeys((*own, *own_fields), origin))
    fields = {k: v for k, v in base.attention_fields.items() if k != "kv_shared"}
    settings = replace(base, window=info.window, chunk=info.chunk, layer0_type=info.layer_type,
                       sources=sources, notes="; ".join([described, *notes]), **own,
                       attention_fields={**fields, **own_fields})
    extra = {"layer": layer, "layer_type": info.layer_type,
             "model_config": None if model.config is None else dict(model.config)}
    return settings, extra


def model_dtype(config: Path | None, preset: str | None, ignore: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(the dtype the model is published in, where that is said), or ``None`` when the config or preset
    does not say: a config's ``torch_dtype``/``dtype``, a one-layer preset's ``dtype`` (its published
    config's ``torch_dtype``, attncli/data/presets.json)."""
    if preset is not None and not is_model_preset_only(preset):
        from attncli.models.configs import preset_dtype

        return preset_dtype(preset)
    try:
        model = _model(config, preset, ignore)
    except SpecError:
        return None
    if model.dtype_source.startswith("default"):
        return None
    return model.dtype, model.dtype_source
