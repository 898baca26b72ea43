"""The ``attncli sweep`` report: a table, a terminal chart, exponents; Markdown; a PNG plot.

Under a mask (causal, a sliding window) the dense counts (every (query, key) pair) and the
effective ones (visible pairs only) are shown apart, with the local exponent between neighbouring
points, which the core computes (:attr:`attncli.analyses.sweep.SweepReport.steps`).
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from attncli.analyses.sweep import Point, Step, SweepReport, fit_exponent
from attncli.choices import SETTING_FLAGS
from attncli.choices import SHORT_STAGE_LABELS as _SHORT
from attncli.choices import STAGE_ABBREVIATIONS as _ABBREVIATIONS
from attncli.registry import kind_of
from attncli.render.common import commas, human, human_bytes, md_table, named
from attncli.render.layout import Fit, NarrowTable, Trimmed, md_document, plain_table

BAR = 40


def _column(r: SweepReport) -> str:
    """The swept setting's column head: its flag without the dashes (``head-dim``)."""
    return SETTING_FLAGS[r.setting].removeprefix("--")


def _title(r: SweepReport) -> str:
    s = r.spec
    # NOTE: the swept setting is not named with a value: "1 heads" in a --heads sweep was wrong,
    # and so was "window 64" in a --window 64,128,256 sweep.
    layer = {"heads": "H heads", "kv_heads": f"{s.heads} heads sharing G K/V heads"}.get(
        r.setting, f"{s.heads} head{'' if s.heads == 1 else 's'}")
    if r.setting == "window":
        mask = ", window W"
    else:
        mask = f", window {s.window}" if s.window else (", causal" if s.causal else "")
    impl = f"impl {s.impl}" + ("" if s.form is None else f" ({s.form} form)")
    return f"attncli sweep {SETTING_FLAGS[r.setting]}: {named(s)}{impl}, {layer}{mask} with W_O, MACs (FLOPs = 2x)"


def _expected(r: SweepReport) -> str:
    """What the closed forms predict for the swept setting, and under a mask for the effective counts."""
    kind = kind_of(r.spec)
    base = kind.SWEEP_EXPECTED[r.setting]
    if not r.masked or r.setting == "window" or kind.SWEEP_EFFECTIVE_OWN:
        # NOTE: the window's own line is about effective counts; some kinds say their effective growth themselves
        return base
    w = r.spec.window
    if r.setting == "seq" and w:
        # NOTE: a query at position i sees min(i+1, W) keys: W(W+1)/2 + (L-W)W pairs for L >= W.
        eff = (f"QK^T and weights x V see L(L+1)/2 pairs up to L = W = {w} (exponent 2), "
               "then W(W+1)/2 + (L-W)W, towards W L (1)")
    elif r.setting == "seq" and r.spec.causal:
        eff = "QK^T and weights x V see L(L+1)/2 pairs, still L^2 (2)"
    elif r.setting == "cache" and w:
        eff = "a query sees at most W keys: the effective QK^T stops growing (0) once N >= W"
    else:
        eff = "the mask hides the same share of the pairs at every value: effective counts grow as the dense ones"
    mask = f"window {w}" if w else "causal" if r.spec.causal else r.spec.mask
    return f"dense: {base}; effective ({mask}, visible pairs only): {eff}"


def memory_exponent(r: SweepReport) -> float | None:
    """Growth exponent of the attention matrix's bytes, fitted as the counts' are."""
    return fit_exponent([p.value for p in r.points], [p.attn_matrix_bytes for p in r.points])


def _labels(r: SweepReport) -> dict[str, str]:
    """Column heads of every count: the layer kind's stage names, then the totals'."""
    return {**_SHORT, **kind_of(r.spec).SHORT_LABELS}


def _abbrev(r: SweepReport) -> dict[str, str]:
    """The narrow heads of the main table (standard attention: q, k, v, QK^T, AV, W_O)."""
    return {**_ABBREVIATIONS, **kind_of(r.spec).ABBREVIATIONS}


def _stages(r: SweepReport) -> list[str]:
    return list(r.points[0].by_stage) if r.points else []


def _exp(v: float | None) -> str:
    return "n/a" if v is None else f"{round(v, 2) + 0.0:.2f}"  # + 0.0: no "-0.00"


def chart_lines(r: SweepReport, width: int = BAR) -> list[str]:
    """One bar per value on a log scale: a bar's length is log(total / floor) over log(max / floor),
    the floor half the smallest total, so every bar shows (a linear scale left the small points
    empty) and equal steps in length are equal ratios of the count (x2 per step of a doubling sweep)."""
    totals = [p.flops for p in r.points]
    if not totals or min(totals) <= 0:
        return []
    top, floor = max(totals), min(totals) / 2
    label = max(len(str(p.value)) for p in r.points)
    lines = []
    for p in r.points:
        n = round(width * math.log(p.flops / floor) / math.log(top / floor))
        bound = "" if p.roofline is None else f"  {p.roofline.fused.bound}-bound"
        lines.append(f"{p.value:>{label}} {'#' * n:<{width}} {human(p.flops)}{bound}")
    return lines


CHART_TITLE = "total MACs (log scale, from half the smallest: equal steps are equal ratios):"


def _crossings(r: SweepReport) -> list[str]:
    """With --gpu: where the fused kernel's bound changes, in words."""
    if r.gpu is None:
        return []
    if not r.crossings:
        first = r.points[0].roofline if r.points else None
        bound = "?" if first is None else first.fused.bound
        return [f"roofline on {r.gpu} ({r.dtype}): {bound}-bound at every value (fused kernel, estimated)"]
    flag = SETTING_FLAGS[r.setting]
    other = {"memory": "compute", "compute": "memory"}
    return [f"roofline on {r.gpu} ({r.dtype}, fused kernel, estimated): {other[bound]}-bound up to {flag} {a}, "
            f"{bound}-bound from {flag} {b} on" for a, b, bound in r.crossings]


def _counts_table(r: SweepReport, extra: bool) -> Table:
    t = plain_table()
    t.add_column(_column(r), justify="right", no_wrap=True)
    for st in _stages(r):
        t.add_column(_abbrev(r).get(st, st), justify="right", no_wrap=True)
    t.add_column("total", justify="right", no_wrap=True)
    if isinstance(t, NarrowTable):
        # NOTE: the per-stage counts go first on a narrow terminal; the setting and the total stay.
        t.optional = tuple(reversed([_abbrev(r).get(st, st) for st in _stages(r)]))
    if extra:
        _extra_columns(r, t)
    for p in r.points:
        t.add_row(str(p.value), *(human(p.by_stage[st]) for st in _stages(r)), human(p.flops),
                  *(_extra_cells(p) if extra else ()))
    return t


def _extra_columns(r: SweepReport, t: Table) -> None:
    t.add_column("params", justify="right", no_wrap=True)
    t.add_column("attn matrix", justify="right", no_wrap=True)
    if r.gpu is not None:
        t.add_column("bound", no_wrap=True)


def _extra_cells(p: Point) -> tuple[str, ...]:
    bound = () if p.roofline is None else (p.roofline.fused.bound,)
    return (human(p.params), human_bytes(p.attn_matrix_bytes), *bound)


def _extra_table(r: SweepReport) -> Table:
    t = plain_table()
    t.add_column(_column(r), justify="right", no_wrap=True)
    _extra_columns(r, t)
    for p in r.points:
        t.add_row(str(p.value), *_extra_cells(p))
    return t


def _local(steps: tuple[Step, ...], i: int, key: str) -> str:
    """Row ``i``'s local exponent (from the previous point to this one); "-" on the first row."""
    if i == 0:
        return "-"
    v: float | None = getattr(steps[i - 1], key)
    return _exp(v)


_WHOLE = " fitted over the whole range"
"""Said of the fitted exponents when the local ones are shown beside them (under a mask)."""
EFFECTIVE_TITLE = "effective MACs: visible (query, key) pairs only (projections as dense)"
LOCAL_NOTE = ("exp = local exponent from the row above: log(count / count above) / log({x} / {x} above); "
              "dense QK^T beside the effective one")


def _effective_table(r: SweepReport) -> Table:
    """Under a mask: the effective QK^T and total per point, and the local exponents."""
    t = plain_table()
    t.add_column(_column(r), justify="right", no_wrap=True)
    for head in ("QK^T eff.", "total eff.", "exp QK^T", "exp QK^T eff."):
        t.add_column(head, justify="right", no_wrap=True)
    steps = r.steps
    for i, p in enumerate(r.points):
        t.add_row(str(p.value), human(p.effective_by_stage.get("qk", 0)), human(p.effective_flops),
                  _local(steps, i, "qk"), _local(steps, i, "effective_qk"))
    return t


def _exponents(r: SweepReport) -> dict[str, float | None]:
    return {**r.exponents, "attn matrix": memory_exponent(r)}


def _exponent_table(r: SweepReport, labels: dict[str, str]) -> Table:
    t = plain_table()
    for key in _exponents(r):
        t.add_column(labels.get(key, key), justify="right", no_wrap=True)
    t.add_row(*(_exp(v) for v in _exponents(r).values()))
    return t


def _exponent_rows(r: SweepReport) -> Table:
    """The exponents one per row, for terminals too narrow for one row of them."""
    t = plain_table()
    t.add_column("count", no_wrap=True)
    t.add_column("exponent", justify="right", no_wrap=True)
    for key, v in _exponents(r).items():
        t.add_row(_labels(r).get(key, key), _exp(v))
    return t


def _exponent_line(r: SweepReport) -> str:
    """The fitted exponents in one line: stages that grow alike are named together."""
    groups: dict[str, list[str]] = {}
    for key, v in _exponents(r).items():
        groups.setdefault(_exp(v), []).append(_labels(r).get(key, key))
    return "; ".join(f"{', '.join(names)} {value}" for value, names in groups.items())


def brief(r: SweepReport) -> RenderableType:
    """The answer on one 80x24 screen: the counts at every value, the growth exponents in a line,
    what the closed forms predict, and with --gpu where the bound changes; --verbose adds the
    effective section, the exponent table and the chart."""
    eff = []
    if r.masked:
        eff = [Text("effective (visible pairs only): " + ", ".join(
            f"{p.value}: {human(p.effective_flops)}" for p in r.points))]
    return Trimmed(Group(
        Text(_title(r), style="bold"), Text(""),
        Fit(_counts_table(r, extra=True), _counts_table(r, extra=False)), *eff,
        Text(f"growth exponent d log(count) / d log({_column(r)}): {_exponent_line(r)}"),
        Text(f"expected: {_expected(r)}"), *(Text(c) for c in _crossings(r)),
        Text("--verbose: the exponent table, the effective counts' local exponents and a chart.", style="dim")))


def table(r: SweepReport, verbose: bool = True) -> RenderableType:
    if not verbose:
        return brief(r)
    ex = Fit(_exponent_table(r, _labels(r)), _exponent_table(r, {**_labels(r), **_abbrev(r)}),
             _exponent_rows(r))
    caption = Text(f"AV = weights x V; attn matrix = B*H*L*S' scores at {r.dtype}; exact counts in JSON and "
                   "Markdown.", style="dim")
    # NOTE: unmasked, dense = effective and the heading stays as it was; masked, both are labelled.
    dense_head = [Text("dense MACs: every (query, key) pair", style="bold")] if r.masked else []
    effective: list[RenderableType] = [Text(""), Text(EFFECTIVE_TITLE, style="bold"), _effective_table(r),
                 Text(LOCAL_NOTE.format(x=_column(r)), style="dim")] if r.masked else []
    return Trimmed(Group(
        Text(_title(r), style="bold"), Text(""), *dense_head,
        Fit(_counts_table(r, extra=True), Group(_counts_table(r, extra=False), Text(""), _extra_table(r))),
        caption, *effective, Text(""),
        Text(f"growth exponent{_WHOLE if r.masked else ''}: d log(count) / d log({_column(r)})", style="bold"), ex,
        Text(f"expected: {_expected(r)}"), *(Text(c) for c in _crossings(r)), Text(""),
        Text(CHART_TITLE), Text("\n".join(chart_lines(r)))))


def markdown(r: SweepReport) -> str:
    stages = _stages(r)
    # NOTE: two tables, not one of ten columns: GitHub scrolls a wide table sideways.
    counts = [(str(p.value), *(commas(p.by_stage[st]) for st in stages), commas(p.flops)) for p in r.points]
    extra = [(str(p.value), commas(p.params), human_bytes(p.attn_matrix_bytes),
              *(() if p.roofline is None else (p.roofline.fused.bound,))) for p in r.points]
    x = _column(r)
    head = [x, *(_labels(r).get(st, st) for st in stages), "total"]
    head2 = [x, "params", f"attn matrix ({r.dtype})", *(() if r.gpu is None else (f"bound on {r.gpu}",))]
    exps = _exponents(r)
    out = [f"### {_title(r)}", "",
           "Dense MACs per stage (every (query, key) pair):" if r.masked else "MACs per stage:", "",
           md_table(head, counts, "r" * len(head)), "",
           md_table(head2, extra, "r" * len(head2)), "", *(_md_effective(r) if r.masked else ()),
           f"#### Growth exponent{_WHOLE if r.masked else ''} (d log count / d log {x})", "",
           md_table([_labels(r).get(k, k) for k in exps], [[_exp(v) for v in exps.values()]], "r" * len(exps)),
           "", f"Expected: {_expected(r)}.", "",
           *(f"{c}." for c in _crossings(r)), "", CHART_TITLE, "", "```", *chart_lines(r), "```"]
    return md_document("\n".join(out)) + "\n"


def _md_effective(r: SweepReport) -> list[str]:
    """Under a mask: exact effective counts per point and the local exponents, for the Markdown."""
    x, steps = _column(r), r.steps
    head = [x, "QK^T eff.", "weights x V eff.", "total eff.", "exp QK^T", "exp QK^T eff.", "exp total eff."]
    rows = [(str(p.value), commas(p.effective_by_stage.get("qk", 0)), commas(p.effective_by_stage.get("av", 0)),
             commas(p.effective_flops), _local(steps, i, "qk"), _local(steps, i, "effective_qk"),
             _local(steps, i, "effective_total")) for i, p in enumerate(r.points)]
    return [f"{EFFECTIVE_TITLE[0].upper()}{EFFECTIVE_TITLE[1:]}:", "", md_table(head, rows, "r" * len(head)), "",
            f"{LOCAL_NOTE.format(x=x)[0].upper()}{LOCAL_NOTE.format(x=x)[1:]}.", ""]


def _series(r: SweepReport) -> list[tuple[str, list[int]]]:
    """The stages to draw, coinciding ones merged into one labelled series (q, k, v and W_O are
    often the same line, as are QK^T and weights x V): seven legend entries, three lines."""
    merged: dict[tuple[int, ...], list[str]] = {}
    for st in _stages(r):
        ys = tuple(p.by_stage[st] for p in r.points)
        if all(y > 0 for y in ys):
            merged.setdefault(ys, []).append(st)
    out = []
    for ys, names in merged.items():
        exps = {_exp(r.exponents.get(st)) for st in names}
        exp = f" (exp {exps.pop()})" if len(exps) == 1 else ""
        out.append((" = ".join(_labels(r).get(st, st) for st in names) + exp, list(ys)))
    return out


def _totals(r: SweepReport) -> list[tuple[str, list[int]]]:
    """The dense total, and with a mask (causal, a window) the effective one: what the kernels
    that skip masked pairs compute, and what the table and JSON call effective."""
    out = [(f"total, dense (exp {_exp(r.exponents.get('total'))})", [p.flops for p in r.points])]
    if "effective_total" in r.exponents:
        out.append((f"total, effective: visible pairs only (exp {_exp(r.exponents['effective_total'])})",
                    [p.effective_flops for p in r.points]))
    return out


def plot(r: SweepReport, path: Path) -> None:
    """Draw counts per stage against the swept setting, log-log, to ``path`` (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    xs = [p.value for p in r.points]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for label, ys in _series(r):
        ax.plot(xs, ys, marker="o", label=label)
    for (label, ys), style in zip(_totals(r), ("-", "--"), strict=False):
        ax.plot(xs, ys, marker="s", color="black", linewidth=2, linestyle=style, label=label)
    for _before, b, bound in r.crossings:
        # NOTE: the crossing lies between two measured points; the line marks the first point past it.
        ax.axvline(b, color="grey", linestyle="--", linewidth=1, label=f"{bound}-bound from {b} on {r.gpu}")
    positive = [x for x in xs if x > 0]
    if len(set(positive)) > 1:
        ax.set_xscale("log", base=2)
        # NOTE: the swept values themselves as ticks (128, 256, ...), not 2^7, 2^8, ...
        ax.xaxis.set_major_locator(FixedLocator(positive))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yscale("log")
    ax.set_xlabel(SETTING_FLAGS[r.setting])
    ax.set_ylabel("MACs (fvcore)")
    ax.set_title(_title(r), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    # NOTE: the legend below the axes: inside, it covered the total line in flat (--heads) plots.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
