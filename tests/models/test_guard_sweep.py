"""The guard is an allowlist, measured on every model type transformers registers.

For each ``transformers.CONFIG_MAPPING`` type, the default config (``cfg_cls().to_dict()``, what
``save_pretrained`` writes for it, with ``architectures`` naming the type's causal-LM or image-text-to-text class
as a checkpoint saved from that class does) is read as ``attncli flops --config`` reads a config.json. Each is
answered or refused naming a field; an answer is allowed only when every field of the config (and of
the top level of a multimodal one) was read by the reader, or is in the allowlist of fields known not
to change the attention layer (:mod:`attncli.models.allowlist`). "Read" is measured, not declared: the
config is a dict that records which fields the reader and the guard looked up (a field the guard's table,
:func:`attncli.models.families.read_fields`, only declares read without looking at it counts only when the
reader looks it up). A config class that cannot be built with its defaults is skipped, and counted. A
config whose causality attncli cannot tell counts as refused: every command refuses it unless ``--mask``
is typed.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pytest

from attncli.models import allowlist, families, guard
from attncli.models.configs import settings_from_config
from attncli.models.values import UNKNOWN_CAUSALITY
from attncli.spec import SpecError

NESTED = ("text_config", "attn_config")
"""Sub-configs the readers descend into."""


class Recording(dict[str, Any]):
    """A config dict that records which of its fields are looked up (``cfg[k]``, ``cfg.get(k)``)."""

    def __init__(self, doc: dict[str, Any], seen: set[str], path: str = "") -> None:
        super().__init__({k: Recording(v, seen, f"{path}{k}.") if k in NESTED and isinstance(v, dict) else v
                          for k, v in doc.items()})
        self.seen, self.path = seen, path

    def __getitem__(self, key: str) -> Any:
        self.seen.add(self.path + key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key in self:
            self.seen.add(self.path + key)
        return super().get(key, default)


def _defaults() -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    transformers = pytest.importorskip("transformers")
    from transformers.models.auto import modeling_auto

    causal_lm = {**modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
                 **modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES}

    built: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for model_type in list(transformers.CONFIG_MAPPING.keys()):
                try:
                    doc = transformers.CONFIG_MAPPING[model_type]().to_dict()
                    # NOTE: a checkpoint saved from the type's causal-LM (or image-text-to-text) class names it
                    if doc.get("architectures") is None and model_type in causal_lm:
                        doc["architectures"] = [causal_lm[model_type]]
                    built[model_type] = doc
                except Exception as exc:
                    skipped[model_type] = f"{type(exc).__name__}: {str(exc)[:80]}"
    finally:
        logging.disable(logging.NOTSET)
    return built, skipped


def _unread(doc: dict[str, Any], seen: set[str], family: str | None, path: str) -> list[str]:
    out = []
    for key, value in doc.items():
        if key in NESTED and isinstance(value, dict) and path + key + "." in {s[: len(path + key) + 1] for s in seen}:
            out += _unread(value, seen, value.get("model_type", family), f"{path}{key}.")
        elif path + key not in seen and allowlist.harmless(key, family) is None:
            out.append(path + key)
    return out


def test_every_registered_model_type_is_answered_from_read_fields_or_refused_by_name() -> None:
    built, skipped = _defaults()
    answered: list[str] = []
    refused: dict[str, str] = {}
    wrong: dict[str, list[str]] = {}
    for model_type, doc in built.items():
        seen: set[str] = set()
        try:
            settings = settings_from_config(Recording(doc, seen), model_type)
        except SpecError as exc:
            assert exc.flag == "--config", (model_type, str(exc))
            # NOTE: a field the file leaves out is named with the family default transformers fills in, a size
            # it lacks with the names looked for
            text = doc.get("text_config") or {}
            names = {*families.HIDDEN_KEYS, *families.HEADS_KEYS, *doc, *(f"text_config.{k}" for k in text),
                     *guard.FAMILY_DEFAULTS.get(model_type, {}), *guard.FAMILY_DEFAULTS.get(text.get("model_type"), {})}
            assert any(name in exc.message for name in names), (model_type, exc.message)
            refused[model_type] = exc.message
            continue
        if settings.sources.get("causal") == UNKNOWN_CAUSALITY:
            refused[model_type] = "cannot tell whether its attention is causal (the commands ask for --mask)"
            continue
        unread = _unread(doc, seen, settings.family, "")
        if unread:
            wrong[model_type] = unread
        answered.append(model_type)
    print(f"\n{len(built) + len(skipped)} model types: {len(answered)} answered, {len(refused)} refused, "
          f"{len(skipped)} skipped ({'; '.join(f'{k}: {v}' for k, v in skipped.items())})")
    assert not wrong, f"answered with fields not read: {wrong}"
    assert len(skipped) < 10 and len(answered) > 50 and len(refused) > 500
