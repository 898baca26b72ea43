"""Tables and Markdown for ``attncli presets``: real models' attention settings and their sources."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.text import Text

from attncli.configs import LayerSettings
from attncli.render.common import md_table
from attncli.render.layout import Trimmed, plain_table

HEADERS = ("name", "family", "E", "H", "G", "d", "W", "bias", "mask")
LEGEND = ("E: dim (hidden size); H: heads; G: kv_heads; d: head_dim; W: causal sliding window (- = full "
          "attention); bias: biases on the q/k/v/o projections; mask: causal for decoders.")
FIELDS = ("dim", "heads", "kv_heads", "head_dim", "window", "bias", "mask")


def _show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _row(s: LayerSettings) -> list[str]:
    return [s.name, s.family or "?", *(_show(getattr(s, f)) for f in FIELDS)]


def _source_rows(s: LayerSettings) -> list[list[str]]:
    return [[f, _show(getattr(s, f)), s.sources.get(f, "")] for f in (*FIELDS, "causal")]


def _is_file(found: Sequence[LayerSettings]) -> bool:
    return len(found) == 1 and found[0].link is None


def table(found: Sequence[LayerSettings]) -> RenderableType:
    t = plain_table("attncli presets: one attention layer per model (layer 0)")
    for i, h in enumerate(HEADERS):
        t.add_column(h, justify="left" if i < 2 or h in ("bias", "mask") else "right", no_wrap=True)
    for s in found:
        t.add_row(*_row(s))
    parts: list[RenderableType] = [t]
    if _is_file(found):
        src = plain_table(f"where each value came from ({found[0].name})")
        src.add_column("setting", no_wrap=True)
        src.add_column("value", no_wrap=True)
        src.add_column("source")
        for row in _source_rows(found[0]):
            src.add_row(*row)
        parts += [Text(""), src]
    parts.append(Text(LEGEND, style="dim"))
    for s in found:
        if s.link or s.notes:
            parts.append(Text(f"{s.name}: {s.notes}" + (f" ({s.link})" if s.link else "")))
    return Trimmed(Group(*parts))


def markdown(found: Sequence[LayerSettings]) -> str:
    lines = ["### attncli presets", "", md_table(HEADERS, [_row(s) for s in found], "llrrrrrll"), ""]
    if _is_file(found):
        lines += [md_table(["setting", "value", "source"], _source_rows(found[0])), ""]
    for s in found:
        if s.link or s.notes:
            lines.append(f"- **{s.name}**: {s.notes}" + (f" ([source]({s.link}))" if s.link else ""))
    lines += ["", LEGEND]
    return "\n".join(lines) + "\n"
