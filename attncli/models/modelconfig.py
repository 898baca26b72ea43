"""Whole models: a config.json (or a packaged model preset) read as one layer and its schedule.

:func:`read_model` reads a Hugging Face ``config.json`` (or a folder holding one) and
:func:`load_model_preset` one of the published configs shipped in ``attncli/data/models/``;
both go through the same reader and return :class:`ModelSettings`: the layer's settings as
``attncli flops --config`` reads them (:func:`attncli.models.configs.settings_from_config`, the
truth guard included), the schedule of layers (:mod:`attncli.models.schedule`), the dtype the
config names, the context limit, and the weights' bytes when the folder has a
``model.safetensors.index.json``. Nothing here imports torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from attncli.models.configs import LayerSettings, _load_json, settings_from_config
from attncli.models.families import HIDDEN_KEYS
from attncli.models.schedule import Schedule, read_schedule
from attncli.spec import SpecError

DEFAULT_DTYPE = "bfloat16"
"""The dtype of a model whose config names none (and what most checkpoints of 2026 ship in)."""

DTYPE_NAMES: dict[str, str] = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16",
                               "half": "float16", "float32": "float32", "fp32": "float32", "float": "float32"}
"""``torch_dtype`` (or transformers 5's ``dtype``) values, as attncli's ``--dtype`` names them."""


@dataclass(frozen=True)
class ModelSettings:
    """One model: its layer's settings, its schedule, and what the config says about storage."""

    name: str
    source: str
    layer: LayerSettings
    schedule: Schedule
    dtype: str
    dtype_source: str
    max_positions: int | None = None
    weights_bytes: int | None = None
    weights_source: str | None = None
    notes: tuple[str, ...] = field(default=())
    config: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """The text model's config.json as read (``text_config`` of a multimodal one): what a Hugging Face
    attention class is built from (``flops --module CLASS --config ...``)."""


def _text_config(top: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if not any(top.get(k) is not None for k in HIDDEN_KEYS) and isinstance(top.get("text_config"), dict):
        return top["text_config"], "text_config."
    return top, ""


def _dtype(top: dict[str, Any], cfg: dict[str, Any], where: str) -> tuple[str, str]:
    for scope, prefix in ((cfg, where), (top, "")):
        for key in ("torch_dtype", "dtype"):
            value = scope.get(key)
            if isinstance(value, str) and value.removeprefix("torch.") in DTYPE_NAMES:
                return DTYPE_NAMES[value.removeprefix("torch.")], f"config.json:{prefix}{key}"
    return DEFAULT_DTYPE, f"default: {DEFAULT_DTYPE} (the config names no torch_dtype)"


def _weights(folder: Path | None) -> tuple[int | None, str | None]:
    """``metadata.total_size`` of the folder's ``model.safetensors.index.json``, when there is one."""
    if folder is None:
        return None, None
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        return None, None
    try:
        doc = json.loads(index.read_text(encoding="utf-8")[: 64 << 20])
        total = doc["metadata"]["total_size"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SpecError("--config", f"{index}: no metadata.total_size to read the weights' size from") from None
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise SpecError("--config", f"{index}: metadata.total_size must be a non-negative integer")
    return total, f"{index.name}: metadata.total_size"


def model_from_config(top: Any, name: str, source: str, folder: Path | None = None,
                      ignore: tuple[str, ...] = ()) -> ModelSettings:
    """The model described by a parsed config.json (see the module docstring); ``ignore``: ``--ignore-field``."""
    layer = settings_from_config(top, name, ignore)
    assert isinstance(top, dict)  # settings_from_config refused anything else
    cfg, where = _text_config(top)
    schedule = read_schedule(cfg, layer.family, where)
    dtype, dtype_source = _dtype(top, cfg, where)
    limit = cfg.get("max_position_embeddings")
    if limit is not None and (type(limit) is not int or limit < 1):  # NOTE: NaN, "4096", 0 were taken as absent
        raise SpecError("--config", f"{where}max_position_embeddings must be a positive integer, "
                                    f"got {repr(limit)[:40]}")
    max_positions = limit
    weights, weights_source = _weights(folder)
    return ModelSettings(name, source, layer, schedule, dtype, dtype_source, max_positions, weights, weights_source,
                         config=cfg)


def read_model(path: str | Path, ignore: tuple[str, ...] = ()) -> ModelSettings:
    """A model from its ``config.json`` (or the folder holding one); ``ignore``: the fields ``--ignore-field``
    lets pass (:func:`attncli.models.guard.refuse_unread`)."""
    from dataclasses import replace

    from attncli.models.hub import snapshot_of

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    name = path.name if path.is_dir() else (path.parent.name or path.name)
    snap = snapshot_of(path)
    if snap is None:
        return model_from_config(_load_json(path), name, f"config.json ({path})", folder, ignore)
    # NOTE: a Hub model is named by its repository, each value by the commit it was read at
    try:
        top = _load_json(path)
    except SpecError as exc:
        said = exc.message.replace(str(folder / "config.json"), f"{snap.origin}: config.json")
        raise SpecError(exc.flag, said) from None
    model = model_from_config(top, snap.repo, f"{snap.origin}: config.json", folder, ignore)
    if model.weights_source is not None:
        return replace(model, weights_source=f"{snap.origin}: {model.weights_source}")
    return replace(model, weights_bytes=snap.weights_bytes, weights_source=snap.weights_source)


def _index() -> dict[str, dict[str, str]]:
    text = resources.files("attncli").joinpath("data/models/index.json").read_text(encoding="utf-8")
    models: dict[str, dict[str, str]] = json.loads(text)["models"]
    return models


def model_preset_names() -> list[str]:
    return list(_index())


def load_model_preset(name: str, ignore: tuple[str, ...] = ()) -> ModelSettings:
    """A packaged model preset: the published config.json of the model, read as :func:`read_model` reads one."""
    from attncli.names import find_name

    index = _index()
    key = find_name(name, index, "--preset", "model preset", "attncli presets")
    entry = index[key]
    text = resources.files("attncli").joinpath(f"data/models/{entry['file']}").read_text(encoding="utf-8")
    model = model_from_config(json.loads(text), key, f"preset {key} ({entry['source']})", ignore=ignore)
    return ModelSettings(model.name, model.source, model.layer, model.schedule, model.dtype, model.dtype_source,
                         model.max_positions, None, None, (entry["notes"],) if entry.get("notes") else (),
                         config=model.config)
