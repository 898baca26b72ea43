"""The ``attncli bench`` report: measured times per implementation as a rich table and Markdown,
and the progress bar shown on stderr while rows are timed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Group, RenderableType
from rich.text import Text

from attncli.analyses.bench import BenchReport, Row
from attncli.analyses.benchreport import NOISY_IQR, row_name
from attncli.render import roofline as roofline_view
from attncli.render.common import commas, human, human_bytes, md_table, modern_terms, progress
from attncli.render.layout import Trimmed, md_document, plain_table
from attncli.render.roofline import seconds

HEADERS = ["impl", "backend", "median", "IQR", "achieved FLOP/s", "FLOPs (effective)", "FLOPs (dense)",
           "% of roofline", "peak memory", "predicted memory"]
SHORT_HEADERS = ["impl", "backend", "median", "IQR", "FLOP/s", "FLOPs", "dense", "roofline", "peak mem",
                 "predicted"]


def title(r: BenchReport) -> str:
    s = r.spec
    what = "forward + backward" if r.backward else "forward"
    threads = r.environment["num_threads"]
    return (f"attncli bench: measured on {r.environment['device_name']} ({r.device}, {r.dtype}, "
            f"{threads} thread{'' if threads == 1 else 's'}), {what}: "
            f"B={s.batch} L={s.seq} S={s.s} E={s.dim} H={s.heads}{modern_terms(s)}, mask {s.mask}")


def caption(r: BenchReport) -> str:
    parts = ["median and IQR per call (torch.utils.benchmark blocked_autorange); FLOPs = 2 x MACs"]
    if any(row.iqr_s is None for row in r.rows):
        parts.append("IQR - : fewer than 4 timed blocks, no spread measured (raise --min-run-time)")
    if r.backward:
        parts.append("forward + backward counted as 3 x forward")
    if any(row.noisy for row in r.rows):
        parts.append(f"! noisy: the IQR is over {NOISY_IQR:.0%} of the median, so that median is not one to "
                     "compare or gate on (rerun on a quiet machine, or raise --min-run-time)")
    if r.roofline is not None:
        parts.append(f"% of roofline = fused-kernel roofline time on {r.roofline.label} ({r.dtype}) / median")
        if r.device == "cpu":  # NOTE: every --gpu entry is an accelerator (attncli gpus)
            parts.append(f"caveat: measured on the CPU against {r.roofline.label}'s roofline, so the % says how "
                         "far this machine is from that GPU, not how well the kernel uses the hardware it ran on")
    parts.append("predicted memory: activations + weights + inputs (forward)")
    configured = row_name(r.spec)
    if configured in {row.impl for row in r.rows}:
        what = f"--impl {configured}" if r.spec.form is None else f"the {r.spec.form} form, as configured"
        parts.append(f"* {what}, the one --max-time checks")
    return "; ".join(parts) + "."


def _pct(row: Row) -> str:
    f = row.roofline_fraction
    return "-" if f is None else f"{100 * f:.3g}%"


def _cells(r: BenchReport, row: Row, exact: bool) -> list[str]:
    mark = "*" if row.impl == row_name(r.spec) and row.backend is None else ""
    peak = row.peak_memory_bytes
    iqr = "-" if row.iqr_s is None else seconds(row.iqr_s)  # None: too few blocks to have a spread
    iqr += "!" if row.noisy else ""
    if exact:
        return [row.impl + mark, row.backend or "default", seconds(row.median_s), iqr,
                human(row.achieved_flops_per_s), commas(row.flops), commas(row.dense_flops), _pct(row),
                "-" if peak is None else human_bytes(peak), human_bytes(row.predicted_memory_bytes)]
    return [row.impl + mark, row.backend or "default", seconds(row.median_s), iqr,
            human(row.achieved_flops_per_s), human(row.flops), human(row.dense_flops), _pct(row),
            "-" if peak is None else human_bytes(peak), human_bytes(row.predicted_memory_bytes)]


def _skipped_lines(r: BenchReport) -> list[str]:
    return [f"skipped {s.impl}{'' if s.backend is None else f' [{s.backend}]'}: {s.reason}" for s in r.skipped]


def _columns(r: BenchReport) -> list[int]:
    """Indexes of the columns the terminal table shows: backend, dense FLOPs, roofline and peak memory
    only when some row has something to say there (the Markdown table always has them all)."""
    keep = [0, 2, 3, 4, 5, 9]
    if any(row.backend is not None for row in r.rows):
        keep.append(1)
    if any(row.dense_flops != row.flops for row in r.rows):
        keep.append(6)
    if r.roofline is not None:
        keep.append(7)
    if any(row.peak_memory_bytes is not None for row in r.rows):
        keep.append(8)
    return sorted(keep)


def table(r: BenchReport) -> RenderableType:
    cols = _columns(r)
    note = "" if 6 in cols else " FLOPs: effective = dense here."
    t = plain_table()
    for i in cols:
        h = SHORT_HEADERS[i]
        t.add_column(h, justify="left" if h in ("impl", "backend") else "right", no_wrap=True)
    for row in r.rows:
        cells = _cells(r, row, exact=False)
        t.add_row(*(cells[i] for i in cols))
    parts: list[RenderableType] = [Text(title(r), style="bold"), t, Text(caption(r) + note, style="dim"),
                                   *(Text(line) for line in _skipped_lines(r))]
    if r.roofline is not None:
        parts += [Text(""), roofline_view.table(r.roofline)]
    return Trimmed(Group(*parts))


def markdown(r: BenchReport) -> str:
    lines = [f"#### {title(r)}", "", md_table(HEADERS, [_cells(r, row, exact=True) for row in r.rows], "llrrrrrrrr"),
             "", caption(r), ""]
    lines += [f"- {line}" for line in _skipped_lines(r)]
    if r.roofline is not None:
        lines += ["", roofline_view.markdown(r.roofline)]
    return md_document("\n".join(lines)) + "\n"


@contextmanager
def bar(total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr, only when stderr is a terminal; yields ``next_row(label)``."""
    with progress("attncli bench", total) as advance:
        started = False

        def next_row(_label: str) -> None:
            nonlocal started
            if started:
                advance(1)
            started = True

        yield next_row
        if started:
            advance(1)
