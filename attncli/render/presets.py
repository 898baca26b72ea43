"""Tables and Markdown for ``attncli presets``: real models' attention settings and their sources.

A multi-head latent attention (MLA) layer has no K/V heads and no one head size: its row shows
``MLA`` there, and a second table gives its latent ranks and head sizes instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from attncli.models.configs import LayerSettings
from attncli.registry import MLA_FIELDS
from attncli.render.common import md_table
from attncli.render.layout import Trimmed, plain_table

HEADERS = ("name", "family", "E", "H", "G", "d", "W", "bias", "mask")
LEGEND = ("E: dim (hidden size); H: heads; G: kv_heads; d: head_dim; W: causal sliding window (- = full "
          "attention); bias: biases on the q/k/v/o projections; mask: causal for decoders.")
FIELDS = ("dim", "heads", "kv_heads", "head_dim", "window", "bias", "mask")
MLA_TITLE = "MLA layers: one cached latent per token, no K/V heads"
MLA_HEADERS = ("name", "RQ", "R", "DN", "DR", "DV", "cached")
MLA_LEGEND = ("MLA in G and d: multi-head latent attention, sized in the MLA table. RQ: q_lora_rank (- = a "
              "direct q_proj); R: kv_lora_rank; DN, DR: query/key features per head without and with RoPE; DV: "
              "value features per head; cached: R + DR values per token and layer, shared by all heads.")
MLA_COLUMNS = ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
"""The fields under RQ, R, DN, DR, DV."""
SETTINGS_MLA = ("dim", "heads", *MLA_FIELDS, "window", "bias", "mask")
"""The settings an MLA config's source table lists (no kv_heads, no head_dim)."""


def _show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _label(s: LayerSettings) -> str:
    """A preset's name; for a config file its folder (or file) name: the source table's title has the path."""
    if s.link is not None:
        return s.name
    path = Path(s.name)
    return path.parent.name or s.name if path.name == "config.json" else path.name or s.name


def _row(s: LayerSettings) -> list[str]:
    mla = s.kv_lora_rank is not None  # NOTE: a latent (MLA, top-k sparse MLA) has no G or d of its own
    # NOTE: a chunked layer 0 (Llama 4) shows its chunk in the W column as "C 8192"
    return [_label(s), s.family or "?",
            *("MLA" if mla and f in ("kv_heads", "head_dim") else f"C {s.chunk}" if f == "window" and s.chunk
              else _show(getattr(s, f)) for f in FIELDS)]


def _mla_row(s: LayerSettings) -> list[str]:
    cached = (s.kv_lora_rank or 0) + (s.qk_rope_head_dim or 0)
    return [_label(s), *(_show(getattr(s, f)) for f in MLA_COLUMNS), str(cached)]


def _source_rows(s: LayerSettings) -> list[list[str]]:
    fields = SETTINGS_MLA if s.kv_lora_rank is not None else FIELDS
    return [[f, _show(getattr(s, f)), s.sources.get(f, "")] for f in (*fields, "causal")]


def _is_file(found: Sequence[LayerSettings]) -> bool:
    return len(found) == 1 and found[0].link is None


MODELS_TITLE = "whole models (attncli model --preset NAME): every layer and its schedule"


def _model_rows(models: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [[m["name"], m["schedule"]] for m in models]


def table(found: Sequence[LayerSettings], models: Sequence[dict[str, Any]] = ()) -> RenderableType:
    t = plain_table("attncli presets: one attention layer per model (layer 0)")
    for i, h in enumerate(HEADERS):
        t.add_column(h, justify="left" if i < 2 or h in ("bias", "mask") else "right", no_wrap=i > 0,
                     overflow="fold")
    for s in found:
        t.add_row(*_row(s))
    parts: list[RenderableType] = [t]
    mla = [s for s in found if s.kv_lora_rank is not None]
    if mla:
        m = plain_table(MLA_TITLE)
        for i, h in enumerate(MLA_HEADERS):
            m.add_column(h, justify="left" if i == 0 else "right", no_wrap=i > 0, overflow="fold")
        for s in mla:
            m.add_row(*_mla_row(s))
        parts += [Text(""), m]
    if _is_file(found):
        src = plain_table(f"where each value came from ({found[0].name})")
        src.add_column("setting", no_wrap=True)
        src.add_column("value", no_wrap=True)
        src.add_column("source")
        for row in _source_rows(found[0]):
            src.add_row(*row)
        parts += [Text(""), src]
    if models:
        w = plain_table(MODELS_TITLE)
        w.add_column("model", no_wrap=True)
        w.add_column("schedule")
        for row in _model_rows(models):
            w.add_row(*row)
        parts += [Text(""), w]
    parts.append(Text(LEGEND, style="dim"))
    if mla:
        parts.append(Text(MLA_LEGEND, style="dim"))
    if _is_file(found):
        parts += [Text(f"- {line}") for line in found[0].note_lines]
    else:
        for s in found:
            if s.link or s.notes:
                parts.append(Text(f"{s.name}: {s.notes}" + (f" ({s.link})" if s.link else "")))
    return Trimmed(Group(*parts))


def markdown(found: Sequence[LayerSettings], models: Sequence[dict[str, Any]] = ()) -> str:
    lines = ["### attncli presets", "", md_table(HEADERS, [_row(s) for s in found], "llrrrrrll"), ""]
    if models:
        lines += [f"**{MODELS_TITLE}**", "", md_table(["model", "schedule"], _model_rows(models), "ll"), ""]
    mla = [s for s in found if s.kv_lora_rank is not None]
    if mla:
        lines += [f"**{MLA_TITLE}**", "", md_table(MLA_HEADERS, [_mla_row(s) for s in mla], "lrrrrrr"), ""]
    if _is_file(found):
        lines += [md_table(["setting", "value", "source"], _source_rows(found[0])), ""]
    if _is_file(found):
        lines += [f"- {line}" for line in found[0].note_lines]
    else:
        for s in found:
            if s.link or s.notes:
                lines.append(f"- **{s.name}**: {s.notes}" + (f" ([source]({s.link}))" if s.link else ""))
    lines += ["", LEGEND] + (["", MLA_LEGEND] if mla else [])
    return "\n".join(lines) + "\n"
