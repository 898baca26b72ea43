"""Tables and Markdown for ``--module``: a user's module counted and shaped.

They follow the built-in renderers (:mod:`attncli.render.flops`): the title is a line of text
above the table (never squeezed into the table's width), the tables are :func:`plain_table`
with cells that never wrap, :class:`Fit` picks a narrower layout for a narrow terminal, and
:class:`Trimmed` leaves no trailing spaces in a pipe. The title names what changes the count:
the layer's mask or window and S when it differs from L; a masked layer gets an effective
column (visible pairs only) beside the dense count.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from attncli.modules.usermodule import OTHER_RULE, ModuleFlops, UserShapes, layer_name
from attncli.registry import kind_of
from attncli.render.common import commas, conventions, human, human_bytes, md_table, named
from attncli.render.layout import Fit, Trimmed, md_document, plain_table
from attncli.spec import AttnSpec


def memory_note(spec: AttnSpec) -> str:
    """How the memory was estimated: as the layer's kind with these sizes."""
    return (f"estimated as {layer_name(spec)} with these sizes: attention matrix = B*H*L*S' scores; "
            f"KV cache = {kind_of(spec).KV_FORM}.")


def _sizes(s: AttnSpec) -> str:
    """The sizes the module was built with, and what changes the count: mask, window, S."""
    batch = "unbatched" if s.unbatched else f"B={s.batch}"
    kv = "" if s.s == s.seq else f" S={s.s}"
    kv += "" if s.k_dim == s.dim else f" kdim={s.k_dim}"
    kv += "" if s.v_dim == s.dim else f" vdim={s.v_dim}"
    mask = f" mask={s.mask}" if s.mask != "none" else ""
    window = f" window={s.window}" if s.window is not None else ""
    window += f" chunk={s.chunk}" if s.chunk is not None else ""
    heads = f"G={s.n_kv_heads} d={s.head_dim}" if s.runs_on_impls else " ".join(kind_of(s).title_parts(s))
    layer = named(s).removesuffix(", ")
    layer += " " if layer else ""
    return f"{layer}{batch} L={s.seq}{kv} E={s.dim} H={s.heads} {heads}{mask}{window}"


def title(command: str, ref: str, spec: AttnSpec) -> str:
    """``attncli flops: module pkg.mod:Attr, B=32 L=1024 E=512 H=8 G=2 d=64 mask=causal``."""
    return f"attncli {command}: module {ref}, {_sizes(spec)}"


def _head(command: str, ref: str, spec: AttnSpec) -> RenderableType:
    """The title on one line, or (too wide) the module on one line and its sizes on the next."""
    return Fit(Text(title(command, ref, spec), style="bold"),
               Group(Text(f"attncli {command}: module {ref}", style="bold"), Text(_sizes(spec), style="bold")))


def _md_title(command: str, ref: str, spec: AttnSpec) -> str:
    return f"### attncli {command}: module `{ref}`, {_sizes(spec)}"


# ---------------------------------------------------------------------------- flops
def _rows(r: ModuleFlops, f: Callable[[int], str], formulas: bool) -> list[tuple[str, ...]]:
    """stage, (its formula), fvcore MACs, closed form, (effective, when a mask hides pairs)."""
    masked = r.masked
    kind = r.kind
    texts = kind.closed_form_texts(r.spec)
    rows: list[tuple[str, ...]] = []
    for k in r.stages:
        eff = (f(r.effective_by_stage.get(k, 0)),) if masked else ()
        rows.append((kind.STAGE_LABELS.get(k, k), *((texts.get(k, ""),) if formulas else ()),
                     f(r.count.by_stage.get(k, 0)), f(r.closed.get(k, 0)), *eff))
    for op, n in r.other_ops.items():
        rows.append((f"other: {op}", *(("",) if formulas else ()), f(n), "-", *(("-",) if masked else ())))
    eff_total = (f(r.effective_total),) if masked else ()
    rows.append(("total", *(("",) if formulas else ()), f(r.count.total), f(sum(r.closed.values())), *eff_total))
    return rows


def _headers(r: ModuleFlops, formulas: bool, exact: bool) -> list[str]:
    return ["stage", *(["formula"] if formulas else []), "MACs (fvcore)" if exact else "MACs",
            "closed form", *(["effective"] if r.masked else [])]


def _stages_table(r: ModuleFlops, exact: bool, formulas: bool) -> Table:
    t = plain_table()
    for i, h in enumerate(_headers(r, formulas, exact)):
        left = i == 0 or (formulas and i == 1)
        t.add_column(h, justify="left" if left else "right", no_wrap=True)
    rows = _rows(r, commas if exact else human, formulas)
    for i, row in enumerate(rows):
        t.add_row(*row, style="bold" if i == len(rows) - 1 else None)
    return t


def _summary(r: ModuleFlops) -> str:
    eff = ""
    if r.masked:
        n = r.effective_total
        eff = f"; effective {human(n)} MACs ({human(2 * n)} FLOPs)"
    w_o = "W_O not in this module"
    if r.out_proj_cost is not None:
        pct = r.out_proj_percent
        w_o = f"W_O adds {human(r.out_proj_cost)} MACs" + ("" if pct is None else f" (+{pct:.1f}%)")
    dense = " dense" if r.masked else ""
    return (f"{human(r.count.total)} MACs{dense} ({human(2 * r.count.total)} FLOPs){eff}; "
            f"{commas(r.params)} parameters; {w_o}.")


def _check_line(r: ModuleFlops) -> str:
    fc = r.flop_counter
    status = "agrees" if r.agree else "DISAGREES"
    left_out = f" (without {', '.join(k for k, _ in fc.skipped)}, which it has no formula for)" if fc.skipped else ""
    params = ""
    if not r.spec.runs_on_impls:
        n = r.closed_params["total"]
        params = (f"; its {r.params:,} parameters {'are' if r.params_match else 'differ from'} the closed "
                  f"form's" + ("" if r.params_match else f" {n:,}"))
    return (f"FlopCounterMode: {fc.flops:,} FLOPs = 2 x {fc.macs:,} MACs{left_out}: {status} with fvcore; "
            f"the attention stages {'match' if r.matches_reference else 'differ from'} the closed form of "
            f"{r.layer_name} of these sizes{params}")


def _lines(r: ModuleFlops) -> list[str]:
    """Under the table: the call, the cross-check, the rule for other ops, notes."""
    lines = []
    if r.plan is not None:
        lines.append(f"called as {'module(q, k, v)' if r.plan.style == 'qkv' else 'module(x)'}: {r.plan.reason}")
    lines += list(r.notes)
    lines.append(_check_line(r))
    if r.other_ops:
        lines.append("other: " + OTHER_RULE)
    return lines


def _uncounted(r: ModuleFlops) -> list[tuple[str, str, str]]:
    from attncli.engine.handles import UNCOUNTED_WHY

    return [(op, str(n), UNCOUNTED_WHY.get(op, "NO fvcore HANDLE: check whether it multiplies-and-adds"))
            for op, n in sorted(r.count.uncounted_ops.items())]


def _memory_row(r: ModuleFlops) -> tuple[str, str, str]:
    m = r.memory
    return human_bytes(m.attention_matrix), human_bytes(m.activations_total), human_bytes(m.kv_cache)


def _memory_title(r: ModuleFlops) -> str:
    return f"memory one forward pass would need ({r.dtype})"


def _conventions(r: ModuleFlops) -> list[str]:
    return conventions(r.dtype, r.memory.bytes_per_element,
                       f"closed form: {r.layer_name} with the sizes the module was built with, reported, not "
                       f"enforced; {r.kind.TERMS}", ".")


BRIEF_NOTE_PREFIXES = ("mask", "transformers says")
"""The notes the one-screen table keeps: where the mask came from (or that it could not be read) and
what transformers said; the others (how the class was built and called) are under --verbose."""


def flops_table(r: ModuleFlops, verbose: bool = True) -> RenderableType:
    """The stages, the summary and the cross-check on one screen; with ``verbose`` the notes, the ops
    fvcore does not count, memory and the conventions too."""
    effective = ("effective = MACs of the visible (query, key) pairs only; MACs (fvcore) and closed form are "
                 "dense (every pair).") if r.masked else ""
    parts: list[RenderableType] = [
        _head("flops", r.ref, r.spec), Text(""),
        Fit(_stages_table(r, exact=True, formulas=True), _stages_table(r, exact=True, formulas=False),
            _stages_table(r, exact=False, formulas=False)),
        *([Text(effective, style="dim")] if effective else []),
        Text(_summary(r))]
    parts += [Text(f"DISAGREE: {p}", style="bold red") for p in r.problems]
    if not verbose:
        parts += [Text(line) for line in r.notes if line.startswith(BRIEF_NOTE_PREFIXES)]
        parts += [Text(_check_line(r)),
                  Text("--verbose: how the module was built and called, notes, uncounted ops, memory, conventions.",
                       style="dim")]
        return Trimmed(Group(*parts))
    parts += [Text(line) for line in _lines(r)]
    unc = _uncounted(r)
    if unc:
        t = plain_table("not counted by fvcore (no multiply-adds)")
        t.add_column("op", no_wrap=True)
        t.add_column("times", justify="right", no_wrap=True)
        t.add_column("what it does")
        for row in unc:
            t.add_row(*row)
        parts += [Text(""), t]
    mem = plain_table()
    for h in ("attention matrix", "activations", "KV cache"):
        mem.add_column(h, justify="right", no_wrap=True)
    mem.add_row(*_memory_row(r))
    parts += [Text(""), Text(_memory_title(r), style="bold"), mem, Text(memory_note(r.spec), style="dim"),
              Text("")]
    parts += [Text(c, style="dim") for c in _conventions(r)]
    return Trimmed(Group(*parts))


def flops_markdown(r: ModuleFlops) -> str:
    heads = _headers(r, formulas=True, exact=True)
    rows = [(a, f"`{b}`" if b else "", *rest) for a, b, *rest in _rows(r, commas, formulas=True)]
    out = [_md_title("flops", r.ref, r.spec), "",
           md_table(heads, rows, "ll" + "r" * (len(heads) - 2)), ""]
    if r.masked:
        out += ["effective = MACs of the visible (query, key) pairs only; MACs (fvcore) and closed form are "
                "dense (every pair).", ""]
    out += [f"**{_summary(r)}**", ""]
    out += [f"- {line}" for line in _lines(r)]
    out += [f"- **DISAGREE**: {p}" for p in r.problems]
    unc = _uncounted(r)
    if unc:
        out += ["", "#### Not counted by fvcore (no multiply-adds)", "",
                md_table(["op", "times", "what it does"], [(f"`{a}`", b, c) for a, b, c in unc], "lrl")]
    out += ["", f"#### {_memory_title(r).capitalize()}", "",
            md_table(["attention matrix (B*H*L*S')", "activations", f"KV cache ({r.kind.KV_FORM})"],
                     [_memory_row(r)], "rrr"),
            "", memory_note(r.spec), "", "#### Conventions", ""] + [f"- {c}" for c in _conventions(r)]
    return md_document("\n".join(out)) + "\n"


# ---------------------------------------------------------------------------- shapes
def _shape_rows(r: UserShapes) -> list[tuple[str, str, str]]:
    rows = [(f"input {i}", str(s), "") for i, s in enumerate(r.input_shapes)]
    rows.append(("output", str(r.output_shape), ""))
    rows += [(name, str(shape), commas(n)) for name, shape, n in r.weights]
    return rows


def _shape_notes(r: UserShapes) -> list[str]:
    return list(r.notes) if r.plan is None else [f"called as {r.plan.style}: {r.plan.reason}", *r.notes]


def shapes_table(r: UserShapes) -> RenderableType:
    t = plain_table()
    t.add_column("tensor", no_wrap=True)
    t.add_column("shape", justify="right", no_wrap=True)
    t.add_column("elements", justify="right", no_wrap=True)
    for row in _shape_rows(r):
        t.add_row(*row)
    t.add_row("total parameters", "", commas(r.total_params), style="bold")
    parts: list[RenderableType] = [_head("shapes", r.ref, r.spec), Text(""), t]
    parts += [Text(n) for n in _shape_notes(r)]
    return Trimmed(Group(*parts))


def shapes_markdown(r: UserShapes) -> str:
    rows = [(f"`{a}`" if a.split()[0] not in ("input", "output") else a, f"`{b}`", c) for a, b, c in _shape_rows(r)]
    rows += [("**total parameters**", "", f"**{commas(r.total_params)}**")]
    notes = [f"- {n}" for n in _shape_notes(r)]
    return md_document("\n".join([_md_title("shapes", r.ref, r.spec), "",
                                  md_table(["tensor", "shape", "elements"], rows, "lrr"),
                                  *(["", *notes] if notes else [])])) + "\n"
