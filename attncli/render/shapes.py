"""The ``attncli shapes`` report as a rich table or Markdown."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from attncli.kinds.shapes import Shape, ShapesReport, WeightRow, folded_weights
from attncli.render.common import commas, md_table, modern_parts, named
from attncli.render.layout import Trimmed, md_document, plain_table


def fmt_shape(shape: Shape | None) -> str:
    return "None" if shape is None else "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _title(r: ShapesReport) -> str:
    s = r.spec
    # NOTE: d is always in the title here, and S too: the cache term adds only N.
    extra = [p if not p.startswith("cache ") else f"cache N={s.cache}" for p in modern_parts(s, head_dim=False)]
    heads = r.heads_term or f"H={s.heads} (d={s.head_dim})"
    return ", ".join([f"attncli shapes: {named(s)}impl {s.impl}", f"E={s.dim}", heads,
                      f"B={s.batch}", f"L={s.seq}", f"S={s.s}", *extra])


def brief(r: ShapesReport) -> RenderableType:
    """The answer on one 80x24 screen: every stage's shape (in two columns when there are many),
    the parameter total and what the layer returns; --verbose explains each stage and lists the weights."""
    rows = [(st.name, fmt_shape(st.shape)) for st in r.stages]
    half = (len(rows) + 1) // 2 if len(rows) > 14 else len(rows)
    t = plain_table()
    for _ in range(1 if half == len(rows) else 2):
        t.add_column("stage", no_wrap=True)
        t.add_column("shape", justify="right", no_wrap=True)
    for i in range(half):
        right = rows[i + half] if half != len(rows) and i + half < len(rows) else None
        t.add_row(*rows[i], *(() if half == len(rows) else right or ("", "")))
    returns = ", ".join(f"{name} {fmt_shape(shape)}" for name, shape in
                        (("attn_output", r.attn_output), ("attn_weights", r.attn_weights)))
    parts = ", ".join(f"{k} {commas(v)}" for k, v in r.components.items())
    return Trimmed(Group(Text(_title(r), style="bold"), Text(""), t,
                         Text(f"parameters: {commas(r.total_params)} ({parts})"),
                         Text(f"{r.returns}: {returns}"),
                         Text("--verbose: what each stage is, every weight, and the notes.", style="dim")))


def table(r: ShapesReport, verbose: bool = True) -> RenderableType:
    if not verbose:
        return brief(r)
    stages = plain_table()
    stages.add_column("stage", no_wrap=True)
    stages.add_column("shape", justify="right", no_wrap=True)
    stages.add_column("what it is")
    for st in r.stages:
        stages.add_row(st.name, fmt_shape(st.shape), st.explain)

    weights = plain_table("weights")
    weights.add_column("parameter", no_wrap=True)
    weights.add_column("shape", justify="right", no_wrap=True)
    weights.add_column("elements", justify="right", no_wrap=True)
    for name, shape, copies, numel in folded_weights(r.weights):
        weights.add_row(name, fmt_shape(shape), commas(numel) if copies == 1 else f"{copies} x {commas(numel)}")

    comps = plain_table("parameters by component")
    comps.add_column("component", no_wrap=True)
    comps.add_column("parameters", justify="right", no_wrap=True)
    as_rows = [WeightRow(name, (), n, name) for name, n in r.components.items()]
    for name, _, copies, n in folded_weights(as_rows):
        comps.add_row(name, commas(n) if copies == 1 else f"{copies} x {commas(n)}")
    comps.add_row(Text("total", style="bold"), Text(commas(r.total_params), style="bold"))

    outs = plain_table(r.returns)
    outs.add_column("output", no_wrap=True)
    outs.add_column("shape", justify="right", no_wrap=True)
    outs.add_row("attn_output", fmt_shape(r.attn_output))
    outs.add_row("attn_weights", fmt_shape(r.attn_weights))
    parts: list[RenderableType] = [Text(_title(r), style="bold"), Text(""), stages]
    for t in (weights, comps, outs):
        parts += [Text(""), t]
    parts += [Text(f"note: {n}") for n in r.notes]
    return Trimmed(Group(*parts))


def markdown(r: ShapesReport) -> str:
    out = [f"### {_title(r)}", "",
           md_table(["stage", "shape", "what it is"],
                    [(st.name, f"`{fmt_shape(st.shape)}`", st.explain) for st in r.stages], "lrl"),
           "", "#### Weights", "",
           md_table(["parameter", "shape", "elements"],
                    [(f"`{w.name}`", f"`{fmt_shape(w.shape)}`", commas(w.numel)) for w in r.weights], "lrr"),
           "", "#### Parameters by component", "",
           md_table(["component", "parameters"],
                    [*((k, commas(v)) for k, v in r.components.items()),
                     ("**total**", f"**{commas(r.total_params)}**")], "lr"),
           "", f"#### {r.returns.replace('nn.MultiheadAttention', '`nn.MultiheadAttention`')}", "",
           md_table(["output", "shape"], [("attn_output", f"`{fmt_shape(r.attn_output)}`"),
                                          ("attn_weights", f"`{fmt_shape(r.attn_weights)}`")], "lr")]
    if r.notes:
        out += [""] + [f"- {n}" for n in r.notes]
    return md_document("\n".join(out)) + "\n"
