"""Measured forward (or forward + backward) time of every implementation, on the device at hand.

What is measured, and how:

- An MLA layer (:mod:`attncli.kinds.mla.kind`) is timed in both forms, naive and absorbed, each row
  with its own counts; a standard one as follows.
- Every implementation of :data:`attncli.spec.IMPLS` that can express the spec is built with
  :func:`attncli.layer.modules.build` (eval mode, weights of a seeded ``nn.MultiheadAttention``), fed
  :func:`attncli.layer.modules.make_inputs` and run with :func:`attncli.layer.modules.run`. One that cannot
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
- ``roofline_fraction`` = the roofline time of the fused kernel (:mod:`attncli.analyses.roofline`, the
  fastest the layer could run on that GPU; 3x with backward) / ``median_s``: 1.0 would be peak.
- Memory: the prediction is the memory model (:func:`attncli.analyses.flops.memory`: activations) plus
  the weights and the inputs at the dtype, for the forward pass; measured peak on CUDA is
  ``torch.cuda.max_memory_allocated`` (CPU reports none). A size the prediction says will not
  fit in :func:`available_memory` is refused (:class:`SpecError`) before anything is allocated.

The limits a run is held to (the memory prediction and its refusal, ``--min-run-time``'s
bound, the ``--max-time`` check) are in :mod:`attncli.analyses.benchlimits`, the time model that
refuses a run too long to wait for in :mod:`attncli.analyses.timemodel`; the rows, the report and
its JSON in :mod:`attncli.analyses.benchreport`. This module re-exports their names, so
``from attncli.analyses.bench import BenchReport, check_fits, with_max_time`` keeps working.

Importing this module does not import torch; :func:`run_bench` does.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attncli.analyses import timemodel
from attncli.analyses.benchlimits import (
    HEADROOM,
    MAX_MIN_RUN_TIME,
    check_fits,
    gib,
    input_bytes,
    predicted_memory,
    weight_bytes,
    with_max_time,
)
from attncli.analyses.benchreport import CONVENTION, MIN_BLOCKS_FOR_IQR, SCHEMA, BenchReport, Row, Skipped, row_name
from attncli.analyses.gpus import match_device
from attncli.analyses.roofline import Roofline, for_spec, layer_macs
from attncli.choices import BENCH_DTYPES
from attncli.layer.formulas import TRAINING_FACTOR
from attncli.registry import kind_of
from attncli.spec import IMPLS, AttnSpec, SpecError

if TYPE_CHECKING:
    import torch

    from attncli.analyses.timemodel import Estimate

__all__ = ["BACKENDS", "BACKWARD_FACTOR", "CONVENTION", "DEVICES", "DTYPES", "HEADROOM", "MAX_MIN_RUN_TIME",
           "MIN_BLOCKS_FOR_IQR", "SCHEMA", "BenchReport", "Plan", "Row", "Skipped", "available_memory",
           "check_device", "check_fits", "cpu_name", "device_name", "environment", "gib", "input_bytes", "measure",
           "plan", "predicted_memory", "run_bench", "weight_bytes", "with_max_time"]

DEVICES: tuple[str, ...] = ("cpu", "cuda")
DTYPES: tuple[str, ...] = BENCH_DTYPES

BACKENDS: dict[str, str] = {
    "flash": "FLASH_ATTENTION",
    "memory-efficient": "EFFICIENT_ATTENTION",
    "cudnn": "CUDNN_ATTENTION",
    "math": "MATH",
}
"""SDPA backends timed on CUDA: our name -> ``torch.nn.attention.SDPBackend`` member."""

BACKWARD_FACTOR = TRAINING_FACTOR
"""Forward + backward FLOPs with backward = 2 x forward (:data:`attncli.layer.formulas.TRAINING_FACTOR`)."""


# ---------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Plan:
    """What will be timed (spec per impl, backends) and what is skipped, before any allocation."""

    specs: tuple[tuple[AttnSpec, str | None], ...]
    skipped: tuple[Skipped, ...]


def plan(spec: AttnSpec, device: str, only: bool = False) -> Plan:
    """The rows to time: every impl that validates (or ``spec.impl`` alone), SDPA backends on CUDA;
    for a kind timed in each form (MLA), the form asked for and, without ``only``, the other form."""
    rows: list[tuple[AttnSpec, str | None]] = []
    skipped: list[Skipped] = []
    if kind_of(spec).BENCH_FORMS:
        forms = kind_of(spec).variant_specs(spec)
        return Plan(tuple((f, None) for f in (forms[:1] if only else forms)), ())
    if not spec.runs_on_impls:  # NOTE: the kind's own layer is its one implementation (no --impl to try)
        return Plan(((spec, None),), ())
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
    """Build the module and its call's arguments once (as its kind builds them); return the call to time."""
    import torch

    tdtype = _torch_dtype(dtype)
    module, args, kwargs = kind_of(spec).build_call(spec, device)
    module = module.to(tdtype)
    # NOTE: one tensor passed as query, key and value (self-attention) stays one tensor in the new dtype:
    # the fused implementation checks `key is query`.
    cast: dict[int, Any] = {}

    def to_dtype(t: Any) -> Any:
        if not (isinstance(t, torch.Tensor) and t.is_floating_point()):
            return t
        return cast.setdefault(id(t), t.to(tdtype))

    args = tuple(to_dtype(a) for a in args)
    kwargs = {k: to_dtype(v) for k, v in kwargs.items()}
    if not backward:
        return lambda: module(*args, **kwargs)
    leaves: list[torch.Tensor] = [p for p in module.parameters() if p.requires_grad]
    for t in {id(t): t for t in args if isinstance(t, torch.Tensor) and t.is_floating_point()}.values():
        t.requires_grad_(True)
        leaves.append(t)

    def step() -> Any:
        out = module(*args, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
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
              on_row: Callable[[str], None] | None = None,
              on_estimate: Callable[[Estimate], None] | None = None) -> BenchReport:
    """Time every implementation that can express ``spec`` (see the module docstring).

    ``threads`` sets torch's intra-op threads for the run (restored after); None keeps them.
    Raises :class:`SpecError` (nothing allocated yet) for a bad device, dtype, GPU name, a
    non-positive ``min_run_time`` or ``threads``, a size the memory model says will not fit, or
    a run the time model (:mod:`attncli.analyses.timemodel`) says will take longer than its limit;
    ``on_estimate`` is given the time model's estimate of an allowed run before it starts.
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
    estimate = timemodel.check(timemodel.bench_estimate((s for s, _ in todo.specs), device, dtype, backward,
                                                        min_run_time))
    if on_estimate is not None:
        on_estimate(estimate)
    if gpu is not None:
        roofline: Roofline | None = for_spec(spec, gpu, dtype)
    else:
        found = match_device(device_name(device)) if device == "cuda" else None
        roofline = None if found is None else for_spec(spec, found, dtype)
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        rows, skipped = _measure_all(todo, device, dtype, backward, min_run_time, on_row,
                                     None if roofline is None else roofline.device)
        env = environment(device, dtype)
    finally:
        torch.set_num_threads(before)
    return BenchReport(spec, device, dtype, backward, min_run_time, env, tuple(rows), tuple(skipped), roofline)


def _measure_all(todo: Plan, device: str, dtype: str, backward: bool, min_run_time: float,
                 on_row: Callable[[str], None] | None, gpu: str | None) -> tuple[list[Row], list[Skipped]]:
    rows: list[Row] = []
    skipped = list(todo.skipped)
    factor = BACKWARD_FACTOR if backward else 1
    for s, backend in todo.specs:
        # NOTE: counted per row: MLA's two forms do different work (the implementations of a standard layer do not).
        effective, dense = layer_macs(s)
        flops, dense_flops = 2 * sum(effective.values()) * factor, 2 * sum(dense.values()) * factor
        roof_time = None if gpu is None else for_spec(s, gpu, dtype).fused.time_s * factor
        predicted = predicted_memory(s, dtype)
        name = row_name(s)
        if on_row is not None:
            on_row(name if backend is None else f"{name} [{backend}]")
        try:
            median, iqr, runs, blocks, peak = measure(s, backend, device, dtype, backward, min_run_time)
        except RuntimeError as exc:
            # NOTE: an SDPA backend refuses inputs it does not support (dtype, head size, mask)
            # with a RuntimeError; that row is skipped, with torch's first line as the reason.
            if backend is None:
                raise
            reason = (str(exc).strip().splitlines() or ["refused"])[0]
            skipped.append(Skipped(name, reason, backend))
            continue
        rows.append(Row(name, backend, median, iqr, flops, dense_flops, runs, blocks, predicted, peak, roof_time))
    return rows, skipped

