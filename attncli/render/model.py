"""The ``attncli model`` report as a rich table or Markdown: the answer on one screen.

The title names the model, the step and the dtype; one line gives the schedule; one row per
group of equal layers and a total row; then the KV cache (theoretical and paged), the FLOPs, and
with ``--gpu`` the time and what fits. ``verbose`` adds each group's stages. Exact integers are
in the JSON (:meth:`attncli.analyses.model.ModelReport.to_json`).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Group as RichGroup
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from attncli.analyses.model import Group, ModelReport
from attncli.registry import STANDARD, kind_of, title
from attncli.render.common import commas, human, human_bytes, md_table
from attncli.render.layout import Fit, Trimmed, md_document, plain_table
from attncli.render.roofline import seconds


def _title(r: ModelReport) -> str:
    s = r.spec
    step = {"prefill": f"prefill L={s.seq}", "decode": f"decode step at S={s.s}",
            "chunked prefill": f"chunked prefill L={s.seq} after N={s.cache}"}[r.step]
    tp = f", --tp {r.tp}" if r.tp > 1 else ""
    ignoring = f" (ignoring {', '.join(s.ignored_fields)})" if s.ignored_fields else ""
    return f"attncli model: {r.name}{ignoring}, {step}, B={s.batch}, {r.dtype}{tp}"


def _kind_name(g: Group) -> str:
    """A group's kind of layer, with its form: ``Gated DeltaNet, chunked``; empty for standard attention."""
    if g.spec.kind == STANDARD:
        return ""
    return title(g.spec.kind).split(" (")[0] + ("" if g.spec.form is None else f", {g.spec.form}")


def _schedule_line(r: ModelReport) -> str:
    kinds = {g.key.label(): _kind_name(g) for g in r.groups if _kind_name(g)}
    what = "".join(f"; {label}: {name}" for label, name in kinds.items())
    if len(kinds) > 1 and len(set(kinds.values())) == 1 and len(kinds) == len(r.groups):
        what = f"; every layer {next(iter(kinds.values()))}"
    source = r.schedule.source.split(" (")[0]  # NOTE: the whole rule is in --verbose and the JSON
    return f"{r.schedule.summary()}{what}; schedule from {source}"


def _groups_table(r: ModelReport, exact: bool) -> Table:
    num = commas if exact else human
    masked = any(g.variant.effective_fvcore_flops != g.variant.fvcore_flops for g in r.groups)
    t = plain_table()
    t.add_column("layers", no_wrap=True)
    t.add_column("n", justify="right", no_wrap=True)
    t.add_column("MACs / layer", justify="right", no_wrap=True)
    if masked:
        t.add_column("effective", justify="right", no_wrap=True)
    t.add_column("params", justify="right", no_wrap=True)
    t.add_column("KV / layer" if all(g.kv_bytes_per_token for g in r.groups) else "KV/state",
                 justify="right", no_wrap=True)
    for g in r.groups:
        v = g.variant
        t.add_row(g.key.label(), str(g.n), num(v.fvcore_flops), *((num(v.effective_fvcore_flops),) if masked else ()),
                  human(v.params), human_bytes(g.kv_cache_bytes))
    tot = r.totals()
    t.add_row(Text("total", style="bold"), str(len(r.schedule.layers)), num(tot["fvcore_flops"]),
              *((num(tot["effective_fvcore_flops"]),) if masked else ()), human(tot["params"]),
              human_bytes(tot["kv_cache_bytes"]), style="bold")
    return t


def _kv_line(r: ModelReport) -> str:
    from attncli.analyses.model import paged_modelled

    tot = r.totals()
    if not all(paged_modelled(g.spec) for g in r.groups):
        return (f"KV cache after the step ({r.kv_dtype}): {human_bytes(tot['kv_cache_bytes'])} as transformers "
                "keeps it (each distinct tensor once: window, compressed entries, indexer keys, open-window "
                "buffers, overlap); paged: not modelled for DeepSeek-V4")
    state = "" if all(g.kv_bytes_per_token for g in r.groups) else ", linear layers a constant state"
    return (f"KV cache after the step ({r.kv_dtype}): {human_bytes(tot['kv_cache_bytes'])} as transformers keeps "
            f"it (full layers S, sliding W-1, chunked C-1 tokens{state}); "
            f"{human_bytes(tot['kv_cache_paged_bytes'])} paged (vLLM, blocks of {r.block_size})")


def _held_line(r: ModelReport) -> str:
    """The memory the cache's storage holds, where it differs from what the cache keeps."""
    tot = r.totals()
    if tot["kv_cache_held_bytes"] == tot["kv_cache_bytes"]:
        return ""
    return (f"memory the cache holds: {human_bytes(tot['kv_cache_held_bytes'])} (a sliding or chunked cache keeps "
            "its tokens as a view of the step's keys and values, which stay alive)")


def _keeps_lines(r: ModelReport) -> list[str]:
    """One line per group whose kind says what it keeps and attends to (DeepSeek-V4's layers)."""
    from attncli.registry import kind_of

    out = []
    for g in r.groups:
        line = kind_of(g.spec).keeps_line(g.spec)
        if line is not None:
            out.append(line)
    return out


def _flops_line(r: ModelReport) -> str:
    tot = r.totals()
    eff = "" if tot["effective_fvcore_flops"] == tot["fvcore_flops"] else \
        f", effective {human(tot['effective_flops'])} (visible pairs only)"
    return (f"attention FLOPs of the step: {human(tot['flops'])} dense (2 x {commas(tot['fvcore_flops'])} MACs)"
            f"{eff}; parameters {commas(tot['params'])}")


def _device_line(r: ModelReport) -> str | None:
    dev = r.per_device()
    if dev is None:
        return None
    from attncli.registry import kind_of

    how = next((w for w in (kind_of(g.spec).TP_WORDS for g in r.groups) if w),
               "query heads split, K/V heads max(1, G/N), an MLA latent whole on every device")
    return (f"per device (--tp {r.tp}): {human(dev['fvcore_flops'])} MACs, {human(dev['params'])} params, "
            f"KV {human_bytes(dev['kv_cache_bytes'])} ({how})")


def _time_line(r: ModelReport) -> str | None:
    if r.gpu is None or r.time_s is None:
        return None
    bounds = ", ".join(sorted({f"{g.key.label()} {g.bound}-bound" for g in r.groups if g.bound}))
    text = (f"roofline on {r.gpu.label} ({r.dtype}, estimated, an upper bound on speed): this {r.step} "
            f"{seconds(r.time_s)} ({bounds})")
    if r.decode_time_s is not None and r.step != "decode":
        text += f"; then {seconds(r.decode_time_s)} per decoded token"
    per = f" per device (--tp {r.tp})" if r.tp > 1 else ""
    if r.fits_tokens is not None and r.weights_bytes is not None:
        weights = f"{human_bytes(r.weights_bytes // r.tp)} of weights{per} ({r.weights_source})"
        if r.fits_tokens == 0:
            text += f"; nothing fits: {weights} leave no room in {human_bytes(r.gpu.memory_bytes)}"
        else:
            text += (f"; a KV cache of up to {commas(r.fits_tokens)} tokens (B={r.spec.batch}) fits in "
                     f"{human_bytes(r.gpu.memory_bytes)} beside {weights}")
    elif r.weights_bytes is not None:  # NOTE: a kind whose cache layout is not paged here (DeepSeek-V4)
        text += "; how many tokens fit is not estimated for this model's caches"
    else:
        text += "; --weights-memory says how many tokens fit"
    return text


def _checks_line(r: ModelReport) -> str:
    if r.agree:
        return ("cross-checks: each group's layer traced once; fvcore = the closed form and FlopCounterMode on "
                "every stage")
    return f"CROSS-CHECKS DISAGREE ({len(r.problems)} problems, listed below)"


def _stages_table(g: Group) -> Table:
    kind = kind_of(g.spec)
    texts = kind.closed_form_texts(g.spec)
    t = plain_table(f"{g.key.label()}: one layer by stage (MACs)")
    t.add_column("stage", no_wrap=True)
    t.add_column("closed form", no_wrap=True)
    t.add_column("MACs", justify="right", no_wrap=True)
    t.add_column("effective", justify="right", no_wrap=True)
    for st in g.variant.stages:
        t.add_row(kind.STAGE_LABELS.get(st, st), texts.get(st, ""), commas(g.variant.by_stage.get(st, 0)),
                  commas(g.variant.effective_by_stage.get(st, 0)))
    return t


def _growth_table(r: ModelReport) -> Table:
    gpu = r.gpu is not None
    fits = any(p.fits is not None for p in r.growth)
    t = plain_table(f"the step at each --{r.growth_setting}: KV cache after it ({r.kv_dtype}, as transformers "
                    "keeps it)")
    t.add_column(f"--{r.growth_setting}", justify="right", no_wrap=True)
    for g in r.groups:
        t.add_column(g.key.label(), justify="right", no_wrap=True)
    t.add_column("total", justify="right", no_wrap=True)
    if gpu:
        t.add_column("time/step", justify="right", no_wrap=True)
    if fits:
        t.add_column("fits", no_wrap=True)
    for p in r.growth:
        t.add_row(commas(p.value), *(human_bytes(b) for b in p.kv_cache_bytes), human_bytes(p.total),
                  *((seconds(p.time_s or 0.0),) if gpu else ()),
                  *(("yes" if p.fits else "no",) if fits else ()))
    return t


def plot(r: ModelReport, path: Path) -> None:
    """KV bytes (per group and total) and decode time per token against the context, log-log, to
    ``path`` (matplotlib), with the GPU memory left beside the weights as a line when known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p.value for p in r.growth]
    panels = 2 if r.gpu is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.5), dpi=110, squeeze=False)
    ax = axes[0][0]
    for i, g in enumerate(r.groups):
        ax.plot(xs, [p.kv_cache_bytes[i] for p in r.growth], marker="o", label=f"{g.n} x {g.key.label()}")
    ax.plot(xs, [p.total for p in r.growth], marker="s", color="black", linewidth=2, label="total")
    if r.gpu is not None and r.weights_bytes is not None:
        room = r.gpu.memory_bytes - r.weights_bytes // r.tp
        ax.axhline(room, color="red", linestyle="--", label=f"{r.gpu.label}: memory left beside the weights")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel(f"--{r.growth_setting} (tokens)")
    ax.set_ylabel(f"KV cache bytes ({r.kv_dtype}, B={r.spec.batch})")
    ax.set_title(f"{r.name}: KV cache after a step")
    ax.legend(fontsize=8)
    if r.gpu is not None:
        ax2 = axes[0][1]
        ax2.plot(xs, [p.time_s or 0.0 for p in r.growth], marker="o", color="black")
        ax2.set_xscale("log", base=2)
        ax2.set_yscale("log")
        ax2.set_xlabel(f"--{r.growth_setting} (tokens)")
        ax2.set_ylabel("seconds per step (roofline: an upper bound on speed)")
        step = "decode step" if r.spec.seq == 1 and r.growth_setting == "cache" else "step"
        ax2.set_title(f"one {step} of every layer on {r.gpu.label}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _lines(r: ModelReport) -> list[str]:
    lines = (_kv_line(r), _held_line(r), *_keeps_lines(r), _flops_line(r), _device_line(r), _time_line(r),
             _checks_line(r))
    return [x for x in lines if x]


def table(r: ModelReport, verbose: bool = False) -> RenderableType:
    parts: list[RenderableType] = [Text(_title(r), style="bold"), Text(_schedule_line(r)), Text(""),
                                   Fit(_groups_table(r, exact=True), _groups_table(r, exact=False))]
    parts += [Text(line) for line in _lines(r)]
    if r.growth:
        parts += [Text(""), _growth_table(r)]
    parts += [Text(f"DISAGREE: {p}", style="bold red") for p in r.problems]
    if verbose:
        parts.append(Text(f"schedule: {r.schedule.source}"))
        for g in r.groups:
            parts += [Text(""), _stages_table(g)]
        parts += [Text(f"note: {n}") for n in (*r.schedule.notes, *r.notes)]
    elif r.notes or r.schedule.notes:
        parts.append(Text(f"{len(r.notes) + len(r.schedule.notes)} notes: --verbose shows them, and the stages",
                          style="dim"))
    return Trimmed(RichGroup(*parts))


def markdown(r: ModelReport, verbose: bool = False) -> str:
    tot = r.totals()
    rows = [(g.key.label(), str(g.n), commas(g.variant.fvcore_flops), commas(g.variant.effective_fvcore_flops),
             commas(g.variant.params), commas(g.kv_cache_bytes), commas(g.kv_cache_paged_bytes)) for g in r.groups]
    rows.append(("**total**", str(len(r.schedule.layers)), f"**{commas(tot['fvcore_flops'])}**",
                 f"**{commas(tot['effective_fvcore_flops'])}**", f"**{commas(tot['params'])}**",
                 f"**{commas(tot['kv_cache_bytes'])}**", f"**{commas(tot['kv_cache_paged_bytes'])}**"))
    out = [f"### {_title(r)}", "", _schedule_line(r), "",
           md_table(["layers", "n", "MACs / layer", "effective MACs / layer", "params / layer",
                     "KV bytes / layer", "paged KV bytes / layer"], rows, "lrrrrrr"), ""]
    out += [f"- {line}" for line in _lines(r)]
    out += [f"- **DISAGREE**: {p}" for p in r.problems]
    if r.growth:
        head = [f"--{r.growth_setting}", *(g.key.label() for g in r.groups), "total",
                *(["time/step"] if r.gpu is not None else [])]
        grown = [[commas(p.value), *(commas(b) for b in p.kv_cache_bytes), commas(p.total),
                  *([seconds(p.time_s or 0.0)] if r.gpu is not None else [])] for p in r.growth]
        out += ["", f"#### KV cache bytes after the step at each --{r.growth_setting} ({r.kv_dtype})", "",
                md_table(head, grown, "r" * len(head))]
    if verbose:
        for g in r.groups:
            kind = kind_of(g.spec)
            texts = kind.closed_form_texts(g.spec)
            out += ["", f"#### {g.key.label()}: one layer by stage (MACs)", "",
                    md_table(["stage", "closed form", "MACs", "effective"],
                             [(kind.STAGE_LABELS.get(st, st), f"`{texts.get(st, '')}`",
                               commas(g.variant.by_stage.get(st, 0)), commas(g.variant.effective_by_stage.get(st, 0)))
                              for st in g.variant.stages], "llrr")]
    notes = (*r.schedule.notes, *r.notes)
    if notes:
        out += ["", "#### Notes", ""] + [f"- {n}" for n in notes]
    return md_document("\n".join(out)) + "\n"
