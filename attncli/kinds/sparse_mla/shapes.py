"""``attncli shapes`` for top-k sparse MLA: MLA's stages (:mod:`attncli.kinds.mla.shapes`) with the
lightning indexer's between the scores and the softmax, where its choice takes effect.

:func:`stage_shapes` is the closed form; :func:`analyse` builds attncli's layer
(:mod:`attncli.kinds.sparse_mla.torch_layer`) for its weights and output shape, as MLA's does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.kinds.mla import shapes as mla_shapes
from attncli.kinds.sparse_mla.kind import indexer_sizes

if TYPE_CHECKING:
    from attncli.kinds.shapes import ShapesReport, Stage
    from attncli.spec import AttnSpec

EXPLAIN: dict[str, str] = {
    "index_q": "indexer queries: q_a @ wq_b^T, IH heads of ID, the first DR features rotated",
    "index_k": "indexer keys of the new tokens: LayerNorm(input @ wk^T), one for all IH heads, rotated",
    "index_k_cache": "the cache: N earlier tokens' indexer keys",
    "index_keys": "cache + new tokens: S indexer keys",
    "index_head_scores": "relu(index_q . index_keys / sqrt(ID)) per indexer head",
    "index_weights": "input @ weights_proj^T / sqrt(IH): a weight per indexer head and query",
    "index_scores": "index_weights @ index_head_scores: one score per (query, key)",
    "topk": "the index_topk best keys of each query among those its mask leaves; the scores of the others are "
            "masked before the softmax",
}


def stage_shapes(spec: AttnSpec) -> tuple[Stage, ...]:
    """MLA's stage shapes with the indexer's inserted before ``weights``."""
    from attncli.kinds.shapes import Stage

    ix = indexer_sizes(spec)
    b, n, s, c = spec.batch, spec.seq, spec.s, spec.cache
    rows: list[tuple[str, tuple[int, ...]]] = [("index_q", (b, n, ix.heads, ix.head_dim)),
                                               ("index_k", (b, n, ix.head_dim))]
    if c:
        rows.append(("index_k_cache", (b, c, ix.head_dim)))
    rows += [("index_keys", (b, s, ix.head_dim)), ("index_head_scores", (b, n, ix.heads, s)),
             ("index_weights", (b, n, ix.heads)), ("index_scores", (b, n, s)), ("topk", (b, n, min(ix.topk, s)))]
    indexer = tuple(Stage(name, shape, EXPLAIN[name]) for name, shape in rows)
    base = mla_shapes.stage_shapes(spec)
    at = next(i for i, st in enumerate(base) if st.name == "weights")
    return (*base[:at], *indexer, *base[at:])


def analyse(spec: AttnSpec) -> ShapesReport:
    """Build attncli's sparse MLA layer for ``spec``: its stages, its weights, and its output shape
    (on the meta device when a real pass would not be small)."""
    import torch

    from attncli.kinds.shapes import ShapesReport, module_weights
    from attncli.kinds.sparse_mla import kind as sparse_mla
    from attncli.kinds.sparse_mla import torch_layer as sparse_mla_torch

    sparse_mla.check_representable(spec)
    ix = indexer_sizes(spec)
    small = mla_shapes.fits_in_memory(spec) and spec.batch * spec.seq * ix.heads * spec.s < 1 << 23
    device = "cpu" if small else "meta"
    module = sparse_mla_torch.build(spec, device)
    weights, components = module_weights(module)
    args, kwargs = sparse_mla_torch.make_args(spec, device)
    with torch.no_grad():
        out = module(*args, **kwargs)
    notes = [f"top-k sparse MLA, {spec.form} form: each query attends to at most index_topk = {ix.topk} keys, "
             f"chosen by a lightning indexer of {ix.heads} heads of {ix.head_dim}; the cache keeps the latent "
             f"(R + DR) and the indexer's key ({ix.head_dim} values) per token"]
    if device == "meta":
        notes.append("too large for a real forward pass here: shapes come from the meta device")
    return ShapesReport(spec=spec, stages=stage_shapes(spec), weights=weights, components=components,
                        total_params=sum(w.numel for w in weights), attn_output=tuple(out.shape),
                        attn_weights=None, device=device, notes=tuple(notes),
                        returns="attncli's sparse MLA layer returns", heads_term=f"H={spec.heads}")
