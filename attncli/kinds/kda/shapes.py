"""``attncli shapes`` for Kimi Delta Attention: the projections, the short convolution, the gates, the
delta rule's tensors in the form that runs, and the constant state.

:func:`stage_shapes` is the closed form; :func:`analyse` builds attncli's KDA layer
(:mod:`attncli.kinds.kda.torch_layer`, transformers' submodule names) to list its weights and run it for
the output shape (on the meta device when a real pass would not be small).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.kinds.kda.counts import padded_length, state_bytes
from attncli.kinds.kda.sizes import kda_sizes

if TYPE_CHECKING:
    from attncli.kinds.shapes import ShapesReport, Stage
    from attncli.spec import AttnSpec

EXPLAIN: dict[str, str] = {
    "input": "the tokens, (B, L, E)",
    "qkv": "q_proj, k_proj, v_proj side by side, channels first: what the short convolution reads",
    "conv_state": "the state: the last K conv inputs of earlier tokens, as transformers' cache keeps them",
    "conv_out": "the depthwise causal convolution (kernel K, conv1d) and SiLU, channels first",
    "q": "query heads (H of D), l2-normed, / sqrt(D), float32",
    "k": "key heads (H of D), l2-normed, float32",
    "v": "value heads (H of D)",
    "g": "the per-channel log decay: -exp(A_log) * softplus(f_b(f_a(x)) + dt_bias)",
    "beta": "sigmoid(b_proj(x)): how much each token overwrites the state, per head",
    "chunks": "chunked: L padded to LP, split into n chunks of C",
    "decayed_keys": "chunked: each query row's keys decayed per channel, exp(g_i - g_j) (delta_kk, delta_qk)",
    "inverse": "chunked: (I + strictly lower K_beta K^T)^-1 within each chunk, by forward substitution",
    "intra_chunk": "chunked: Q @ K^T within each chunk, decayed, causal (delta_qk)",
    "recurrent_state": "the state: D x D per head, float32, the same at any context length",
    "core": "the delta rule's output per head",
    "gate": "g_b(g_a(x)): the output gate per head",
    "gated": "rmsnorm(core) * weight * sigmoid(gate), heads merged: H * D features",
    "output": "gated @ W_O^T (o_proj)",
}


def stage_shapes(spec: AttnSpec) -> tuple[Stage, ...]:
    """The shape of every stage of ``spec``'s form, in closed form (batch-first)."""
    from attncli.kinds.shapes import conv_layer_stages

    m = kda_sizes(spec)
    b, n, h, d = spec.batch, spec.seq, m.heads, m.head_dim
    after: list[tuple[str, tuple[int, ...]]] = [
        ("conv_out", (b, m.conv_dim, n)), ("q", (b, h, n, d)), ("k", (b, h, n, d)), ("v", (b, h, n, d)),
        ("g", (b, n, h, d)), ("beta", (b, n, h))]
    if spec.form == "chunked":
        c = m.chunk
        chunks = padded_length(spec) // c
        after += [("chunks", (b, h, chunks, c, d)), ("decayed_keys", (b, h, chunks, c, d, c)),
                  ("inverse", (b, h, chunks, c, c)), ("intra_chunk", (b, h, chunks, c, c))]
    after += [("recurrent_state", (b, h, d, d)), ("core", (b, n, h, d)), ("gate", (b, n, h, d)),
              ("gated", (b, n, m.inner))]
    return conv_layer_stages(spec, EXPLAIN, [("qkv", (b, m.conv_dim, n))], (m.conv_dim, m.kernel), after)


def fits_in_memory(spec: AttnSpec, limit_elems: int = 1 << 25, limit_steps: int = 1024) -> bool:
    """Whether a real forward pass is small (activations and weights) and its loop short."""
    m = kda_sizes(spec)
    lp = padded_length(spec)
    acts = spec.batch * (spec.seq * 2 * m.conv_dim + m.heads * lp * m.chunk * (m.head_dim + 2))
    weights = spec.dim * (5 * m.inner + m.heads)
    steps = spec.seq if spec.form == "recurrent" else lp // m.chunk
    return acts + weights < limit_elems and steps <= limit_steps


def analyse(spec: AttnSpec) -> ShapesReport:
    """Build attncli's KDA layer for ``spec``: its stages, its weights, and its output shape."""
    from attncli.kinds.kda import kind
    from attncli.kinds.shapes import padding_note, traced_report

    kind.check_representable(spec)
    m = kda_sizes(spec)
    state = state_bytes(spec, 4)
    notes = [f"Kimi Delta Attention, {spec.form} form: no KV cache; the state is {m.heads} x {m.head_dim} x "
             f"{m.head_dim} recurrent values per sequence ({state['recurrent']:,} B in float32) plus the last "
             f"{m.kernel} conv inputs of {m.conv_dim} channels, the same at any context length",
             "the decay is per head and channel (a forget gate of rank D), the output gated by sigmoid(g_b(g_a(x)))"]
    if spec.form == "chunked":
        notes.append(padding_note(spec, padded_length(spec), m.chunk, "chunk_kimi_delta_attention"))
    return traced_report(spec, kind.build_call, fits_in_memory(spec), stage_shapes(spec), notes,
                         "attncli's KDA layer returns", f"H={m.heads}")
