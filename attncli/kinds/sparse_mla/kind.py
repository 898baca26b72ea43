"""Top-k sparse MLA (DeepSeek Sparse Attention: DeepSeek-V3.2, GLM-5): MLA plus a lightning indexer.

The layer is multi-head latent attention (:mod:`attncli.kinds.mla.kind`, both forms, every MLA stage
and closed form reused from there) with a small scorer in front of it, the *lightning indexer*
(DeepSeek-V3.2-Exp ``inference/model.py`` class ``Indexer``, lines 431-480; transformers 5.24
``DeepseekV32Indexer``). Per token, with IH = ``index_n_heads``, ID = ``index_head_dim``:

- ``indexer_q_proj`` (``wq_b``) RQ x IH*ID, from the MLA query latent ``q_a_layernorm(q_a_proj(x))``;
- ``indexer_k_proj`` (``wk``) E x ID, then a LayerNorm(ID) (``k_norm``): one key per token, shared
  by every indexer head, new tokens only (the cache keeps the earlier ones);
- ``indexer_weights`` (``weights_proj``) E x IH: a weight per head and query;
- ``indexer_scores``: for every (query, key) pair, IH dot products of ID (ReLU'd) and their
  weighted sum over the heads, IH*(ID + 1) MACs per pair (``fp8_index`` in ``kernel.py``;
  transformers' two matmuls).

Each query then keeps the K = ``index_topk`` best-scored keys among those its mask leaves
(``topk`` of the scores with the causal mask added), and the main attention's scores outside them
are masked (model.py lines 573-575 prefill, 590-591 decode). The **dense** count is the one fvcore and
FlopCounterMode see: every stage over all L x S pairs. The **effective** count
(:func:`effective`) charges QK^T and weights x V only the kept keys, min(p + 1, K) for the query
at position p under a causal mask (:func:`topk_visible_pairs`), and the indexer every pair the
mask leaves (it must score them all to choose). The Hadamard transform of the reference
(``rotate_activation``: additions only; transformers skips it, it is orthogonal) and the FP8
quantisation have no matmul multiply-adds.

KV cache: the MLA latent (R + DR values) and the indexer's key (ID values) per token and layer.
transformers' ``DynamicIndexedLayer`` keeps the indexer keys at the model's dtype, so
:func:`kv_bytes_per_token` is (R + DR + ID) x bytes. The reference and vLLM keep other layouts
(:func:`reference_kv_bytes_per_token`, :func:`vllm_fp8_kv_bytes_per_token`). Nothing here
imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attncli.kinds import base
from attncli.kinds.mla import kind as mla
from attncli.kinds.mla.sizes import mla_sizes
from attncli.numbers import human
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.kinds.base import Counted
    from attncli.kinds.cache import CacheSpec
    from attncli.kinds.shapes import ShapesReport
    from attncli.layer.formulas import Memory
    from attncli.spec import AttnSpec

NAME = "sparse_mla"
FORMS: tuple[str, ...] = mla.FORMS

DEFAULTS: dict[str, int] = {"index_n_heads": 64, "index_head_dim": 128}
"""transformers' ``DeepseekV32Config`` defaults, used when the setting is not given."""

INDEXER_STAGES: tuple[str, ...] = ("indexer_q_proj", "indexer_k_proj", "indexer_weights", "indexer_scores")

INDEXER_FORMS: dict[str, str] = {
    "indexer_q_proj": "B*L*RQ*IH*ID", "indexer_k_proj": "B*L*E*ID", "indexer_weights": "B*L*E*IH",
    "indexer_scores": "B*L*S*IH*(ID+1)",
}
"""Dense MACs of the indexer's stages; MLA's are :data:`attncli.kinds.mla.kind.CLOSED_FORMS`."""

STAGE_LABELS: dict[str, str] = {
    "indexer_q_proj": "indexer q (wq_b)", "indexer_k_proj": "indexer k (wk)",
    "indexer_weights": "indexer head weights", "indexer_scores": "indexer scores", **mla.STAGE_LABELS,
}
SHORT_LABELS: dict[str, str] = {"indexer_q_proj": "idx_q", "indexer_k_proj": "idx_k", "indexer_weights": "idx_w",
                                "indexer_scores": "idx_s", **mla.SHORT_LABELS}
ABBREVIATIONS: dict[str, str] = SHORT_LABELS

TERMS = (mla.TERMS + "; K = index_topk, IH = index_n_heads, ID = index_head_dim (the lightning indexer); "
         "dense: every pair; effective QK^T and weights x V: min(p + 1, K) keys for the query at position p")
KV_FORM = "B*S*(R+DR+ID)"
PERMUTE_SKIPPED: str | None = mla.PERMUTE_SKIPPED

SWEEP_EXPECTED: dict[str, str] = {
    **mla.SWEEP_EXPECTED,
    "seq": "dense: QK^T, weights x V and the indexer's scores grow as L^2 (exponent 2), the projections as L (1); "
           "effective QK^T and weights x V tend to L (1) once L >> index_topk, the indexer's scores stay L^2",
    "heads": "q_b, kv_b or the absorbs, QK^T, weights x V and W_O grow as H (1); q_a, kv_a and every indexer "
             "stage do not change (0): the indexer has its own index_n_heads",
    "dim": "q_a, kv_a, W_O and the indexer's wk and weights_proj grow as E (1): the ranks do not change; every "
           "other stage stays (0)",
    "cache": "QK^T, weights x V and the indexer's scores grow with S = N + L (towards 1 once N >> L; effective "
             "QK^T and weights x V stop at index_topk keys per query), and so does the naive form's kv_b_proj; the "
             "other projections do not change (0)",
}

VLLM_FP8_DS_MLA_BYTES = 656
"""vLLM's ``fp8_ds_mla`` latent per token and layer (FlashMLA's sparse FP8 layout: 512 float8_e4m3
latent values, 4 float32 scales, 64 bfloat16 RoPE values): vLLM ``vllm/v1/kv_cache_interface.py``
``MLAAttentionSpec.real_page_size_bytes`` returns ``block_size * 656`` for ``cache_dtype_str ==
"fp8_ds_mla"``; ``flashmla_sparse.py`` ``get_kv_cache_shape`` gives ``(num_blocks, block_size, 656)``."""
QUANT_BLOCK = 128
"""Values per float32 scale in the reference's and vLLM's FP8 indexer keys (``block_size`` in
model.py, ``quant_block_size`` in vLLM)."""


@dataclass(frozen=True)
class IndexerSizes:
    """The resolved sizes of one lightning indexer."""

    topk: int
    heads: int
    head_dim: int

    def to_dict(self) -> dict[str, Any]:
        return {"index_topk": self.topk, "index_n_heads": self.heads, "index_head_dim": self.head_dim}


SWEEP_EFFECTIVE_OWN = False
"""Whether :data:`SWEEP_EXPECTED` already says how the effective counts grow under a mask."""
TP_WORDS: str | None = None
"""How ``--tp`` shards the layer, in words (None: the words every kind shares)."""
PAGED_MODELLED = True
"""Whether a paged engine's layout of this kind's cache is modelled."""


def indexer_sizes(spec: AttnSpec) -> IndexerSizes:
    """The indexer's sizes of ``spec`` with transformers' defaults filled in."""
    assert spec.index_topk is not None
    return IndexerSizes(
        topk=spec.index_topk,
        heads=DEFAULTS["index_n_heads"] if spec.index_n_heads is None else spec.index_n_heads,
        head_dim=DEFAULTS["index_head_dim"] if spec.index_head_dim is None else spec.index_head_dim)


def validate(spec: AttnSpec) -> None:
    """MLA's checks, then the indexer's: positive sizes, a query LoRA for ``wq_b`` to read, and an
    indexer head wide enough for its RoPE part (the first DR features, as MLA's)."""
    mla.validate_mla(spec)
    for name in ("index_topk", "index_n_heads", "index_head_dim"):
        value = getattr(spec, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpecError("--" + name.replace("_", "-"), f"must be an integer of at least 1, got {value!r}")
    if not spec.q_lora_rank:
        raise SpecError("--q-lora-rank", "top-k sparse MLA needs a query LoRA: the indexer's wq_b projects the "
                                         "query latent (q_lora_rank x index_n_heads*index_head_dim), as "
                                         "DeepSeek-V3.2's Indexer does")
    dr = mla_sizes(spec).qk_rope_head_dim
    if indexer_sizes(spec).head_dim < dr:
        raise SpecError("--index-head-dim", f"the indexer rotates its first qk_rope_head_dim = {dr} features; "
                                            f"index_head_dim {indexer_sizes(spec).head_dim} is narrower")


# ---------------------------------------------------------------------------- closed forms
def stages(spec: AttnSpec) -> tuple[str, ...]:
    """The indexer's stages, then MLA's of ``spec``'s form."""
    return (*INDEXER_STAGES, *mla.stages(spec))


def indexer_closed_form(spec: AttnSpec) -> dict[str, int]:
    """Dense MACs of the indexer's stages (:data:`INDEXER_FORMS`)."""
    ix, m = indexer_sizes(spec), mla_sizes(spec)
    b, q_len, s, e, rq = spec.batch, spec.seq, spec.s, spec.dim, m.q_lora_rank or 0
    return {
        "indexer_q_proj": b * q_len * rq * ix.heads * ix.head_dim,   # (B*L, RQ) @ (RQ, IH*ID)
        "indexer_k_proj": b * q_len * e * ix.head_dim,               # (B*L, E) @ (E, ID): new tokens
        "indexer_weights": b * q_len * e * ix.heads,                 # (B*L, E) @ (E, IH)
        # (B, L, IH, ID) @ (B, 1, ID, S), then (B, L, 1, IH) @ (B, L, IH, S): the weighted sum over heads
        "indexer_scores": b * q_len * s * ix.heads * (ix.head_dim + 1),
    }


def closed_form(spec: AttnSpec) -> dict[str, int]:
    """Dense MACs per stage: the indexer's and MLA's (:func:`attncli.kinds.mla.kind.closed_form`)."""
    return {**indexer_closed_form(spec), **mla.closed_form(spec)}


def closed_form_texts(spec: AttnSpec) -> dict[str, str]:
    return {**INDEXER_FORMS, **mla.closed_form_texts(spec)}


def topk_visible_pairs(spec: AttnSpec) -> int:
    """(query, key) pairs the main attention computes per batch item and head: each query keeps
    min(K, the keys its mask leaves). Bottom-right aligned (query i at p = S - L + i): causal
    min(p + 1, K), which is what a window of K keys counts; no mask min(S, K); padding
    min(S - padded, K) for every query."""
    from attncli.layer.visibility import padded_keys, visible_pairs

    k, q_len, s = indexer_sizes(spec).topk, spec.seq, spec.s
    if spec.mask == "causal":
        return visible_pairs(q_len, s, window=k)  # sum over p of min(K, p + 1)
    if spec.mask == "padding":
        return q_len * min(k, s - padded_keys(s))
    return q_len * min(k, s)


def visible_pairs(spec: AttnSpec) -> int:
    """The main attention's visible pairs (:func:`topk_visible_pairs`), for ``Variant.pairs``."""
    return topk_visible_pairs(spec)


def effective(spec: AttnSpec, by_stage: dict[str, int]) -> tuple[dict[str, int], tuple[str, ...]]:
    """The effective count of a dense ``by_stage``: QK^T and weights x V scaled from all L x S
    pairs to the top-k ones (:func:`topk_visible_pairs`), the indexer's scores to the pairs the
    mask leaves (it scores all of them); the projections as they are. Returns the counts and the
    problems (a count that is not a whole multiple of L x S cannot be scaled exactly)."""
    from attncli.layer.formulas import scale_pairs
    from attncli.layer.visibility import dense_pairs, spec_visible_pairs

    top = topk_visible_pairs(spec)
    return scale_pairs(by_stage, dense_pairs(spec), {"qk": top, "av": top, "indexer_scores": spec_visible_pairs(spec)})


# ---------------------------------------------------------------------------- params, KV cache, memory
def indexer_params(spec: AttnSpec) -> dict[str, int]:
    """The indexer's parameters as DeepSeek's ``Indexer`` and transformers' ``DeepseekV32Indexer``
    hold them (no biases, whatever ``attention_bias``): wq_b, wk, k_norm's weight and bias, weights_proj."""
    ix, e, rq = indexer_sizes(spec), spec.dim, mla_sizes(spec).q_lora_rank or 0
    return {"indexer.wq_b": rq * ix.heads * ix.head_dim, "indexer.wk": e * ix.head_dim,
            "indexer.k_norm": 2 * ix.head_dim, "indexer.weights_proj": e * ix.heads}


def params(spec: AttnSpec) -> dict[str, int]:
    """MLA's parameters (:func:`attncli.kinds.mla.kind.params`) and the indexer's, and ``total``."""
    out = {k: v for k, v in mla.params(spec).items() if k != "total"}
    out.update(indexer_params(spec))
    out["total"] = sum(out.values())
    return out


def kv_bytes_per_token(spec: AttnSpec, bytes_per_element: int) -> int:
    """The latent (R + DR) and the indexer's key (ID) per token, as transformers' ``DynamicIndexedLayer``
    keeps them (the indexer keys at the dtype of the layer's activations)."""
    return (mla_sizes(spec).latent + indexer_sizes(spec).head_dim) * bytes_per_element


def kv_cache_bytes(spec: AttnSpec, bytes_per_element: int) -> int:
    """The latent and indexer-key cache after this step, for each of the S tokens."""
    return spec.batch * spec.s * kv_bytes_per_token(spec, bytes_per_element)


def reference_kv_bytes_per_token(spec: AttnSpec) -> int:
    """DeepSeek's reference (model.py): ``kv_cache`` (R) and ``pe_cache`` (DR) at bfloat16, the
    indexer's ``k_cache`` as float8_e4m3fn (ID bytes) with ``k_scale_cache`` float32 per 128 values."""
    ix_d = indexer_sizes(spec).head_dim
    return 2 * mla_sizes(spec).latent + ix_d + 4 * (ix_d // QUANT_BLOCK)


def vllm_fp8_kv_bytes_per_token(spec: AttnSpec) -> dict[str, int]:
    """vLLM's paged FP8 layout, per token and layer: ``latent`` (``fp8_ds_mla``: R float8 values, a
    float32 scale per 128, DR bfloat16 RoPE values; 656 B at R 512, DR 64, :data:`VLLM_FP8_DS_MLA_BYTES`)
    and ``indexer`` (``DeepseekV32IndexerCache``: ``head_dim + head_dim // quant_block_size * 4``
    uint8, vLLM ``model_executor/models/deepseek_v2.py`` ``Indexer``: 132 B at ID 128)."""
    m, ix_d = mla_sizes(spec), indexer_sizes(spec).head_dim
    return {"latent": m.kv_lora_rank + 4 * (m.kv_lora_rank // QUANT_BLOCK) + 2 * m.qk_rope_head_dim,
            "indexer": ix_d + 4 * (ix_d // QUANT_BLOCK)}


def vllm_cache_spec(spec: AttnSpec, kv_cache_dtype: str, model_bytes: int, ssm_bytes: int | None,
                    tp: int) -> tuple[CacheSpec, ...]:
    """Two caches per layer in vLLM: the latent (``MLAAttentionSpec``, :func:`attncli.kinds.mla.kind.vllm_latent_bytes`)
    and the indexer's keys (``DeepseekV32IndexerCache``: an ``MLAAttentionSpec`` of ID float8 values
    and a float32 scale per 128, whatever ``--kv-cache-dtype``: 132 B at ID 128)."""
    from attncli.kinds.cache import MLA, CacheSpec

    return (CacheSpec(MLA, mla.vllm_latent_bytes(spec, kv_cache_dtype, model_bytes)),
            CacheSpec(MLA, vllm_fp8_kv_bytes_per_token(spec)["indexer"]))


def memory(spec: AttnSpec, dtype: str) -> Memory:
    """MLA's memory (:func:`attncli.kinds.mla.kind.memory`) plus the indexer's tensors: its queries, keys,
    head weights, per-head scores (B, L, IH, S) and summed scores (B, L, S); the cache with its keys."""
    from attncli.layer.formulas import Memory

    base = mla.memory(spec, dtype)
    n, ix = base.bytes_per_element, indexer_sizes(spec)
    b, q_len, s = spec.batch, spec.seq, spec.s
    acts = {**base.activations, "index_q": b * q_len * ix.heads * ix.head_dim * n,
            "index_keys": b * s * ix.head_dim * n, "index_weights": b * q_len * ix.heads * n,
            "index_head_scores": b * q_len * ix.heads * s * n, "index_scores": b * q_len * s * n}
    return Memory(base.dtype, n, base.attention_matrix, acts, kv_cache_bytes(spec, n))


# ---------------------------------------------------------------------------- variants, tracing
def variant_specs(spec: AttnSpec) -> list[AttnSpec]:
    """The layer in the form it runs, then in the other form (:func:`attncli.kinds.mla.kind.variant_specs`)."""
    return mla.variant_specs(spec)


def variant_label(spec: AttnSpec) -> str:
    return f"{mla.variant_label(spec)}, top-{indexer_sizes(spec).topk}"


def variants_note(spec: AttnSpec) -> str:
    return mla.variants_note(spec) + "; the indexer is the same in both"


def build_call(spec: AttnSpec, device: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    from attncli.kinds.sparse_mla import torch_layer

    return base.layer_call(torch_layer, spec, device)


INDEXER_SCOPES: dict[str, str] = {"indexer": "indexer_scores", "indexer.wq_b": "indexer_q_proj",
                                  "indexer.wk": "indexer_k_proj", "indexer.weights_proj": "indexer_weights"}
"""Submodule of attncli's layer (DeepSeek's names) -> the indexer stage its matmuls belong to."""


def relabel(scope: str, stage: str) -> str:
    """Ops run in the indexer or its submodules are its stages (:data:`INDEXER_SCOPES`, else
    ``other``); everything else is named as MLA names it (:func:`attncli.kinds.mla.kind.relabel`)."""
    if scope == "indexer" or scope.startswith("indexer."):
        return INDEXER_SCOPES.get(scope, "other")
    return mla.relabel(scope, stage)


def kernel_elements(spec: AttnSpec, naive: bool, dense: dict[str, int],
                    effective: dict[str, int]) -> list[tuple[str, int, int]]:
    """The indexer's kernels, then MLA's (:func:`attncli.kinds.mla.kind.kernel_elements`). The indexer
    reads its queries, keys and weights and writes its (B, L, S) scores, which the top-k reads back
    (writing B*L*K indices). A fused sparse attention reads at most the L*K keys chosen, S at most."""
    ix, m = indexer_sizes(spec), mla_sizes(spec)
    macs = dense if naive else effective
    b, q_len, s, e, rq = spec.batch, spec.seq, spec.s, spec.dim, m.q_lora_rank or 0
    bl, top = b * q_len, min(ix.topk, s)

    def linear(tokens: int, d_in: int, d_out: int) -> int:
        return tokens * d_in + d_in * d_out + tokens * d_out

    out = [("indexer_q_proj", macs["indexer_q_proj"], linear(bl, rq, ix.heads * ix.head_dim)),
           ("indexer_k_proj", macs["indexer_k_proj"], linear(bl, e, ix.head_dim)),
           ("indexer_weights", macs["indexer_weights"], linear(bl, e, ix.heads)),
           ("indexer_scores", macs["indexer_scores"],
            bl * ix.heads * ix.head_dim + b * s * ix.head_dim + bl * ix.heads + 2 * b * q_len * s + bl * top)]
    main = mla.kernel_elements(spec, naive, dense, effective)
    if not naive:
        per_key = m.latent if spec.form == "absorbed" else spec.heads * (m.qk_head_dim + m.v_head_dim)
        read = min(s, q_len * top)  # keys the chosen sets can touch, per sequence
        main = [(name, n, el - b * (s - read) * per_key) if name == "attention" else (name, n, el)
                for name, n, el in main]
    return out + main


def check_representable(spec: AttnSpec) -> None:
    """MLA's limits, and the indexer's per-head scores (B, L, IH, S)."""
    mla.check_representable(spec)
    elements = spec.batch * spec.seq * indexer_sizes(spec).heads * spec.s
    base.refuse_unrepresentable((("the indexer's scores (B, L, IH, S)", elements, "--seq"),))


# ---------------------------------------------------------------------------- words
def title_parts(spec: AttnSpec) -> list[str]:
    """MLA's parts with the indexer between: ``top-2048 (indexer 64 x 128)``."""
    ix = indexer_sizes(spec)
    parts = mla.title_parts(spec)
    return [parts[0], f"top-{ix.topk} (indexer {ix.heads} x {ix.head_dim})", *parts[1:]]


def short_label(spec: AttnSpec) -> str:
    return mla.short_label(spec)


def conclusion(report: Counted) -> str:
    """MLA's sentence, then what the indexer adds and what the top-k leaves of the main attention."""
    from attncli.layer.visibility import spec_visible_pairs

    spec, run = report.spec, report.variants[0]
    ix = indexer_sizes(spec)
    top, scored = topk_visible_pairs(spec), spec_visible_pairs(spec)
    return (f"{mla.conclusion(report)} The lightning indexer scores {scored:,} (query, key) pairs with "
            f"{ix.heads} heads of {ix.head_dim} ({human(run.effective_by_stage.get('indexer_scores', 0))} MACs) "
            f"and keeps {ix.head_dim} more values per token in the cache; QK^T and weights x V then run on "
            f"{top:,} pairs, at most {ix.topk} keys per query.")


def analyse_shapes(spec: AttnSpec) -> ShapesReport:
    """``attncli shapes`` of the layer (:mod:`attncli.kinds.sparse_mla.shapes`)."""
    from attncli.kinds.sparse_mla.shapes import analyse

    return analyse(spec)


def device_spec(spec: AttnSpec, tp: int) -> AttnSpec:
    """MLA's split (H/N heads, the latent whole); the indexer is whole on every device."""
    return mla.device_spec(spec, tp)


keeps_line = base.no_keeps_line
kv_fixed_bytes = base.no_fixed_bytes
kv_cache_held_bytes = kv_cache_bytes  # NOTE: the storage held after the step is what the cache keeps
config_entries = mla.config_entries

head_counts = mla.head_counts

HF_CLASS = "own"
"""What ``--module`` does with a Hugging Face class for this kind (:data:`attncli.kinds.standard.kind.HF_CLASS`)."""
BENCH_FORMS = False
"""Whether ``attncli bench`` times the layer in each of its forms, or as asked only."""
