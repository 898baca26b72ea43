"""The ``attncli permute-test`` report as a rich table or Markdown.

Three parts, in the order a reader needs them: one row per encoding (how far ``f(P x)`` is
from ``P f(x)``), the token outputs side by side for small cases (so b1 can be seen
unchanged without encoding and changed with one), then the verdict, its reasons and notes.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from attncli.analyses.permute import Case, PermuteReport, TokenRow
from attncli.render.common import md_table, modern_terms, named
from attncli.render.layout import Trimmed, md_document, plain_table


def fmt_num(x: float) -> str:
    """A difference: ``0`` exactly, else three significant digits."""
    return "0" if x == 0.0 else f"{x:.3g}"


def fmt_vec(v: Sequence[float]) -> str:
    """A token or output vector: ``(0.6967, -0.6836)``."""
    return "(" + ", ".join(f"{x:.4f}" if x != int(x) or abs(x) >= 1e4 else f"{int(x)}" for x in v) + ")"


def _title(r: PermuteReport) -> str:
    s = r.spec
    return (f"attncli permute-test: {named(s)}impl {s.impl}, E={s.dim}, H={s.heads} (d={s.head_dim}){modern_terms(s)}, "
            f"{r.layout} input {tuple(r.input_shape)}, mask {s.mask}, {r.dtype}, "
            f"permutation {list(r.permutation)}")


def _status(r: PermuteReport) -> str:
    return "HOLDS" if r.holds else ("DEGENERATE" if r.degenerate else "DOES NOT HOLD")


def _equivariant(c: Case) -> str:
    return "yes" if c.equivariant else "no"


def _changed(row: TokenRow, tol: float) -> str:
    return "unchanged" if row.max_abs_diff <= tol else "changed"


def _slot(row: TokenRow) -> str:
    return f"{row.token}->{row.slot_after}"


def _num_width(c: Case) -> int:
    """The widest single number of a case's vectors, so cells wrap between numbers only."""
    assert c.rows is not None
    return max(len(part) for row in c.rows for v in (row.before, row.after)
               for part in fmt_vec(v).split(" "))


def table(r: PermuteReport, verbose: bool = True) -> RenderableType:
    # NOTE: plain strings in rich tables are parsed as markup, and "PE[p, 2i]" looks like a
    # tag; every free text goes in as Text. Descriptions sit under the table, not in a column,
    # so the numbers keep their width in an 80-column terminal.
    cases = plain_table()
    cases.add_column("encoding", no_wrap=True)
    cases.add_column("max |f(Px) - P f(x)|", justify="right", no_wrap=True)
    cases.add_column("max |f(x)|", justify="right", no_wrap=True)
    cases.add_column(f"equivariant (<= {r.tolerance:g})", no_wrap=True)
    for c in r.cases:
        cases.add_row(c.encoding, fmt_num(c.max_abs_diff), f"{c.max_abs_output:.3g}",
                      Text(_equivariant(c), style="green" if c.equivariant else "yellow"))
    parts: list[RenderableType] = [Text(_title(r), style="bold"), *([Text("")] if verbose else []), cases]
    what = plain_table()
    what.show_header = False
    what.add_column("encoding", no_wrap=True)
    what.add_column("what it does")
    for c in r.cases:
        what.add_row(c.encoding, Text(c.description))
    if verbose:
        parts += [Text(""), what]
    # NOTE: on one screen by default: the token outputs of the case without encoding (the demo
    # itself: b_i moves with a_i), every encoding's with --verbose.
    shown = list(r.cases) if verbose else [c for c in r.cases if c.encoding == "none"][:1]

    if shown and all(c.rows is not None for c in shown):
        parts.append(Text(""))
        # NOTE: before and after are stacked in one cell, so equal outputs sit digit over
        # digit and two-feature vectors fit an 80-column terminal; wider vectors wrap between
        # numbers, never inside one.
        tokens = Table(title=None if not verbose else
                       "token outputs: b_i = f(x) for token a_i before (upper line) and after "
                       "the permutation (lower line, f(Px) at a_i's new slot)",
                       title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                       padding=(0, 1))
        width = max(_num_width(c) for c in shown)
        tokens.add_column("encoding", no_wrap=True)
        tokens.add_column("token a_i", min_width=width + 3, overflow="fold")
        tokens.add_column("slot", no_wrap=True, min_width=4)
        tokens.add_column("b_i before / after", min_width=width, overflow="fold")
        tokens.add_column("max |diff|", justify="right", no_wrap=True)
        tokens.add_column("", no_wrap=True)
        for c in shown:
            assert c.rows is not None
            for k, row in enumerate(c.rows):
                tokens.add_row(c.encoding if k == 0 else "", f"a{row.token + 1} {fmt_vec(row.input)}",
                               _slot(row), f"{fmt_vec(row.before)}\n{fmt_vec(row.after)}",
                               fmt_num(row.max_abs_diff), _changed(row, r.tolerance),
                               end_section=k == len(c.rows) - 1)
        parts.append(tokens)

    style = "bold green" if r.holds else "bold red"
    if verbose:
        parts.append(Text(""))
    parts.append(Text.assemble((f"{_status(r)}: ", style), r.verdict))
    parts += [Text(f"reason: {x}") for x in r.reasons]
    if verbose:
        parts += [Text(f"note: {n}") for n in r.notes]
    else:
        parts.append(Text("b_i: upper line before, lower after. --verbose: every encoding's outputs, notes.",
                          style="dim"))
    return Trimmed(Group(*parts))


def markdown(r: PermuteReport) -> str:
    out = [f"### {_title(r)}", "",
           md_table(["encoding", "max |f(Px) - P f(x)|", "max |f(x)|",
                     f"equivariant (<= {r.tolerance:g})", "what it does"],
                    [(f"`{c.encoding}`", fmt_num(c.max_abs_diff), f"{c.max_abs_output:.3g}",
                      _equivariant(c), c.description) for c in r.cases], "lrrll")]
    if all(c.rows is not None for c in r.cases):
        rows = []
        for c in r.cases:
            assert c.rows is not None
            rows += [(f"`{c.encoding}`", f"a{row.token + 1}", f"`{fmt_vec(row.input)}`", _slot(row),
                      f"`{fmt_vec(row.before)}`", f"`{fmt_vec(row.after)}`", fmt_num(row.max_abs_diff),
                      _changed(row, r.tolerance)) for row in c.rows]
        out += ["", "#### Token outputs before and after the permutation", "",
                md_table(["encoding", "token", "a_i", "slot", "b_i before: f(x)", "b_i after: f(Px)",
                          "max |diff|", ""], rows, "llllllrl")]
    out += ["", f"**{_status(r)}**: {r.verdict}"]
    if r.reasons:
        out += [""] + [f"- reason: {x}" for x in r.reasons]
    if r.notes:
        out += [""] + [f"- {n}" for n in r.notes]
    return md_document("\n".join(out)) + "\n"
