"""The KV cache as vLLM v1 sizes it: blocks, groups, padding layers and max concurrency.

The rules of vLLM 0.34.0 (:data:`VERSION`), read in its released source; each step names the
function it follows:

1. **Each layer's spec** (``vllm/v1/kv_cache_interface.py``): the kinds answer it
   (``vllm_cache_spec`` in :mod:`attncli.kinds`; :class:`attncli.kinds.cache.CacheSpec`).
   A model with chunked-local layers runs with the hybrid KV cache manager off by default
   (``VllmConfig``: "latency regression ... Disabling it, by default"), so
   ``unify_hybrid_kv_cache_specs`` sizes its chunked (and sliding) layers as full attention.
2. **The block size**: ``CacheConfig.DEFAULT_BLOCK_SIZE`` (64; FlashAttention and FlashMLA
   accept it, ``AttentionBackend.get_preferred_block_size``) or ``--block-size``, which must be a
   multiple of the backend's kernel block (FlashAttention ``MultipleOf(16)``, FlashMLA 64:
   ``supports_block_size``). A hybrid attention/Mamba model then raises it
   (``Platform._align_hybrid_block_size``): ``a x cdiv(mamba page, a x attention bytes per token)``
   with ``a = max(16, block size)``, rounded to 16, so that one attention page holds the Mamba
   state; the Mamba page is padded to the attention page. (In 0.34
   ``HybridAttentionMambaModelConfig.verify_and_update_config`` only sets the Mamba cache mode and
   leaves the alignment to ``Platform.update_block_size_for_backend``.)
3. **Groups** (``kv_cache_planning.get_kv_cache_groups``): one group when every layer has the
   same spec, or the same kind with other page sizes (``UniformTypeKVCacheSpecs``); else layers
   are bucketed by spec (``_get_kv_cache_groups_uniform_page_size``), the group size is the
   smallest bucket (the largest when it is under 1.5 x the smallest), each bucket is split into
   ``cdiv(n, size)`` groups (``layers[i::groups]``), and a short bucket is padded: ``size - n %
   size`` padding layers ("may waste at most X% KV cache memory").
4. **Blocks** (``get_kv_cache_config_from_groups``, ``_get_kv_cache_bytes_per_block``):
   ``num_blocks = memory // bytes per block``, the largest group's sum of pages.
5. **A request at max_model_len L** (``max_memory_usage_bytes`` of each spec): full and MLA
   ``cdiv(L, block)``; sliding ``cdiv(min(W - 1 + in-flight, L), block) + 1``; chunked
   ``cdiv(min(C + in-flight, L), block)``; Mamba 1 block, 2 with prefix caching (``mamba_cache_mode``
   'align'), 3 for a layer that exports prefill checkpoints (Gated DeltaNet with FlashInfer,
   ``num_prefill_checkpoint_blocks``). In-flight tokens: ``VllmConfig.max_in_flight_tokens`` = 2
   batches of ``max_num_batched_tokens`` (async scheduling, one pipeline stage). A request takes the sum
   over groups (``get_max_concurrency_for_kv_cache_config``); ``max_concurrency = num_blocks /
   that``; the logged "GPU KV cache size" is ``int(max_concurrency x L)`` (``get_kv_cache_capacity``).
6. **Does one request fit** (``get_kv_cache_configs``, ``_check_enough_kv_cache_memory``): the
   request's blocks x bytes per block against the memory less one block (the null block the
   ``BlockPool`` holds back); when it does not, vLLM's error names the longest length that
   does, found by binary search over 1..L (``_estimate_max_model_len_from_groups``, the
   group-aware form of ``estimate_max_model_len``, called from ``get_kv_cache_configs``).

Not modelled: speculative decoding (extra blocks and layers), decode context parallelism,
pipeline parallelism, host-resident (HiSparse) groups, per-backend page packing of the
quantized dtypes attncli refuses, and ``num_gpu_blocks_override``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from attncli.kinds.cache import CHUNKED, FULL, MAMBA, MLA, SLIDING, SPEC_CLASSES, CacheSpec
from attncli.spec import SpecError

NAME = "vllm"
VERSION = "0.34.0"
DEFAULT_BLOCK_SIZE = 64
"""``CacheConfig.DEFAULT_BLOCK_SIZE`` in vLLM 0.34 (it was 16 in the 0.6-0.11 releases)."""
DEFAULT_MAX_NUM_BATCHED_TOKENS = 8192
"""``EngineArgs``' default for the OpenAI server on a 70-160 GB GPU (H100, H200); 16,384 offline."""
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92
"""``CacheConfig.DEFAULT_GPU_MEMORY_UTILIZATION`` in vLLM 0.34."""
ATTENTION_KERNEL_BLOCK = 16
"""FlashAttention's kernel block (``MultipleOf(16)``): attention block sizes are multiples of it."""
MLA_KERNEL_BLOCK = 64
"""FlashMLA's kernel block (``get_supported_kernel_block_sizes``: [64])."""
CONCURRENT_BATCHES = 2
"""``VllmConfig.max_concurrent_batches`` under async scheduling (the default) with one pipeline stage."""


@dataclass(frozen=True)
class Settings:
    """vLLM's knobs, named as vLLM names them (validated by :mod:`attncli.serving.inputs`)."""

    kv_cache_memory: int
    max_model_len: int
    block_size: int | None = None
    """None: vLLM's default for the backend (:data:`DEFAULT_BLOCK_SIZE`)."""
    max_num_batched_tokens: int = DEFAULT_MAX_NUM_BATCHED_TOKENS
    prefix_caching: bool = True
    async_scheduling: bool = True
    """vLLM's default; without it one batch is in flight (``VllmConfig.max_concurrent_batches``)."""

    @property
    def in_flight(self) -> int:
        """``VllmConfig.max_in_flight_tokens``: every concurrent batch's ``max_num_batched_tokens``."""
        return (CONCURRENT_BATCHES if self.async_scheduling else 1) * self.max_num_batched_tokens


@dataclass(frozen=True)
class EngineGroup:
    """One KV-cache group: its spec, its layers, its page (one block of one layer; the largest when
    one group holds caches of several sizes, such as sparse MLA's latent and indexer keys) and
    what one request at ``max_model_len`` takes of it."""

    spec: CacheSpec
    layers: tuple[int, ...]
    page_size_bytes: int
    blocks_per_request: int
    padded_from: int | None = None
    """A Mamba page padded to the attention page: its unpadded size."""
    bytes_per_block: int = 0
    """The group's share of one block: every cache's page (a group that is short holds padding)."""

    def to_json(self) -> dict[str, Any]:
        return {"spec": SPEC_CLASSES[self.spec.cache], "cache": self.spec.label(), "layers": list(self.layers),
                "page_size_bytes": self.page_size_bytes, "bytes_per_block": self.bytes_per_block,
                "blocks_per_request": self.blocks_per_request,
                "unpadded_page_size_bytes": self.padded_from or self.page_size_bytes}


@dataclass(frozen=True)
class Layout:
    """What does not depend on ``max_model_len``: block size, groups and blocks."""

    block_size: int
    groups: tuple[tuple[CacheSpec, tuple[int, ...]], ...]
    page_size_bytes: dict[CacheSpec, int]
    unpadded: dict[CacheSpec, int]
    bytes_per_block: int
    padding_layers: int
    padding: tuple[tuple[str, int, int], ...]
    """(bucket, its layers, padding layers) for each padded bucket."""
    aligned_from: int | None
    """A hybrid model: the block size before it was raised to hold the Mamba page (None: not raised)."""
    promoted: bool
    """Chunked/sliding layers sized as full attention (hybrid KV cache manager off)."""


@dataclass(frozen=True)
class Point:
    """One ``max_model_len``: blocks per request and what fits."""

    max_model_len: int
    blocks_per_request: int
    per_group: tuple[int, ...]
    max_concurrency: float
    kv_cache_tokens: int
    fits: bool
    max_model_len_fit: int
    """The longest length one request fits at (vLLM's estimate), up to ``max_model_len``."""

    def to_json(self) -> dict[str, Any]:
        return {"max_model_len": self.max_model_len, "blocks_per_request": self.blocks_per_request,
                "max_concurrency": self.max_concurrency, "kv_cache_tokens": self.kv_cache_tokens,
                "fits": self.fits, "max_model_len_fit": self.max_model_len_fit}


@dataclass(frozen=True)
class EnginePlan:
    """The answer: vLLM's KV cache for ``settings`` (and, with a range, at each length)."""

    settings: Settings
    layout: Layout
    point: Point
    num_blocks: int
    groups: tuple[EngineGroup, ...]
    sweep: tuple[Point, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())
    caches: tuple[CacheSpec, ...] = field(default=())
    """Every cache in model order (what :func:`knobs` re-plans)."""
    layer_index: tuple[int, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        s, p = self.settings, self.point
        doc: dict[str, Any] = {
            "name": NAME, "version": VERSION, "block_size": self.layout.block_size,
            "kv_cache_memory_bytes": s.kv_cache_memory, "max_model_len": p.max_model_len,
            "max_num_batched_tokens": s.max_num_batched_tokens, "max_in_flight_tokens": s.in_flight,
            "prefix_caching": s.prefix_caching, "async_scheduling": s.async_scheduling,
            "groups": [g.to_json() for g in self.groups],
            "padding_layers": self.layout.padding_layers, "bytes_per_block": self.layout.bytes_per_block,
            "num_blocks": self.num_blocks, "blocks_per_request": p.blocks_per_request,
            "max_concurrency": p.max_concurrency, "kv_cache_tokens": p.kv_cache_tokens, "fits": p.fits,
            "max_model_len_fit": p.max_model_len_fit, "notes": list(self.notes),
        }
        if self.sweep:
            doc["sweep"] = [q.to_json() for q in self.sweep]
        return doc


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def kernel_block(specs: list[CacheSpec]) -> int:
    """The attention backend's kernel block: FlashMLA's for an MLA model, else FlashAttention's."""
    return MLA_KERNEL_BLOCK if any(s.cache == MLA for s in specs) else ATTENTION_KERNEL_BLOCK


def aligned_block_size(block_size: int, token_bytes: int, mamba_page: int, checkpoint: int | None = None) -> int:
    """``Platform._align_hybrid_block_size``: the smallest block (a multiple of ``max(16, block_size)``,
    and of the Mamba layers' prefill ``checkpoint`` alignment in 'align' mode, then of 16) whose
    attention page holds the Mamba page; ``block_size`` when it already does."""
    a = max(ATTENTION_KERNEL_BLOCK, block_size)
    if checkpoint is not None:
        a = math.lcm(a, checkpoint)
    raised = a * _cdiv(mamba_page, a * token_bytes)
    raised = ATTENTION_KERNEL_BLOCK * _cdiv(raised, ATTENTION_KERNEL_BLOCK)
    return max(block_size, raised)


def layout(layers: list[CacheSpec], settings: Settings, layer_index: list[int] | None = None) -> Layout:
    """Block size, groups and bytes per block for ``layers`` (one spec per cache, in model order;
    ``layer_index``: the model layer each cache belongs to)."""
    index = layer_index if layer_index is not None else list(range(len(layers)))
    attention = [s for s in layers if s.attention]
    promoted = any(s.cache == CHUNKED for s in attention)
    if promoted:  # NOTE: unify_hybrid_kv_cache_specs (hybrid manager off for chunked local attention)
        layers = [CacheSpec(FULL, s.token_bytes) if s.cache in (SLIDING, CHUNKED) else s for s in layers]
        attention = [s for s in layers if s.attention]
    kernel = kernel_block(attention)
    block = settings.block_size if settings.block_size is not None else DEFAULT_BLOCK_SIZE
    if block % kernel:
        raise SpecError("--block-size", f"{block} is not a multiple of {kernel}, the attention kernel's block "
                                        "(vLLM's supports_block_size)")
    mambas = [s for s in layers if not s.attention]
    aligned_from = None
    if mambas and attention:
        token_bytes = attention[0].token_bytes  # NOTE: vLLM sizes it from the model's KV heads and head size
        alignments = {s.checkpoint_alignment for s in mambas}
        # NOTE: get_mamba_prefill_checkpoint_alignment: None unless every Mamba layer declares one
        checkpoint = (math.lcm(*(a for a in alignments if a is not None))
                      if settings.prefix_caching and None not in alignments else None)
        raised = aligned_block_size(block, token_bytes, max(s.state_bytes for s in mambas), checkpoint)
        if raised != block:
            aligned_from, block = block, raised
    attn_pages = {s: block * s.token_bytes for s in set(attention)}
    unpadded = {**attn_pages, **{s: s.state_bytes for s in set(mambas)}}
    target = max(attn_pages.values()) if attn_pages else max(unpadded.values())
    pages = {**attn_pages, **{s: max(s.state_bytes, target) for s in set(mambas)}}
    kinds = {s.cache for s in layers}
    buckets: dict[CacheSpec, list[int]] = {}
    for spec, i in zip(layers, index, strict=True):
        buckets.setdefault(spec, []).append(i)
    if len(buckets) == 1 or (len(kinds) == 1 and kinds <= {FULL, MLA}):
        # NOTE: is_kv_cache_spec_uniform / UniformTypeKVCacheSpecs: one group, every layer's page per block
        one = next(iter(buckets))
        return Layout(block, ((one, tuple(index)),), pages, unpadded, sum(pages[s] for s in layers), 0, (),
                      aligned_from, promoted)
    if len(set(pages.values())) > 1:
        raise SpecError("--engine", "layers with different page sizes in one hybrid model are not modelled "
                                    "(vLLM's unify_kv_cache_spec_page_size)")
    sizes = [len(v) for v in buckets.values()]
    group_size = max(sizes) if max(sizes) < min(sizes) * 1.5 else min(sizes)
    groups: list[tuple[CacheSpec, tuple[int, ...]]] = []
    padding = []
    for spec, members in buckets.items():
        pad = group_size - len(members) % group_size
        if pad != group_size:
            padding.append((spec.label(), len(members), pad))
        n = _cdiv(len(members), group_size)
        groups += [(spec, tuple(members[i::n])) for i in range(n)]
    per_block = max(len(m) * pages[s] for s, m in groups)
    return Layout(block, tuple(groups), pages, unpadded, per_block, sum(p for _, _, p in padding), tuple(padding),
                  aligned_from, promoted)


def blocks_per_request(spec: CacheSpec, lay: Layout, settings: Settings, max_model_len: int) -> int:
    """Blocks one request at ``max_model_len`` takes of a group of ``spec`` (its ``max_memory_usage_bytes``
    over its page)."""
    block, length, flight = lay.block_size, max_model_len, settings.in_flight
    if spec.cache == SLIDING:
        assert spec.window is not None
        return _cdiv(min(spec.window - 1 + flight, length), block) + 1  # SlidingWindowSpec
    if spec.cache == CHUNKED:
        assert spec.chunk is not None
        return _cdiv(min(spec.chunk + flight, length), block)  # ChunkedLocalAttentionSpec
    if spec.cache == MAMBA:  # MambaSpec: 'align' with prefix caching (2, + a prefill checkpoint block), else 'none'
        return 2 + (spec.checkpoint_alignment is not None) if settings.prefix_caching else 1
    return _cdiv(length, block)  # FullAttentionSpec, MLAAttentionSpec


def request_blocks(lay: Layout, settings: Settings, max_model_len: int) -> tuple[int, ...]:
    return tuple(blocks_per_request(s, lay, settings, max_model_len) for s, _ in lay.groups)


def fits(lay: Layout, settings: Settings, max_model_len: int) -> bool:
    """``_check_enough_kv_cache_memory``: one request's blocks within the memory less the null block."""
    need = sum(request_blocks(lay, settings, max_model_len)) * lay.bytes_per_block
    return need <= settings.kv_cache_memory - lay.bytes_per_block


def longest_fit(lay: Layout, settings: Settings, max_model_len: int) -> int:
    """``_estimate_max_model_len_from_groups``: the longest length in 1..max_model_len one request
    fits at (binary search), 0 when not even one token does."""
    if not fits(lay, settings, 1):
        return 0
    lo, hi, best = 1, max_model_len, 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(lay, settings, mid):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def point(lay: Layout, settings: Settings, max_model_len: int) -> Point:
    per_group = request_blocks(lay, settings, max_model_len)
    num_blocks = settings.kv_cache_memory // lay.bytes_per_block
    concurrency = num_blocks / sum(per_group)
    ok = fits(lay, settings, max_model_len)
    return Point(max_model_len, sum(per_group), per_group, concurrency, int(concurrency * max_model_len), ok,
                 max_model_len if ok else longest_fit(lay, settings, max_model_len))


def plan(layers: list[CacheSpec], settings: Settings, layer_index: list[int] | None = None,
         lengths: tuple[int, ...] = ()) -> EnginePlan:
    """vLLM's KV cache for a model whose caches are ``layers`` (see the module docstring);
    ``lengths``: more values of ``max_model_len`` for a table."""
    if not layers:
        raise SpecError("--engine", "the model has no layer with a KV cache")
    lay = layout(layers, settings, layer_index)
    here = point(lay, settings, settings.max_model_len)
    groups = []
    for (s, members), n in zip(lay.groups, here.per_group, strict=True):
        if len(lay.groups) == 1:  # NOTE: one group may hold caches of several page sizes (UniformTypeKVCacheSpecs)
            page = max(lay.page_size_bytes.values())
            groups.append(EngineGroup(s, tuple(sorted(set(members))), page, n, None, lay.bytes_per_block))
            continue
        padded = lay.unpadded[s] if lay.unpadded[s] != lay.page_size_bytes[s] else None
        groups.append(EngineGroup(s, members, lay.page_size_bytes[s], n, padded,
                                  len(members) * lay.page_size_bytes[s]))
    notes = []
    if lay.promoted:
        notes.append("chunked local attention: vLLM turns the hybrid KV cache manager off by default "
                     "(VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1 turns it on), so every layer "
                     "is sized as full attention")
    for label, n, pad in lay.padding:
        notes.append(f"{pad} padding layers beside the {n} {label} layers: may waste at most "
                     f"{100 * pad / n:.2f}% KV cache memory (vLLM's warning)")
    index = layer_index if layer_index is not None else list(range(len(layers)))
    if len(set(index)) < len(index):
        notes.append(f"{len(index)} caches for {len(set(index))} layers: a layer registers more than one (sparse "
                     "MLA: its latent and its indexer's keys, an MLAAttentionSpec each)")
    if lay.aligned_from is not None:
        mamba = next(s for s in lay.unpadded if not s.attention)
        notes.append(f"attention block raised from {lay.aligned_from} to {lay.block_size} tokens so one page holds "
                     f"the Mamba state ({lay.unpadded[mamba]:,} B), padded to {lay.page_size_bytes[mamba]:,} B")
    return EnginePlan(settings, lay, here, settings.kv_cache_memory // lay.bytes_per_block, tuple(groups),
                      tuple(point(lay, settings, n) for n in lengths), tuple(notes), tuple(layers),
                      tuple(layer_index if layer_index is not None else range(len(layers))))


@dataclass(frozen=True)
class Knob:
    """One setting changed, and the answer it gives."""

    flag: str
    value: str
    block_size: int
    blocks_per_request: int
    max_concurrency: float
    kv_cache_tokens: int


def knobs(p: EnginePlan) -> tuple[Knob, ...]:
    """How each knob moves the answer: ``p`` re-planned with one setting changed at a time."""
    from dataclasses import replace

    s = p.settings
    kernel, block = kernel_block(list(p.caches)), s.block_size or DEFAULT_BLOCK_SIZE
    other_block = 2 * block if kernel > ATTENTION_KERNEL_BLOCK else 16 if block != 16 else DEFAULT_BLOCK_SIZE
    changes: list[tuple[str, str, Settings]] = [
        ("--max-model-len", f"{s.max_model_len // 2:,}", replace(s, max_model_len=max(1, s.max_model_len // 2))),
        ("--max-model-len", f"{2 * s.max_model_len:,}", replace(s, max_model_len=2 * s.max_model_len)),
        ("--kv-cache-memory", f"{gib(2 * s.kv_cache_memory):.1f} GiB",
         replace(s, kv_cache_memory=2 * s.kv_cache_memory)),
        ("--block-size", str(other_block), replace(s, block_size=other_block)),
        ("--max-num-batched-tokens", f"{2 * s.max_num_batched_tokens:,}",
         replace(s, max_num_batched_tokens=2 * s.max_num_batched_tokens)),
    ]
    if any(not c.attention for c in p.caches):
        changes.append(("--no-prefix-caching", "" if s.prefix_caching else "(off)",
                        replace(s, prefix_caching=not s.prefix_caching)))
    out = []
    for flag, value, changed in changes:
        q = plan(list(p.caches), changed, list(p.layer_index))
        out.append(Knob(flag, value, q.layout.block_size, q.point.blocks_per_request, q.point.max_concurrency,
                        q.point.kv_cache_tokens))
    return tuple(out)


def gib(n: int) -> float:
    return n / 2**30

