"""DeepSeek-V4 attention as a kind (:class:`attncli.kinds.base.Kind`): one layer of a ``deepseek_v4``
model, sliding, compressed sparse (CSA) or heavily compressed (HCA), from an :class:`AttnSpec`.

The layer type follows from the spec: ``compress_ratio`` 0 is a sliding layer; m > 0 with
``index_topk`` is CSA (the indexer's top-k), without it HCA. E ``dim``, H ``heads``, D ``head_dim``
(the one K=V head), RQ ``q_lora_rank``, G ``o_groups``, OR ``o_lora_rank``, W ``window``. Every count
is :mod:`attncli.kinds.dsv4.counts`' (derived from transformers 5.25 ``modeling_deepseek_v4.py`` and
the DeepSeek-V4 report; cited there); the traced module is :mod:`attncli.kinds.dsv4.torch_layer`.
No torch at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attncli.kinds import base
from attncli.kinds.dsv4 import counts, words
from attncli.kinds.dsv4.sizes import CSA, HCA, SLIDING, Dsv4Sizes
from attncli.numbers import human
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.kinds.base import Counted
    from attncli.kinds.cache import CacheSpec
    from attncli.kinds.shapes import ShapesReport
    from attncli.layer.formulas import Memory
    from attncli.spec import AttnSpec

NAME = "dsv4"
STAGE_LABELS: dict[str, str] = {**words.STAGE_LABELS, "other": "other"}
SHORT_LABELS: dict[str, str] = {**words.SHORT_LABELS, "other": "other"}
ABBREVIATIONS: dict[str, str] = SHORT_LABELS
TERMS = words.TERMS
KV_FORM = "B*(min(S,W-1)*D + floor(S/m)*(D [+ ID on CSA]) + open window + overlap)*bytes"
PERMUTE_SKIPPED: str | None = ("not run: attncli's permutation test runs standard attention layers; a DeepSeek-V4 "
                               "layer rotates its queries and keys by position and pools its compressed entries")
SWEEP_EXPECTED: dict[str, str] = {
    "seq": "dense: a prefill's QK^T and weights x V see every new token and floor(L/m) entries per query (2), the "
           "projections grow as L (1); effective: W window keys per query (towards 1), plus floor((p+1)/m) entries "
           "on HCA (2, /m) and at most index_topk on CSA (towards 1); CSA's indexer scores stay L^2/m (2)",
    "heads": "q_b, QK^T, weights x V and o_a grow as H (1); the K=V head, the compressors and the indexer do not (0)",
    "dim": "q_a, kv, o_b, the compressors' and the indexer's projections grow as E (1); the rest stay (0)",
    "batch": "every stage grows as B (1), dense and effective",
    "cache": "dense: QK^T, weights x V and CSA's indexer scores grow with T = floor(S/m) entries (towards 1), the "
             "window stays at W; effective: the window stays, HCA's entries grow (1), CSA's stop at index_topk (0)",
    "window": "dense: a prefill's window tensor holds every new token (0), with a cache min(N, W-1) + L keys; "
              "effective QK^T and weights x V grow as W (1) while W < S",
    "d_head": "q_b, kv, QK^T, weights x V, o_a and the compressors grow as D (1)",
    "kv_heads": "a DeepSeek-V4 layer has one K=V head (--kv-heads is refused)",
}
SWEEP_EFFECTIVE_OWN = True
"""The texts above say the effective growth themselves (the window rule of a standard layer does not apply)."""

TP_WORDS = "heads and output groups split, the K=V head, compressors and indexer whole on every device"
"""How ``attncli model --tp`` shares the layer (:func:`attncli.analyses.model.device_spec`)."""
PAGED_MODELLED = False
"""``attncli model``'s paged convention (vLLM's blocks) is not modelled for these caches: the paged
bytes are transformers' and no fit is estimated."""

DEFAULT_ROPE_DIM = 64
"""DeepSeek-V4's ``qk_rope_head_dim`` of its 512-wide head; RoPE moves no multiply-adds, the traced layer
rotates D/8 features (transformers' default ``partial_rotary_factor``), at most the indexer's head."""


def layer_type(spec: AttnSpec) -> str:
    if not spec.compress_ratio:
        return SLIDING
    return CSA if spec.index_topk is not None else HCA


def sizes(spec: AttnSpec) -> Dsv4Sizes:
    m = spec.compress_ratio or 0
    t = layer_type(spec)
    return Dsv4Sizes(hidden=spec.dim, heads=spec.heads, head_dim=spec.head_dim, q_lora_rank=spec.q_lora_rank or 0,
                     o_groups=spec.o_groups or 1, o_lora_rank=spec.o_lora_rank or 0, window=spec.window or 1,
                     index_heads=spec.index_n_heads or 64, index_head_dim=spec.index_head_dim or 128,
                     index_topk=spec.index_topk or 512, csa_ratio=m if t == CSA else 4,
                     hca_ratio=m if t == HCA else 128)


def validate(spec: AttnSpec) -> None:
    """A DeepSeek-V4 layer as transformers builds it: causal self-attention over a window, one K=V head,
    a query LoRA and the grouped output; run by attncli's own layer."""
    for flag, on in (("--kv-seq", spec.kv_seq is not None), ("--kdim", spec.kdim is not None),
                     ("--vdim", spec.vdim is not None), ("--add-bias-kv", spec.add_bias_kv),
                     ("--add-zero-attn", spec.add_zero_attn), ("--unbatched", spec.unbatched),
                     ("--no-batch-first", not spec.batch_first), ("--dropout", spec.dropout > 0),
                     ("--chunk", spec.chunk is not None), ("--mask", spec.mask == "padding"),
                     ("--kv-heads", spec.kv_heads not in (None, 1)), ("--impl", spec.impl != NAME)):
        if on:
            raise SpecError(flag, "does not apply to a DeepSeek-V4 layer (causal self-attention over one K=V head, "
                                  "run by attncli's own layer)")
    for flag, value in (("--window", spec.window), ("--q-lora-rank", spec.q_lora_rank), ("--config", spec.o_groups),
                        ("--config", spec.o_lora_rank)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(flag, f"a DeepSeek-V4 layer needs sliding_window, q_lora_rank, o_groups and o_lora_rank "
                                  f"of at least 1, got {value!r}")
    m = spec.compress_ratio
    if isinstance(m, bool) or not isinstance(m, int) or m < 0:
        raise SpecError("--config", f"compress_ratio must be 0 (sliding) or a positive rate, got {m!r}")
    if (spec.heads * spec.head_dim) % (spec.o_groups or 1):
        raise SpecError("--config", f"o_groups {spec.o_groups} does not divide heads x head_dim "
                                    f"{spec.heads * spec.head_dim}")


def _step(spec: AttnSpec) -> tuple[Dsv4Sizes, str, int, int, int]:
    return sizes(spec), layer_type(spec), spec.batch, spec.seq, spec.cache


def stages(spec: AttnSpec) -> tuple[str, ...]:
    return counts.stages(layer_type(spec))


def closed_form(spec: AttnSpec) -> dict[str, int]:
    return counts.dense(*_step(spec))


def closed_form_texts(spec: AttnSpec) -> dict[str, str]:
    return words.closed_form_texts(layer_type(spec))


def visible_pairs(spec: AttnSpec) -> int:
    """Window pairs and compressed entries each query attends to, per batch item and head."""
    z, t, _, q_len, n = _step(spec)
    pairs = counts.visible_pairs(z, t, q_len, n)
    return pairs["window"] + pairs["compressed"]


def effective(spec: AttnSpec, by_stage: dict[str, int]) -> tuple[dict[str, int], tuple[str, ...]]:
    """``by_stage`` with QK^T, weights x V and the indexer's scores at their effective closed forms
    (:func:`attncli.kinds.dsv4.counts.effective`); a problem when the traced count of one of them
    differs from its dense closed form (the effective count would not be of the traced layer)."""
    dense, eff = counts.dense(*_step(spec)), counts.effective(*_step(spec))
    out, problems = dict(by_stage), []
    for stage in ("qk", "av", "indexer_scores"):
        if stage in by_stage:
            if by_stage[stage] != dense[stage]:
                problems.append(f"{stage}: traced {by_stage[stage]:,} MACs, dense closed form {dense[stage]:,}; "
                                "the effective count is not scaled")
            else:
                out[stage] = eff[stage]
    return out, tuple(problems)


def params(spec: AttnSpec) -> dict[str, int]:
    return counts.params(sizes(spec), layer_type(spec))


def kv_bytes_per_token(spec: AttnSpec, bytes_per_element: int) -> int:
    """What the cache grows by per token once the window is full: the compressed entry's D (and CSA's
    indexer key's ID) values every m tokens, rounded down to whole bytes per token (0 on a sliding layer)."""
    per, m, _ = counts.kv_long_run(sizes(spec), layer_type(spec), bytes_per_element)
    return per // m


def kv_fixed_bytes(spec: AttnSpec, bytes_per_element: int) -> int:
    """Bytes per sequence that do not grow with S once the window is full: the W - 1 window (twice on a
    sliding layer) and CSA's overlap state; with :func:`kv_bytes_per_token` x S (S a multiple of m) it is
    the whole cache (:func:`attncli.kinds.dsv4.counts.kv_long_run`)."""
    return spec.batch * counts.kv_long_run(sizes(spec), layer_type(spec), bytes_per_element)[2]


def vllm_cache_spec(spec: AttnSpec, kv_cache_dtype: str, model_bytes: int, ssm_bytes: int | None,
                    tp: int) -> tuple[CacheSpec, ...]:
    """vLLM's layout for DeepSeek-V4's window, compressed entries and indexer keys is not read here
    (:data:`PAGED_MODELLED`): ``--engine vllm`` is refused for it in one line rather than guessed."""
    raise SpecError("--engine", "vLLM's cache layout for DeepSeek-V4's compressed layers is not modelled; "
                                "attncli model without --engine gives the cache as transformers keeps it")


def kv_cache_bytes(spec: AttnSpec, bytes_per_element: int) -> int:
    return counts.kv_cache_bytes(sizes(spec), layer_type(spec), spec.batch, spec.s, bytes_per_element)


def _keys(spec: AttnSpec) -> int:
    z, t, _, q_len, n = _step(spec)
    return counts.window_keys(z, q_len, n) + counts.compressed_entries(z, t, n + q_len)


def memory(spec: AttnSpec, dtype: str) -> Memory:
    """The (B, H, L, Kw + T) scores, q and the output per head, the window and entries read, the cache."""
    from attncli.choices import DTYPE_BYTES
    from attncli.layer.formulas import Memory

    n, z = DTYPE_BYTES[dtype], sizes(spec)
    b, q_len, keys, hd = spec.batch, spec.seq, _keys(spec), spec.heads * spec.head_dim
    acts = {"q": b * q_len * hd * n, "keys": b * keys * z.head_dim * n, "context": b * q_len * hd * n,
            "grouped": b * q_len * z.o_groups * z.o_lora_rank * n, "output": b * q_len * spec.dim * n}
    if layer_type(spec) == CSA:
        t = counts.compressed_entries(z, CSA, spec.s)
        acts["index_scores"] = b * q_len * z.index_heads * t * 4  # float32 in DeepseekV4IndexerScorer
    return Memory(dtype, n, b * spec.heads * q_len * keys * n, acts, kv_cache_bytes(spec, n))


def variant_specs(spec: AttnSpec) -> list[AttnSpec]:
    return [spec]


def variant_label(spec: AttnSpec) -> str:
    return f"{spec.heads} heads, {short_label(spec)}"


def variants_note(spec: AttnSpec) -> str:
    return "one variant: the layer as DeepSeek-V4 builds it"


def short_label(spec: AttnSpec) -> str:
    t, m = layer_type(spec), spec.compress_ratio
    return {SLIDING: "sliding", CSA: f"CSA m={m}", HCA: f"HCA m={m}"}[t]


def title_parts(spec: AttnSpec) -> list[str]:
    z, t = sizes(spec), layer_type(spec)
    parts = [f"{short_label(spec)}, window {z.window}, K=V head {z.head_dim}, o {z.o_groups} x {z.o_lora_rank}"]
    if t == CSA:
        parts.append(f"top-{z.index_topk} (indexer {z.index_heads} x {z.index_head_dim})")
    return parts


def keeps_line(spec: AttnSpec) -> str | None:
    """What a compressed layer keeps and attends to, one line (``attncli model`` prints it per group);
    None for a sliding layer (its window says it all)."""
    return None if layer_type(spec) == SLIDING else words.keeps_and_attends(sizes(spec), layer_type(spec))


def conclusion(report: Counted) -> str:
    spec, run = report.spec, report.variants[0]
    return (f"{words.keeps_and_attends(sizes(spec), layer_type(spec))}. Effective {human(run.effective_fvcore_flops)} "
            f"of {human(run.fvcore_flops)} dense MACs.")


def build_call(spec: AttnSpec, device: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """attncli's layer (:class:`attncli.kinds.dsv4.torch_layer.Dsv4Attention`) and one call: the new
    tokens, the kept window and, with a cache, what the compressors hold before the step (closed
    entries, the open window's buffer, CSA's overlap; the indexer's likewise)."""
    import torch

    from attncli.kinds.dsv4.torch_layer import Dsv4Attention
    from attncli.kinds.seeded import build_seeded

    z, t, b, q_len, n = _step(spec)
    # transformers' default partial rotary factor 64/512 (qk_rope_head_dim over head_dim); no multiply-adds
    rope_dim = max(2, min(z.head_dim * DEFAULT_ROPE_DIM // 512, z.index_head_dim) // 2 * 2)
    module = build_seeded(lambda: Dsv4Attention(z, t, rope_dim=rope_dim, cached=n), spec, device)
    meta = torch.device(device).type == "meta"
    gen = torch.Generator().manual_seed(spec.seed)

    def rand(*shape: int) -> Any:
        if meta:
            return torch.empty(shape, device="meta")
        return torch.randn(shape, generator=gen).to(device)

    def state(width: int, d: int) -> tuple[Any, ...]:
        """The open window's buffered kv and gate (N mod m tokens) and CSA's overlap (once N >= m)."""
        m, r = z.ratio(t), n % z.ratio(t)
        overlap = t == CSA and n >= m
        return (rand(b, r, width), rand(b, r, width), rand(b, m, d) if overlap else None,
                rand(b, m, d) if overlap else None)

    args: tuple[Any, ...] = (rand(b, q_len, z.hidden), rand(b, min(n, z.window - 1), z.head_dim))
    if n and t != SLIDING:
        before = counts.compressed_entries(z, t, n)
        args += (rand(b, before, z.head_dim), state(z.head_dim * (2 if t == CSA else 1), z.head_dim))
        if t == CSA:
            args += (rand(b, before, z.index_head_dim), state(2 * z.index_head_dim, z.index_head_dim))
    return module, args, {}


SCOPE_STAGES: dict[str, str] = {
    "q_a_proj": "q_a_proj", "q_b_proj": "q_b_proj", "kv_proj": "kv_proj", "o_a_proj": "o_a_proj",
    "o_b_proj": "o_b_proj", "compressor.kv_proj": "compressor_proj", "compressor.gate_proj": "compressor_proj",
    "compressor.indexer.kv_proj": "indexer_proj", "compressor.indexer.gate_proj": "indexer_proj",
    "compressor.indexer.q_b_proj": "indexer_q_proj", "compressor.indexer.scorer.weights_proj": "indexer_weights",
    "compressor.indexer.scorer": "indexer_scores",
}
"""Submodule of attncli's layer (transformers' names) -> the stage its matmuls belong to."""


def relabel(scope: str, stage: str) -> str:
    """Projections and the indexer's scores by their submodule; the layer's own matmuls keep QK^T or
    weights x V from the data flow."""
    if scope in SCOPE_STAGES:
        return SCOPE_STAGES[scope]
    return stage if not scope and stage in ("qk", "av") else "other"


def kernel_elements(spec: AttnSpec, naive: bool, dense: dict[str, int],
                    effective: dict[str, int]) -> list[tuple[str, int, int]]:
    """Each projection a kernel (reads its input and weight, writes its output); the attention one
    kernel reading q, the Kw + T keys once and writing the context (a naive one also writes and
    reads the (B, H, L, Kw + T) scores); CSA's indexer scores read its queries and keys and write (B, L, T)."""
    z, t = sizes(spec), layer_type(spec)
    macs = dense if naive else effective
    b, q_len, e, hd, keys = spec.batch, spec.seq, spec.dim, spec.heads * spec.head_dim, _keys(spec)
    bl = b * q_len

    def linear(d_in: int, d_out: int, tokens: int = bl) -> int:
        return tokens * d_in + d_in * d_out + tokens * d_out

    shapes = {"q_a_proj": linear(e, z.q_lora_rank), "q_b_proj": linear(z.q_lora_rank, hd),
              "kv_proj": linear(e, z.head_dim), "o_a_proj": linear(hd, z.o_groups * z.o_lora_rank),
              "o_b_proj": linear(z.o_groups * z.o_lora_rank, e)}
    width = 2 * z.head_dim if t == CSA else z.head_dim
    shapes["compressor_proj"] = 2 * linear(e, width)
    shapes["indexer_proj"] = 2 * linear(e, 2 * z.index_head_dim)
    shapes["indexer_q_proj"] = linear(z.q_lora_rank, z.index_heads * z.index_head_dim)
    shapes["indexer_weights"] = linear(e, z.index_heads)
    entries = counts.compressed_entries(z, t, spec.s)
    shapes["indexer_scores"] = bl * z.index_heads * z.index_head_dim + b * entries * z.index_head_dim + bl * entries
    out = [(s, macs[s], shapes[s]) for s in stages(spec) if s not in ("qk", "av")]
    attention = bl * hd + b * keys * z.head_dim + bl * hd + (2 * b * spec.heads * q_len * keys if naive else 0)
    out.append(("attention", macs["qk"] + macs["av"], attention))
    return out


def analyse_shapes(spec: AttnSpec) -> ShapesReport:
    raise SpecError("--config", "the shapes of a DeepSeek-V4 layer (attncli shapes, report) are not described yet; "
                                "flops and model count it")


def check_representable(spec: AttnSpec) -> None:
    """The scores (B, H, L, Kw + T) must be describable by torch, even on meta."""
    elements = spec.batch * spec.heads * spec.seq * _keys(spec)
    base.refuse_unrepresentable((("the scores (B, H, L, Kw + T)", elements, "--seq"),))


def device_spec(spec: AttnSpec, tp: int) -> AttnSpec:
    """The heads and their output groups split (o_a by groups, o_b by rows); the K=V head, the compressors
    and the indexer are whole on every device, as MLA's latent."""
    if spec.heads % tp:
        raise SpecError("--tp", f"--tp {tp} must divide the {spec.heads} query heads")
    if (spec.o_groups or 1) % tp:
        raise SpecError("--tp", f"--tp {tp} must divide the {spec.o_groups} output groups (o_groups)")
    return spec.with_(heads=spec.heads // tp, o_groups=(spec.o_groups or 1) // tp)


kv_cache_held_bytes = kv_cache_bytes  # NOTE: the storage held after the step is what the cache keeps


def config_entries(spec: AttnSpec, d: dict[str, Any]) -> None:
    """The layer's own entries of the JSON ``config`` object: its head size (its other sizes are its settings)."""
    d.pop("kv_heads")  # NOTE: the standard layer's head settings; this kind's own sizes say its heads
    d.pop("d_head")
    d["head_dim"] = spec.head_dim


head_counts = base.ungrouped_heads
HF_CLASS = "own"  # NOTE: what --module does with a Hugging Face class of this kind (Kind.HF_CLASS)
BENCH_FORMS = False  # NOTE: bench times the layer as asked
