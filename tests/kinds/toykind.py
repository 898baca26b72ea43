"""A small kind of layer that lives outside attncli, to check CONTRIBUTING's "A new kind of attention":
a folder's worth of kind (this module) plus one registry entry and its setting make every count work.

The toy is standard attention whose output projection is low-rank: ``o_a`` (H*d -> r, no bias) then ``o_b``
(r -> E, with the layer's bias), as LoRA-style factorised projections are built. Against the standard layer
only ``out_proj`` changes: B*L*(H*d*r + r*E) multiply-adds and H*d*r + r*E (+ E) parameters. Everything else
(the stages' names, the masks, the KV cache, the words) is the standard kind's.
"""

from __future__ import annotations

from typing import Any

from attncli.kinds.standard import kind as standard
from attncli.spec import AttnSpec, SpecError

NAME = "lowrank_o"
STAGE_LABELS = {**standard.STAGE_LABELS, "out_proj": "low-rank out proj (o_b o_a)"}
SHORT_LABELS = standard.SHORT_LABELS
ABBREVIATIONS = standard.ABBREVIATIONS
TERMS = standard.TERMS + "; r the output projection's rank"
KV_FORM = standard.KV_FORM
PERMUTE_SKIPPED: str | None = "not run: the toy kind is counted, not permuted"
SWEEP_EXPECTED = standard.SWEEP_EXPECTED
SWEEP_EFFECTIVE_OWN = False
TP_WORDS: str | None = None
PAGED_MODELLED = True
HF_CLASS = "refused"
BENCH_FORMS = False

stages = standard.stages
visible_pairs = standard.visible_pairs
effective = standard.effective
kv_bytes_per_token = standard.kv_bytes_per_token
kv_cache_bytes = standard.kv_cache_bytes
kv_cache_held_bytes = standard.kv_cache_held_bytes
kv_fixed_bytes = standard.kv_fixed_bytes
keeps_line = standard.keeps_line
vllm_cache_spec = standard.vllm_cache_spec
variants_note = standard.variants_note
check_representable = standard.check_representable
head_counts = standard.head_counts
kernel_elements = standard.kernel_elements
conclusion = standard.conclusion
memory = standard.memory
config_entries = standard.config_entries  # NOTE: o_rank stays: KIND_FIELDS keeps it for this kind alone
device_spec = standard.device_spec


def validate(spec: AttnSpec) -> None:
    rank = spec.o_rank  # type: ignore[attr-defined]
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise SpecError("--o-rank", f"must be a positive integer, got {rank!r}")
    if spec.impl != NAME:
        raise SpecError("--impl", "the toy kind runs its own layer")


def closed_form(spec: AttnSpec) -> dict[str, int]:
    out = standard.closed_form(spec)
    if spec.out_proj:
        out["out_proj"] = spec.batch * spec.seq * (spec.inner * spec.o_rank + spec.o_rank * spec.dim)  # type: ignore[attr-defined]
    return out


def closed_form_texts(spec: AttnSpec) -> dict[str, str]:
    return {**standard.closed_form_texts(spec), "out_proj": "B*L*(H*d*r + r*E)"}


def params(spec: AttnSpec) -> dict[str, int]:
    out = standard.params(spec)
    if spec.out_proj:
        r = spec.o_rank  # type: ignore[attr-defined]
        low = spec.inner * r + r * spec.dim + (spec.dim if spec.bias else 0)
        out["total"] += low - out["out_proj"]
        out["out_proj"] = low
    return out


def variant_specs(spec: AttnSpec) -> list[AttnSpec]:
    return [spec, spec.with_(out_proj=False)]


def variant_label(spec: AttnSpec) -> str:
    return f"{spec.heads} heads, {'rank ' + str(spec.o_rank) + ' W_O' if spec.out_proj else 'without W_O'}"  # type: ignore[attr-defined]


def short_label(spec: AttnSpec) -> str:
    return variant_label(spec)


def title_parts(spec: AttnSpec) -> list[str]:
    return [f"r={spec.o_rank}"]  # type: ignore[attr-defined]


def build_call(spec: AttnSpec, device: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    import torch
    from torch import nn

    class LowRankOut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            e, hd, r = spec.dim, spec.inner, spec.o_rank  # type: ignore[attr-defined]
            self.q_proj = nn.Linear(e, hd, bias=spec.bias)
            self.k_proj = nn.Linear(e, spec.kv_inner, bias=spec.bias)
            self.v_proj = nn.Linear(e, spec.kv_inner, bias=spec.bias)
            if spec.out_proj:
                self.o_a = nn.Linear(hd, r, bias=False)
                self.o_b = nn.Linear(r, e, bias=spec.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, n, _ = x.shape
            h, g, d = spec.heads, spec.n_kv_heads, spec.head_dim
            q = self.q_proj(x).view(b, n, h, d).transpose(1, 2)
            k = self.k_proj(x).view(b, n, g, d).transpose(1, 2).repeat_interleave(h // g, dim=1)
            v = self.v_proj(x).view(b, n, g, d).transpose(1, 2).repeat_interleave(h // g, dim=1)
            w = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * d ** -0.5, dim=-1)
            ctx = torch.matmul(w, v).transpose(1, 2).reshape(b, n, h * d)
            return self.o_b(self.o_a(ctx)) if spec.out_proj else ctx

    with torch.device(device):
        module = LowRankOut()
        x = torch.randn(spec.batch, spec.seq, spec.dim)
    return module, (x,), {}


SCOPES = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "o_a": "out_proj", "o_b": "out_proj"}


def relabel(scope: str, stage: str) -> str:
    if stage in ("qk", "av"):
        return stage
    return SCOPES.get(scope.rsplit(".", 1)[-1], "other") if scope else "other"


def analyse_shapes(spec: AttnSpec) -> Any:
    raise SpecError("--impl", "the toy kind has no shapes table")
