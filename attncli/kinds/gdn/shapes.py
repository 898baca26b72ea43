"""``attncli shapes`` for Gated DeltaNet: the projections, the short convolution, the delta rule's
tensors in the form that runs, and the constant state.

:func:`stage_shapes` is the closed form; :func:`analyse` builds attncli's Gated DeltaNet layer
(:mod:`attncli.kinds.gdn.torch_layer`, transformers' submodule names) to list its weights and run it
for the output shape (on the meta device when a real pass would not be small). The tests
check the closed form against the tensors the layer's submodules really produce.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.kinds.gdn.kind import padded_length
from attncli.kinds.gdn.sizes import gdn_sizes

if TYPE_CHECKING:
    from attncli.kinds.shapes import ShapesReport, Stage
    from attncli.spec import AttnSpec

EXPLAIN: dict[str, str] = {
    "input": "the tokens, (B, L, E)",
    "qkvz": "input @ W_qkvz^T (in_proj_qkvz): q, k, v and the output gate z, grouped per key head",
    "ba": "input @ W_ba^T (in_proj_ba): beta (the delta rule's step) and a (the decay's input) per value head",
    "conv_in": "q, k and v side by side, channels first: what the short convolution reads",
    "conv_state": "the state: the last K conv inputs of earlier tokens, as transformers' cache keeps them",
    "conv_out": "the depthwise causal convolution (kernel K, conv1d) and SiLU, channels first",
    "q": "query heads (HK of DK), l2-normed, / sqrt(DK)",
    "k": "key heads (HK of DK), l2-normed",
    "v": "value heads (HV of DV)",
    "z": "the output gate per value head",
    "beta": "sigmoid(b): how much each token overwrites the state",
    "g": "the log decay: -exp(A_log) * softplus(a + dt_bias)",
    "q_heads": "q and k repeated to the HV value heads, float32",
    "chunks": "chunked: L padded to LP, split into n chunks of C",
    "ut_system": "chunked: K_beta @ K^T within each chunk, decayed (delta_kk)",
    "intra_chunk": "chunked: Q @ K^T within each chunk, decayed, causal (delta_qk)",
    "new_values": "chunked: the triangular solve's values (and, as wide as k, the decayed keys)",
    "recurrent_state": "the state: DK x DV per value head, float32, the same at any context length",
    "core": "the delta rule's output per value head",
    "gated": "rmsnorm(core) * weight * silu(z), heads merged: HV * DV features",
    "output": "gated @ W_O^T (out_proj)",
}


def stage_shapes(spec: AttnSpec) -> tuple[Stage, ...]:
    """The shape of every stage of ``spec``'s form, in closed form (batch-first)."""
    from attncli.kinds.shapes import conv_layer_stages

    m = gdn_sizes(spec)
    b, n = spec.batch, spec.seq
    before = [("qkvz", (b, n, m.qkvz)), ("ba", (b, n, 2 * m.hv)), ("conv_in", (b, m.conv_dim, n))]
    after: list[tuple[str, tuple[int, ...]]] = [
        ("conv_out", (b, m.conv_dim, n)), ("q", (b, n, m.hk, m.dk)), ("k", (b, n, m.hk, m.dk)),
        ("v", (b, n, m.hv, m.dv)), ("z", (b, n, m.hv, m.dv)), ("beta", (b, n, m.hv)), ("g", (b, n, m.hv)),
        ("q_heads", (b, m.hv, n, m.dk))]
    if spec.form == "chunked":
        c = m.chunk
        chunks = padded_length(spec) // c
        after += [("chunks", (b, m.hv, chunks, c, m.dk)), ("ut_system", (b, m.hv, chunks, c, c)),
                  ("intra_chunk", (b, m.hv, chunks, c, c)), ("new_values", (b, m.hv, chunks, c, m.dv))]
    after += [("recurrent_state", (b, m.hv, m.dk, m.dv)), ("core", (b, n, m.hv, m.dv)), ("gated", (b, n, m.value_dim))]
    return conv_layer_stages(spec, EXPLAIN, before, (m.conv_dim, m.kernel), after)


def fits_in_memory(spec: AttnSpec, limit_elems: int = 1 << 25, limit_steps: int = 1024) -> bool:
    """Whether a real forward pass is small (activations and weights) and its loop short."""
    m = gdn_sizes(spec)
    lp = padded_length(spec)
    acts = spec.batch * (spec.seq * (m.qkvz + m.conv_dim) + m.hv * lp * (2 * m.chunk + m.dk + m.dv))
    weights = spec.dim * (m.qkvz + 2 * m.hv + m.value_dim)
    steps = spec.seq if spec.form == "recurrent" else lp // m.chunk
    return acts + weights < limit_elems and steps <= limit_steps


def analyse(spec: AttnSpec) -> ShapesReport:
    """Build attncli's Gated DeltaNet layer for ``spec``: its stages, its weights, and its output shape."""
    from attncli.kinds.gdn import kind as gdn
    from attncli.kinds.shapes import padding_note, traced_report

    gdn.check_representable(spec)
    m = gdn_sizes(spec)
    state = gdn.state_bytes(spec, 4)
    notes = [f"Gated DeltaNet linear attention, {spec.form} form: no KV cache; the state is {m.hv} x {m.dk} x {m.dv} "
             f"recurrent values per sequence ({state['recurrent']:,} B in float32) plus the last {m.kernel} conv "
             f"inputs of {m.conv_dim} channels, the same at any context length",
             f"{m.hk} query/key heads serve {m.hv} value heads ({m.hv // m.hk} each)"]
    if spec.form == "chunked":
        notes.append(padding_note(spec, padded_length(spec), m.chunk, "torch_chunk_gated_delta_rule"))
    return traced_report(spec, gdn.build_call, fits_in_memory(spec), stage_shapes(spec), notes,
                         "attncli's Gated DeltaNet layer returns", f"HK={m.hk} HV={m.hv}")
