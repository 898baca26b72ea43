"""One layer's KV-cache spec as vLLM v1 builds it (``vllm/v1/kv_cache_interface.py``).

A :class:`CacheSpec` is what a layer answers (``vllm_cache_spec`` of its kind in
:mod:`attncli.kinds`); :mod:`attncli.serving.vllm` groups them. The ``cache`` names are vLLM's
spec classes, shortened: ``full`` (``FullAttentionSpec``), ``sliding_window``
(``SlidingWindowSpec``), ``chunked_local`` (``ChunkedLocalAttentionSpec``), ``mla``
(``MLAAttentionSpec``, a full-attention spec of one latent "head"), ``mamba`` (``MambaSpec``: a
constant state, the conv and recurrent state of a Gated DeltaNet or Mamba2 layer,
:func:`constant_state_spec`).
"""

from __future__ import annotations

from dataclasses import dataclass

from attncli.spec import SpecError

FULL = "full"
SLIDING = "sliding_window"
CHUNKED = "chunked_local"
MLA = "mla"
MAMBA = "mamba"
SPEC_CLASSES = {FULL: "FullAttentionSpec", SLIDING: "SlidingWindowSpec", CHUNKED: "ChunkedLocalAttentionSpec",
                MLA: "MLAAttentionSpec", MAMBA: "MambaSpec"}

KV_CACHE_DTYPE_BYTES: dict[str, int | None] = {
    "auto": None, "float16": 2, "bfloat16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_ds_mla": None,
}
"""vLLM 0.34's ``--kv-cache-dtype`` values attncli models (``vllm/config/cache.py`` ``CacheDType``):
bytes per element, None for ``auto`` (the model's dtype) and ``fp8_ds_mla`` (a packed MLA layout,
:data:`FP8_DS_MLA`). The others (``fp8_inc``, ``nvfp4*``, ``turboquant_*``, ``int*_per_token_head``,
...) pack pages per backend and are refused."""

MLA_ONLY_DTYPES = ("fp8_ds_mla",)

MAMBA_SSM_DTYPE_BYTES: dict[str, int | None] = {"auto": None, "float32": 4, "bfloat16": 2, "float16": 2}
"""``--mamba-ssm-cache-dtype`` (``MambaDType``): the recurrent state's element size, None for
``auto`` (the conv state's dtype, ``MambaStateDtypeCalculator._mamba_state_dtype``)."""


@dataclass(frozen=True)
class CacheSpec:
    """One layer's cache as the engine pages it.

    ``token_bytes``: bytes one token takes in one layer (attention kinds; 0 for ``mamba``).
    ``state_bytes``: the whole state of a ``mamba`` layer (its unpadded page). ``window`` and
    ``chunk``: W of a sliding layer, C of a chunked one; ``checkpoint_alignment`` below. Equal
    specs share a group (vLLM buckets layers by spec equality,
    ``_get_kv_cache_groups_uniform_page_size``).
    """

    cache: str
    token_bytes: int = 0
    state_bytes: int = 0
    window: int | None = None
    chunk: int | None = None
    checkpoint_alignment: int | None = None
    """A ``mamba`` layer that exports prefill checkpoints in prefix caching's 'align' mode (vLLM's
    Gated DeltaNet with FlashInfer's prefill kernel, the default on Hopper and Blackwell:
    ``FLASHINFER_GDN_CHECKPOINT_ALIGNMENT`` 64 tokens): its group takes one block more per request
    (``num_prefill_checkpoint_blocks``) and attention blocks are a multiple of it."""

    @property
    def attention(self) -> bool:
        return self.cache != MAMBA

    def label(self) -> str:
        extra = (f" W={self.window}" if self.window is not None else f" C={self.chunk}" if self.chunk is not None
                 else "")
        return f"{self.cache}{extra}"


def kv_element_bytes(kv_cache_dtype: str, model_bytes: int) -> int:
    """Bytes of one cached element at ``--kv-cache-dtype`` (``auto``: the model's dtype)."""
    n = KV_CACHE_DTYPE_BYTES[kv_cache_dtype]
    return model_bytes if n is None else n


def attention_spec(token_bytes: int, window: int | None, chunk: int | None, cache: str = FULL) -> CacheSpec:
    """A standard attention layer's spec: sliding with a window, chunked with a chunk, else ``cache``."""
    if window is not None:
        return CacheSpec(SLIDING, token_bytes, window=window)
    if chunk is not None:
        return CacheSpec(CHUNKED, token_bytes, chunk=chunk)
    return CacheSpec(cache, token_bytes)


def constant_state_spec(kv_cache_dtype: str, conv_channels: int, kernel: int, state_values: int, model_bytes: int,
                        ssm_bytes: int | None, checkpoint_alignment: int | None = None) -> tuple[CacheSpec, ...]:
    """A constant-state layer's ``MambaSpec`` on one device (``MambaStateShapeCalculator``), from its sizes
    there: the conv state, ``conv_channels`` x (``kernel`` - 1) at the model's dtype (``mamba_cache_dtype``
    auto; vLLM keeps K - 1 conv columns, transformers K), and ``state_values`` recurrent (SSM) values at
    ``ssm_bytes`` each (``--mamba-ssm-cache-dtype``; None: the conv state's dtype,
    ``MambaStateDtypeCalculator._mamba_state_dtype``). ``--kv-cache-dtype`` sizes neither; MLA's packed
    layout is refused."""
    if kv_cache_dtype in MLA_ONLY_DTYPES:
        raise SpecError("--kv-cache-dtype", f"{kv_cache_dtype} is vLLM's packed layout for MLA layers; "
                                            "this model has none (auto, fp8, ...)")
    conv = conv_channels * (kernel - 1) * model_bytes
    state = state_values * (model_bytes if ssm_bytes is None else ssm_bytes)
    return (CacheSpec(MAMBA, state_bytes=conv + state, checkpoint_alignment=checkpoint_alignment),)
