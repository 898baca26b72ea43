"""The ``attncli gpus`` table: every accelerator of the roofline table with its datasheet figures."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.text import Text

from attncli.analyses.gpus import DTYPES, Gpu
from attncli.render.layout import NarrowTable, Trimmed, plain_table

TITLE = "Accelerators for --gpu: dense (no sparsity) datasheet peaks in TFLOP/s, bandwidth in TB/s"


def _tflops(g: Gpu, dtype: str) -> str:
    v = g.peak_flops_per_s.get(dtype)
    return "-" if v is None else f"{v / 1e12:g}"


def _rows(table: Sequence[Gpu], with_source: bool = True) -> list[list[str]]:
    return [[g.name, *(_tflops(g, d) for d in DTYPES), f"{g.bandwidth_bytes_per_s / 1e12:g}",
             f"{g.memory_bytes / 1e9:g} GB", *([g.source] if with_source else [])]
            for g in table]


HEADERS = ["name", *DTYPES, "TB/s", "memory", "source"]
"""The columns, each dtype by the one name every dtype flag takes and every output shows."""


def table(gpus: Sequence[Gpu]) -> RenderableType:
    t = plain_table()
    for h in ("name", *DTYPES, "TB/s", "memory"):
        t.add_column(h, justify="left" if h == "name" else "right", no_wrap=True)
    for row in _rows(gpus, with_source=False):
        t.add_row(*row)
    if isinstance(t, NarrowTable):
        t.optional = ("memory", "float8", "tf32")
    legend = Text("- no figure for that dtype. Notes (which figures were halved) in --format json or markdown.",
                  style="dim")
    # NOTE: each URL whole on its own line (never folded, even past the width): a terminal keeps
    # an unbroken URL clickable, and a folded one is two wrong addresses.
    sources = [part for g in gpus
               for part in (Text(f"{g.name}:"), Text(g.source, no_wrap=True, overflow="ignore"))]
    # NOTE: outside Trimmed, whose line rendering would crop the URLs at the width.
    return Group(Trimmed(Group(Text(TITLE, style="bold"), t, legend, Text(""), Text("Datasheets:"))), *sources)


def markdown(gpus: Sequence[Gpu]) -> str:
    from attncli.render.common import md_table

    notes = [f"- `{g.name}` ({g.label}): {g.note}" for g in gpus]
    return "\n".join([f"#### {TITLE}", "", md_table(HEADERS, _rows(gpus), "lrrrrrrrl"), "", *notes, ""])
