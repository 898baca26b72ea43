"""``attncli model``: every attention layer of a whole model, counted per group of equal layers.

A model is one layer's settings (its kind and sizes, as :mod:`attncli.models.configs` reads
them) and a schedule of layers (:mod:`attncli.models.schedule`: full, sliding with a window W, chunked
with a chunk C, RoPE or NoPE). Layers with the same type, window, chunk and RoPE are one group;
each group's layer is traced once, exactly as ``attncli flops`` traces a layer (fvcore with
attncli's handles, checked per stage against the closed form and FlopCounterMode), and the
totals are sums over the layers.

KV cache, after the step, two conventions, both named in the output:

- **theoretical** (transformers' caches): a full layer keeps K and V of all S tokens; a sliding
  one the last W - 1 at most, a chunked one C - 1 at most (``DynamicSlidingWindowLayer``); MLA
  its latent, once (:func:`attncli.layer.visibility.cached_tokens`, the kinds'
  ``kv_bytes_per_token``).
- **paged** (a paged engine such as vLLM v1, ``vllm/v1/kv_cache_interface.py``: pages of
  ``block_size`` tokens, ``page_size_bytes`` = block_size x per-token bytes): whole blocks per
  sequence and layer, the blocks that hold the tokens the cache keeps. A window that does not
  start on a block boundary takes one block more, as that file's ``SlidingWindowSpec`` notes.

Tensor parallelism (``tp``, as vLLM shards attention): each device runs H/N query heads and
max(1, G/N) K/V heads (replicated when N > G); MLA's latent is whole on every device and its
down-projections (``q_a_proj``, ``kv_a_proj``) are replicated. Nothing here imports torch at
import time; counting does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attncli.choices import DTYPE_BYTES
from attncli.layer.visibility import cached_tokens
from attncli.registry import entry, kind_of, takes
from attncli.spec import AttnSpec, SpecError

if TYPE_CHECKING:
    from attncli.analyses.flops import Variant
    from attncli.analyses.gpus import Gpu
    from attncli.analyses.growth import GrowthPoint
    from attncli.models.schedule import LayerKey, Schedule

SCHEMA = "attncli.model/1"
DEFAULT_BLOCK_SIZE = 16
"""vLLM's default ``--block-size`` (tokens per KV-cache page)."""


def paged_blocks(s: int, kept: int, block_size: int) -> int:
    """Blocks a paged cache holds for one sequence and layer: those covering the last ``kept`` of
    ``s`` tokens (token t sits in block t // block_size)."""
    if kept <= 0:
        return 0
    return (s - 1) // block_size - (s - kept) // block_size + 1


def layer_spec(base: AttnSpec, key: LayerKey, linear: AttnSpec | None = None) -> AttnSpec:
    """The spec of one group's layer: the model's attention layer with the group's window or chunk,
    or for a ``linear_attention`` layer the model's linear layer (Gated DeltaNet)."""
    if key.layer_type == "linear_attention":  # NOTE: Gated DeltaNet or Mamba2, as the model's linear layer is
        if linear is None:
            raise SpecError("--config", "a linear_attention layer without the linear layers' sizes")
        return linear
    if key.compress is not None:  # DeepSeek-V4: the rate of its type; the indexer on compressed sparse layers only
        csa = key.layer_type == "compressed_sparse_attention"
        return base.with_(window=key.window, compress_ratio=key.compress,
                          **{k: getattr(base, k) if csa else None for k in ("index_topk", "index_n_heads",
                                                                            "index_head_dim")})
    # NOTE: the layer type's own sizes (Gemma 4's full layers, MiMo's sliding ones) and a cache read from another
    return base.with_(window=key.window, chunk=key.chunk, **dict(key.sizes), kv_shared=key.kv_source is not None)


def kind_spec(values: dict[str, Any], fields: dict[str, Any], step: dict[str, Any],
              mla_form: str = "auto") -> AttnSpec:
    """One kind of layer of a model: the config's settings, that kind's own (``fields``), the step's
    sizes (``step``: batch, seq, cache, ...), run by the kind's own layer (standard attention: sdpa)."""
    kw = {**values, **fields, **step}
    kind = AttnSpec(**{**kw, "impl": "split"}).kind  # NOTE: the kind follows from the settings alone
    if takes(kind, "mla_form"):
        kw["mla_form"] = mla_form
    return AttnSpec(**{**kw, "impl": entry(kind).impl or "sdpa"}).validate()


def model_specs(values: dict[str, Any], attention_fields: dict[str, Any], linear_fields: dict[str, Any],
                step: dict[str, Any], mla_form: str = "auto") -> tuple[AttnSpec, AttnSpec | None]:
    """(the model's attention layer, its linear layer or None) from a config's settings (``values``:
    ``AttnSpec`` keywords without the kinds' own fields) and the step."""
    # NOTE: the schedule gives each group its window; a DeepSeek-V4 layer needs one to be built at all
    step = {"chunk": None, **step} if "o_lora_rank" in attention_fields else {"window": None, "chunk": None, **step}
    base = kind_spec(values, attention_fields, step, mla_form)
    return base, (kind_spec(values, linear_fields, step) if linear_fields else None)


def device_spec(spec: AttnSpec, tp: int) -> AttnSpec:
    """What one of ``tp`` devices runs of ``spec``, as its kind shards it (``Kind.device_spec``)."""
    return spec if tp == 1 else kind_of(spec).device_spec(spec, tp)


@dataclass(frozen=True)
class DeviceShare:
    """One device's part of one layer under tensor parallelism (closed forms)."""

    tp: int
    heads: int
    kv_heads: int | None
    fvcore_flops: int
    effective_fvcore_flops: int
    params: int
    kv_cache_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"tp": self.tp, "heads": self.heads, "kv_heads": self.kv_heads, "fvcore_flops": self.fvcore_flops,
                "effective_fvcore_flops": self.effective_fvcore_flops, "params": self.params,
                "kv_cache_bytes": self.kv_cache_bytes}


@dataclass(frozen=True)
class Group:
    """Equal layers: their key (type, window, chunk, RoPE), indices and one layer's counts."""

    key: LayerKey
    layers: tuple[int, ...]
    spec: AttnSpec
    variant: Variant
    kv_bytes_per_token: int
    kv_cache_bytes: int
    kv_cache_paged_bytes: int
    kv_cache_held_bytes: int = 0
    """The memory the cache's storage holds after the step (:func:`kv_held_bytes`)."""
    device: DeviceShare | None = None
    kv_dtype: str = "bfloat16"
    time_s: float | None = None
    """With a GPU: the roofline time of one layer's step (fused kernel), an upper bound on speed."""
    bound: str | None = None

    @property
    def n(self) -> int:
        return len(self.layers)

    def to_json(self) -> dict[str, Any]:
        v = self.variant
        doc: dict[str, Any] = {
            "layer_type": self.key.layer_type, "kind": self.spec.kind, "window": self.key.window,
            "chunk": self.key.chunk, "rope": self.key.rope, "label": self.key.label(), "layers": list(self.layers),
            "per_layer": {"fvcore_flops": v.fvcore_flops, "effective_fvcore_flops": v.effective_fvcore_flops,
                          "flops": 2 * v.fvcore_flops, "effective_flops": 2 * v.effective_fvcore_flops,
                          "by_stage": dict(v.by_stage), "effective_by_stage": dict(v.effective_by_stage),
                          "params": v.params, "kv_cache_bytes": self.kv_cache_bytes,
                          "kv_cache_paged_bytes": self.kv_cache_paged_bytes,
                          "kv_cache_held_bytes": self.kv_cache_held_bytes,
                          "kv_bytes_per_token": self.kv_bytes_per_token,
                          "cached_tokens": cached_tokens(self.spec),
                          "cross_checks": {"agree": v.agree, "problems": list(v.problems)}},
        }
        if self.spec.form is not None:
            doc["form"] = self.spec.form
        fixed = kind_of(self.spec).kv_fixed_bytes(self.spec, DTYPE_BYTES[self.kv_dtype])
        if fixed is not None:  # NOTE: a cache that grows by whole entries every m tokens (DeepSeek-V4)
            doc["per_layer"]["kv_fixed_bytes"] = fixed
        if self.device is not None:
            doc["per_device"] = self.device.to_json()
        if self.time_s is not None:
            doc["roofline"] = {"time_s": self.time_s, "bound": self.bound}
        return doc


@dataclass(frozen=True)
class ModelReport:
    """Everything ``attncli model`` shows."""

    name: str
    source: str
    spec: AttnSpec
    schedule: Schedule
    groups: tuple[Group, ...]
    dtype: str
    dtype_source: str
    kv_dtype: str
    block_size: int
    tp: int = 1
    gpu: Gpu | None = None
    decode_time_s: float | None = None
    """With a GPU: one decode step of every layer right after this step (context S + 1)."""
    weights_bytes: int | None = None
    weights_source: str | None = None
    fits_tokens: int | None = None
    """With a GPU: the longest context whose KV cache (at --batch) fits beside the weights."""
    notes: tuple[str, ...] = field(default=())
    growth: tuple[GrowthPoint, ...] = field(default=())
    """With a range of ``--cache`` or ``--seq``: the step at each value (:func:`attncli.analyses.growth.growth`)."""
    growth_setting: str | None = None

    def total(self, what: str) -> int:
        return sum(g.n * int(getattr(g.variant if what in _VARIANT else g, what)) for g in self.groups)

    @property
    def agree(self) -> bool:
        return all(g.variant.agree for g in self.groups)

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(f"{g.key.label()}: {p}" for g in self.groups for p in g.variant.problems)

    @property
    def time_s(self) -> float | None:
        return None if self.gpu is None else sum(g.n * (g.time_s or 0.0) for g in self.groups)

    @property
    def step(self) -> str:
        s = self.spec
        if s.cache and s.seq == 1:
            return "decode"
        return "chunked prefill" if s.cache else "prefill"

    def _kind_of_type(self, layer_type: str) -> str:
        from attncli.models.schedule import NO_MIXER

        if layer_type in NO_MIXER:
            return "none"
        return next((g.spec.kind for g in self.groups if g.key.layer_type == layer_type), self.spec.kind)

    def totals(self) -> dict[str, Any]:
        out: dict[str, Any] = {what: self.total(what) for what in
                               ("fvcore_flops", "effective_fvcore_flops", "params", "kv_cache_bytes",
                                "kv_cache_paged_bytes", "kv_cache_held_bytes")}
        out["flops"], out["effective_flops"] = 2 * out["fvcore_flops"], 2 * out["effective_fvcore_flops"]
        out["kv_bytes_per_token"] = sum(g.n * g.kv_bytes_per_token for g in self.groups)
        return out

    def per_device(self) -> dict[str, Any] | None:
        if self.tp == 1:
            return None
        shares = [(g.n, g.device) for g in self.groups if g.device is not None]
        return {"tp": self.tp, **{what: sum(n * getattr(d, what) for n, d in shares) for what in
                                  ("fvcore_flops", "effective_fvcore_flops", "params", "kv_cache_bytes")}}

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "config": {"model": self.name, "source": self.source, **self.spec.to_dict(), "dtype": self.dtype,
                       "dtype_source": self.dtype_source, "kv_dtype": self.kv_dtype, "block_size": self.block_size,
                       "tp": self.tp, "step": self.step, "num_layers": len(self.schedule.layers),
                       "weights_bytes": self.weights_bytes, "weights_source": self.weights_source},
            "schedule": {"summary": self.schedule.summary(), "source": self.schedule.source,
                         "notes": list(self.schedule.notes)},
            "layers": [{**layer.to_json(), "kind": self._kind_of_type(layer.layer_type)}
                       for layer in self.schedule.layers],
            "groups": [g.to_json() for g in self.groups],
            "totals": self.totals(),
            "convention": {
                "fvcore_flops": "MACs (one multiply-add = 1); flops = 2 x MACs",
                "effective": "only the (query, key) pairs each layer's mask leaves visible",
                "kv_cache_bytes": "theoretical: what transformers' caches keep after the step (full: S tokens, "
                                  "sliding: W - 1, chunked: C - 1, MLA: the latent once)",
                "kv_cache_paged_bytes": f"paged: whole blocks of {self.block_size} tokens per sequence and layer "
                                        "(DeepSeek-V4 layers: not modelled, transformers' bytes) "
                                        "(vLLM v1, vllm/v1/kv_cache_interface.py)",
                "kv_cache_held_bytes": "memory the cache's storage holds after the step: a sliding or chunked "
                                       "layer keeps its W - 1 (C - 1) tokens as a view of the keys and values "
                                       "the step computed over (transformers' DynamicSlidingWindowLayer), so the "
                                       "whole prompt after a prefill, W (C) tokens after a decode step",
            },
            "cross_checks": {"agree": self.agree, "problems": list(self.problems)},
            "notes": list(self.notes),
        }
        dev = self.per_device()
        if dev is not None:
            doc["per_device"] = dev
        if self.growth:
            labels = [g.key.label() for g in self.groups]
            doc["growth"] = {"setting": self.growth_setting, "points": [p.to_json(labels) for p in self.growth]}
        if self.gpu is not None:
            doc["roofline"] = {"device": self.gpu.name, "label": self.gpu.label, "dtype": self.dtype,
                               "time_s": self.time_s, "step": self.step, "decode_time_s": self.decode_time_s,
                               "memory_bytes": self.gpu.memory_bytes, "weights_bytes": self.weights_bytes,
                               "weights_source": self.weights_source, "fits_tokens": self.fits_tokens,
                               "note": "estimated: an upper bound on speed (fused kernels, weights and KV read "
                                       "once per layer)"}
        return doc


_VARIANT = ("fvcore_flops", "effective_fvcore_flops", "params")


# ---------------------------------------------------------------------------- counting
def kv_bytes(spec: AttnSpec, kv_dtype: str, block_size: int) -> tuple[int, int, int]:
    """(bytes per token, theoretical bytes, paged bytes) of one layer's cache after the step. A
    layer that keeps a constant state instead (Gated DeltaNet: 0 bytes per token) holds the same
    state either way, as vLLM's ``MambaSpec`` pages it whole."""
    kind = kind_of(spec)
    n = DTYPE_BYTES[kv_dtype]
    per_token = kind.kv_bytes_per_token(spec, n)
    held = kind.kv_cache_bytes(spec, n)
    if per_token == 0 or not paged_modelled(spec):
        return per_token, held, held
    kept = cached_tokens(spec)
    return per_token, held, spec.batch * paged_blocks(spec.s, kept, block_size) * block_size * per_token


def kv_held_bytes(spec: AttnSpec, kv_dtype: str) -> int:
    """The bytes one layer's cache storage holds after the step, as transformers keeps it: its
    update concatenates the kept cache and the step's keys and values (the S' keys the kernel
    computes over, :attr:`AttnSpec.s_kernel`) and keeps a view of the last W - 1 (C - 1) of them,
    so the whole concatenation stays alive. A constant state (Gated DeltaNet) holds itself."""
    # NOTE: a kind whose cache is a view of the step's keys says so (standard, gated); the others hold
    # what they keep (MLA's latent and a full layer: S tokens; a linear layer's state; DeepSeek-V4's caches)
    return kind_of(spec).kv_cache_held_bytes(spec, DTYPE_BYTES[kv_dtype])


def paged_modelled(spec: AttnSpec) -> bool:
    """Whether the kind's paged layout is modelled (DeepSeek-V4's compressed caches are not: a paged
    engine's layout for them is not read here, so its paged bytes are transformers' and no fit is estimated)."""
    return kind_of(spec).PAGED_MODELLED


def fitting_tokens(layers: list[tuple[int, int, int | None]], batch: int, room: int, constant: int = 0) -> int:
    """The longest context S whose cache (theoretical, ``batch`` sequences) fits in ``room`` bytes;
    ``layers`` are (how many, bytes per token, the cap W - 1 or C - 1 or None) per group, and
    ``constant`` the bytes that do not grow with S (a linear layer's state)."""
    def need(s: int) -> int:
        return constant + sum(n * batch * per_token * (s if cap is None else min(s, cap))
                              for n, per_token, cap in layers)

    if room <= 0 or need(1) > room:
        return 0
    lo, hi = 1, 1
    while need(hi) <= room and hi < 2**62:
        lo, hi = hi, hi * 2
    if need(hi) <= room:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if need(mid) <= room else (lo, mid)
    return lo


def _cap(spec: AttnSpec) -> int | None:
    bound = spec.window if spec.window is not None else spec.chunk
    return None if bound is None else bound - 1


def count_model(name: str, source: str, base: AttnSpec, schedule: Schedule, *, dtype: str, dtype_source: str,
                kv_dtype: str | None = None, block_size: int = DEFAULT_BLOCK_SIZE, tp: int = 1,
                gpu: str | None = None, weights_bytes: int | None = None, weights_source: str | None = None,
                notes: tuple[str, ...] = (), linear: AttnSpec | None = None) -> ModelReport:
    """Count every group of ``schedule`` with ``base``'s settings (its batch, --seq, --cache)."""
    from attncli.analyses.flops import count_variant
    from attncli.analyses.gpus import gpu as find_gpu
    from attncli.analyses.roofline import for_spec

    kv_dtype = kv_dtype or dtype
    for flag, value in (("--dtype", dtype), ("--kv-dtype", kv_dtype)):
        if value not in DTYPE_BYTES:
            raise SpecError(flag, f"unknown dtype {value!r}; choose from {', '.join(DTYPE_BYTES)}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise SpecError("--block-size", f"must be an integer of at least 1, got {block_size!r}")
    if isinstance(tp, bool) or not isinstance(tp, int) or tp < 1:
        raise SpecError("--tp", f"must be an integer of at least 1, got {tp!r}")
    device = None if gpu is None else find_gpu(gpu)
    if device is not None:
        device.peak(dtype)  # an unknown dtype for this GPU fails before counting
    from attncli.models.schedule import NO_MIXER

    # NOTE: blocks with no token mixer (Nemotron-H's MLP and MoE) are neither counted nor cached
    specs = [(key, idx, layer_spec(base, key, linear)) for key, idx in schedule.groups()
             if key.layer_type not in NO_MIXER]
    for _, _, spec in specs:
        device_spec(spec, tp)  # a bad --tp fails before counting
        kind_of(spec).check_representable(spec)
    groups = []
    decode = 0.0
    for key, idx, spec in specs:
        variant = count_variant(spec, dtype)
        per_token, kv, paged = kv_bytes(spec, kv_dtype, block_size)
        share = None
        if tp > 1:
            d = device_spec(spec, tp)
            dense = kind_of(d).closed_form(d)
            eff, _ = kind_of(d).effective(d, dense)
            heads, kv_heads = kind_of(d).head_counts(d)
            share = DeviceShare(tp, heads, kv_heads,
                                sum(dense.values()),
                                sum(eff.values()), kind_of(d).params(d)["total"], kv_bytes(d, kv_dtype, block_size)[1])
        time_s = bound = None
        if device is not None:
            roof = for_spec(spec, device, dtype).fused
            time_s, bound = roof.time_s, roof.bound
            step = spec.with_(seq=1, cache=spec.s)
            decode += len(idx) * for_spec(step, device, dtype).fused.time_s
        groups.append(Group(key, tuple(idx), spec, variant, per_token, kv, paged, kv_held_bytes(spec, kv_dtype),
                            share, kv_dtype=kv_dtype, time_s=time_s, bound=bound))
    out = tuple(groups)
    fits = None
    if device is not None and weights_bytes is not None and all(paged_modelled(g.spec) for g in out):
        # NOTE: per device: its share of the weights and of every layer's cache (tp = 1: the whole model).
        shares = [(g, kv_bytes(device_spec(g.spec, tp), kv_dtype, block_size)) for g in out]
        layers = [(g.n, per_token, _cap(g.spec)) for g, (per_token, _, _) in shares]
        constant = sum(g.n * held for g, (per_token, held, _) in shares if per_token == 0)
        fits = fitting_tokens(layers, base.batch, device.memory_bytes - weights_bytes // tp, constant)
    return ModelReport(name, source, base, schedule, out, dtype, dtype_source, kv_dtype, block_size, tp, device,
                       decode if device is not None else None, weights_bytes, weights_source, fits, notes)
