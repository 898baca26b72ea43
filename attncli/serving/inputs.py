"""The engine's inputs as vLLM names them, checked: one line naming the flag on bad input."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from attncli.kinds.cache import KV_CACHE_DTYPE_BYTES, MAMBA_SSM_DTYPE_BYTES
from attncli.spec import SpecError

OVERHEAD_ESTIMATE = 2 * 2**30
"""With ``--gpu``: what vLLM's profiling run finds beside the weights (the activations' peak, CUDA
graphs, NCCL and other non-torch memory), an estimate (2 GiB); vLLM measures it, and its log's
"Available KV cache memory" given as ``--kv-cache-memory`` is exact."""

ENGINES = ("vllm",)

_BYTES = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*(?P<unit>[kKmMgGtT]?)(?P<tail>i?[bB]?)\s*$")
_BINARY = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_bytes(text: str, flag: str) -> int:
    """``40GiB``/``40Gi``/``40G`` (2**30, as vLLM's ``human_readable_int`` reads an upper-case ``G``),
    ``40GB``/``40g`` (10**9), ``4.2e10`` or ``42949672960`` -> bytes, rounded down (2.89GiB is
    3,103,113,871); at least one byte."""
    m = _BYTES.match(text)
    if not m:
        raise SpecError(flag, f"expected a size like 40GiB, 40G, 42.9GB or 4.29e10; got {text[:40]!r}")
    unit, tail = m.group("unit"), m.group("tail")
    if tail.startswith("i") or (unit.isupper() and tail == ""):
        scale = _BINARY.get(unit.lower(), 1)
    else:
        scale = _DECIMAL.get(unit.lower(), 1)
    if tail.startswith("i") and not unit:
        raise SpecError(flag, f"{text[:40]!r}: 'i' needs a unit (KiB, MiB, GiB, TiB)")
    try:
        value = Decimal(m.group("num")) * scale
    except InvalidOperation:
        raise SpecError(flag, f"{text[:40]!r} is not a size") from None
    value = value.to_integral_value(rounding="ROUND_FLOOR")  # NOTE: as vLLM's int(float(number) * mult)
    if value <= 0:
        raise SpecError(flag, f"must be more than 0 bytes, got {text[:40]!r}")
    if value > 2**62:
        raise SpecError(flag, f"{text[:40]!r} is larger than the largest size accepted (2**62 bytes)")
    return int(value)


@dataclass(frozen=True)
class Budget:
    """The KV memory of one device and where it came from."""

    kv_cache_memory: int
    source: str


def gpu_budget(memory_bytes: int, label: str, utilization: float, weights: int | None, tp: int) -> Budget:
    """vLLM's ``--gpu-memory-utilization`` share of the GPU, less the weights (one device's share) and
    :data:`OVERHEAD_ESTIMATE`."""
    if weights is None:
        raise SpecError("--weights-memory", "with --gpu and --engine, give the weights' bytes (e.g. 16e9), or put "
                                            "model.safetensors.index.json beside the config; or give "
                                            "--kv-cache-memory instead")
    left = int(memory_bytes * utilization) - weights // tp - OVERHEAD_ESTIMATE
    if left <= 0:
        raise SpecError("--gpu", f"{label} x {utilization} leaves no memory for the KV cache beside "
                                 f"{weights // tp:,} B of weights and the {OVERHEAD_ESTIMATE / 2**30:.0f} GiB estimate "
                                 "of activations and overheads")
    return Budget(left, f"{label} x {utilization} - weights {weights // tp:,} B - "
                        f"{OVERHEAD_ESTIMATE / 2**30:.0f} GiB of activations and overheads (an estimate)")


def check_choice(value: str, choices: dict[str, int | None], flag: str) -> str:
    if value not in choices:
        raise SpecError(flag, f"{value!r} is not modelled; choose from {', '.join(choices)}")
    return value


def check_kv_cache_dtype(value: str) -> str:
    return check_choice(value, KV_CACHE_DTYPE_BYTES, "--kv-cache-dtype")


def check_mamba_dtype(value: str) -> str:
    return check_choice(value, MAMBA_SSM_DTYPE_BYTES, "--mamba-ssm-cache-dtype")


def check_utilization(value: float) -> float:
    if not 0 < value <= 1:
        raise SpecError("--gpu-memory-utilization", f"must be in (0, 1], got {value}")
    return value


def check_positive(value: int, flag: str) -> int:
    if value < 1:
        raise SpecError(flag, f"must be at least 1, got {value}")
    return value
