"""A roofline estimate of one attention layer on a datasheet accelerator: the fastest it could go.

Conventions, written down once:

- FLOPs = 2 x MACs (one multiply-add is two floating-point operations), the convention of
  datasheets and of ``torch.utils.flop_counter``. The MACs per stage are passed in.
- Peak figures are **dense** (no 2:4 sparsity) datasheet figures, per dtype; bandwidth is the
  datasheet's peak memory bandwidth. Both come from ``attncli/data/gpus.json``, each GPU with
  the URL of its datasheet.
- Bytes moved count every tensor a kernel reads from or writes to device memory once, at
  ``bytes_per_element`` (tf32 elements are 4 bytes, float8 1). Two kernels are estimated:

  * **fused** (FlashAttention style): QK^T, softmax and weights x V are one kernel that reads
    Q, K and V (with a KV cache: the whole cache of S keys) and writes the output once; the
    scores never leave the chip. It does the **effective** MACs (masked pairs skipped).
  * **naive**: QK^T writes the scores (B*H*L*S elements), softmax reads them and writes the
    weights (B*H*L*S), weights x V reads them back: 4 x B*H*L*S elements more. It does the
    **dense** MACs (masked scores are computed too).

  Projections read their input activations, the weight (and bias) and write their output.
- Per stage: intensity = FLOPs / bytes; the stage is compute-bound when its intensity reaches
  the ridge point peak / bandwidth, else memory-bound; time = max(FLOPs / peak,
  bytes / bandwidth), per stage and for the whole layer's totals (``time_s``); the sum of the
  per-stage times (``stages_time_s``, kernels run one after another) is at least that.

The result is an upper bound on speed (a lower bound on time): real kernels reach a fraction
of peak. Everything here is pure Python over integers, no torch; :func:`for_spec` takes the
dense and effective MACs of a spec from :mod:`attncli.layer.formulas`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from attncli.choices import DTYPE_BYTES, STAGES
from attncli.spec import AttnSpec, SpecError

DTYPES: tuple[str, ...] = tuple(DTYPE_BYTES)
"""The dtypes of the device table, in its column order (:data:`attncli.choices.DTYPE_BYTES`'s)."""

MAC_STAGES: tuple[str, ...] = STAGES
"""The stages whose MACs :func:`estimate` takes (:data:`attncli.choices.STAGES`)."""

NOTE = ("an upper bound on speed (a lower bound on time): dense datasheet peak and peak bandwidth, "
        "every byte moved once; real kernels reach a fraction of peak")

CONVENTION: dict[str, str] = {
    "flops": "2 x MACs, dense (every (query, key) pair): the naive estimate's",
    "effective_flops": "2 x MACs of the (query, key) pairs a mask leaves visible: the fused estimate's",
    "fused": "one attention kernel (FlashAttention style): reads Q, K, V (or the KV cache), writes the "
             "output once; effective MACs (masked pairs skipped)",
    "naive": "QK^T writes the scores, softmax reads them and writes the weights, weights x V reads them: "
             "4 x B*H*L*S elements more; dense MACs",
    "time_s": "max(flops / peak, bytes / bandwidth) of each stage and the whole layer (fused: effective_flops)",
    "stages_time_s": "the sum of the per-stage times: the stages run one after another, none overlapping "
                     "(at least time_s)",
    "bound": "compute when intensity (flops / bytes) >= ridge point (peak / bandwidth), else memory",
    "peak": "dense datasheet figure (no 2:4 sparsity)",
}


# ---------------------------------------------------------------------------- the device table
def _tera(value: float | int | str) -> float:
    """10^12 x a datasheet figure, through decimal: 2.039 TB/s is 2039000000000.0 bytes/s, not
    the 2039000000000.0002 that 2.039 * 1e12 gives in binary floating point."""
    return float(Decimal(str(value)) * 10**12)



@dataclass(frozen=True)
class Gpu:
    """One accelerator's datasheet figures (see ``attncli/data/gpus.json``)."""

    name: str
    label: str
    peak_flops_per_s: Mapping[str, float]
    bandwidth_bytes_per_s: float
    memory_bytes: int
    source: str
    note: str
    match: tuple[str, ...] = ()

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s at ``dtype``; :class:`SpecError` on ``--dtype`` when there is none."""
        if dtype not in self.peak_flops_per_s:
            raise SpecError("--dtype", f"{self.name} has no datasheet figure for {dtype!r}; "
                                       f"choose from {', '.join(self.peak_flops_per_s)}")
        return self.peak_flops_per_s[dtype]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "peak_flops_per_s": dict(self.peak_flops_per_s),
                "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s, "memory_bytes": self.memory_bytes,
                "source": self.source, "note": self.note}


@functools.cache
def gpus() -> tuple[Gpu, ...]:
    """Every accelerator of the packaged table, in its order (read once)."""
    raw = json.loads(resources.files("attncli").joinpath("data/gpus.json").read_text(encoding="utf-8"))
    out = []
    for g in raw["gpus"]:
        out.append(Gpu(
            name=g["name"], label=g["label"],
            # NOTE: the table is in TFLOP/s and TB/s as datasheets print them; convert once here.
            peak_flops_per_s={k: _tera(v) for k, v in g["peak_tflops"].items()},
            bandwidth_bytes_per_s=_tera(g["bandwidth_tb_per_s"]),
            memory_bytes=round(float(g["memory_gb"]) * 1e9),
            source=g["source"], note=g["note"], match=tuple(g.get("match", ()))))
    return tuple(out)


GPUS_SCHEMA = "attncli.gpus/1"


def gpus_document() -> dict[str, Any]:
    """The ``attncli gpus`` JSON document: every accelerator in SI units."""
    return {"schema": GPUS_SCHEMA,
            "config": {"units": {"peak_flops_per_s": "FLOP/s, dense (no 2:4 sparsity)",
                                 "bandwidth_bytes_per_s": "bytes/s",
                                 "memory_bytes": "bytes (10^9 per datasheet GB)"}},
            "gpus": [g.to_json() for g in gpus()]}


def gpu(name: str, flag: str = "--gpu") -> Gpu:
    """The accelerator called ``name`` (case-insensitive), or by a name people say (``h100``,
    :mod:`attncli.analyses.gpunames`); :class:`SpecError` with the close matches."""
    from attncli.analyses.gpunames import resolve

    table = {g.name: g for g in gpus()}
    return table[resolve(name, list(table), flag)]


_VENDOR_WORDS = frozenset({"nvidia", "amd"})
"""Words a device name may carry or not ("NVIDIA L4", "L4"): dropped before matching."""

_VARIANT_WORD = re.compile(r"pcie|nvl\d*|sxm\d*|mig|laptop|mobile|\d+(?:\.\d+)?gb?")
"""A word that names a board variant: form factor, MIG slice, mobile part, memory size. A device
name with such a word that the matching pattern does not name is another board (an "H200 NVL" is
not the H200 SXM, an "A100 80GB PCIe" not the SXM, a MIG slice not the whole GPU)."""


def _words(name: str) -> tuple[str, ...]:
    """A device name or pattern as lower-case words, split at spaces, hyphens, underscores and
    slashes, vendor words dropped: "NVIDIA A100-SXM4-80GB" -> ("a100", "sxm4", "80gb")."""
    return tuple(w for w in re.split(r"[\s\-_/]+", name.lower()) if w and w not in _VENDOR_WORDS)


@functools.cache
def _match_patterns() -> tuple[tuple[tuple[str, ...], Gpu], ...]:
    """Every entry's ``match`` patterns as words, checked once: no pattern is empty and none
    belongs to two entries (the same words cannot mean two boards)."""
    owner: dict[tuple[str, ...], Gpu] = {}
    for g in gpus():
        for pattern in g.match:
            words = _words(pattern)
            if not words:
                raise ValueError(f"gpus.json: {g.name} has an empty match pattern {pattern!r}")
            if owner.setdefault(words, g) is not g:
                raise ValueError(f"gpus.json: match pattern {pattern!r} of {g.name} is also {owner[words].name}'s")
    return tuple(owner.items())


def _run_at(words: tuple[str, ...], pattern: tuple[str, ...]) -> int | None:
    """Where ``pattern`` occurs in ``words`` as a run of whole words, or None."""
    n = len(pattern)
    return next((i for i in range(len(words) - n + 1) if words[i:i + n] == pattern), None)


def match_device(device_name: str) -> Gpu | None:
    """The table entry for a device name as CUDA reports it ("NVIDIA H100 80GB HBM3"), or None.

    Names and patterns compare as whole words (vendor words dropped), never as substrings: "L4"
    is not in "L40S", "H200" not in "GH200", "B200" not in "GB200". A pattern matches when its
    words occur in the name in order and every other word of the name is no variant word
    (:data:`_VARIANT_WORD`): "H200" does not match "H200 NVL". Of the patterns that match, the
    longest (most words, then most letters) wins, so a name equal to a pattern always gets that
    entry; two entries tied for the longest, or none matching, give None: a device the table does
    not have is costed as nothing rather than as a neighbour.
    """
    words = _words(device_name)
    best: tuple[int, int] = (0, 0)
    found: set[str] = set()
    hit: Gpu | None = None
    for pattern, g in _match_patterns():
        at = _run_at(words, pattern)
        if at is None:
            continue
        rest = words[:at] + words[at + len(pattern):]
        if any(_VARIANT_WORD.fullmatch(w) for w in rest):
            continue
        size = (len(pattern), sum(map(len, pattern)))
        if size > best:
            best, found, hit = size, {g.name}, g
        elif size == best:
            found.add(g.name)
    return hit if len(found) == 1 else None


# ---------------------------------------------------------------------------- the layer
@dataclass(frozen=True)
class LayerDims:
    """The sizes a byte count needs, as plain integers (independent of ``AttnSpec``).

    ``heads`` H query heads and ``kv_heads`` G key/value heads of ``head_dim`` d; ``dim`` E is
    the model width (input of W_q, output of W_O). ``q_len`` L new query tokens; ``kv_len`` S
    keys each query may see (N cached + L new, plus any bias/zero key); ``new_kv_tokens`` how
    many tokens the K/V projections project in all (B*L with a cache, B*S without).
    """

    batch: int
    heads: int
    kv_heads: int
    head_dim: int
    dim: int
    q_len: int
    kv_len: int
    new_kv_tokens: int
    kdim: int | None = None
    vdim: int | None = None
    out_proj: bool = True
    bias: bool = True
    bytes_per_element: int = 4
    kv_read: int | None = None
    """Keys (and values) a fused kernel reads: those some query of the step may see (a window or a
    chunk bounds them); ``None``: all ``kv_len``. A naive kernel reads every key whatever the mask."""

    @property
    def k_in(self) -> int:
        return self.dim if self.kdim is None else self.kdim

    @property
    def v_in(self) -> int:
        return self.dim if self.vdim is None else self.vdim


def _projection(tokens: int, d_in: int, d_out: int, bias: bool) -> int:
    """Elements a linear layer moves: reads (tokens, d_in) and W (d_out, d_in) (+b), writes (tokens, d_out)."""
    return tokens * d_in + d_in * d_out + (d_out if bias else 0) + tokens * d_out


def stage_elements(dims: LayerDims, naive: bool) -> dict[str, int]:
    """Elements each kernel moves to or from device memory (x ``bytes_per_element`` for bytes).

    Fused: ``attention`` (QK^T, softmax, weights x V in one kernel). Naive: ``qk``, ``softmax``
    and ``av`` each read their operands and write their result.
    """
    b, h, g, d, e = dims.batch, dims.heads, dims.kv_heads, dims.head_dim, dims.dim
    q_len, s = dims.q_len, dims.kv_len
    q = b * q_len * h * d      # Q (b, h, l, d) and the context (b, h, l, d) alike
    kv = b * s * g * d         # K or V (b, g, s, d), the whole cache with one
    kv_fused = kv if dims.kv_read is None else b * min(s, dims.kv_read) * g * d  # only the keys in reach
    attn = b * h * q_len * s   # one (b, h, l, s) matrix: scores or weights
    out = {
        "q_proj": _projection(b * q_len, e, h * d, dims.bias),
        "k_proj": _projection(dims.new_kv_tokens, dims.k_in, g * d, dims.bias),
        "v_proj": _projection(dims.new_kv_tokens, dims.v_in, g * d, dims.bias),
    }
    if naive:
        out["qk"] = q + kv + attn          # read Q, K; write scores
        out["softmax"] = attn + attn       # read scores; write weights
        out["av"] = attn + kv + q          # read weights, V; write context
    else:
        out["attention"] = q + kv_fused + kv_fused + q  # read Q, K, V (the keys in reach); write context
    if dims.out_proj:
        out["out_proj"] = _projection(b * q_len, h * d, e, dims.bias)
    return out


# ---------------------------------------------------------------------------- the estimate
@dataclass(frozen=True)
class StageEstimate:
    """One kernel's roofline: FLOPs (2 x MACs), bytes moved, and the time neither can beat."""

    name: str
    flops: int
    bytes: int
    intensity: float
    bound: str
    time_s: float

    def to_json(self, effective: bool = False) -> dict[str, Any]:
        """``flops`` (dense), or ``effective_flops`` for the fused kernel's (``effective``)."""
        return _counts(self, effective)


@dataclass(frozen=True)
class KernelEstimate:
    """A whole layer, fused or naive: totals and the per-stage estimates they add up from.

    ``time_s`` is the roofline of the whole layer, max(flops / peak, bytes / bandwidth);
    ``stages_time_s`` adds up the stages' own, as when they run one after another.
    """

    flops: int
    bytes: int
    intensity: float
    bound: str
    time_s: float
    by_stage: tuple[StageEstimate, ...]
    stages_time_s: float

    def to_json(self, effective: bool = False) -> dict[str, Any]:
        """``flops`` (dense: the naive kernel), or ``effective_flops`` (``effective``: the fused one)."""
        return {**_counts(self, effective), "stages_time_s": self.stages_time_s,
                "by_stage": {s.name: s.to_json(effective) for s in self.by_stage}}


@dataclass(frozen=True)
class Roofline:
    """The roofline of one layer on one device at one dtype: fused (effective MACs) and naive (dense)."""

    device: str
    label: str
    dtype: str
    peak_flops_per_s: float
    bandwidth_bytes_per_s: float
    fused: KernelEstimate
    naive: KernelEstimate
    source: str

    @property
    def ridge_point(self) -> float:
        """FLOPs per byte at which compute and memory take equally long."""
        return self.peak_flops_per_s / self.bandwidth_bytes_per_s

    def to_json(self) -> dict[str, Any]:
        """The ``roofline`` object: the fused estimate at the top level, ``naive`` beside it."""
        return {"device": self.device, "label": self.label, "dtype": self.dtype,
                "peak_flops_per_s": self.peak_flops_per_s, "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
                "ridge_point": self.ridge_point, **self.fused.to_json(effective=True), "naive": self.naive.to_json(),
                "note": NOTE, "convention": dict(CONVENTION), "source": self.source}


def _counts(e: StageEstimate | KernelEstimate, effective: bool) -> dict[str, Any]:
    return {("effective_flops" if effective else "flops"): e.flops, "bytes": e.bytes, "intensity": e.intensity,
            "bound": e.bound, "time_s": e.time_s}


def _bound(intensity: float, ridge: float) -> str:
    return "compute" if intensity >= ridge else "memory"


def _stage(name: str, macs: int, nbytes: int, peak: float, bw: float) -> StageEstimate:
    flops = 2 * macs
    intensity = flops / nbytes if nbytes else 0.0
    return StageEstimate(name, flops, nbytes, intensity, _bound(intensity, peak / bw),
                         max(flops / peak, nbytes / bw))


def _kernel(stages: list[StageEstimate], peak: float, bw: float) -> KernelEstimate:
    flops = sum(s.flops for s in stages)
    nbytes = sum(s.bytes for s in stages)
    intensity = flops / nbytes if nbytes else 0.0
    # NOTE: the layer's roofline is max(flops / peak, bytes / bandwidth) of its totals (the bound
    # the issue defines); a layer whose stages differ in bound takes longer run stage by stage,
    # which is stages_time_s.
    return KernelEstimate(flops, nbytes, intensity, _bound(intensity, peak / bw),
                          max(flops / peak, nbytes / bw), tuple(stages), sum(s.time_s for s in stages))


def _check_macs(macs: Mapping[str, int], what: str) -> None:
    missing = [s for s in MAC_STAGES if s not in macs]
    if missing:
        raise ValueError(f"{what} lacks the stages {', '.join(missing)}")


def estimate(dims: LayerDims, dense_macs: Mapping[str, int], effective_macs: Mapping[str, int],
             device: Gpu | str, dtype: str) -> Roofline:
    """The roofline of a layer of ``dims`` on ``device`` at ``dtype`` (peak of that dtype).

    ``dense_macs`` and ``effective_macs`` map every stage of :data:`MAC_STAGES` to its MACs
    (``out_proj`` 0 without W_O). The fused kernel does the effective MACs, the naive one the
    dense MACs. :class:`SpecError` on ``--gpu`` for an unknown device, on ``--dtype`` for a
    dtype it has no figure for.
    """
    g = gpu(device) if isinstance(device, str) else device
    if dtype not in DTYPE_BYTES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    peak, bw = g.peak(dtype), g.bandwidth_bytes_per_s
    _check_macs(dense_macs, "dense_macs")
    _check_macs(effective_macs, "effective_macs")
    n = dims.bytes_per_element
    kernels = []
    for naive, macs in ((False, effective_macs), (True, dense_macs)):
        elements = stage_elements(dims, naive)
        stage_macs = {st: macs[st] for st in ("q_proj", "k_proj", "v_proj", "out_proj")}
        if naive:
            stage_macs.update(qk=macs["qk"], softmax=0, av=macs["av"])
        else:
            stage_macs["attention"] = macs["qk"] + macs["av"]
        kernels.append(_kernel([_stage(st, stage_macs[st], count * n, peak, bw)
                                for st, count in elements.items()], peak, bw))
    return Roofline(g.name, g.label, dtype, peak, bw, kernels[0], kernels[1], g.source)


# ---------------------------------------------------------------------------- one spec
def layer_macs(spec: AttnSpec) -> tuple[dict[str, int], dict[str, int]]:
    """(effective, dense) MACs per stage of ``spec``, from its kind's closed forms (the counts
    ``attncli flops`` checks fvcore and FlopCounterMode against)."""
    from attncli.kinds import kind_of

    kind = kind_of(spec)
    dense = kind.closed_form(spec)
    eff, _ = kind.effective(spec, dense)
    return eff, dense


def keys_in_reach(spec: AttnSpec) -> int:
    """Keys some query of the step may see: all S, or with a window W the last L + W - 1, with a
    chunk C those from the first query's chunk on (a decode step: its own chunk)."""
    s, q_len = spec.s, spec.seq
    if spec.window is not None:
        return min(s, q_len + spec.window - 1)
    if spec.chunk is not None:
        return s - (s - q_len) // spec.chunk * spec.chunk
    return s


def layer_dims(spec: AttnSpec, dtype: str) -> LayerDims:
    """The plain sizes :func:`estimate` needs, from ``spec``, at ``dtype``."""
    if dtype not in DTYPE_BYTES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_BYTES)}")
    return LayerDims(batch=spec.batch, heads=spec.heads, kv_heads=spec.n_kv_heads, head_dim=spec.head_dim,
                     dim=spec.dim, q_len=spec.seq, kv_len=spec.s_total, new_kv_tokens=spec.batch * spec.kv_tokens,
                     kdim=spec.k_dim, vdim=spec.v_dim, out_proj=spec.out_proj, bias=spec.bias,
                     bytes_per_element=DTYPE_BYTES[dtype], kv_read=keys_in_reach(spec) + spec.s_total - spec.s)


def for_spec(spec: AttnSpec, device: Gpu | str, dtype: str) -> Roofline:
    """The roofline of ``spec`` on ``device`` (a name of ``attncli gpus``) at ``dtype``: its kind
    says which kernels move how many elements (:meth:`attncli.kinds.base.Kind.kernel_elements`).

    :class:`SpecError` on ``--gpu`` / ``--dtype`` for a name the table does not have.
    """
    from attncli.kinds import kind_of

    g = gpu(device) if isinstance(device, str) else device
    if dtype not in DTYPE_BYTES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    peak, bw, n = g.peak(dtype), g.bandwidth_bytes_per_s, DTYPE_BYTES[dtype]
    effective_macs, dense_macs = layer_macs(spec)
    kind = kind_of(spec)
    kernels = [_kernel([_stage(name, macs, elements * n, peak, bw)
                        for name, macs, elements in kind.kernel_elements(spec, naive, dense_macs, effective_macs)],
                       peak, bw) for naive in (False, True)]
    return Roofline(g.name, g.label, dtype, peak, bw, kernels[0], kernels[1], g.source)
