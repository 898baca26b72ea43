"""The ``attncli report`` document: the three reports and the checks, as tables or Markdown."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.text import Text

from attncli.analyses.report import Report
from attncli.render import checks, flops, permute, shapes
from attncli.render.common import modern_terms
from attncli.render.layout import Trimmed


def table(r: Report) -> RenderableType:
    parts: list[RenderableType] = [Rule("FLOPs"), flops.table(r.flops), Rule("Shapes"), shapes.table(r.shapes),
                                   Rule("Permutation test")]
    parts.append(permute.table(r.permute) if r.permute is not None else Text(f"skipped: {r.permute_skipped}"))
    if r.checks:
        parts += [Rule("Checks"), checks.table(r.checks)]
    parts += [Text(f"note: {n}") for n in r.notes]
    return Trimmed(Group(*parts))


def markdown(r: Report) -> str:
    s = r.spec
    out = [f"## attncli report: E={s.dim}, H={s.heads}, B={s.batch}, L={s.seq}, S={s.s},{modern_terms(s)} "
           f"impl {s.impl}", ""]
    if r.checks:
        out += [checks.markdown(r.checks), ""]
    out += [flops.markdown(r.flops), "", shapes.markdown(r.shapes), ""]
    if r.permute is not None:
        out.append(permute.markdown(r.permute))
    else:
        out.append(f"### Permutation test\n\nSkipped: {r.permute_skipped}")
    if r.notes:
        out += [""] + [f"- {n}" for n in r.notes]
    return "\n".join(out) + "\n"
