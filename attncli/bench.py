"""Measured forward (or forward + backward) time of every implementation, on the device at hand.

What is measured, and how:

- Every implementation of :data:`attncli.spec.IMPLS` that can express the spec is built with
  :func:`attncli.modules.build` (eval mode, weights of a seeded ``nn.MultiheadAttention``), fed
  :func:`attncli.modules.make_inputs` and run with :func:`attncli.modules.run`. One that cannot
  (``fused`` is self-attention only) is listed in ``skipped`` with the reason. On CUDA the
  ``sdpa`` implementation is timed again under every SDPA backend
  (``torch.nn.attention.sdpa_kernel``: flash, memory-efficient, cuDNN, math); a backend that
  refuses the inputs is skipped with torch's reason.
- Timing is ``torch.utils.benchmark.Timer.blocked_autorange``: one warm-up call, then blocks of
  calls until ``min_run_time`` seconds; ``median_s`` and ``iqr_s`` are over the blocks' per-call
  times (CUDA is synchronised by the timer). The forward pass runs under
  ``torch.inference_mode``; with ``backward`` it runs with autograd and
  ``torch.autograd.grad`` of the output's sum with respect to the weights and inputs.
- FLOPs = 2 x MACs. ``flops`` is the **effective** count (the (query, key) pairs a mask leaves
  visible), ``dense_flops`` the dense one; forward + backward counts 3 x forward by the usual
  convention (backward = 2 x forward). ``achieved_flops_per_s`` = ``flops / median_s``.
- ``roofline_fraction`` = the roofline time of the fused kernel (:mod:`attncli.roofline`, the
  fastest the layer could run on that GPU; 3x with backward) / ``median_s``: 1.0 would be peak.
- Memory: the prediction is the memory model (:func:`attncli.flops.memory`: activations) plus
  the weights and the inputs at the dtype, for the forward pass; measured peak on CUDA is
  ``torch.cuda.max_memory_allocated`` (CPU reports none). A size the prediction says will not
  fit is refused (:class:`SpecError`) before anything is allocated.

Importing this module does not import torch; :func:`run_bench` does.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attncli.choices import BENCH_DTYPES, DTYPE_BYTES
from attncli.formulas import TRAINING_FACTOR
from attncli.roofline import Roofline, for_spec, layer_macs, match_device
from attncli.spec import IMPLS, AttnSpec, SpecError

if TYPE_CHECKING:
    import torch

SCHEMA = "attncli.bench/1"

DEVICES: tuple[str, ...] = ("cpu", "cuda")
DTYPES: tuple[str, ...] = BENCH_DTYPES

BACKENDS: dict[str, str] = {
    "flash": "FLASH_ATTENTION",
    "memory-efficient": "EFFICIENT_ATTENTION",
    "cudnn": "CUDNN_ATTENTION",
    "math": "MATH",
}
"""SDPA backends timed on CUDA: our name -> ``torch.nn.attention.SDPBackend`` member."""

MIN_BLOCKS_FOR_IQR = 4
"""Fewer timed blocks than this have no interquartile range worth the name (1 block gave 0.0)."""

BACKWARD_FACTOR = TRAINING_FACTOR
"""Forward + backward FLOPs with backward = 2 x forward (:data:`attncli.formulas.TRAINING_FACTOR`)."""

CONVENTION: dict[str, str] = {
    "flops": "2 x MACs, effective count (only the (query, key) pairs a mask leaves visible)",
    "dense_flops": "2 x MACs, dense count (masked scores computed too)",
    "backward": "forward + backward counted as 3 x forward (backward = 2 x forward by convention)",
    "median_s": "median per-call time over torch.utils.benchmark blocks (blocked_autorange)",
    "iqr_s": f"interquartile range of the blocks' per-call times; null with fewer than {MIN_BLOCKS_FOR_IQR} "
             "blocks (no spread was measured: raise --min-run-time)",
    "achieved_flops_per_s": "flops / median_s",
    "roofline_fraction": "fused-kernel roofline time on the GPU (3x with backward) / median_s (1.0 = the roofline)",
    "predicted_memory_bytes": "memory model: forward activations (attncli.flops.memory) + weights + inputs",
    "peak_memory_bytes": "torch.cuda.max_memory_allocated during the row (CPU: none reported)",
}


# ---------------------------------------------------------------------------- counts for one spec
# ---------------------------------------------------------------------------- memory
def weight_bytes(spec: AttnSpec, dtype: str) -> int:
    from attncli.shapes import closed_form_params

    return closed_form_params(spec)["total"] * DTYPE_BYTES[dtype]


def input_bytes(spec: AttnSpec, dtype: str) -> int:
    """Query (and key, value when they are separate tensors) at ``dtype``."""
    n = DTYPE_BYTES[dtype]
    b, e = spec.batch, spec.dim
    extra = 0 if spec.is_self_attention else b * spec.s * (spec.k_dim + spec.v_dim)
    return (b * spec.seq * e + extra) * n


def predicted_memory(spec: AttnSpec, dtype: str) -> int:
    """Bytes one forward pass needs by the memory model: activations + weights + inputs."""
    from attncli.flops import memory

    return memory(spec, dtype).activations_total + weight_bytes(spec, dtype) + input_bytes(spec, dtype)


def _address_space_left() -> int | None:
    """Bytes this process may still map under an address-space limit (RLIMIT_AS), or None."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status", encoding="ascii") as fh:
            used = next((int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:")), 0)
        return max(0, soft - used)
    except (ImportError, OSError, ValueError):
        return None


def available_memory(device: str) -> tuple[int | None, str]:
    """(bytes free, where the figure comes from); (None, why) when it cannot be read."""
    if device == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info()
        return int(free), "CUDA free memory"
    found: tuple[int | None, str] = (None, "no /proc/meminfo")
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found = (int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo")
                    break
    except OSError:
        pass
    # NOTE: a process under ulimit -v (RLIMIT_AS) fails to allocate long before RAM runs out.
    left = _address_space_left()
    if left is not None and (found[0] is None or left < found[0]):
        found = (left, "the address-space limit, ulimit -v")
    return found


HEADROOM = 2
"""The memory model counts the tensors a forward pass keeps; temporaries (masked copies of the
scores, softmax's output before dropout, per-head stacks) and the allocator's slack come on top.
A size is refused when HEADROOM x the prediction exceeds what is available."""


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def _culprit(spec: AttnSpec, dtype: str) -> str:
    """The flag that drives the prediction: the keys' length for the attention matrices (the
    cache when the N cached tokens outnumber the L new ones), else the width for the weights,
    else the batch."""
    from attncli.flops import memory

    m = memory(spec, dtype)
    total = predicted_memory(spec, dtype)
    if spec.cache > spec.seq and 2 * (m.kv_cache + 2 * m.attention_matrix) >= total:
        return "--cache"
    if 2 * m.attention_matrix * 2 >= total:
        return "--kv-seq" if spec.kv_seq is not None and spec.s > spec.seq else "--seq"
    if 2 * weight_bytes(spec, dtype) >= total:
        return "--dim"
    return "--batch"


MAX_MIN_RUN_TIME = 60.0
"""The longest --min-run-time accepted, in seconds per row."""


def check_fits(spec: AttnSpec, dtype: str, device: str, available: int | None, source: str) -> None:
    """Refuse (SpecError) a size the memory model says will not fit in ``available`` bytes."""
    need = predicted_memory(spec, dtype)
    if available is not None and HEADROOM * need > available:
        raise SpecError(_culprit(spec, dtype),
                        f"one forward pass needs about {gib(need)} on {device} by the memory model "
                        f"(activations + weights + inputs at {dtype}), {HEADROOM}x that with temporaries, "
                        f"and only {gib(available)} is available ({source}); nothing was run")


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Row:
    """One measured implementation (and SDPA backend)."""

    impl: str
    backend: str | None
    median_s: float
    iqr_s: float | None
    flops: int
    dense_flops: int
    runs: int
    blocks: int
    predicted_memory_bytes: int
    peak_memory_bytes: int | None = None
    roofline_time_s: float | None = None

    @property
    def achieved_flops_per_s(self) -> float:
        return self.flops / self.median_s

    @property
    def roofline_fraction(self) -> float | None:
        return None if self.roofline_time_s is None else self.roofline_time_s / self.median_s

    @property
    def label(self) -> str:
        return self.impl if self.backend is None else f"{self.impl} [{self.backend}]"

    def to_json(self) -> dict[str, Any]:
        return {"impl": self.impl, "backend": self.backend, "median_s": self.median_s, "iqr_s": self.iqr_s,
                "flops": self.flops, "dense_flops": self.dense_flops,
                "achieved_flops_per_s": self.achieved_flops_per_s, "roofline_fraction": self.roofline_fraction,
                "peak_memory_bytes": self.peak_memory_bytes, "predicted_memory_bytes": self.predicted_memory_bytes,
                "runs": self.runs, "blocks": self.blocks}


@dataclass(frozen=True)
class Skipped:
    impl: str
    reason: str
    backend: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"impl": self.impl, "backend": self.backend, "reason": self.reason}


@dataclass(frozen=True)
class BenchReport:
    """Every row measured for one spec on one device, and what was skipped."""

    spec: AttnSpec
    device: str
    dtype: str
    backward: bool
    min_run_time: float
    environment: dict[str, Any]
    rows: tuple[Row, ...]
    skipped: tuple[Skipped, ...]
    roofline: Roofline | None = None
    checks: tuple[dict[str, Any], ...] = field(default=())

    def row(self, impl: str, backend: str | None = None) -> Row | None:
        return next((r for r in self.rows if r.impl == impl and r.backend == backend), None)

    def to_json(self) -> dict[str, Any]:
        config = {**self.spec.to_dict(), "device": self.device, "dtype": self.dtype, "backward": self.backward,
                  "min_run_time_s": self.min_run_time}
        return {"schema": SCHEMA, "config": config, "environment": dict(self.environment),
                "convention": dict(CONVENTION), "measured": True,
                "results": [r.to_json() for r in self.rows], "skipped": [s.to_json() for s in self.skipped],
                "roofline": None if self.roofline is None else self.roofline.to_json(),
                "checks": [dict(c) for c in self.checks]}


# ---------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Plan:
    """What will be timed (spec per impl, backends) and what is skipped, before any allocation."""

    specs: tuple[tuple[AttnSpec, str | None], ...]
    skipped: tuple[Skipped, ...]


def plan(spec: AttnSpec, device: str, only: bool = False) -> Plan:
    """The rows to time: every impl that validates (or ``spec.impl`` alone), SDPA backends on CUDA."""
    rows: list[tuple[AttnSpec, str | None]] = []
    skipped: list[Skipped] = []
    for impl in ((spec.impl,) if only else IMPLS):
        try:
            s = spec.with_(impl=impl)
        except SpecError as exc:
            skipped.append(Skipped(impl, f"{exc.flag}: {exc.message}"))
            continue
        rows.append((s, None))
        if impl == "sdpa" and device == "cuda":
            rows += [(s, backend) for backend in BACKENDS]
    return Plan(tuple(rows), tuple(skipped))


# ---------------------------------------------------------------------------- environment
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return str(torch.cuda.get_device_name())
    return cpu_name()


def environment(device: str, dtype: str) -> dict[str, Any]:
    import torch

    return {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "device": device, "device_name": device_name(device), "dtype": dtype,
            "num_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "cuda": torch.version.cuda if device == "cuda" else None}


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise SpecError("--device", f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SpecError("--device", "cuda asked for, but torch sees no CUDA device "
                                        f"(torch {torch.__version__}); use --device cpu")


# ---------------------------------------------------------------------------- measuring
def _torch_dtype(dtype: str) -> torch.dtype:
    import torch

    if dtype not in DTYPES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def _backend_context(backend: str | None) -> AbstractContextManager[Any]:
    if backend is None:
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(getattr(SDPBackend, BACKENDS[backend]))


def _callable(spec: AttnSpec, device: str, dtype: str, backward: bool) -> Callable[[], Any]:
    """Build the module and inputs once; return the call to time."""
    import torch

    from attncli.modules import build, make_inputs, run

    tdtype = _torch_dtype(dtype)
    module = build(spec, device).to(tdtype)
    inputs = make_inputs(spec, device, tdtype)
    if not backward:
        return lambda: run(module, spec, inputs)
    leaves: list[torch.Tensor] = [p for p in module.parameters() if p.requires_grad]
    for t in {id(t): t for t in (inputs.query, inputs.key, inputs.value)}.values():
        t.requires_grad_(True)
        leaves.append(t)

    def step() -> Any:
        out, _ = run(module, spec, inputs)
        return torch.autograd.grad(out.float().sum(), leaves)

    return step


def measure(spec: AttnSpec, backend: str | None, device: str, dtype: str, backward: bool,
            min_run_time: float) -> tuple[float, float | None, int, int, int | None]:
    """(median_s, iqr_s or None, runs, blocks, peak_memory_bytes or None) of one row."""
    import torch
    from torch.utils import benchmark

    cuda = device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    grad: AbstractContextManager[Any] = nullcontext() if backward else torch.inference_mode()
    with grad, _backend_context(backend):
        fn = _callable(spec, device, dtype, backward)
        fn()  # NOTE: warm-up: lazy initialisation, allocator growth and kernel selection stay out.
        timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads(),
                                label="attncli bench", sub_label=spec.impl, description=backend or "default")
        m = timer.blocked_autorange(min_run_time=min_run_time)
    peak = int(torch.cuda.max_memory_allocated()) if cuda else None
    blocks = len(m.times)
    iqr = float(m.iqr) if blocks >= MIN_BLOCKS_FOR_IQR else None
    return float(m.median), iqr, blocks * int(m.number_per_run), blocks, peak


def run_bench(spec: AttnSpec, *, device: str = "cpu", dtype: str = "float32", backward: bool = False,
              min_run_time: float = 0.2, gpu: str | None = None, only: bool = False, threads: int | None = None,
              on_row: Callable[[str], None] | None = None) -> BenchReport:
    """Time every implementation that can express ``spec`` (see the module docstring).

    ``threads`` sets torch's intra-op threads for the run (restored after); None keeps them.
    Raises :class:`SpecError` (nothing allocated yet) for a bad device, dtype, GPU name, a
    non-positive ``min_run_time`` or ``threads``, or a size the memory model says will not fit.
    """
    if not 0 < min_run_time <= MAX_MIN_RUN_TIME:
        # NOTE: an upper bound too: --min-run-time 1e300 timed for ever (found by the subprocess fuzz).
        raise SpecError("--min-run-time",
                        f"must be a number of seconds in (0, {MAX_MIN_RUN_TIME:g}], got {min_run_time}")
    cpus = os.cpu_count() or 1
    if threads is not None and not 1 <= threads <= cpus:
        raise SpecError("--threads", f"must be between 1 and the {cpus} CPUs of this machine, got {threads}")
    _torch_dtype(dtype)
    check_device(device)
    available, source = available_memory(device)
    check_fits(spec, dtype, device, available, source)
    todo = plan(spec, device, only)
    if gpu is not None:
        roofline: Roofline | None = for_spec(spec, gpu, dtype)
    else:
        found = match_device(device_name(device)) if device == "cuda" else None
        roofline = None if found is None else for_spec(spec, found, dtype)
    factor = BACKWARD_FACTOR if backward else 1
    effective, dense = layer_macs(spec)
    flops, dense_flops = 2 * sum(effective.values()) * factor, 2 * sum(dense.values()) * factor
    roof_time = None if roofline is None else roofline.fused.time_s * factor
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        rows, skipped = _measure_all(todo, device, dtype, backward, min_run_time, on_row,
                                     predicted_memory(spec, dtype), flops, dense_flops, roof_time)
        env = environment(device, dtype)
    finally:
        torch.set_num_threads(before)
    return BenchReport(spec, device, dtype, backward, min_run_time, env, tuple(rows), tuple(skipped), roofline)


def _measure_all(todo: Plan, device: str, dtype: str, backward: bool, min_run_time: float,
                 on_row: Callable[[str], None] | None, predicted: int, flops: int, dense_flops: int,
                 roof_time: float | None) -> tuple[list[Row], list[Skipped]]:
    rows: list[Row] = []
    skipped = list(todo.skipped)
    for s, backend in todo.specs:
        if on_row is not None:
            on_row(s.impl if backend is None else f"{s.impl} [{backend}]")
        try:
            median, iqr, runs, blocks, peak = measure(s, backend, device, dtype, backward, min_run_time)
        except RuntimeError as exc:
            # NOTE: an SDPA backend refuses inputs it does not support (dtype, head size, mask)
            # with a RuntimeError; that row is skipped, with torch's first line as the reason.
            if backend is None:
                raise
            reason = (str(exc).strip().splitlines() or ["refused"])[0]
            skipped.append(Skipped(s.impl, reason, backend))
            continue
        rows.append(Row(s.impl, backend, median, iqr, flops, dense_flops, runs, blocks, predicted, peak, roof_time))
    return rows, skipped


def with_max_time(report: BenchReport, max_time: float) -> tuple[BenchReport, str | None]:
    """Add the ``--max-time`` check on the configured impl (default backend); (report, failure or None)."""
    from dataclasses import replace

    if not max_time > 0:
        raise SpecError("--max-time", f"must be a positive number of seconds, got {max_time}")
    impl = report.spec.impl
    row = report.row(impl)
    if row is None:
        raise SpecError("--max-time", f"--impl {impl} was not measured, so there is nothing to check")
    passed = row.median_s <= max_time
    check = {"name": "max-time", "impl": impl, "limit_s": max_time, "median_s": row.median_s, "passed": passed}
    message = None if passed else (f"--max-time: {impl} took {row.median_s:.6g} s per call (median), "
                                   f"over the budget of {max_time:g} s")
    return replace(report, checks=(*report.checks, check)), message

