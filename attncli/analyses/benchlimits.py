"""The limits a bench run is held to: the memory it will need, the time it may take.

- Memory, checked before anything is allocated: the prediction is the memory model
  (:func:`attncli.analyses.flops.memory`: activations) plus the weights and the inputs at the dtype, for
  the forward pass (:func:`predicted_memory`). :func:`check_fits` refuses (:class:`SpecError`,
  naming the flag that drives the size) when :data:`HEADROOM` x the prediction exceeds what is
  available; :func:`attncli.analyses.bench.available_memory` reads that from the device.
- Time: ``--min-run-time`` is at most :data:`MAX_MIN_RUN_TIME` seconds per row, and
  :func:`with_max_time` adds the ``--max-time`` check on the configured implementation's
  median to a finished :class:`~attncli.analyses.benchreport.BenchReport`.

``attncli flops --module`` uses :func:`check_fits` too, before it runs a module on real CPU
tensors. Importing this module does not import torch.
"""

from __future__ import annotations

from attncli.analyses.benchreport import BenchReport, row_name
from attncli.choices import DTYPE_BYTES
from attncli.spec import AttnSpec, SpecError


# ---------------------------------------------------------------------------- memory
def weight_bytes(spec: AttnSpec, dtype: str) -> int:
    from attncli.registry import kind_of

    return kind_of(spec).params(spec)["total"] * DTYPE_BYTES[dtype]


def input_bytes(spec: AttnSpec, dtype: str) -> int:
    """Query (and key, value when they are separate tensors) at ``dtype``."""
    n = DTYPE_BYTES[dtype]
    b, e = spec.batch, spec.dim
    extra = 0 if spec.is_self_attention else b * spec.s * (spec.k_dim + spec.v_dim)
    return (b * spec.seq * e + extra) * n


def predicted_memory(spec: AttnSpec, dtype: str) -> int:
    """Bytes one forward pass needs by the memory model (its kind's): activations + weights + inputs."""
    from attncli.registry import kind_of

    return kind_of(spec).memory(spec, dtype).activations_total + weight_bytes(spec, dtype) + input_bytes(spec, dtype)


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
    from attncli.registry import kind_of

    m = kind_of(spec).memory(spec, dtype)
    total = predicted_memory(spec, dtype)
    if spec.cache > spec.seq and 2 * (m.kv_cache + 2 * m.attention_matrix) >= total:
        return "--cache"
    if 2 * m.attention_matrix * 2 >= total:
        return "--kv-seq" if spec.kv_seq is not None and spec.s > spec.seq else "--seq"
    if 2 * weight_bytes(spec, dtype) >= total:
        return "--dim"
    return "--batch"


def check_fits(spec: AttnSpec, dtype: str, device: str, available: int | None, source: str) -> None:
    """Refuse (SpecError) a size the memory model says will not fit in ``available`` bytes."""
    need = predicted_memory(spec, dtype)
    if available is not None and HEADROOM * need > available:
        raise SpecError(_culprit(spec, dtype),
                        f"one forward pass needs about {gib(need)} on {device} by the memory model "
                        f"(activations + weights + inputs at {dtype}), {HEADROOM}x that with temporaries, "
                        f"and only {gib(available)} is available ({source}); nothing was run")


# ---------------------------------------------------------------------------- time
MAX_MIN_RUN_TIME = 60.0
"""The longest --min-run-time accepted, in seconds per row."""


def with_max_time(report: BenchReport, max_time: float) -> tuple[BenchReport, str | None]:
    """Add the ``--max-time`` check on the configured impl (default backend); (report, failure or None)."""
    from dataclasses import replace

    if not max_time > 0:
        raise SpecError("--max-time", f"must be a positive number of seconds, got {max_time}")
    impl = row_name(report.spec)
    row = report.row(impl)
    if row is None:
        raise SpecError("--max-time", f"--impl {impl} was not measured, so there is nothing to check")
    passed = row.median_s <= max_time
    check = {"name": "max-time", "impl": impl, "limit_s": max_time, "median_s": row.median_s, "passed": passed}
    message = None if passed else (f"--max-time: {impl} took {row.median_s:.6g} s per call (median), "
                                   f"over the budget of {max_time:g} s")
    return replace(report, checks=(*report.checks, check)), message
