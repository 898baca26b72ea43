"""``attncli shapes`` for multi-head latent attention: the latent, the RoPE part, and the
expanded (naive) or absorbed tensors, stage by stage.

:func:`stage_shapes` is the closed form; :func:`analyse` builds attncli's MLA layer
(:mod:`attncli.kinds.mla.torch_layer`, transformers' submodule names) to list its weights and run it
for the output shape (on the meta device when a real pass would not be small). The tests
check the closed form against the tensors the layer's submodules really produce.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.kinds.mla.sizes import mla_sizes

if TYPE_CHECKING:
    from attncli.kinds.shapes import ShapesReport, Stage
    from attncli.spec import AttnSpec

EXPLAIN: dict[str, str] = {
    "input": "the tokens, (B, L, E)",
    "q_a": "query latent: input @ W_DQ^T (q_a_proj), then an RMSNorm",
    "q": "queries: q_a @ W_UQ^T (q_b_proj), or input @ W_Q^T without a query LoRA",
    "q_heads": "q split into H heads of DN + DR features",
    "q_nope": "the part of each query head without RoPE (DN)",
    "q_rope": "the RoPE part of each query head (DR), rotated by position",
    "kv_a": "input @ W_DKV^T (kv_a_proj_with_mqa): the latent and the RoPE key of each new token",
    "latent": "the new tokens' latent (R), after an RMSNorm: what the cache keeps",
    "k_rope": "the new tokens' RoPE key (DR), one for all heads, rotated",
    "latent_cache": "the cache: N earlier tokens' latents",
    "k_rope_cache": "the cache: N earlier tokens' RoPE keys",
    "latent_all": "cache + new tokens: S = N + L latents",
    "kv": "naive: every latent expanded, latent_all @ [W_UK; W_UV]^T (kv_b_proj)",
    "k_heads": "naive: per-head keys, DN from kv plus the shared RoPE key",
    "v_heads": "naive: per-head values (DV) from kv",
    "q_latent": "absorbed: q_nope @ W_UK per head, the query in latent space (q_absorb)",
    "keys_latent": "absorbed: the keys are the latents and RoPE keys themselves, one shared head",
    "scores": "one score per (query, key) per head, / sqrt(DN + DR)",
    "weights": "softmax over the keys (masked keys get 0)",
    "context_latent": "absorbed: weights @ latent_all, per head (R)",
    "context": "per head DV: weights @ v_heads (naive) or context_latent @ W_UV^T (out_absorb)",
    "merged": "heads concatenated: H * DV features",
    "output": "merged @ W_O^T (o_proj)",
}


def stage_shapes(spec: AttnSpec) -> tuple[Stage, ...]:
    """The shape of every stage of ``spec``'s form, in closed form (batch-first)."""
    from attncli.kinds.shapes import Stage

    m = mla_sizes(spec)
    b, n, s, h, e, c = spec.batch, spec.seq, spec.s, spec.heads, spec.dim, spec.cache
    r, dn, dr, dv = m.kv_lora_rank, m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim
    rows: list[tuple[str, tuple[int, ...]]] = [("input", (b, n, e))]
    if m.q_lora_rank:
        rows.append(("q_a", (b, n, m.q_lora_rank)))
    rows += [("q", (b, n, h * (dn + dr))), ("q_heads", (b, h, n, dn + dr)), ("q_nope", (b, h, n, dn)),
             ("q_rope", (b, h, n, dr)), ("kv_a", (b, n, r + dr)), ("latent", (b, n, r)), ("k_rope", (b, 1, n, dr))]
    if c:
        rows += [("latent_cache", (b, c, r)), ("k_rope_cache", (b, c, dr))]
    rows.append(("latent_all", (b, s, r)))
    if spec.form == "absorbed":
        rows += [("q_latent", (b, h, n, r)), ("keys_latent", (b, 1, s, r + dr)),
                 ("scores", (b, h, n, s)), ("weights", (b, h, n, s)), ("context_latent", (b, h, n, r))]
    else:
        rows += [("kv", (b, s, h * (dn + dv))), ("k_heads", (b, h, s, dn + dr)), ("v_heads", (b, h, s, dv)),
                 ("scores", (b, h, n, s)), ("weights", (b, h, n, s))]
    rows += [("context", (b, h, n, dv)), ("merged", (b, n, h * dv))]
    if spec.out_proj:
        rows.append(("output", (b, n, e)))
    return tuple(Stage(name, shape, EXPLAIN[name]) for name, shape in rows)


def fits_in_memory(spec: AttnSpec, limit_elems: int = 1 << 25) -> bool:
    """Whether a real forward pass is small (the scores, expanded keys and weights)."""
    m = mla_sizes(spec)
    scores = spec.batch * spec.heads * spec.seq * spec.s
    expanded = spec.batch * spec.s * spec.heads * (m.qk_head_dim + m.v_head_dim)
    weights = spec.dim * spec.heads * (m.qk_head_dim + m.v_head_dim) + m.kv_lora_rank * spec.heads * m.qk_head_dim
    return 3 * scores + expanded + weights < limit_elems


def analyse(spec: AttnSpec) -> ShapesReport:
    """Build attncli's MLA layer for ``spec``: its stages, its weights, and its output shape."""
    import torch

    from attncli.kinds.mla import kind as mla
    from attncli.kinds.mla import torch_layer as mla_torch
    from attncli.kinds.shapes import ShapesReport, module_weights

    mla.check_representable(spec)
    device = "cpu" if fits_in_memory(spec) else "meta"
    module = mla_torch.build(spec, device)
    weights, components = module_weights(module)
    args, kwargs = mla_torch.make_args(spec, device)
    with torch.no_grad():
        out = module(*args, **kwargs)
    m = mla_sizes(spec)
    notes = [f"multi-head latent attention, {spec.form} form: the cache keeps R + DR = {m.latent} values per "
             f"token ({m.kv_lora_rank} latent + {m.qk_rope_head_dim} RoPE key), once for all {spec.heads} heads"]
    if spec.form == "absorbed":
        notes.append("absorbed: W_UK and W_UV are slices of kv_b_proj.weight, used in q_absorb and out_absorb; "
                     "no per-head keys or values are ever made")
    else:
        notes.append("naive: kv_b_proj expands all S cached latents into per-head keys and values, as "
                     "transformers' DeepseekV3Attention does")
    if device == "meta":
        notes.append("too large for a real forward pass here: shapes come from the meta device")
    return ShapesReport(spec=spec, stages=stage_shapes(spec), weights=weights, components=components,
                        total_params=sum(w.numel for w in weights), attn_output=tuple(out.shape),
                        attn_weights=None, device=device, notes=tuple(notes),
                        returns="attncli's MLA layer returns", heads_term=f"H={spec.heads}")
