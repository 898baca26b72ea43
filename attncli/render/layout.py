"""Layout helpers for the text tables: no trailing spaces, and a layout that fits the width.

rich pads every row of a table (and its title and caption) to the table's width; in a pipe or a
file that is trailing whitespace on every line. :class:`Trimmed` strips it. :class:`Fit` picks
the first of several layouts whose natural width fits the console, so an 80-column terminal
gets a narrower table instead of truncated headers or words cut in half.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table


class Trimmed:
    """``renderable`` with the trailing spaces of every line removed."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable, options, pad=False, new_lines=False)
        for line in lines:
            yield from _rstrip(line)
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.renderable)


def _rstrip(line: list[Segment]) -> Iterable[Segment]:
    segments = list(line)
    while segments:
        last = segments[-1]
        if last.control:
            break
        text = last.text.rstrip(" ")
        if text:
            segments[-1] = Segment(text, last.style, last.control)
            break
        segments.pop()
    return segments


class Fit:
    """The first of ``layouts`` whose widest line fits the console (else the last one)."""

    def __init__(self, *layouts: RenderableType) -> None:
        self.layouts = layouts

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for layout in self.layouts[:-1]:
            if Measurement.get(console, options.update(width=10**6), layout).maximum <= options.max_width:
                yield layout
                return
        yield self.layouts[-1]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.layouts[-1])


_ELEMENT = r"(?:[A-Za-z0-9_'^.]+|\((?:[^()]|\([^()]*\))*\))"
_FORMULA = re.compile(rf"(?<![`\w])({_ELEMENT}(?:\*{_ELEMENT})+)")


def md_formulas(text: str) -> str:
    """``text`` with every formula (``B*L*E*E``, ``B*H*d*(visible pairs)``) in backticks.

    GitHub reads ``*`` as emphasis: ``B*L*E*E`` would render as B, an italic L, E and E, with
    the asterisks gone. Code spans keep them.
    """
    parts = text.split("`")
    # NOTE: odd parts are inside code spans already: left alone.
    return "`".join(p if i % 2 else _FORMULA.sub(lambda m: f"`{m.group(1)}`", p) for i, p in enumerate(parts))


def md_document(text: str) -> str:
    """:func:`md_formulas` on every line of a Markdown document outside code fences."""
    out, fenced = [], False
    for line in text.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        out.append(line if fenced or line.startswith("```") else md_formulas(line))
    return "\n".join(out)


LABEL_ROOM = 6
"""The fewest characters a label column keeps when numbers are held whole beside it."""


class NarrowTable(Table):
    """A table that, narrower than its natural width, keeps its numbers whole and wraps its labels.

    rich shrinks every column of a table too wide for the terminal and cuts what no longer fits
    with an ellipsis: ``1.65 T`` became ``1.6…`` at 60 columns. Here, only then, each
    right-justified column (attncli's numbers) is held at its widest cell, the label columns
    shrink and wrap at spaces, and nothing is ever ellipsized: a cell that still cannot fit (a
    terminal narrower than the numbers themselves) folds onto the next line, every digit kept.
    """

    optional: tuple[str, ...] = ()
    """Headers of the columns a narrow terminal may drop, first dropped first (sweep's per-stage
    columns, the gpus table's tf32 and float8): dropped before any number would have to fold, and a
    line under the table names them (``--format json`` keeps every one)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wide = options.update(width=10**6)
        dropped: list[str] = []
        for header in self.optional:
            if super().__rich_measure__(console, wide).maximum <= options.max_width:
                break
            index = next((i for i, c in enumerate(self.columns) if str(c.header) == header), None)
            if index is not None:
                del self.columns[index]
                for i, column in enumerate(self.columns):
                    column._index = i  # NOTE: rich measures and pads each column by this index
                dropped.append(header)
        if dropped:
            note = f"(narrow terminal: {', '.join(dropped)} left out; --format json has every column)"
            self.caption = note if self.caption is None else f"{self.caption} {note}"
            self.caption_justify, self.caption_style = "left", "dim"
        natural = super().__rich_measure__(console, wide).maximum
        if natural > options.max_width:
            self._narrow(console, options)
        yield from super().__rich_console__(console, options)

    def _narrow(self, console: Console, options: ConsoleOptions) -> None:
        wide = options.update(width=10**6)
        fixed: dict[int, int] = {}
        for i, column in enumerate(self.columns):
            column.overflow = "fold"
            column.no_wrap = False
            if column.justify == "right" and column.width is None:
                # NOTE: as wide as its widest number and the longest word of its head (heads wrap at spaces)
                words = [len(w) for w in str(column.header).split()]
                cells = [Measurement.get(console, wide, cell).maximum for cell in column.cells]
                fixed[i] = max([*cells, *words], default=1)
        labels = [c for i, c in enumerate(self.columns) if i not in fixed and c.width is None]
        padding = sum(self._get_padding_width(i) for i in range(len(self.columns)))
        room = options.max_width - self._extra_width - padding - sum(fixed.values())
        if room >= LABEL_ROOM * len(labels):  # NOTE: else all shrink alike: a label squeezed to nothing is lost
            for i, width in fixed.items():
                self.columns[i].width = width
        self.min_width = None  # NOTE: the title wraps instead of widening the table past the terminal


def plain_table(title: str | None = None, caption: str | None = None) -> Table:
    """attncli's one table style: a rule under the header, no edges, two spaces between columns;
    narrower than the terminal, numbers stay whole (:class:`NarrowTable`)."""
    # NOTE: rich wraps a title at the table's width: min_width keeps a short table's title on one line.
    return NarrowTable(title=title, title_justify="left", caption=caption, caption_justify="left",
                       box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False,
                       min_width=len(title) if title else None)
