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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attncli.analyses.gpus import DTYPES, Gpu, gpu
from attncli.choices import DTYPE_BYTES, STAGES
from attncli.kinds.standard.traffic import LayerDims, stage_elements
from attncli.spec import AttnSpec, SpecError

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
    from attncli.registry import kind_of

    kind = kind_of(spec)
    dense = kind.closed_form(spec)
    eff, _ = kind.effective(spec, dense)
    return eff, dense


def for_spec(spec: AttnSpec, device: Gpu | str, dtype: str) -> Roofline:
    """The roofline of ``spec`` on ``device`` (a name of ``attncli gpus``) at ``dtype``: its kind
    says which kernels move how many elements (:meth:`attncli.kinds.base.Kind.kernel_elements`).

    :class:`SpecError` on ``--gpu`` / ``--dtype`` for a name the table does not have.
    """
    from attncli.registry import kind_of

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
