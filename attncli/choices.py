"""Every choice attncli offers, in one place: implementations, masks, output formats, dtypes,
sweepable settings, stage names with their labels and closed forms.

The validators (:mod:`attncli.spec`), the counting core and the CLI's enums
(:mod:`attncli.cli.common`) all read these tables, so a new choice is added once. Nothing
here imports torch; dtypes are named by strings and mapped to torch dtypes where torch is used.
"""

from __future__ import annotations

IMPLS: tuple[str, ...] = ("torch", "split", "per-head", "fused", "sdpa")
"""The attention implementations ``--impl`` accepts (see :mod:`attncli.layer.modules`)."""

MODERN_IMPLS: tuple[str, ...] = ("split", "per-head", "fused", "sdpa")
"""Implementations that can run grouped-query heads, a free head size, a sliding window and a KV
cache (``nn.MultiheadAttention`` can run none of them)."""

SELF_ATTENTION_ONLY: frozenset[str] = frozenset({"fused"})
"""Implementations that project one input (``qkv = Linear(dim, 3*dim)``): no kdim, vdim, kv-seq."""

MASKS: tuple[str, ...] = ("none", "causal", "padding")
"""``--mask``: none, causal (L x S, hides later keys), padding (the last S/4 keys)."""

MLA_FORMS: tuple[str, ...] = ("auto", "naive", "absorbed")
"""``--mla-form`` of multi-head latent attention (see :mod:`attncli.kinds.mla.kind`)."""

FORMATS: tuple[str, ...] = ("table", "json", "markdown")
"""``--format`` of every command."""

DTYPE_BYTES: dict[str, int] = {"float32": 4, "tf32": 4, "bfloat16": 2, "float16": 2, "float8": 1}
"""``--dtype`` of flops, report and sweep (memory and roofline), with bytes per element. tf32 is a
matmul mode over float32 storage (4 bytes; its own peak in the roofline); float8 is 1 byte (the
OCP E4M3/E5M2 formats) for the KV cache and activations."""

BENCH_DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
"""``bench --dtype``: the dtypes the layer really runs in (tf32 is a matmul mode, float8 has no matmul here)."""

PERMUTE_DTYPES: tuple[str, ...] = ("float64", "float32")
"""``permute-test --dtype``: the layer really runs, so only dtypes CPU matmuls handle exactly enough."""

SWEEPABLE: tuple[str, ...] = ("dim", "heads", "batch", "seq", "kv_heads", "d_head", "window", "cache")
"""Settings ``attncli sweep`` takes a range of (spec field names, in the order the CLI parses them)."""

SETTING_FLAGS: dict[str, str] = {
    "dim": "--dim", "heads": "--heads", "batch": "--batch", "seq": "--seq", "kv_heads": "--kv-heads",
    "d_head": "--head-dim", "window": "--window", "cache": "--cache",
}
"""The command-line flag of every sweepable setting."""

STAGES: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "qk", "av", "out_proj")
"""The stages of attention, in the order they run."""

OTHER = "other"
"""Counted ops that are none of the stages (a user module's MLP, a norm, ...)."""

STAGE_LABELS: dict[str, str] = {
    "q_proj": "q proj (W_q)",
    "k_proj": "k proj (W_k)",
    "v_proj": "v proj (W_v)",
    "qk": "QK^T",
    "av": "weights x V",
    "out_proj": "W_O",
    OTHER: "other",
}
"""How the flops tables name each stage."""

SHORT_STAGE_LABELS: dict[str, str] = {
    "q_proj": "q proj", "k_proj": "k proj", "v_proj": "v proj", "qk": "QK^T",
    "av": "weights x V", "out_proj": "W_O", "total": "total", "params": "params",
    "effective_qk": "QK^T eff.", "effective_total": "total eff.",
}
"""Column heads of the sweep's exponent table and Markdown."""

STAGE_ABBREVIATIONS: dict[str, str] = {
    "q_proj": "q", "k_proj": "k", "v_proj": "v", "qk": "QK^T", "av": "AV", "out_proj": "W_O",
}
"""Column heads of the sweep's main table (one narrow column per stage; its caption says AV)."""

CLOSED_FORMS: dict[str, str] = {
    "q_proj": "B*L*E*H*d",
    "k_proj": "B*T*kdim*G*d",
    "v_proj": "B*T*vdim*G*d",
    "qk": "B*H*L*S'*d",
    "av": "B*H*L*S'*d",
    "out_proj": "B*L*H*d*E",
}
"""The dense closed form of every stage, in MACs (see :data:`CLOSED_FORM_TERMS`)."""

CLOSED_FORM_TERMS: str = ("H*d = E and G = H unless --head-dim/--kv-heads say otherwise; S = N + L with a "
                          "KV cache of N tokens (else --kv-seq, default L); T = tokens projected into K/V "
                          "(L with a cache, else S); S' = the keys computed: S, or with a cache of N tokens "
                          "min(N, W - 1) + L for a window, min(N, C - 1) + L for a chunk (as transformers' "
                          "caches keep them); +1 with add_bias_kv, +1 with add_zero_attn")
"""What the letters of :data:`CLOSED_FORMS` stand for."""

EFFECTIVE_FORM: str = "B*H*d*(visible (query, key) pairs)"
"""The effective closed form of QK^T and of weights x V (the projections are as dense)."""

NOT_FOR_MODULES: dict[str, str] = {
    "mask": "--mask", "impl": "--impl", "add_bias_kv": "--add-bias-kv", "add_zero_attn": "--add-zero-attn",
    "cache": "--cache", "chunk": "--chunk", "dropout": "--dropout", "need_weights": "--need-weights/--no-need-weights",
    "average_weights": "--average-weights/--per-head-weights",
}
"""Spec settings a user's module cannot take (it builds its own layer): refused when typed."""

DTYPE_ALIASES: dict[str, str] = {
    "fp32": "float32", "f32": "float32", "float": "float32",
    "bf16": "bfloat16",
    "fp16": "float16", "f16": "float16", "half": "float16",
    "fp8": "float8", "f8": "float8", "float8_e4m3fn": "float8", "float8_e5m2": "float8", "e4m3": "float8",
    "e5m2": "float8",
    "fp64": "float64", "f64": "float64", "double": "float64",
}
"""Other names of the dtypes (lower case; a ``torch.`` prefix is dropped first): every dtype flag takes
them, and the outputs show the name they stand for (``fp16`` -> ``float16``)."""


def dtype_name(text: str) -> str:
    """The name attncli shows for a dtype written any of the usual ways (``FP16``, ``bf16``,
    ``torch.float16``): the torch name (``float16``); an unknown name comes back lower-cased."""
    key = text.strip().lower().removeprefix("torch.")
    return DTYPE_ALIASES.get(key, key)


MAX_SIZE = 2**31 - 1
"""Largest size accepted from a config.json (hidden sizes and head counts are far below it; 2**64 reached torch
as a shape and overflowed)."""
