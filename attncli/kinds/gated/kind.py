"""Gated full attention: Qwen3-Next's full-attention layers (and Qwen3.5's).

A grouped-query layer whose ``q_proj`` is twice as wide: each head's 2d outputs are its query
and a gate, and the merged context is multiplied by ``sigmoid(gate)`` before ``o_proj``
(transformers' ``Qwen3NextAttention``). The queries and keys pass an RMSNorm over each head
(qk-norm: 2 x d weights). So, against :mod:`attncli.kinds.standard.kind`, ``q_proj`` costs
B*L*E*2*H*d and the parameters gain H*d*E (the gate's rows) and 2d (the norms); the gate's
multiply and sigmoid are elementwise (no matmul multiply-adds: listed, not counted). Everything
else (the stages' names, the masks, the KV cache) is the standard kind's. No torch at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attncli.kinds import base
from attncli.kinds.standard import kind as standard
from attncli.numbers import human
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.kinds.base import Counted
    from attncli.kinds.cache import CacheSpec
    from attncli.kinds.shapes import ShapesReport
    from attncli.layer.formulas import Memory
    from attncli.spec import AttnSpec

NAME = "gated"
STAGE_LABELS = {**standard.STAGE_LABELS, "q_proj": "q proj + gate (W_q)"}
SHORT_LABELS = {**standard.SHORT_LABELS, "q_proj": "q+gate"}
ABBREVIATIONS = standard.ABBREVIATIONS
TERMS = standard.TERMS + "; q_proj is 2*H*d wide: a query and a sigmoid gate per head"
KV_FORM = standard.KV_FORM
PERMUTE_SKIPPED: str | None = ("not run: attncli's permutation test runs standard attention layers; the gated layer "
                               "rotates its queries and keys by position (RoPE) inside")
SWEEP_EXPECTED = standard.SWEEP_EXPECTED
SCOPE_STAGES = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "o_proj": "out_proj"}
"""Submodule (transformers' names) -> stage, for the projections."""
relabel = base.scoped_relabel(SCOPE_STAGES, kept=("qk", "av"))  # NOTE: attention matmuls keep their data-flow stage

stages = standard.stages
effective = standard.effective
visible_pairs = standard.visible_pairs
kv_bytes_per_token = standard.kv_bytes_per_token
kv_cache_held_bytes = standard.kv_cache_held_bytes
kv_cache_bytes = standard.kv_cache_bytes
variants_note = standard.variants_note
check_representable = standard.check_representable


SWEEP_EFFECTIVE_OWN = False
"""Whether :data:`SWEEP_EXPECTED` already says how the effective counts grow under a mask."""
TP_WORDS: str | None = None
"""How ``--tp`` shards the layer, in words (None: the words every kind shares)."""
PAGED_MODELLED = True
"""Whether a paged engine's layout of this kind's cache is modelled."""


def validate(spec: AttnSpec) -> None:
    """The gated layer is Qwen3-Next's: self-attention, batch-first, run by attncli's own layer."""
    for flag, on in (("--kv-seq", spec.kv_seq is not None), ("--kdim", spec.kdim is not None),
                     ("--vdim", spec.vdim is not None), ("--add-bias-kv", spec.add_bias_kv),
                     ("--add-zero-attn", spec.add_zero_attn), ("--unbatched", spec.unbatched),
                     ("--no-batch-first", not spec.batch_first), ("--dropout", spec.dropout > 0),
                     ("--impl", spec.impl != NAME)):
        if on:
            raise SpecError(flag, "does not apply to the gated full attention of Qwen3-Next (attncli runs its own "
                                  "gated layer)")


def closed_form(spec: AttnSpec) -> dict[str, int]:
    """The standard closed form, with ``q_proj`` twice as wide: (B*L, E) @ (E, 2*H*d)."""
    out = standard.closed_form(spec)
    out["q_proj"] *= 2
    return out


def closed_form_texts(spec: AttnSpec) -> dict[str, str]:
    return {**standard.closed_form_texts(spec), "q_proj": "B*L*E*2*H*d"}


def params(spec: AttnSpec) -> dict[str, int]:
    """q_proj E x 2Hd, k_proj and v_proj E x Gd, o_proj Hd x E (biases with --bias), q_norm and k_norm d each."""
    e, hd, gd, d, b = spec.dim, spec.inner, spec.kv_inner, spec.head_dim, int(spec.bias)
    out = {"q_proj": e * 2 * hd + b * 2 * hd, "k_proj": e * gd + b * gd, "v_proj": e * gd + b * gd,
           "q_norm": d, "k_norm": d}
    if spec.out_proj:
        out["o_proj"] = hd * e + b * e
    out["total"] = sum(out.values())
    return out


def vllm_cache_spec(spec: AttnSpec, kv_cache_dtype: str, model_bytes: int, ssm_bytes: int | None,
                    tp: int) -> tuple[CacheSpec, ...]:
    """The gate is in the query projection: the cache is standard attention's (K and V per head)."""
    return standard.vllm_cache_spec(spec, kv_cache_dtype, model_bytes, ssm_bytes, tp)


def memory(spec: AttnSpec, dtype: str) -> Memory:
    """The standard layer's memory plus the gate, (B, L, H*d)."""
    from dataclasses import replace

    m = standard.memory(spec, dtype)
    return replace(m, activations={**m.activations, "gate": spec.batch * spec.seq * spec.inner * m.bytes_per_element})


def variant_specs(spec: AttnSpec) -> list[AttnSpec]:
    """One variant: the layer as the model builds it (H heads, W_O)."""
    return [spec]


def variant_label(spec: AttnSpec) -> str:
    return f"{spec.heads} heads, gated, with W_O"


def short_label(spec: AttnSpec) -> str:
    return f"{spec.heads} heads, gated"


def title_parts(spec: AttnSpec) -> list[str]:
    return ["gated (q_proj 2x, sigmoid output gate, qk-norm)"]


def conclusion(report: Counted) -> str:
    v = report.variants[0]
    gate = spec_gate_macs(report.spec)
    return (f"The output gate doubles q_proj: {human(gate)} MACs of its {human(v.fvcore_flops)} go to the gate's "
            "rows; the gate's sigmoid and multiply are elementwise (no matmul multiply-adds).")


def spec_gate_macs(spec: AttnSpec) -> int:
    """MACs of the gate's half of q_proj: B*L*E*H*d."""
    return spec.batch * spec.seq * spec.dim * spec.inner


def build_call(spec: AttnSpec, device: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    from attncli.kinds.gated import torch_layer

    return base.layer_call(torch_layer, spec, device)


def kernel_elements(spec: AttnSpec, naive: bool, dense: dict[str, int],
                    effective: dict[str, int]) -> list[tuple[str, int, int]]:
    """The standard layer's traffic, with q_proj writing (and its weight holding) twice the width."""
    rows = standard.kernel_elements(spec, naive, dense, effective)
    bl, e, hd = spec.batch * spec.seq, spec.dim, spec.inner
    extra = e * hd + (hd if spec.bias else 0) + bl * hd  # the gate's weight rows (+ bias) and its output
    return [(name, macs, n + extra if name == "q_proj" else n) for name, macs, n in rows]


def analyse_shapes(spec: AttnSpec) -> ShapesReport:
    """The standard stages plus the gate, and the gated layer's own weights and output."""
    import torch

    from attncli.kinds.gated import torch_layer as gated_torch
    from attncli.kinds.shapes import ShapesReport, Stage, module_weights
    from attncli.kinds.standard.shapes import stage_shapes

    module = gated_torch.build(spec, "meta")
    args, kwargs = gated_torch.make_args(spec, "meta")
    with torch.no_grad():
        out = module(*args, **kwargs)
    rows = []
    for st in stage_shapes(spec.with_(impl="split", attn_output_gate=False)):
        rows.append(st)
        if st.name == "q":
            rows.append(Stage("gate", st.shape, "the gate: the second half of each head's q_proj outputs"))
    weights, comps = module_weights(module)
    return ShapesReport(spec=spec, stages=tuple(rows), weights=weights, components=comps,
                        total_params=sum(w.numel for w in weights), attn_output=tuple(out.shape), attn_weights=None,
                        device="meta", notes=("merged context x sigmoid(gate), then o_proj (Qwen3NextAttention)",),
                        returns="attncli's gated layer returns", heads_term=f"H={spec.heads} (d={spec.head_dim})")


def device_spec(spec: AttnSpec, tp: int) -> AttnSpec:
    """Standard attention's split (H/N query heads, max(1, G/N) K/V heads); the gate's rows follow their heads."""
    return standard.device_spec(spec, tp)


keeps_line = base.no_keeps_line
kv_fixed_bytes = base.no_fixed_bytes
config_entries = standard.config_entries

head_counts = standard.head_counts

HF_CLASS = "config"
"""What ``--module`` does with a Hugging Face class for this kind (:data:`attncli.kinds.standard.kind.HF_CLASS`)."""
BENCH_FORMS = False
"""Whether ``attncli bench`` times the layer in each of its forms, or as asked only."""
