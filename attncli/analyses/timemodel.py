"""The time model beside the memory model: how long a command that runs real tensors (``bench``,
``permute-test``) or builds one module per head at every point (``sweep --impl per-head``) will
take, known before anything runs.

The estimate, in seconds::

    FLOPs of one call / assumed throughput x calls  +  modules built x PER_HEAD_SECONDS x heads

- **FLOPs** of one forward call: 2 x the dense MACs of the layer's closed form
  (:func:`attncli.analyses.roofline.layer_macs`, the counts ``attncli flops`` checks fvcore
  against). Dense, not effective: ``torch``, ``split`` and ``per-head`` compute every
  (query, key) pair and mask afterwards, so the dense count is the work done. With backward,
  3 x forward (:data:`attncli.layer.formulas.TRAINING_FACTOR`).
- **Throughput**: constants (:data:`CPU_RATES`, :data:`CPU_HALF_NATIVE_RATE`,
  :data:`CUDA_RATE`), deliberately conservative, not a measured probe, so that one request gets
  the same answer every time. They come from timing an attention forward here (two AVX-512
  cores under a load of 4): float32 8 GFLOP/s, bfloat16 18 (oneDNN has native bfloat16 on
  that CPU), float16 0.7 to 0.9 (no native float16 GEMM: every product goes through a slow
  conversion path), and from the 314 s a float16 ``--seq 8704 --dim 256`` row took elsewhere
  (3 calls x 164 GFLOP in 314 s: 1.6 GFLOP/s). Each constant is about half the rate measured
  (a third for float16). A CPU half precision is "native" when oneDNN says so
  (``torch.ops.mkldnn._is_mkldnn_bf16_supported`` / ``_is_mkldnn_fp16_supported``).
- **Calls**: bench times a row as one warm-up call, then
  ``torch.utils.benchmark.Timer.blocked_autorange`` (its block-size estimate runs 1, 10, 100 ...
  calls until a block takes ``min_run_time / 1000``, then blocks until ``min_run_time``): at
  at least 3 calls per row when a call outlasts ``min_run_time``, about ``min_run_time`` when calls
  are short (the estimate's blocks stay near ``min_run_time / 100``): 3 calls + ``min_run_time``
  bounds both. permute-test runs
  the layer twice per encoding (x and P x), twice more for RoPE's stand-in layer and twice for
  a mask's check.
- **Builds**: ``--impl per-head`` builds one module per head (:data:`attncli.spec.PER_HEAD_SECONDS`
  each); a sweep builds the layer once per point, so its builds are summed over the points.

A request over the limit (:data:`DEFAULT_LIMIT_S`, or the environment variable
:data:`LIMIT_ENV` in seconds, 0 for none) is refused with :class:`SpecError` naming the flag that
drives the estimate; one over :data:`NOTICE_S` but allowed gets a notice line on stderr from the
command. Importing this module does not import torch.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from attncli.layer.formulas import TRAINING_FACTOR
from attncli.spec import PER_HEAD_SECONDS, AttnSpec, SpecError

DEFAULT_LIMIT_S = 120.0
"""The longest estimate run without being asked for, in seconds."""
LIMIT_ENV = "ATTNCLI_TIME_LIMIT"
"""Environment variable: the limit in seconds instead of :data:`DEFAULT_LIMIT_S` (0: no limit)."""
NOTICE_S = 10.0
"""An allowed estimate longer than this is announced on stderr."""

CPU_RATES: Mapping[str, float] = {"float64": 2e9, "float32": 4e9, "bfloat16": 0.5e9, "float16": 0.5e9}
"""Assumed CPU throughput (FLOP/s) per dtype; the half precisions as when the CPU has no native
path for them (see the module docstring for where the numbers come from)."""
CPU_HALF_NATIVE_RATE = 2e9
"""Assumed CPU throughput (FLOP/s) of bfloat16 or float16 where oneDNN runs it natively."""
CUDA_RATE = 1e12
"""Assumed CUDA throughput (FLOP/s) of any dtype: below any GPU's peak, so an upper bound on time."""

BENCH_CALLS_PER_ROW = 3
"""Calls a bench row makes at least: the warm-up, the block-size estimate's first block, one block."""
BENCH_MIN_RUN_TIMES_PER_ROW = 1
"""A row of short calls times blocks until ``min_run_time`` has passed."""
SEQUENCE_STAGES = frozenset({"qk", "av", "indexer_scores"})
"""Closed-form stages whose MACs grow with L x S (standard, gated, MLA, the sparse indexer), and
Gated DeltaNet's ``delta_*`` recurrence (L x DK x DV): lowering --seq is what shortens them; the
other stages are projections, L x E x width."""


@dataclass(frozen=True)
class Estimate:
    """How long a request will take by the time model, and the flag that drives it."""

    seconds: float
    flops: float
    """FLOPs of all the calls together."""
    rate: float
    """Assumed FLOP/s."""
    builds: int
    """Modules built (one per head for --impl per-head, summed over the points of a sweep)."""
    culprit: str
    """The flag that drives the estimate (the size to lower)."""
    what: str
    """The request in words, for the messages: '5 rows x 3 calls at float32 on cpu'."""
    dtype: str = "float32"


def half_is_native(dtype: str) -> bool:
    """Whether this CPU runs ``dtype`` (bfloat16 or float16) natively, by oneDNN's own test."""
    return _half_is_native(dtype)


@functools.cache
def _half_is_native(dtype: str) -> bool:
    import torch

    test = {"bfloat16": "_is_mkldnn_bf16_supported", "float16": "_is_mkldnn_fp16_supported"}.get(dtype)
    try:
        return test is not None and bool(getattr(torch.ops.mkldnn, test)())
    except (AttributeError, RuntimeError):
        return False


def rate(device: str, dtype: str, native_half: bool | None = None) -> float:
    """Assumed FLOP/s for ``dtype`` on ``device``; ``native_half`` None asks the CPU (imports torch)."""
    if device == "cuda":
        return CUDA_RATE
    if dtype in ("bfloat16", "float16"):
        native = half_is_native(dtype) if native_half is None else native_half
        return CPU_HALF_NATIVE_RATE if native else CPU_RATES[dtype]
    return CPU_RATES[dtype]


def forward_flops(spec: AttnSpec) -> int:
    """FLOPs of one forward call: 2 x the dense MACs of the kind's closed form."""
    from attncli.analyses.roofline import layer_macs

    return 2 * sum(layer_macs(spec)[1].values())


def size_flag(spec: AttnSpec) -> str:
    """The flag that drives a forward call's FLOPs: the keys' length when the L x S stages
    dominate (the cache or --kv-seq when they make S), else the width."""
    from attncli.analyses.roofline import layer_macs

    dense = layer_macs(spec)[1]
    attention = sum(v for k, v in dense.items() if k in SEQUENCE_STAGES or k.startswith("delta_"))
    if 2 * attention < sum(dense.values()):
        return "--dim"
    if spec.cache > spec.seq:
        return "--cache"
    return "--kv-seq" if spec.kv_seq is not None and spec.s > spec.seq else "--seq"


def per_head_builds(spec: AttnSpec) -> int:
    """Modules built for one layer: one per head under --impl per-head, else none counted."""
    return spec.heads if spec.impl == "per-head" else 0


def _combine(parts: Iterable[tuple[AttnSpec, float]], rate_: float, builds: int, extra: tuple[float, str],
             what: str, dtype: str) -> Estimate:
    """(spec, calls) pairs -> an Estimate; the culprit is the flag behind the largest part
    (``extra`` is (seconds, the flag behind them) spent besides the calls and the builds)."""
    flops, worst, worst_s = 0.0, "--seq", -1.0
    for spec, calls in parts:
        f = forward_flops(spec) * calls
        flops += f
        if f / rate_ > worst_s:
            worst, worst_s = size_flag(spec), f / rate_
    build_s, (extra_s, extra_flag) = builds * PER_HEAD_SECONDS, extra
    culprit = max((worst_s, worst), (build_s, "--heads"), (extra_s, extra_flag))[1]
    return Estimate(flops / rate_ + build_s + extra_s, flops, rate_, builds, culprit, what, dtype)


def bench_estimate(specs: Iterable[AttnSpec], device: str, dtype: str, backward: bool, min_run_time: float,
                   native_half: bool | None = None) -> Estimate:
    """A bench run's estimate: every row of the plan (``specs``, one per row) at least
    :data:`BENCH_CALLS_PER_ROW` calls (3 x forward with backward), plus about
    :data:`BENCH_MIN_RUN_TIMES_PER_ROW` x ``min_run_time`` per row (``--min-run-time`` is the flag
    to lower when that dominates), plus per-head builds."""
    rows = list(specs)
    calls = BENCH_CALLS_PER_ROW * (TRAINING_FACTOR if backward else 1)
    r = rate(device, dtype, native_half)
    builds = sum(per_head_builds(s) for s in rows)
    what = (f"{len(rows)} row{'s' if len(rows) != 1 else ''} x {BENCH_CALLS_PER_ROW} calls"
            f"{' (forward + backward)' if backward else ''} at {dtype} on {device}")
    extra = (BENCH_MIN_RUN_TIMES_PER_ROW * min_run_time * len(rows), "--min-run-time")
    return _combine(((s, calls) for s in rows), r, builds, extra, what, dtype)


def permute_estimate(spec: AttnSpec, dtype: str, encodings: Iterable[str]) -> Estimate:
    """A permutation test's estimate: two calls per encoding (x and P x), two for RoPE's
    stand-in layer, two for a mask's check; the layer built once (twice with RoPE's stand-in)."""
    chosen = list(encodings)
    rope = "rope" in chosen
    masked = spec.mask != "none" or spec.window is not None
    calls = 2 * len(chosen) + (2 if rope else 0) + (2 if masked else 0)
    builds = per_head_builds(spec) * (2 if rope else 1)
    return _combine(((spec, calls),), rate("cpu", dtype), builds, (0.0, "--seq"),
                    f"{calls} forward calls at {dtype} on cpu", dtype)


def sweep_estimate(specs: Iterable[AttnSpec], flag: str) -> Estimate:
    """A sweep's estimate: the meta-device counts cost next to nothing, but ``--impl per-head``
    builds one module per head at every point (summed over the points)."""
    points = list(specs)
    builds = sum(per_head_builds(s) for s in points)
    return Estimate(builds * PER_HEAD_SECONDS, 0.0, math.inf, builds, "--heads",
                    f"--impl per-head at each of the {len(points)} values of {flag}")


def limit(environ: Mapping[str, str] | None = None) -> float | None:
    """The limit in seconds (None: no limit) from :data:`LIMIT_ENV`, else :data:`DEFAULT_LIMIT_S`."""
    env = os.environ if environ is None else environ
    text = env.get(LIMIT_ENV, "").strip()
    if not text:
        return DEFAULT_LIMIT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise SpecError(LIMIT_ENV, f"must be a number of seconds (0 for no limit), got {text[:40]!r}")
    return None if value == 0 else value


def check(estimate: Estimate, limit_s: float | None = None, environ: Mapping[str, str] | None = None) -> Estimate:
    """Refuse (SpecError naming ``estimate.culprit``) an estimate over the limit; return it otherwise."""
    cap = limit(environ) if limit_s is None else limit_s
    if cap is None or estimate.seconds <= cap:
        return estimate
    raise SpecError(estimate.culprit, f"would take about {_duration(estimate.seconds)} by the time model "
                                      f"({describe(estimate)}), over the limit of {cap:g} s; nothing was run "
                                      f"(lower {estimate.culprit}{_hint(estimate)}, or set {LIMIT_ENV}=SECONDS, "
                                      "0 for no limit)")


def describe(estimate: Estimate) -> str:
    parts = [estimate.what]
    if estimate.flops:
        parts.append(f"{estimate.flops:.3g} FLOPs at an assumed {estimate.rate / 1e9:g} GFLOP/s")
    if estimate.builds:
        parts.append(f"{estimate.builds:,} per-head modules at {PER_HEAD_SECONDS:g} s each")
    return "; ".join(parts)


def _hint(estimate: Estimate) -> str:
    if estimate.flops and estimate.dtype in ("bfloat16", "float16") and estimate.rate < CPU_RATES["float32"]:
        return (f", or use --dtype float32: {CPU_RATES['float32'] / 1e9:g} GFLOP/s by the same model "
                "(a CPU without a native half-precision path converts every product)")
    return ""


def _duration(seconds: float) -> str:
    return f"{seconds:,.0f} s" if seconds < 5400 else f"{seconds / 3600:,.1f} h"


def notice(estimate: Estimate) -> str | None:
    """The stderr line for an allowed but long estimate (over :data:`NOTICE_S`), else None."""
    if estimate.seconds <= NOTICE_S:
        return None
    return f"attncli: note: this will take about {_duration(estimate.seconds)} by the time model ({describe(estimate)})"


def announce(estimate: Estimate) -> None:
    """Print :func:`notice` on stderr, if any."""
    line = notice(estimate)
    if line is not None:
        print(line, file=sys.stderr, flush=True)
