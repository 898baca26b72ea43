"""``attncli shapes`` for a Mamba2 layer: the projections, the short conv, the scan's tensors in the form
that runs, and the constant state. :func:`stage_shapes` is the closed form; :func:`analyse` builds attncli's
layer (:mod:`attncli.kinds.mamba2.torch_layer`) for its weights and output shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.kinds.mamba2.counts import padded_length
from attncli.kinds.mamba2.sizes import mamba2_sizes

if TYPE_CHECKING:
    from attncli.kinds.shapes import ShapesReport, Stage
    from attncli.spec import AttnSpec

EXPLAIN: dict[str, str] = {
    "input": "the tokens, (B, L, E)",
    "in_proj": "input @ W_in^T (in_proj): the gate z, x, B, C and the step dt",
    "conv_state": "the state: the last K conv inputs of earlier tokens, as transformers' cache keeps them",
    "conv_out": "x, B and C after the depthwise causal conv (kernel K) and SiLU, channels first",
    "x": "the scanned heads (H of P)",
    "B": "the input projection of the state, G groups of N",
    "C": "the output projection of the state, G groups of N",
    "dt": "the step per head: softplus(dt + dt_bias)",
    "chunks": "chunked: L padded to LP, split into n chunks of C (B and C repeated to the H heads)",
    "scores": "chunked: C @ B^T within each chunk, decayed and causal (ssd_cb)",
    "chunk_states": "chunked: the cached state and each chunk's state, P x N per head (ssd_states, ssd_pass)",
    "ssm_state": "the state: P x N per head, float32, the same at any context length",
    "scan": "the scan's output with the D skip, per head",
    "gated": "rmsnorm(scan * silu(z)) per group, times the weight: I features",
    "output": "gated @ W_O^T (out_proj)",
}


def stage_shapes(spec: AttnSpec) -> tuple[Stage, ...]:
    from attncli.kinds.shapes import conv_layer_stages

    m = mamba2_sizes(spec)
    b, n = spec.batch, spec.seq
    after: list[tuple[str, tuple[int, ...]]] = [
        ("conv_out", (b, m.conv_dim, n)), ("x", (b, n, m.heads, m.head_dim)), ("B", (b, n, m.groups, m.state)),
        ("C", (b, n, m.groups, m.state)), ("dt", (b, n, m.heads))]
    if spec.form == "chunked":
        nc = padded_length(spec) // m.chunk
        after += [("chunks", (b, nc, m.chunk, m.heads, m.head_dim)), ("scores", (b, nc, m.heads, m.chunk, m.chunk)),
                  ("chunk_states", (b, nc + 1, m.heads, m.head_dim, m.state))]
    after += [("ssm_state", (b, m.heads, m.head_dim, m.state)), ("scan", (b, n, m.heads, m.head_dim)),
              ("gated", (b, n, m.inner))]
    return conv_layer_stages(spec, EXPLAIN, [("in_proj", (b, n, m.in_proj))], (m.conv_dim, m.kernel), after)


def fits_in_memory(spec: AttnSpec, limit_elems: int = 1 << 25, limit_steps: int = 1024) -> bool:
    m = mamba2_sizes(spec)
    lp = padded_length(spec)
    acts = spec.batch * (spec.seq * (m.in_proj + m.conv_dim) + m.heads * lp * (m.chunk + m.head_dim + m.state))
    weights = spec.dim * (m.in_proj + m.inner)
    steps = spec.seq if spec.form == "recurrent" else 1
    return acts + weights < limit_elems and steps <= limit_steps and (lp // m.chunk) ** 2 < limit_steps


def analyse(spec: AttnSpec) -> ShapesReport:
    from attncli.kinds.mamba2 import kind
    from attncli.kinds.mamba2.counts import state_bytes
    from attncli.kinds.shapes import padding_note, traced_report

    kind.check_representable(spec)
    m = mamba2_sizes(spec)
    state = state_bytes(spec, 4)
    notes = [f"Mamba2, {spec.form} form: no KV cache; the state is {m.heads} x {m.head_dim} x {m.state} SSM values "
             f"per sequence ({state['ssm']:,} B in float32) plus the last {m.kernel} conv inputs of {m.conv_dim} "
             "channels, the same at any context length",
             f"{m.groups} groups of B and C serve {m.heads} heads ({m.heads // m.groups} each)"]
    if spec.form == "chunked":
        notes.append(padding_note(spec, padded_length(spec), m.chunk, "mamba2_chunk_scan"))
    return traced_report(spec, kind.build_call, fits_in_memory(spec), stage_shapes(spec), notes,
                         "attncli's Mamba2 layer returns", f"H={m.heads} G={m.groups}")
