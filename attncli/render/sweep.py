"""The ``attncli sweep`` report: a table, a terminal chart, exponents; Markdown; a PNG plot."""

from __future__ import annotations

import math
from pathlib import Path

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from attncli.choices import SHORT_STAGE_LABELS as STAGE_LABELS
from attncli.choices import STAGE_ABBREVIATIONS
from attncli.render.common import commas, human, human_bytes, md_table
from attncli.sweep import SweepReport

EXPECTED = {
    "seq": "QK^T and weights x V grow as L^2 (exponent 2), projections as L (1)",
    "heads": "heads change nothing: every stage has exponent 0",
    "dim": "projections grow as E^2 (2), QK^T and weights x V as E (1)",
    "batch": "every stage grows as B (1)",
    "kv_heads": "k and v projections grow as G (1); q, QK^T, weights x V and W_O do not change (0)",
    "d_head": "every stage grows as d (1): q, k, v project to H*d and G*d, W_O reads H*d",
    "window": "dense counts do not change (0); the effective QK^T grows as W (1) while W < S",
    "cache": "QK^T and weights x V grow with S = N + L (towards 1 once N >> L); projections do not change (0)",
}
BAR = 40


def _title(r: SweepReport) -> str:
    s = r.spec
    return f"attncli sweep --{r.setting}: impl {s.impl}, {s.heads} heads with W_O, MACs (FLOPs = 2x)"


def _stages(r: SweepReport) -> list[str]:
    return list(r.points[0].by_stage) if r.points else []


def _exp(v: float | None) -> str:
    return "n/a" if v is None else f"{round(v, 2) + 0.0:.2f}"  # + 0.0: no "-0.00"


def short(n: float) -> str:
    """Three significant digits and a unit: 134217728 -> '134M', 2147483648 -> '2.15G'."""
    for scale, unit in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def chart_lines(r: SweepReport, width: int = BAR) -> list[str]:
    """One bar per value, length on a log scale of the total count, with the stage exponents."""
    totals = [p.flops for p in r.points]
    if not totals or min(totals) <= 0:
        return []
    lo, hi = math.log10(min(totals)), math.log10(max(totals))
    span = hi - lo or 1.0
    lines = []
    for p in r.points:
        n = 1 + round((math.log10(p.flops) - lo) / span * (width - 1))
        bound = "" if p.roofline is None else f"  {p.roofline.fused.bound}-bound"
        lines.append(f"{r.setting}={p.value:<8} {'#' * n:<{width}} {human(p.flops)}{bound}")
    return lines


def _crossings(r: SweepReport) -> list[str]:
    """With --gpu: where the fused kernel's bound changes, in words."""
    if r.gpu is None:
        return []
    if not r.crossings:
        first = r.points[0].roofline if r.points else None
        bound = "?" if first is None else first.fused.bound
        return [f"roofline on {r.gpu} ({r.dtype}): {bound}-bound at every value (fused kernel, estimated)"]
    return [f"roofline on {r.gpu} ({r.dtype}): {bound}-bound from --{r.setting.replace('_', '-')} {b} on "
            f"(still the other bound at {a}; fused kernel, estimated)" for a, b, bound in r.crossings]


def table(r: SweepReport) -> RenderableType:
    t = Table(title=_title(r), title_justify="left", caption="AV = weights x V; exact counts in JSON/Markdown",
              caption_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True,
              pad_edge=False)
    t.add_column(r.setting, justify="right", no_wrap=True, min_width=max(len(r.setting), 4))
    for st in _stages(r):
        t.add_column(STAGE_ABBREVIATIONS.get(st, st), justify="right", no_wrap=True, min_width=5)
    t.add_column("total", justify="right", no_wrap=True, min_width=5)
    t.add_column("params", justify="right", no_wrap=True, min_width=5)
    t.add_column("attn mem", justify="right", no_wrap=True, min_width=9)
    if r.gpu is not None:
        t.add_column("bound", no_wrap=True)
    for p in r.points:
        bound = () if p.roofline is None else (p.roofline.fused.bound,)
        t.add_row(str(p.value), *(short(p.by_stage[st]) for st in _stages(r)), short(p.flops),
                  short(p.params), human_bytes(p.attn_matrix_bytes).replace(".00 ", " "), *bound)
    # NOTE: the same table style as every other attncli table (it had rich's heavy default box).
    ex = Table(title="growth exponent: d log(count) / d log(" + r.setting + ")", title_justify="left",
               box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for key in r.exponents:
        ex.add_column(STAGE_LABELS.get(key, key), justify="right")
    ex.add_row(*(_exp(v) for v in r.exponents.values()))
    chart = Text("\n".join(["total MACs, log scale:", *chart_lines(r)]))
    return Group(t, ex, Text(f"expected: {EXPECTED[r.setting]}"), *(Text(c) for c in _crossings(r)), chart)


def markdown(r: SweepReport) -> str:
    stages = _stages(r)
    rows = [(str(p.value), *(commas(p.by_stage[st]) for st in stages), commas(p.flops), commas(p.params),
             human_bytes(p.attn_matrix_bytes), *(() if p.roofline is None else (p.roofline.fused.bound,)))
            for p in r.points]
    head = [r.setting, *(STAGE_LABELS.get(st, st) for st in stages), "total MACs", "params",
            f"attn matrix ({r.dtype})", *(() if r.gpu is None else (f"bound on {r.gpu}",))]
    out = [f"### {_title(r)}", "", md_table(head, rows, "r" * len(head)), "",
           f"#### Growth exponent (d log count / d log {r.setting})", "",
           md_table([STAGE_LABELS.get(k, k) for k in r.exponents], [[_exp(v) for v in r.exponents.values()]],
                    "r" * len(r.exponents)), "", f"Expected: {EXPECTED[r.setting]}.", "",
           *(f"{c}." for c in _crossings(r)), "", "```", *chart_lines(r), "```"]
    return "\n".join(out) + "\n"


def plot(r: SweepReport, path: Path) -> None:
    """Draw counts per stage against the swept setting, log-log, to ``path`` (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p.value for p in r.points]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for st in _stages(r):
        ys = [p.by_stage[st] for p in r.points]
        if all(y > 0 for y in ys):
            ax.plot(xs, ys, marker="o", label=f"{STAGE_LABELS.get(st, st)} (exp {_exp(r.exponents.get(st))})")
    ax.plot(xs, [p.flops for p in r.points], marker="s", color="black", linewidth=2,
            label=f"total (exp {_exp(r.exponents.get('total'))})")
    for _before, b, bound in r.crossings:
        # NOTE: the crossing lies between two measured points; the line marks the first point past it.
        ax.axvline(b, color="grey", linestyle="--", linewidth=1, label=f"{bound}-bound from {b} on {r.gpu}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(r.setting)
    ax.set_ylabel("MACs (fvcore)")
    ax.set_title(_title(r), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
