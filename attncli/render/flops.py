"""The ``attncli flops`` report as a rich table or Markdown.

Counts keep thousands separators and get a human unit beside them (``68.72 G``); the JSON
document (``FlopsReport.to_json``) has the exact integers. Every table says its convention:
fvcore's "flops" are multiply-adds (MACs); FLOPs are 2 x that.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from attncli.analyses.flops import UNCOUNTED_WHY, FlopsReport, Variant
from attncli.registry import kind_of
from attncli.render.common import commas, conventions, human, human_bytes, md_table, modern_terms, named
from attncli.render.layout import Fit, Trimmed, md_document, plain_table
from attncli.render.roofline import seconds


def _title(r: FlopsReport) -> str:
    s = r.spec
    kv = "" if s.is_self_attention else f" S={s.s} kdim={s.k_dim} vdim={s.v_dim}"
    extra = "".join(f" {flag}" for flag, on in (("+bias_kv", s.add_bias_kv), ("+zero_attn", s.add_zero_attn),
                                               (f"mask={s.mask}", s.mask != "none")) if on)
    batch = "unbatched" if s.unbatched else f"B={s.batch}"
    sizes = f"{batch} L={s.seq}{kv} E={s.dim} H={s.heads}{modern_terms(s)}{extra}"
    return f"attncli flops: {named(s)}impl {s.impl}, {sizes}"


def _masked(r: FlopsReport) -> bool:
    """Whether the effective count differs from the dense one (a mask hides some pairs)."""
    return any(v.effective_fvcore_flops != v.fvcore_flops for v in r.variants)


def conclusion(r: FlopsReport) -> str:
    """The sentence a reader needs (its kind writes it: what heads and W_O cost, or what the
    other MLA form would cost)."""
    return kind_of(r.spec).conclusion(r)


def _checks_line(r: FlopsReport) -> str:
    n = len(r.variants)
    if r.agree:
        fc = all(v.flop_counter is not None for v in r.variants)
        staged = all(v.flop_counter is not None and v.flop_counter.by_stage is not None for v in r.variants)
        what = "the closed form" + (" and torch FlopCounterMode (on meta, 2 per MAC, /2)" if fc else "")
        scope = "every stage" if staged or not fc else "every total (FlopCounterMode: totals only)"
        return f"cross-checks: fvcore = {what} on {scope} of all {n} variants"
    return f"CROSS-CHECKS DISAGREE ({len(r.problems)} problems, listed below)"


def _variant_rows(r: FlopsReport, label: bool) -> list[tuple[str, ...]]:
    rows = []
    masked = _masked(r)
    for v in r.variants:
        name = (v.label,) if label else (str(v.heads), "with" if v.out_proj else "without")
        eff = (human(2 * v.effective_fvcore_flops),) if masked else ()
        rows.append((*name, commas(v.fvcore_flops), human(v.fvcore_flops), human(v.flops), *eff,
                     human(v.training_flops), commas(v.params)))
    return rows


def _number_headers(r: FlopsReport) -> tuple[str, ...]:
    if _masked(r):
        return ("fvcore flops", "", "FLOPs", "eff. FLOPs", "fwd+bwd", "params")
    return NUMBER_HEADERS


NUMBER_HEADERS = ("fvcore flops", "", "FLOPs", "fwd+bwd", "params")
"""fvcore flops are MACs; FLOPs = 2x; fwd+bwd = 3x FLOPs (the caption and footer say so)."""


def _reference(r: FlopsReport) -> Variant:
    """The variant the stage table shows: H heads with W_O (the layer as configured)."""
    return r.configured


def _stage_names(r: FlopsReport) -> list[str]:
    return list(_reference(r).stages) + (["other"] if any(v.by_stage.get("other") for v in r.variants) else [])


def _label(r: FlopsReport, stage: str) -> str:
    return kind_of(r.spec).STAGE_LABELS.get(stage, stage)


def _closed_text(r: FlopsReport, stage: str) -> str:
    ref = _reference(r)
    spec = r.spec if ref.spec is None else ref.spec
    return kind_of(spec).closed_form_texts(spec).get(stage, "")


def _stage_rows(r: FlopsReport, shown: list[Variant]) -> list[tuple[str, ...]]:
    """Per stage: label, closed form, the counts of ``shown`` (and the layer's effective count
    when a mask hides pairs), where they were counted."""
    ref = _reference(r)
    masked = _masked(r)
    rows = []
    for st in _stage_names(r):
        eff = (commas(ref.effective_by_stage.get(st, 0)),) if masked else ()
        rows.append((_label(r, st), _closed_text(r, st),
                     *(commas(v.by_stage.get(st, 0)) for v in shown), *eff,
                     "; ".join(ref.count.stage_sources.get(st, ()))))
    eff_total = (commas(ref.effective_fvcore_flops),) if masked else ()
    rows.append(("total", "", *(commas(v.fvcore_flops) for v in shown), *eff_total, ""))
    return rows


def _uncounted(r: FlopsReport) -> list[tuple[str, str, str]]:
    seen: dict[str, int] = {}
    for v in r.variants:
        for op, n in v.count.uncounted_ops.items():
            seen[op] = max(seen.get(op, 0), n)
    return [(op, str(n), UNCOUNTED_WHY.get(op, "NO fvcore HANDLE: check whether it multiplies-and-adds"))
            for op, n in sorted(seen.items())]


def _memory_rows(r: FlopsReport, label: bool) -> list[tuple[str, ...]]:
    rows = []
    for v in r.variants:
        name = (v.label,) if label else (str(v.heads), "with" if v.out_proj else "without")
        rows.append((*name, human_bytes(v.memory.attention_matrix), human_bytes(v.memory.activations_total),
                     human_bytes(v.memory.kv_cache)))
    return rows


def _notes(r: FlopsReport) -> list[str]:
    notes = list(r.notes)
    for v in r.variants:
        for n in v.notes:
            if n not in notes:
                notes.append(n)
    return notes


def _conventions(r: FlopsReport) -> list[str]:
    return conventions(r.dtype, r.variants[0].memory.bytes_per_element, kind_of(r.spec).TERMS,
                       "; counted on the meta device: nothing was allocated.")


def _ordered(r: FlopsReport) -> list[Variant]:
    """The layer as configured first (H heads with W_O), then what it would cost without W_O,
    with one head, and with neither; the JSON lists them in this order too."""
    return r.ordered


def _short_label(v: Variant) -> str:
    if v.spec is None:
        return v.label
    return kind_of(v.spec).short_label(v.spec)


def _variants_table(r: FlopsReport, exact: bool) -> Table:
    masked = _masked(r)
    t = plain_table()
    t.add_column("variant", no_wrap=True)
    t.add_column("MACs (fvcore)" if exact else "MACs", justify="right", no_wrap=True)
    for h in ("FLOPs", *(("effective",) if masked else ()), "fwd+bwd", "params"):
        t.add_column(h, justify="right", no_wrap=True)
    for i, v in enumerate(_ordered(r)):
        eff = (human(2 * v.effective_fvcore_flops),) if masked else ()
        t.add_row(_short_label(v) + (" *" if i == 0 else ""),
                  commas(v.fvcore_flops) if exact else human(v.fvcore_flops), human(v.flops), *eff,
                  human(v.training_flops), human(v.params), style="bold" if i == 0 else None)
    return t


def _stages_table(r: FlopsReport, exact: bool, sources: bool) -> Table:
    ref = _reference(r)
    one = r.get(1, ref.out_proj) if ref.heads != 1 else None
    masked = _masked(r)
    num = commas if exact else human
    t = plain_table()
    t.add_column("stage", no_wrap=True)
    t.add_column("closed form", no_wrap=True)
    t.add_column("MACs", justify="right", no_wrap=True)
    if masked:
        t.add_column("effective", justify="right", no_wrap=True)
    if one is not None:
        t.add_column("1 head, dense" if masked else "1 head", justify="right", no_wrap=True)
    if sources:
        t.add_column("module: op", no_wrap=True)
    for st in _stage_names(r):
        n = ref.by_stage.get(st, 0)
        cells = [_label(r, st), _closed_text(r, st), num(n)]
        if masked:
            cells.append(num(ref.effective_by_stage.get(st, 0)))
        if one is not None:
            m = one.by_stage.get(st, 0)
            cells.append("same" if m == n else num(m))
        if sources:
            cells.append(_sources(ref, st))
        t.add_row(*cells)
    total = ["total", "", num(ref.fvcore_flops)]
    if masked:
        total.append(num(ref.effective_fvcore_flops))
    if one is not None:
        total.append("same" if one.fvcore_flops == ref.fvcore_flops else num(one.fvcore_flops))
    t.add_row(*total, *([""] if sources else []), style="bold")
    return t


def _sources(ref: Variant, st: str) -> str:
    return "; ".join(src.replace("aten::", "") for src in ref.count.stage_sources.get(st, ()))


def _sources_table(r: FlopsReport) -> Table:
    """Where fvcore counted each stage, for layouts too narrow to show it beside the counts."""
    ref = _reference(r)
    t = plain_table()
    t.add_column("stage", no_wrap=True)
    t.add_column("counted at (module: op)")
    for st in _stage_names(r):
        t.add_row(_label(r, st), _sources(ref, st))
    return t


def verdict(r: FlopsReport) -> str:
    """With --gpu, the roofline in one line: the layer's bound and time, fused and naive."""
    roof = r.roofline
    assert roof is not None
    return (f"roofline on {roof.label} ({roof.dtype}, estimated, an upper bound on speed): fused "
            f"{roof.fused.bound}-bound {seconds(roof.fused.time_s)}, naive {roof.naive.bound}-bound "
            f"{seconds(roof.naive.time_s)}")


def brief(r: FlopsReport, legend: bool = True, command: str = "flops") -> RenderableType:
    """The answer on one 80x24 screen: the title, the variants, the conclusion, the checks'
    verdict, the notes that change a number, and with --gpu the roofline in one line."""
    parts: list[RenderableType] = [
        Text(_title(r).replace("attncli flops:", f"attncli {command}:", 1), style="bold"), Text(""),
        Fit(_variants_table(r, exact=True), _variants_table(r, exact=False)),
        Text("* the layer as configured; " + kind_of(r.spec).variants_note(r.spec) + ".", style="dim"),
        Text(conclusion(r)), Text(_checks_line(r))]
    parts += [Text(f"DISAGREE: {p}", style="bold red") for p in r.problems]
    if r.roofline is not None:
        parts.append(Text(verdict(r)))
    if _masked(r):
        parts.append(Text("effective = FLOPs of the (query, key) pairs the mask leaves visible.", style="dim"))
    legend_text = "MACs = fvcore's flops (one multiply-add); FLOPs = 2 x MACs; fwd+bwd = 3 x FLOPs."
    if legend:
        legend_text += (" --verbose: stages, uncounted ops, memory, notes, conventions" +
                        (", the roofline's stages" if r.roofline is not None else "") + ".")
    parts.append(Text(legend_text, style="dim"))
    return Trimmed(Group(*parts))


def table(r: FlopsReport, verbose: bool = True) -> RenderableType:
    if not verbose:
        return brief(r)
    ref = _reference(r)
    head = Text(_title(r), style="bold")
    order = ("* the layer as configured; " + kind_of(r.spec).variants_note(r.spec)
             + ("; effective = FLOPs of the visible (query, key) pairs only" if _masked(r) else "") + ".")
    parts: list[RenderableType] = [
        head, Text(""), Fit(_variants_table(r, exact=True), _variants_table(r, exact=False)),
        Text(order, style="dim"), Text(conclusion(r)), Text(""),
        Text(f"by stage: {ref.label} (MACs)", style="bold"),
        Fit(_stages_table(r, exact=True, sources=True),
            Group(_stages_table(r, exact=True, sources=False), Text(""), _sources_table(r)),
            Group(_stages_table(r, exact=False, sources=False), Text(""), _sources_table(r))),
        Text(_checks_line(r))]
    for p in r.problems:
        parts.append(Text(f"DISAGREE: {p}", style="bold red"))

    unc = plain_table("not counted by fvcore (no multiply-adds)")
    unc.add_column("op", no_wrap=True)
    unc.add_column("times", justify="right", no_wrap=True)
    unc.add_column("what it does")
    for urow in _uncounted(r):
        unc.add_row(*urow)
    mem = plain_table(f"memory one forward pass would need ({r.dtype})")
    mem.add_column("variant", no_wrap=True)
    mem.add_column("attention matrix", justify="right", no_wrap=True)
    mem.add_column("activations", justify="right", no_wrap=True)
    mem.add_column("KV cache", justify="right", no_wrap=True)
    for v in _ordered(r):
        mem.add_row(_short_label(v), human_bytes(v.memory.attention_matrix),
                    human_bytes(v.memory.activations_total), human_bytes(v.memory.kv_cache))
    parts += [Text(""), unc, Text(""), mem, Text(f"attention matrix = B*H*L*S' scores; KV cache = "
                                                 f"{kind_of(r.spec).KV_FORM}.", style="dim"), Text("")]
    parts += [Text(f"note: {n}") for n in _notes(r)]
    parts += [Text(c, style="dim") for c in _conventions(r)]
    if r.roofline is not None:
        from attncli.render import roofline

        parts += [Text(""), roofline.table(r.roofline)]
    return Trimmed(Group(*parts))


def markdown(r: FlopsReport) -> str:
    shown = [v for v in _ordered(r) if v.out_proj] or list(r.variants)
    masked = _masked(r)
    heads = ("variant", "fvcore flops (MACs)", "MACs, rounded", "FLOPs (2x MACs)",
             *(("effective FLOPs",) if masked else ()), "fwd+bwd FLOPs (3x)", "params")
    rows = [(f"**{v.label} (as configured)**" if i == 0 else v.label, commas(v.fvcore_flops), human(v.fvcore_flops),
             human(v.flops), *((human(2 * v.effective_fvcore_flops),) if masked else ()), human(v.training_flops),
             commas(v.params)) for i, v in enumerate(_ordered(r))]
    out = [f"### {_title(r)}", "",
           md_table(heads, rows, "l" + "r" * (len(heads) - 1)), "",
           f"The first row is the layer as configured; {kind_of(r.spec).variants_note(r.spec)}.", "",
           f"**{conclusion(r)}**", "",
           "#### By stage (fvcore MACs)", "",
           md_table(["stage", "closed form", *(v.label for v in shown),
                     *([f"{_reference(r).label}, effective"] if masked else []), "module: op"],
                    [(a, f"`{b}`" if b else "", *rest) for a, b, *rest in _stage_rows(r, shown)],
                    "ll" + "r" * (len(shown) + masked) + "l"), "",
           _checks_line(r)]
    out += [f"- **DISAGREE**: {p}" for p in r.problems]
    out += ["", "#### Not counted by fvcore (no multiply-adds)", "",
            md_table(["op", "times", "what it does"], [(f"`{a}`", b, c) for a, b, c in _uncounted(r)], "lrl"),
            "", f"#### Memory one forward pass would need ({r.dtype})", "",
            md_table(["variant", "attention matrix (B*H*L*S')", "activations", f"KV cache ({kind_of(r.spec).KV_FORM})"],
                     [(v.label, human_bytes(v.memory.attention_matrix), human_bytes(v.memory.activations_total),
                       human_bytes(v.memory.kv_cache)) for v in _ordered(r)], "lrrr")]
    notes = _notes(r)
    if notes:
        out += ["", "#### Notes", ""] + [f"- {n}" for n in notes]
    out += ["", "#### Conventions", ""] + [f"- {c}" for c in _conventions(r)]
    if r.roofline is not None:
        from attncli.render import roofline

        out += ["", roofline.markdown(r.roofline).rstrip("\n")]
    return md_document("\n".join(out)) + "\n"
