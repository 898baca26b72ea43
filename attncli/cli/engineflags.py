"""``attncli model --engine vllm``: the flags vLLM names, checked and turned into its settings."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from attncli.kinds.cache import KV_CACHE_DTYPE_BYTES, MAMBA_SSM_DTYPE_BYTES
from attncli.serving.inputs import ENGINES
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.analyses.model import ModelReport
    from attncli.serving.vllm import EnginePlan


def _choices(name: str, values: tuple[str, ...] | list[str]) -> Any:
    """A ``str`` Enum typer offers as choices (so the fuzzers draw valid values too)."""
    return Enum(name, {v: v for v in values}, type=str)


Engine = _choices("Engine", ENGINES)
KvCacheDtype = _choices("KvCacheDtype", list(KV_CACHE_DTYPE_BYTES))
MambaSsmDtype = _choices("MambaSsmDtype", list(MAMBA_SSM_DTYPE_BYTES))


def value(choice: Any) -> str | None:
    """An Enum choice's text (None stays None)."""
    return None if choice is None else str(choice.value)


@dataclass(frozen=True)
class EngineFlags:
    """The engine's flags as typed (None: not given)."""

    engine: str | None = None
    kv_cache_memory: str | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: str | None = None
    max_num_batched_tokens: int | None = None
    kv_cache_dtype: str | None = None
    no_prefix_caching: bool = False
    mamba_ssm_cache_dtype: str | None = None

    def given(self) -> list[str]:
        flags = {"--kv-cache-memory": self.kv_cache_memory, "--gpu-memory-utilization": self.gpu_memory_utilization,
                 "--max-model-len": self.max_model_len, "--max-num-batched-tokens": self.max_num_batched_tokens,
                 "--kv-cache-dtype": self.kv_cache_dtype, "--mamba-ssm-cache-dtype": self.mamba_ssm_cache_dtype,
                 "--no-prefix-caching": self.no_prefix_caching or None}
        return [flag for flag, value in flags.items() if value is not None]


def check(flags: EngineFlags, block_size: int | None) -> list[int] | None:
    """Refuse what cannot be used before counting; the values of ``--max-model-len`` (None: default)."""
    from attncli.serving import inputs

    if flags.engine is None:
        given = flags.given()
        if given:
            raise SpecError(given[0], "sizes vLLM's KV cache: add --engine vllm")
        return None
    if flags.engine not in inputs.ENGINES:
        raise SpecError("--engine", f"{flags.engine!r} is not modelled; choose from {', '.join(inputs.ENGINES)}")
    if flags.kv_cache_memory is not None:
        inputs.parse_bytes(flags.kv_cache_memory, "--kv-cache-memory")
    if flags.gpu_memory_utilization is not None:
        inputs.check_utilization(flags.gpu_memory_utilization)
    if flags.max_num_batched_tokens is not None:
        inputs.check_positive(flags.max_num_batched_tokens, "--max-num-batched-tokens")
    if flags.kv_cache_dtype is not None:
        inputs.check_kv_cache_dtype(flags.kv_cache_dtype)
    if flags.mamba_ssm_cache_dtype is not None:
        inputs.check_mamba_dtype(flags.mamba_ssm_cache_dtype)
    if block_size is not None and block_size % 16:
        raise SpecError("--block-size", f"{block_size} is not a multiple of 16, the attention kernel's block "
                                        "(vLLM's supports_block_size)")
    if flags.max_model_len is None:
        return None
    from attncli.cli.model import _values

    values = _values(flags.max_model_len, "--max-model-len", 1)
    if values[0] < 1:
        raise SpecError("--max-model-len", f"must be at least 1 token, got {values[0]}")
    return values


def engine_plan(flags: EngineFlags, lengths: list[int] | None, report: ModelReport, max_positions: int | None,
                block_size: int | None, gpu_memory: tuple[int, str] | None,
                ssm_default: tuple[str, str] | None = None) -> EnginePlan:
    """vLLM's KV cache for ``report``'s model: ``--max-model-len`` (default: the config's
    max_position_embeddings, else the step's context S) and the memory (``--kv-cache-memory``, or
    the GPU's share less the weights and an estimate of the overheads)."""
    from attncli.serving import inputs, vllm
    from attncli.serving.model import engine_plan as plan

    if flags.kv_cache_memory is not None:
        memory = inputs.parse_bytes(flags.kv_cache_memory, "--kv-cache-memory")
        source = "--kv-cache-memory"
    elif gpu_memory is not None:
        utilization = flags.gpu_memory_utilization or vllm.DEFAULT_GPU_MEMORY_UTILIZATION
        budget = inputs.gpu_budget(gpu_memory[0], gpu_memory[1], utilization, report.weights_bytes, report.tp)
        memory, source = budget.kv_cache_memory, budget.source
    else:
        raise SpecError("--engine", "give vLLM's KV memory: --kv-cache-memory BYTES (its log's \"Available KV "
                                    "cache memory\"), or --gpu NAME with the weights")
    if flags.gpu_memory_utilization is not None and flags.kv_cache_memory is not None:
        raise SpecError("--gpu-memory-utilization", "applies to --gpu; --kv-cache-memory gives the memory itself")
    values = lengths or [max_positions or report.spec.s]
    length_source = ("--max-model-len" if lengths else "config.json max_position_embeddings" if max_positions
                     else "the context S (--seq + --cache; config.json has no max_position_embeddings)")
    settings = vllm.Settings(memory, values[0], block_size,
                             flags.max_num_batched_tokens or vllm.DEFAULT_MAX_NUM_BATCHED_TOKENS,
                             not flags.no_prefix_caching)
    # NOTE: ssm_default: the config's own state dtype, which vLLM takes when the flag is auto (Qwen3.5)
    ssm = flags.mamba_ssm_cache_dtype or (ssm_default[0] if ssm_default else "auto")
    result = plan(report, settings, flags.kv_cache_dtype or "auto", ssm, tuple(values) if len(values) > 1 else ())
    from dataclasses import replace

    past = ([f"max_model_len past the config's max_position_embeddings ({max_positions:,}): vLLM refuses it "
             "unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1"] if max_positions and values[-1] > max_positions else [])
    said = ([f"mamba_ssm_cache_dtype {ssm}: {ssm_default[1]}"] if ssm_default and not flags.mamba_ssm_cache_dtype
            else [])
    return replace(result, notes=(f"KV memory: {source}; max_model_len {values[0]:,}: {length_source}",
                                  *result.notes, *said, *past))
