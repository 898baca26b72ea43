"""The ``attncli report`` document: the three reports and the checks, as tables or Markdown."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.text import Text

from attncli.analyses.report import Report
from attncli.render import checks, flops, permute, shapes
from attncli.render.common import commas, modern_terms, named
from attncli.render.layout import Trimmed


def brief(r: Report) -> RenderableType:
    """The answer on one 80x24 screen: the checks first when one failed, the FLOP variants and their
    verdict, the shapes in a line, the permutation test's verdict; --verbose has the three reports whole."""
    parts: list[RenderableType] = []
    failed = [c for c in r.checks if not c.passed]
    if failed:
        parts += [Text(f"CHECK FAILED: {c.message}", style="bold red") for c in failed]
    parts.append(flops.brief(r.flops, legend=False, command="report"))
    first, last = r.shapes.stages[0], r.shapes.stages[-1]
    parts.append(Text(f"shapes: {first.name} {shapes.fmt_shape(first.shape)} -> {last.name} "
                      f"{shapes.fmt_shape(last.shape)}; parameters {commas(r.shapes.total_params)}"))
    if r.permute is not None:
        cases = "; ".join(f"{c.encoding}: {'equivariant' if c.equivariant else 'not equivariant'}"
                          for c in r.permute.cases)
        parts.append(Text(f"permutation test: {'holds' if r.permute.holds else 'DOES NOT HOLD'} ({cases})"))
    else:
        parts.append(Text(f"permutation test skipped: {r.permute_skipped}"))
    if r.checks and not failed:
        parts.append(Text(f"checks: all {len(r.checks)} passed"))
    parts.append(Text("--verbose: the FLOP stages, every shape and weight, the permutation cases, notes.",
                      style="dim"))
    return Trimmed(Group(*parts))


def table(r: Report, verbose: bool = True) -> RenderableType:
    if not verbose:
        return brief(r)
    parts: list[RenderableType] = [Rule("FLOPs"), flops.table(r.flops), Rule("Shapes"), shapes.table(r.shapes),
                                   Rule("Permutation test")]
    parts.append(permute.table(r.permute) if r.permute is not None else Text(f"skipped: {r.permute_skipped}"))
    if r.checks:
        parts += [Rule("Checks"), checks.table(r.checks)]
    parts += [Text(f"note: {n}") for n in r.notes]
    return Trimmed(Group(*parts))


def markdown(r: Report) -> str:
    s = r.spec
    out = [f"## attncli report: {named(s)}E={s.dim}, H={s.heads}, B={s.batch}, L={s.seq}, S={s.s},{modern_terms(s)} "
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
