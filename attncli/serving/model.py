"""A whole model's caches as vLLM builds them, from ``attncli model``'s groups of layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.choices import DTYPE_BYTES
from attncli.kinds.cache import KV_CACHE_DTYPE_BYTES, MAMBA_SSM_DTYPE_BYTES, CacheSpec
from attncli.registry import kind_of
from attncli.serving.vllm import EnginePlan, Settings, plan
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.analyses.model import ModelReport


def model_caches(report: ModelReport, kv_cache_dtype: str = "auto", mamba_ssm_cache_dtype: str = "auto",
                 tp: int = 1) -> tuple[list[CacheSpec], list[int]]:
    """Every cache of the model on one of ``tp`` devices, in layer order, and the layer each belongs to."""
    if kv_cache_dtype not in KV_CACHE_DTYPE_BYTES:
        raise SpecError("--kv-cache-dtype", f"{kv_cache_dtype!r} is not modelled; choose from "
                                            f"{', '.join(KV_CACHE_DTYPE_BYTES)}")
    if mamba_ssm_cache_dtype not in MAMBA_SSM_DTYPE_BYTES:
        raise SpecError("--mamba-ssm-cache-dtype", f"{mamba_ssm_cache_dtype!r} is not modelled; choose from "
                                                   f"{', '.join(MAMBA_SSM_DTYPE_BYTES)}")
    model_bytes = DTYPE_BYTES[report.dtype]
    ssm = MAMBA_SSM_DTYPE_BYTES[mamba_ssm_cache_dtype]
    per_layer: dict[int, tuple[CacheSpec, ...]] = {}
    for g in report.groups:
        caches = kind_of(g.spec).vllm_cache_spec(g.spec, kv_cache_dtype, model_bytes, ssm, tp)
        for i in g.layers:
            per_layer[i] = caches
    specs, index = [], []
    for i in sorted(per_layer):
        for c in per_layer[i]:
            specs.append(c)
            index.append(i)
    return specs, index


def engine_plan(report: ModelReport, settings: Settings, kv_cache_dtype: str = "auto",
                mamba_ssm_cache_dtype: str = "auto", lengths: tuple[int, ...] = ()) -> EnginePlan:
    """vLLM's KV cache for ``report``'s model on one of its ``--tp`` devices."""
    specs, index = model_caches(report, kv_cache_dtype, mamba_ssm_cache_dtype, report.tp)
    return plan(specs, settings, index, lengths)
