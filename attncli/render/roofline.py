"""A roofline estimate as a rich table and as Markdown (see :mod:`attncli.roofline`).

One row per kernel stage, fused (effective FLOPs) then naive (dense FLOPs), with FLOPs, bytes
moved, intensity, the bound and the estimated time; a title naming the device, dtype, peak and
bandwidth, and a caption with the upper-bound caveat. Meant to be appended to other reports.
"""

from __future__ import annotations

from rich import box
from rich.console import RenderableType
from rich.table import Table

from attncli.render.common import commas, human, human_bytes, md_table
from attncli.roofline import NOTE, KernelEstimate, Roofline

STAGE_LABELS = {"q_proj": "q proj (W_q)", "k_proj": "k proj (W_k)", "v_proj": "v proj (W_v)",
                "attention": "attention (QK^T, softmax, x V)", "qk": "QK^T", "softmax": "softmax",
                "av": "weights x V", "out_proj": "W_O"}
KERNELS = (("fused", "effective FLOPs"), ("naive", "dense FLOPs"))


def seconds(t: float) -> str:
    """1.5e-05 -> '15.0 us' (three significant digits)."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def title(r: Roofline) -> str:
    return (f"Roofline estimate on {r.label} ({r.dtype}): peak {human(r.peak_flops_per_s, 'FLOP/s')} dense, "
            f"{human(r.bandwidth_bytes_per_s, 'B/s')}, ridge point {r.ridge_point:.1f} FLOPs/byte")


def caption(r: Roofline) -> str:
    return (f"FLOPs = 2 x MACs; total time = sum of the stage times. Estimated, not measured: {NOTE}. "
            f"Source: {r.source}")


def _rows(r: Roofline, exact: bool) -> list[list[str]]:
    rows = []
    for kind, flops_kind in KERNELS:
        k: KernelEstimate = getattr(r, kind)
        for s in k.by_stage:
            rows.append([kind, STAGE_LABELS.get(s.name, s.name),
                         commas(s.flops) if exact else human(s.flops),
                         commas(s.bytes) if exact else human_bytes(s.bytes),
                         f"{s.intensity:.1f}", s.bound, seconds(s.time_s)])
        rows.append([kind, f"total ({flops_kind})", commas(k.flops) if exact else human(k.flops),
                     commas(k.bytes) if exact else human_bytes(k.bytes), f"{k.intensity:.1f}", k.bound,
                     seconds(k.time_s)])
    return rows


HEADERS = ["kernel", "stage", "FLOPs", "bytes", "FLOPs/byte", "bound", "time"]


def table(r: Roofline) -> RenderableType:
    t = Table(title=title(r), title_justify="left", caption=caption(r), caption_justify="left",
              box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for i, h in enumerate(HEADERS):
        t.add_column(h, justify="left" if i < 2 or h == "bound" else "right", no_wrap=True)
    for row in _rows(r, exact=False):
        t.add_row(*row, style="bold" if row[1].startswith("total") else None)
    return t


def markdown(r: Roofline) -> str:
    return "\n".join([f"#### {title(r)}", "", md_table(HEADERS, _rows(r, exact=True), "llrrrlr"), "",
                      caption(r), ""])
