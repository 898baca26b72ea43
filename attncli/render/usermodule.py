"""Tables and Markdown for ``--module``: a user's module counted and shaped."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from attncli.choices import STAGE_LABELS, STAGES
from attncli.render.common import commas, human, md_table
from attncli.usermodule import OTHER_RULE, ModuleFlops, UserShapes


def _flops_rows(r: ModuleFlops) -> list[tuple[str, str, str]]:
    rows = [(STAGE_LABELS.get(k, k), commas(r.count.by_stage.get(k, 0)), commas(r.closed.get(k, 0)))
            for k in STAGES]
    rows += [(f"other: {op}", commas(n), "-") for op, n in r.other_ops.items()]
    rows.append(("total", commas(r.count.total), commas(sum(r.closed.values()))))
    return rows


def _check_line(r: ModuleFlops) -> str:
    fc = r.flop_counter
    status = "agrees" if r.agree else "DISAGREES"
    left_out = f" (without {', '.join(k for k, _ in fc.skipped)}, which it has no formula for)" if fc.skipped else ""
    return (f"FlopCounterMode: {fc.flops:,} FLOPs = 2 x {fc.macs:,} MACs{left_out}: {status} with fvcore; "
            f"the attention stages {'match' if r.matches_reference else 'differ from'} the closed form of "
            f"standard attention of these sizes")


def _lines(r: ModuleFlops) -> list[str]:
    """Everything under the table: totals, call, the cross-check, the rule for other ops, notes."""
    lines = [f"{human(r.count.total)} MACs ({human(2 * r.count.total)} FLOPs), {commas(r.params)} parameters; "
             f"W_O {'counted' if r.out_proj else 'not in this module'}"]
    if r.plan is not None:
        lines.append(f"called as {'module(q, k, v)' if r.plan.style == 'qkv' else 'module(x)'}: {r.plan.reason}")
    lines += list(r.notes)
    lines.append(_check_line(r))
    if r.other_ops:
        lines.append("other: " + OTHER_RULE)
    if r.count.uncounted_ops:
        lines.append("not counted (no multiply-adds): " + ", ".join(r.count.uncounted_ops))
    return lines


def flops_table(r: ModuleFlops) -> RenderableType:
    t = Table(title=f"attncli flops --module {r.ref}: E={r.spec.dim}, H={r.spec.heads}, G={r.spec.n_kv_heads}, "
                    f"d={r.spec.head_dim}, B={r.spec.batch}, L={r.spec.seq}", title_justify="left")
    t.add_column("stage")
    t.add_column("fvcore MACs", justify="right")
    t.add_column("closed form", justify="right")
    for row in _flops_rows(r):
        t.add_row(*row)
    parts: list[RenderableType] = [t, *(Text(line) for line in _lines(r))]
    parts += [Text(f"DISAGREE: {p}", style="bold red") for p in r.problems]
    return Group(*parts)


def flops_markdown(r: ModuleFlops) -> str:
    return "\n".join([f"### attncli flops --module `{r.ref}`", "",
                      md_table(["stage", "fvcore MACs", "closed form"], _flops_rows(r), "lrr"), "",
                      *(f"- {line}" for line in _lines(r)),
                      *(f"- **DISAGREE**: {p}" for p in r.problems)]) + "\n"


def shapes_table(r: UserShapes) -> RenderableType:
    t = Table(title=f"attncli shapes --module {r.ref}", title_justify="left")
    t.add_column("tensor")
    t.add_column("shape", justify="right")
    t.add_column("elements", justify="right")
    for i, s in enumerate(r.input_shapes):
        t.add_row(f"input {i}", str(s), "")
    t.add_row("output", str(r.output_shape), "")
    for name, shape, n in r.weights:
        t.add_row(name, str(shape), commas(n))
    t.add_row(Text("total parameters", style="bold"), "", Text(commas(r.total_params), style="bold"))
    notes = list(r.notes) if r.plan is None else [f"called as {r.plan.style}: {r.plan.reason}", *r.notes]
    return Group(t, *(Text(n) for n in notes)) if notes else t


def shapes_markdown(r: UserShapes) -> str:
    rows = [(f"input {i}", f"`{s}`", "") for i, s in enumerate(r.input_shapes)]
    rows += [("output", f"`{r.output_shape}`", "")]
    rows += [(f"`{n}`", f"`{s}`", commas(k)) for n, s, k in r.weights]
    rows += [("**total parameters**", "", f"**{commas(r.total_params)}**")]
    return f"### attncli shapes --module `{r.ref}`\n\n" + md_table(["tensor", "shape", "elements"], rows, "lrr") + "\n"
