"""Shapes stage by stage, weights and parameter counts of the standard layer, and what
``nn.MultiheadAttention`` returns.

:func:`stage_shapes` is the model of the computation in closed form: the shape at every stage
(input, q, k, v, q_heads, k_heads, v_heads, scores, weights, context, merged, output) in the
canonical layout (batch, heads, length, head_dim), with the batch dimension dropped for
unbatched input. The tests check it against the shapes the own implementations record while
they run, and :func:`analyse_standard` checks the returned shapes against ``nn.MultiheadAttention``
itself. Weights and parameter counts come from the built module (on the meta device for
sizes that would not fit), so they are what the layer really holds.
"""

from __future__ import annotations

from attncli.kinds.shapes import Shape, ShapesReport, Stage, WeightRow, component_of, component_totals
from attncli.layer.layout import token_shape
from attncli.spec import AttnSpec

EXPLAIN: dict[str, str] = {
    "input": "the query tokens as given, in the chosen layout",
    "key_input": "the key tokens (cross-attention: S tokens of kdim features)",
    "value_input": "the value tokens (cross-attention: S tokens of vdim features)",
    "q": "queries: input @ W_q^T (+ b_q), H*d features, batch-first",
    "k": "keys: key input @ W_k^T (+ b_k), G*d features (new tokens only with a cache)",
    "v": "values: value input @ W_v^T (+ b_v), G*d features",
    "k_cache": "the KV cache's keys: N earlier tokens, already projected, per K/V head",
    "v_cache": "the KV cache's values, likewise",
    "q_heads": "q split into H heads of d features: view + transpose",
    "k_heads": "k split into G K/V heads (S' = S, +1 bias_kv, +1 zero_attn)",
    "v_heads": "v split into G K/V heads, same S' as the keys",
    "k_repeated": "grouped-query: each K/V head copied for its H/G query heads (expand, no arithmetic)",
    "v_repeated": "grouped-query: each value head copied likewise",
    "scores": "q_heads @ k_heads^T / sqrt(d): one score per (query, key) per head",
    "weights": "softmax over the keys (masked keys get 0); each row sums to 1",
    "context": "weights @ v_heads: each query's weighted mix of values, per head",
    "merged": "heads concatenated back: transpose + reshape to H*d features",
    "output": "merged @ W_O^T (+ b_O), back in the input's layout",
}


def stage_shapes(spec: AttnSpec) -> tuple[Stage, ...]:
    """The shape of every stage, in closed form (see the module docstring for the layout)."""
    b = () if spec.unbatched else (spec.batch,)
    e, h, g, d, n, s2 = spec.dim, spec.heads, spec.n_kv_heads, spec.head_dim, spec.seq, spec.s_total
    t = spec.kv_tokens
    rows: list[tuple[str, Shape]] = [("input", token_shape(spec, n, e))]
    if not spec.is_self_attention:
        rows += [("key_input", token_shape(spec, t, spec.k_dim)), ("value_input", token_shape(spec, t, spec.v_dim))]
    dv = spec.v_head
    rows += [("q", (*b, n, h * d))]
    if spec.kv_shared:  # NOTE: the keys and values another layer cached, this step's included
        rows += [("k_cache", (*b, g, s2, d)), ("v_cache", (*b, g, s2, dv))]
    else:
        rows += [("k", (*b, t, g * d)), ("v", (*b, t, g * (d if spec.k_eq_v else dv)))]
    if spec.cache and not spec.kv_shared:
        rows += [("k_cache", (*b, g, spec.kept_cache, d)), ("v_cache", (*b, g, spec.kept_cache, dv))]
    rows += [("q_heads", (*b, h, n, d)), ("k_heads", (*b, g, s2, d)), ("v_heads", (*b, g, s2, dv))]
    if g != h and spec.impl != "sdpa":  # NOTE: SDPA broadcasts the K/V heads (enable_gqa): no copies
        rows += [("k_repeated", (*b, h, s2, d)), ("v_repeated", (*b, h, s2, dv))]
    rows += [
        # (b, h, l, d) @ (b, h, d, s') -> (b, h, l, s')
        ("scores", (*b, h, n, s2)), ("weights", (*b, h, n, s2)),
        # (b, h, l, s') @ (b, h, s', d) -> (b, h, l, d)
        ("context", (*b, h, n, dv)), ("merged", (*b, n, h * dv)),
        ("output", token_shape(spec, n, e)),
    ]
    return tuple(Stage(n, shape, EXPLAIN[n]) for n, shape in rows)


def mha_output_shapes(spec: AttnSpec) -> tuple[Shape, Shape | None]:
    """What ``nn.MultiheadAttention`` returns, in closed form (tests compare with torch)."""
    out = token_shape(spec, spec.seq, spec.dim)
    if not spec.need_weights:
        return out, None
    b = () if spec.unbatched else (spec.batch,)
    heads = () if spec.average_weights else (spec.heads,)
    return out, (*b, *heads, spec.seq, spec.s_total)


def closed_form_params(spec: AttnSpec) -> dict[str, int]:
    """Parameters of the layer for these options, by formula (``nn.MultiheadAttention``'s when
    it can express the layer).

    in-projection E*H*d + kdim*G*d + vdim*G*d (+ (H+2G)*d biases), W_O H*d*E (+E with its bias),
    bias_k and bias_v G*d each; from a model's config, sinks H and qk-norm weights (d + d per head,
    or H*d + G*d over all features). Without --head-dim and --kv-heads, H*d = G*d = E.
    """
    e, hd, gd, hv, gv = spec.dim, spec.inner, spec.kv_inner, spec.v_inner, spec.kv_v_inner
    # NOTE: a layer reading another's cache has no k_proj, v_proj or k_norm; K = V has no v_proj
    k = 0 if spec.kv_shared else gd
    v = 0 if spec.kv_shared or spec.k_eq_v else gv
    parts = {"in_proj": e * hd + spec.k_dim * k + spec.v_dim * v + (hd + k + v if spec.bias else 0)}
    if spec.out_proj:
        parts["out_proj"] = hv * e + (e if spec.o_bias else 0)
    if spec.add_bias_kv:
        parts["bias_kv"] = gd + gv
    if spec.sinks:  # one logit per head (gpt-oss's sinks)
        parts["sinks"] = spec.heads
    if spec.qk_norm is not None:  # RMSNorm weights: d each per head, or all H*d and G*d features
        parts["q_norm"] = spec.head_dim if spec.qk_norm == "head" else hd
        if not spec.kv_shared:
            parts["k_norm"] = spec.head_dim if spec.qk_norm == "head" else gd
    parts["total"] = sum(parts.values())
    return parts


def fits_in_memory(spec: AttnSpec, limit_elems: int = 1 << 25) -> bool:
    """Whether a real forward pass is small (scores, activations and weights under ~128 MiB)."""
    b, hd, gd = spec.batch, spec.inner, spec.kv_inner
    scores = b * spec.heads * spec.seq * spec.s_total
    acts = b * (spec.seq * (hd + spec.dim) + 2 * spec.s_total * max(gd, hd)) * 4
    inputs = b * (spec.seq * spec.dim + spec.kv_tokens * (spec.k_dim + spec.v_dim) + 2 * spec.kept_cache * gd)
    weights = spec.dim * (2 * hd + 2 * gd) + (spec.k_dim + spec.v_dim) * gd
    return scores + acts + inputs + weights < limit_elems


def analyse_standard(spec: AttnSpec) -> ShapesReport:
    """Build the standard layer for ``spec`` and report its stages, weights and MHA's returned shapes."""
    import dataclasses

    import torch

    from attncli.layer.formulas import check_representable
    from attncli.layer.modules import build, make_inputs, run

    check_representable(spec)  # even meta tensors need a byte size torch can describe
    device = "cpu" if fits_in_memory(spec) else "meta"
    module = build(spec, device)
    # Projections first, then the bias key/value, then W_O, whatever order the module registered.
    rank = {"bias_kv": 1, "out_proj": 2}
    # NOTE: MHA keeps out_proj (as the identity) when W_O is removed; like the flops count and
    # the closed form, the parameters are those of the layer without W_O.
    dropped = "out_proj" if spec.impl == "torch" and not spec.out_proj else None
    weights = tuple(sorted((WeightRow(n, tuple(p.shape), p.numel(), component_of(n))
                            for n, p in module.named_parameters() if component_of(n) != dropped),
                           key=lambda w: rank.get(w.component, 0)))
    components = component_totals(weights)
    total = sum(w.numel for w in weights)

    # NOTE: the returned shapes are nn.MultiheadAttention's where it can run the layer; else the
    # impl's own (same interface).
    ref_spec = spec if spec.is_modern else dataclasses.replace(spec, impl="torch")
    mha = module if ref_spec.impl == spec.impl else build(ref_spec, device)
    with torch.no_grad():
        out, attn = run(mha, ref_spec, make_inputs(ref_spec, device))
    notes: list[str] = []
    if spec.is_modern:
        notes.append(f"nn.MultiheadAttention cannot run this layer; the returned shapes are those of "
                     f"--impl {spec.impl} (same interface)")
    if spec.n_kv_heads != spec.heads:
        notes.append(f"grouped-query: {spec.n_kv_heads} K/V heads serve {spec.heads} query heads "
                     f"({spec.heads // spec.n_kv_heads} each)" +
                     ("; SDPA broadcasts them itself (enable_gqa), without the copies" if spec.impl == "sdpa" else ""))
    if device == "meta":
        notes.append("too large for a real forward pass here: shapes come from the meta device")
    if spec.cache and spec.kept_cache < spec.cache:
        notes.append(f"KV cache: {spec.cache} earlier tokens, of which the cache keeps the last {spec.kept_cache} "
                     f"(transformers' sliding and chunked caches); only the {spec.seq} new tokens are projected, "
                     f"and the kernel computes scores over {spec.s_kernel} keys")
    elif spec.cache:
        notes.append(f"KV cache: {spec.cache} earlier tokens' keys and values are reused; only the "
                     f"{spec.seq} new tokens are projected, and they attend to {spec.s} keys")
    if spec.impl == "torch":
        notes.append("nn.MultiheadAttention works in (L, B*H, E/H) inside; stages show the "
                     "equivalent (B, H, L, E/H) layout")
    if spec.impl == "sdpa":
        notes.append("scores and weights live inside scaled_dot_product_attention and are never "
                     "materialised; the shapes are what it computes")
    if not spec.out_proj:
        notes.append("W_O removed: output = merged" + (" (MHA keeps out_proj as the identity; its "
                                                        "parameters are not counted)" if spec.impl == "torch" else ""))
    if spec.dropout:
        notes.append("dropout acts in training only; attncli runs the layer in eval mode")
    return ShapesReport(spec=spec, stages=stage_shapes(spec), weights=weights,
                        components=components, total_params=total,
                        attn_output=tuple(out.shape),
                        attn_weights=None if attn is None else tuple(attn.shape),
                        device=device, notes=tuple(notes))
