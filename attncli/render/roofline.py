"""A roofline estimate as a rich table and as Markdown (see :mod:`attncli.analyses.roofline`).

One row per kernel stage, fused (effective FLOPs) then naive (dense FLOPs), with FLOPs, bytes
moved, intensity, the bound and the estimated time; a title naming the device, dtype, peak and
bandwidth, and a caption with the upper-bound caveat. Meant to be appended to other reports.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from attncli import choices
from attncli.analyses.roofline import NOTE, KernelEstimate, Roofline
from attncli.render.common import commas, human, human_bytes, md_table
from attncli.render.layout import Trimmed, md_document, plain_table

# NOTE: the roofline's two kernel stages beside attncli's own: the fused kernel's one "attention"
# stage and the naive one's softmax.
STAGE_LABELS = {**choices.STAGE_LABELS, "attention": "attention (QK^T, softmax, x V)", "softmax": "softmax"}
SHORT_LABELS = {**choices.SHORT_STAGE_LABELS, "attention": "attention", "softmax": "softmax"}
KERNELS = (("fused", "effective FLOPs"), ("naive", "dense FLOPs"))


def seconds(t: float) -> str:
    """1.5e-05 -> '15.0 us', 0.0041 -> '4.10 ms' (three significant digits)."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")):
        if t >= scale * 0.9995 or unit == "ns":
            x = t / scale
            # NOTE: three significant digits with trailing zeros kept (4.10 ms beside 1.03 ms), as counts have.
            return f"{x:.{2 if x < 9.995 else 1 if x < 99.95 else 0}f} {unit}"
    raise AssertionError("unreachable")


def title(r: Roofline) -> str:
    return (f"Roofline estimate on {r.label} ({r.dtype}): peak {human(r.peak_flops_per_s, 'FLOP/s')} dense, "
            f"{human(r.bandwidth_bytes_per_s, 'B/s')}, ridge point {r.ridge_point:.1f} FLOPs/byte")


def caption(r: Roofline) -> str:
    return (f"FLOPs = 2 x MACs; total time = max(FLOPs / peak, bytes / bandwidth) of the whole layer; "
            f"run stage by stage (none overlapping) it is {seconds(r.fused.stages_time_s)} fused, "
            f"{seconds(r.naive.stages_time_s)} naive. Estimated, not measured: {NOTE}. Datasheet:")


def _rows(r: Roofline, exact: bool) -> list[list[str]]:
    labels = STAGE_LABELS if exact else SHORT_LABELS
    rows = []
    for kind, flops_kind in KERNELS:
        k: KernelEstimate = getattr(r, kind)
        for s in k.by_stage:
            rows.append([kind, labels.get(s.name, s.name), commas(s.flops) if exact else human(s.flops),
                         commas(s.bytes) if exact else human_bytes(s.bytes),
                         f"{s.intensity:.1f}", s.bound, seconds(s.time_s)])
        rows.append([kind, f"total ({flops_kind})" if exact else "total", commas(k.flops) if exact else human(k.flops),
                     commas(k.bytes) if exact else human_bytes(k.bytes), f"{k.intensity:.1f}", k.bound,
                     seconds(k.time_s)])
    return rows


HEADERS = ["kernel", "stage", "FLOPs", "bytes", "FLOPs/byte", "bound", "time"]
SHORT_HEADERS = ["kernel", "stage", "FLOPs", "bytes", "FLOP/B", "bound", "time"]


def table(r: Roofline) -> RenderableType:
    note = ("fused: effective FLOPs, attention = QK^T, softmax and weights x V in one kernel; "
            "naive: dense FLOPs, scores and weights written and read. ")
    t = plain_table()
    for i, h in enumerate(SHORT_HEADERS):
        t.add_column(h, justify="left" if i < 2 or h == "bound" else "right", no_wrap=True)
    for row in _rows(r, exact=False):
        t.add_row(*row, style="bold" if row[1] == "total" else None)
    # NOTE: title and caption outside the table, so they wrap at the terminal, not at the table's width.
    # NOTE: the datasheet URL whole on its own line (never folded), so it stays one clickable address.
    return Group(Trimmed(Group(Text(title(r), style="bold"), t, Text(note + caption(r), style="dim"))),
                 Text(r.source, style="dim", no_wrap=True, overflow="ignore"))


def markdown(r: Roofline) -> str:
    return md_document("\n".join([f"#### {title(r)}", "", md_table(HEADERS, _rows(r, exact=True), "llrrrlr"),
                                   "", f"{caption(r)} {r.source}", ""]))
