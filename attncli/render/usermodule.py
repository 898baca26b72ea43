"""Tables and Markdown for ``--module``: a user's module counted and shaped."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from attncli.choices import STAGE_LABELS
from attncli.render.common import commas, human, md_table
from attncli.usermodule import ModuleFlops, UserShapes


def _flops_rows(r: ModuleFlops) -> list[tuple[str, str, str]]:
    rows = [(STAGE_LABELS.get(k, k), commas(v), commas(r.reference.get(k, 0)))
            for k, v in r.count.by_stage.items()]
    rows.append(("total", commas(r.count.total), commas(sum(r.reference.values()))))
    return rows


def _check_line(r: ModuleFlops) -> str:
    fc = r.flop_counter
    status = "agrees" if r.agree else "DISAGREES"
    return (f"FlopCounterMode: {fc.flops:,} FLOPs = 2 x {fc.macs:,} MACs: {status} with fvcore; "
            f"{'matches' if r.matches_reference else 'differs from'} standard attention of these sizes")


def flops_table(r: ModuleFlops) -> RenderableType:
    t = Table(title=f"attncli flops --module {r.ref}: E={r.spec.dim}, H={r.spec.heads}, "
                    f"B={r.spec.batch}, L={r.spec.seq}", title_justify="left")
    t.add_column("stage")
    t.add_column("fvcore MACs", justify="right")
    t.add_column("standard attention", justify="right")
    for row in _flops_rows(r):
        t.add_row(*row)
    parts: list[RenderableType] = [t, Text(f"{human(r.count.total)} MACs ({human(2 * r.count.total)} FLOPs), "
                                           f"{commas(r.params)} parameters"), Text(_check_line(r))]
    if r.count.uncounted_ops:
        parts.append(Text("not counted (no multiply-adds): " + ", ".join(r.count.uncounted_ops)))
    parts += [Text(f"DISAGREE: {p}", style="bold red") for p in r.problems]
    return Group(*parts)


def flops_markdown(r: ModuleFlops) -> str:
    return "\n".join([f"### attncli flops --module `{r.ref}`", "",
                      md_table(["stage", "fvcore MACs", "standard attention"], _flops_rows(r), "lrr"), "",
                      f"{commas(r.params)} parameters. {_check_line(r)}.",
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
    return t


def shapes_markdown(r: UserShapes) -> str:
    rows = [(f"input {i}", f"`{s}`", "") for i, s in enumerate(r.input_shapes)]
    rows += [("output", f"`{r.output_shape}`", "")]
    rows += [(f"`{n}`", f"`{s}`", commas(k)) for n, s, k in r.weights]
    rows += [("**total parameters**", "", f"**{commas(r.total_params)}**")]
    return f"### attncli shapes --module `{r.ref}`\n\n" + md_table(["tensor", "shape", "elements"], rows, "lrr") + "\n"
