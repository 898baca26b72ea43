"""Multi-head latent attention (MLA): DeepSeek-V2/V3/R1, Kimi K2. Closed forms, params, KV cache.

MLA compresses keys and values into one latent of width R (``kv_lora_rank``) per token, plus a
RoPE key of width DR (``qk_rope_head_dim``) shared by every head; the cache holds only these
R + DR values per token and layer. Queries go through an optional LoRA bottleneck of rank RQ
(``q_lora_rank``). Every head's query and key have DN + DR features (DN without RoPE), its
value DV (``v_head_dim``). Per token (transformers' ``DeepseekV3Attention``, DeepSeek-V3's
``inference/model.py``):

- ``q_a_proj`` E x RQ and ``q_b_proj`` RQ x H(DN+DR), or ``q_proj`` E x H(DN+DR) without RQ;
- ``kv_a_proj`` (transformers' ``kv_a_proj_with_mqa``) E x (R + DR), new tokens only;
- ``kv_b_proj`` R x H(DN+DV): the latent expanded into per-head keys (DN) and values (DV);
- ``out_proj`` (``o_proj``) H*DV x E.

Two forms compute the same function:

- **naive** (prefill and training kernels, transformers 5): every one of the S cached latents
  is expanded through ``kv_b_proj``; QK^T over DN + DR and weights x V over DV per (query, key)
  pair and head: DN + DR + DV MACs per pair and head (DeepSeek-V3: 320 MACs, 640 FLOPs).
- **absorbed** (decode in DeepSeek's ``attn_impl="absorb"``, FlashMLA, vLLM's MLA backend):
  W_UK is folded into the query (``q_absorb``, H x DN x R per token) and W_UV into the output
  (``out_absorb``, H x R x DV per token); attention runs over the latent itself, one shared
  "head" of width R + DR (multi-query): QK^T over R + DR, weights x V over R, no ``kv_b_proj``
  (DeepSeek-V3: 1,088 MACs, 2,176 FLOPs per pair and head).

``auto`` picks absorbed for a decode step (L = 1 with a cache) and naive otherwise, as vLLM's
MLA backend does. Norms (the two RMSNorms of the bottlenecks) and RoPE have no matmul
multiply-adds; the norms' weights are parameters. Nothing here imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attncli.choices import MLA_FORMS
from attncli.kinds import base, forms
from attncli.kinds.mla.sizes import mla_sizes
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.kinds.base import Counted
    from attncli.kinds.cache import CacheSpec
    from attncli.kinds.shapes import ShapesReport
    from attncli.layer.formulas import Memory
    from attncli.spec import AttnSpec

NAME = "mla"
FORMS: tuple[str, ...] = MLA_FORMS

STAGE_LABELS: dict[str, str] = {
    "q_a_proj": "q down (W_DQ)", "q_b_proj": "q up (W_UQ)", "q_proj": "q proj (W_Q)",
    "kv_a_proj": "kv down (W_DKV)", "kv_b_proj": "kv up (W_UK,W_UV)", "q_absorb": "q absorb (W_UK)",
    "qk": "QK^T", "av": "weights x V", "out_absorb": "out absorb (W_UV)", "out_proj": "W_O",
}
"""How the tables name each MLA stage."""

SHORT_LABELS: dict[str, str] = {
    "q_a_proj": "q_a", "q_b_proj": "q_b", "q_proj": "q", "kv_a_proj": "kv_a", "kv_b_proj": "kv_b",
    "q_absorb": "q_abs", "qk": "QK^T", "av": "AV", "out_absorb": "o_abs", "out_proj": "W_O",
}

ABBREVIATIONS: dict[str, str] = SHORT_LABELS
"""The narrowest column heads (the sweep's main table)."""

CLOSED_FORMS: dict[str, str] = {
    "q_a_proj": "B*L*E*RQ", "q_b_proj": "B*L*RQ*H*(DN+DR)", "q_proj": "B*L*E*H*(DN+DR)",
    "kv_a_proj": "B*L*E*(R+DR)", "kv_b_proj": "B*S*R*H*(DN+DV)", "q_absorb": "B*L*H*DN*R",
    "out_absorb": "B*L*H*R*DV", "out_proj": "B*L*H*DV*E",
}
"""Dense MACs per stage; QK^T and weights x V depend on the form (:data:`ATTENTION_FORMS`)."""

ATTENTION_FORMS: dict[str, dict[str, str]] = {
    "naive": {"qk": "B*H*L*S*(DN+DR)", "av": "B*H*L*S*DV"},
    "absorbed": {"qk": "B*H*L*S*(R+DR)", "av": "B*H*L*S*R"},
}

TERMS = ("R = kv_lora_rank, RQ = q_lora_rank, DN = qk_nope_head_dim, DR = qk_rope_head_dim, "
         "DV = v_head_dim; S = N + L with a cache of N tokens; the naive form expands all S cached latents")
"""What the letters of the MLA closed forms stand for."""


SWEEP_EFFECTIVE_OWN = False
"""Whether :data:`SWEEP_EXPECTED` already says how the effective counts grow under a mask."""
TP_WORDS: str | None = None
"""How ``--tp`` shards the layer, in words (None: the words every kind shares)."""
PAGED_MODELLED = True
"""Whether a paged engine's layout of this kind's cache is modelled."""


REFUSED: tuple[tuple[str, str, str], ...] = (
    ("kv_heads", "--kv-heads", "MLA's keys and values come from one shared latent, not from K/V heads"),
    ("d_head", "--head-dim", "MLA's head sizes are --qk-nope-head-dim, --qk-rope-head-dim and --v-head-dim"),
    ("window", "--window", "a sliding window on MLA is not modelled"),
    ("chunk", "--chunk", "chunked attention on MLA is not modelled"),
    ("kv_seq", "--kv-seq", "MLA here is self-attention (use --cache for past tokens)"),
    ("kdim", "--kdim", "MLA here is self-attention"),
    ("vdim", "--vdim", "MLA here is self-attention"),
)
"""Spec settings MLA does not take, with the flag and why (each exits 2 when set)."""


def validate(spec: AttnSpec) -> None:
    """The MLA checks of ``AttnSpec.validate`` (:func:`validate_mla`)."""
    validate_mla(spec)


def validate_mla(spec: AttnSpec) -> None:
    """The MLA settings' checks (called by ``AttnSpec.validate``); :class:`SpecError` names the flag."""
    for name, flag in (("kv_lora_rank", "--kv-lora-rank"), ("qk_nope_head_dim", "--qk-nope-head-dim"),
                       ("qk_rope_head_dim", "--qk-rope-head-dim"), ("v_head_dim", "--v-head-dim")):
        value = getattr(spec, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpecError(flag, f"must be an integer of at least 1, got {value!r}")
    rq = spec.q_lora_rank
    if rq is not None and (isinstance(rq, bool) or not isinstance(rq, int) or rq < 0):
        raise SpecError("--q-lora-rank", f"must be an integer of at least 0 (0: no query LoRA), got {rq!r}")
    if spec.mla_form not in FORMS:
        raise SpecError("--mla-form", f"unknown form {spec.mla_form!r}; choose from {', '.join(FORMS)}")
    if spec.mla_form == "absorbed" and spec.dropout:
        raise SpecError("--dropout", "is not modelled with MLA")
    for name, flag, why in REFUSED:
        if getattr(spec, name) is not None:
            raise SpecError(flag, f"does not apply to multi-head latent attention (--kv-lora-rank): {why}")
    for flag, on, why in (("--add-bias-kv", spec.add_bias_kv, "nn.MultiheadAttention's extra key"),
                          ("--add-zero-attn", spec.add_zero_attn, "nn.MultiheadAttention's extra key"),
                          ("--unbatched", spec.unbatched, "MLA is run batched"),
                          ("--no-batch-first", not spec.batch_first, "MLA is run batch-first"),
                          ("--dropout", spec.dropout > 0, "dropout has no multiply-adds and is not modelled"),
                          ("--impl", spec.impl != spec.kind, "MLA runs attncli's own MLA layer; choose its "
                                                             "form with --mla-form")):
        if on:
            raise SpecError(flag, f"does not apply to multi-head latent attention (--kv-lora-rank): {why}")


# ---------------------------------------------------------------------------- closed forms
def stages(spec: AttnSpec) -> tuple[str, ...]:
    """The stages of ``spec``'s form, in the order they run."""
    m = mla_sizes(spec)
    q = ("q_a_proj", "q_b_proj") if m.q_lora_rank else ("q_proj",)
    if spec.form == "absorbed":
        return (*q, "kv_a_proj", "q_absorb", "qk", "av", "out_absorb", "out_proj")
    return (*q, "kv_a_proj", "kv_b_proj", "qk", "av", "out_proj")


def visible_pairs(spec: AttnSpec) -> int:
    """(query, key) pairs of one batch item and head the mask leaves (:mod:`attncli.layer.visibility`)."""
    from attncli.layer.visibility import spec_visible_pairs

    return spec_visible_pairs(spec)


def effective(spec: AttnSpec, by_stage: dict[str, int]) -> tuple[dict[str, int], tuple[str, ...]]:
    """QK^T and weights x V over the visible (query, key) pairs (:func:`attncli.layer.formulas.effective`)."""
    from attncli.layer.formulas import effective as scaled

    return scaled(by_stage, spec)


def closed_form_texts(spec: AttnSpec) -> dict[str, str]:
    """The dense closed form of every stage of ``spec``'s form, as text."""
    attn = ATTENTION_FORMS[spec.form or "naive"]
    return {st: attn.get(st, CLOSED_FORMS.get(st, "")) for st in stages(spec)}


def closed_form(spec: AttnSpec) -> dict[str, int]:
    """Dense MACs per stage of ``spec``'s form (see :data:`CLOSED_FORMS`, :data:`ATTENTION_FORMS`)."""
    m = mla_sizes(spec)
    b, q_len, s, e, h = spec.batch, spec.seq, spec.s, spec.dim, spec.heads
    r, rq, dn, dr, dv = m.kv_lora_rank, m.q_lora_rank, m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim
    out: dict[str, int] = {}
    if rq:
        out["q_a_proj"] = b * q_len * e * rq                   # (B*L, E) @ (E, RQ)
        out["q_b_proj"] = b * q_len * rq * h * (dn + dr)       # (B*L, RQ) @ (RQ, H(DN+DR))
    else:
        out["q_proj"] = b * q_len * e * h * (dn + dr)          # (B*L, E) @ (E, H(DN+DR))
    out["kv_a_proj"] = b * q_len * e * (r + dr)                # (B*L, E) @ (E, R+DR): new tokens
    if spec.form == "absorbed":
        out["q_absorb"] = b * q_len * h * dn * r               # H x (B*L, DN) @ (DN, R)
        out["qk"] = b * h * q_len * s * (r + dr)               # H x (L, R+DR) @ (R+DR, S)
        out["av"] = b * h * q_len * s * r                      # H x (L, S) @ (S, R)
        out["out_absorb"] = b * q_len * h * r * dv             # H x (B*L, R) @ (R, DV)
    else:
        out["kv_b_proj"] = b * s * r * h * (dn + dv)           # (B*S, R) @ (R, H(DN+DV)): every cached latent
        out["qk"] = b * h * q_len * s * (dn + dr)              # H x (L, DN+DR) @ (DN+DR, S)
        out["av"] = b * h * q_len * s * dv                     # H x (L, S) @ (S, DV)
    out["out_proj"] = b * q_len * h * dv * e if spec.out_proj else 0  # (B*L, H*DV) @ (H*DV, E)
    return out


def params(spec: AttnSpec) -> dict[str, int]:
    """Parameters by module as transformers' ``DeepseekV3Attention`` holds them, and ``total``.

    ``attention_bias`` (``--bias``) gives biases to ``q_a_proj``, ``kv_a_proj`` and ``o_proj``;
    ``q_proj``, ``q_b_proj`` and ``kv_b_proj`` never have one. The two RMSNorms hold RQ and R weights.
    """
    m = mla_sizes(spec)
    e, h, r, rq, dr = m.dim, m.heads, m.kv_lora_rank, m.q_lora_rank, m.qk_rope_head_dim
    bias = int(m.bias)
    out: dict[str, int] = {}
    if rq:
        out["q_a_proj"] = e * rq + bias * rq
        out["q_a_layernorm"] = rq
        out["q_b_proj"] = rq * h * m.qk_head_dim
    else:
        out["q_proj"] = e * h * m.qk_head_dim
    out["kv_a_proj"] = e * (r + dr) + bias * (r + dr)
    out["kv_a_layernorm"] = r
    out["kv_b_proj"] = r * h * (m.qk_nope_head_dim + m.v_head_dim)
    if spec.out_proj:
        out["out_proj"] = h * m.v_head_dim * e + bias * e
    out["total"] = sum(out.values())
    return out


def kv_bytes_per_token(spec: AttnSpec, bytes_per_element: int) -> int:
    """R + DR values per token, once for all heads (no K and V factor 2)."""
    return mla_sizes(spec).latent * bytes_per_element


def kv_cache_bytes(spec: AttnSpec, bytes_per_element: int) -> int:
    """The latent cache after this step: R + DR values for each of the S tokens."""
    return spec.batch * spec.s * kv_bytes_per_token(spec, bytes_per_element)


def vllm_latent_bytes(spec: AttnSpec, kv_cache_dtype: str, model_bytes: int) -> int:
    """One token's latent in vLLM (R + DR values; ``fp8_ds_mla``: R float8, a float32 scale per 128, DR
    bfloat16, ``MLAAttentionImpl.get_fp8_ds_mla_row_bytes``: 656 at R 512, DR 64)."""
    from attncli.kinds.cache import kv_element_bytes

    m = mla_sizes(spec)
    if kv_cache_dtype == "fp8_ds_mla":
        return m.kv_lora_rank + 4 * (m.kv_lora_rank // 128) + 2 * m.qk_rope_head_dim
    return m.latent * kv_element_bytes(kv_cache_dtype, model_bytes)


def vllm_cache_spec(spec: AttnSpec, kv_cache_dtype: str, model_bytes: int, ssm_bytes: int | None,
                    tp: int) -> tuple[CacheSpec, ...]:
    """vLLM's ``MLAAttentionSpec``: the latent, whole on every device."""
    from attncli.kinds.cache import MLA, CacheSpec

    return (CacheSpec(MLA, vllm_latent_bytes(spec, kv_cache_dtype, model_bytes)),)


KV_FORM = "B*S*(R+DR)"

PERMUTE_SKIPPED: str | None = ("not run: attncli's permutation test runs standard attention layers; an MLA layer "
                               "rotates its queries and keys by position (RoPE) inside, so it is not "
                               "permutation-equivariant by construction")
"""Why ``attncli report`` runs no permutation test on this kind (None: it runs one)."""

SWEEP_EXPECTED: dict[str, str] = {
    "seq": "QK^T and weights x V grow as L^2 (exponent 2), the projections as L (1), kv_b_proj too (the naive form "
           "expands the L latents); the attention matrix as L^2 (2)",
    "heads": "q_b (or q), kv_b or the absorbs, QK^T, weights x V and W_O grow as H (1); q_a and kv_a do not "
             "change (0): the latent is shared by every head",
    "dim": "q_a (or q), kv_a and W_O grow as E (1): the ranks do not change; every other stage stays (0)",
    "batch": "every stage grows as B (1)",
    "cache": "QK^T and weights x V grow with S = N + L (towards 1 once N >> L), and so does the naive form's "
             "kv_b_proj, which re-expands every cached latent; the other projections do not change (0)",
}
"""What the closed forms predict when ``attncli sweep`` sweeps each setting MLA takes."""


def memory(spec: AttnSpec, dtype: str) -> Memory:
    """The attention matrix (B, H, L, S), the main activations of ``spec``'s form and the latent cache."""
    from attncli.choices import DTYPE_BYTES
    from attncli.layer.formulas import Memory

    if dtype not in DTYPE_BYTES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_BYTES)}")
    n = DTYPE_BYTES[dtype]
    m = mla_sizes(spec)
    b, h, q_len, s = spec.batch, spec.heads, spec.seq, spec.s
    attn = b * h * q_len * s * n
    acts = {"q": b * q_len * h * m.qk_head_dim * n, "latent": b * s * m.latent * n}
    if spec.form == "absorbed":
        acts["q_latent"] = b * q_len * h * m.latent * n
        acts["context_latent"] = b * q_len * h * m.kv_lora_rank * n
    else:
        acts["k"] = b * s * h * m.qk_head_dim * n
        acts["v"] = b * s * h * m.v_head_dim * n
    acts.update(scores=attn, weights=attn, context=b * q_len * h * m.v_head_dim * n)
    if spec.out_proj:
        acts["output"] = b * q_len * spec.dim * n
    return Memory(dtype, n, attn, acts, kv_cache_bytes(spec, n))


variant_specs = forms.variant_specs  # NOTE: the form --mla-form runs (auto resolved), then the other
short_label = forms.short_label


def variant_label(spec: AttnSpec) -> str:
    return f"{spec.heads} heads, {spec.form} form"


def variants_note(spec: AttnSpec) -> str:
    return forms.other_form_note("naive: K and V expanded from every cached latent; absorbed: attention over the "
                                 "latent, W_UK and W_UV folded in")


def build_call(spec: AttnSpec, device: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    from attncli.kinds.mla import torch_layer

    return base.layer_call(torch_layer, spec, device)


SCOPE_STAGES: dict[str, str] = {
    "q_a_proj": "q_a_proj", "q_b_proj": "q_b_proj", "q_proj": "q_proj", "kv_a_proj_with_mqa": "kv_a_proj",
    "kv_b_proj": "kv_b_proj", "q_absorb": "q_absorb", "out_absorb": "out_absorb", "o_proj": "out_proj",
}
"""Submodule of attncli's MLA layer (transformers' names) -> the stage its matmuls belong to."""
relabel = base.scoped_relabel(SCOPE_STAGES, kept=("qk", "av"))  # NOTE: attention matmuls keep their data-flow stage


def _linear(tokens: int, d_in: int, d_out: int, bias: bool) -> int:
    """Elements a linear layer moves: reads (tokens, d_in) and W (d_out, d_in) (+b), writes (tokens, d_out)."""
    return tokens * d_in + d_in * d_out + (d_out if bias else 0) + tokens * d_out


def kernel_elements(spec: AttnSpec, naive: bool, dense: dict[str, int],
                    effective: dict[str, int]) -> list[tuple[str, int, int]]:
    """The roofline's kernels of ``spec``'s form. Absorbed attention reads the latent cache
    (B, S, R + DR) once for all heads; naive attention reads the expanded K and V of every head."""
    m = mla_sizes(spec)
    macs = dense if naive else effective
    b, h, q_len, s, e = spec.batch, spec.heads, spec.seq, spec.s, spec.dim
    r, rq, dn, dr, dv = m.kv_lora_rank, m.q_lora_rank, m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim
    bl = b * q_len
    out: list[tuple[str, int, int]] = []
    if rq:
        out += [("q_a_proj", macs["q_a_proj"], _linear(bl, e, rq, m.bias)),
                ("q_b_proj", macs["q_b_proj"], _linear(bl, rq, h * m.qk_head_dim, False))]
    else:
        out.append(("q_proj", macs["q_proj"], _linear(bl, e, h * m.qk_head_dim, False)))
    out.append(("kv_a_proj", macs["kv_a_proj"], _linear(bl, e, m.latent, m.bias)))
    if spec.form == "absorbed":
        q_w, k, v, ctx = h * (r + dr), b * s * m.latent, b * s * r, bl * h * r
        out.append(("q_absorb", macs["q_absorb"], bl * h * dn + h * dn * r + bl * h * r))
    else:
        q_w, k, v, ctx = h * m.qk_head_dim, b * s * h * m.qk_head_dim, b * s * h * dv, bl * h * dv
        out.append(("kv_b_proj", macs["kv_b_proj"], _linear(b * s, r, h * (dn + dv), False)))
    q, attn = bl * q_w, b * h * q_len * s
    if naive:
        out += [("qk", macs["qk"], q + k + attn), ("softmax", 0, 2 * attn), ("av", macs["av"], attn + v + ctx)]
    else:
        out.append(("attention", macs["qk"] + macs["av"], q + (k if spec.form == "absorbed" else k + v) + ctx))
    if spec.form == "absorbed":
        out.append(("out_absorb", macs["out_absorb"], ctx + h * r * dv + bl * h * dv))
    if spec.out_proj:
        out.append(("out_proj", macs["out_proj"], _linear(bl, h * dv, e, m.bias)))
    return out


def check_representable(spec: AttnSpec) -> None:
    """Refuse an attention matrix or expanded K/V torch cannot describe (2**63 bytes at float32)."""
    m, b, h = mla_sizes(spec), spec.batch, spec.heads
    base.refuse_unrepresentable((
        ("the attention matrix (B, H, L, S)", b * h * spec.seq * spec.s, "--seq"),
        ("the expanded keys (B, H, S, DN+DR)", b * h * spec.s * m.qk_head_dim, "--heads"),
        ("the q projection weight", spec.dim * h * m.qk_head_dim, "--dim"),
        ("the kv_b_proj weight (H*(DN+DV), R)", m.kv_lora_rank * h * (m.qk_nope_head_dim + m.v_head_dim),
         "--kv-lora-rank"),
        ("the kv_a_proj weight (R+DR, E)", spec.dim * (m.kv_lora_rank + m.qk_rope_head_dim), "--kv-lora-rank"),
        ("the q_b_proj weight (H*(DN+DR), RQ)", (m.q_lora_rank or 0) * h * m.qk_head_dim, "--q-lora-rank"),
        ("the output projection (E, H*DV)", spec.dim * h * m.v_head_dim, "--heads")))


def title_parts(spec: AttnSpec) -> list[str]:
    """``MLA R=512 RQ=1536 DN=128 DR=64 DV=128`` and the form, for titles."""
    m = mla_sizes(spec)
    rq = f" RQ={m.q_lora_rank}" if m.q_lora_rank else " no-q-LoRA"
    return [f"MLA R={m.kv_lora_rank}{rq} DN={m.qk_nope_head_dim} DR={m.qk_rope_head_dim} DV={m.v_head_dim}",
            forms.form_title(spec)]


def conclusion(report: Counted) -> str:
    """What the other form would cost, and what the latent cache holds per token."""
    return (f"{forms.form_sentence(report, 'as --mla-form asks', 'cache')} The latent cache holds R + DR = "
            f"{mla_sizes(report.spec).latent} values per token and layer, once for all {report.spec.heads} heads.")


def analyse_shapes(spec: AttnSpec) -> ShapesReport:
    """``attncli shapes`` of the MLA layer (:mod:`attncli.kinds.mla.shapes`)."""
    from attncli.kinds.mla.shapes import analyse

    return analyse(spec)


def device_spec(spec: AttnSpec, tp: int) -> AttnSpec:
    """H/N heads per device; the latent (and the down-projections q_a, kv_a) is whole on every device."""
    if spec.heads % tp:
        raise SpecError("--tp", f"--tp {tp} must divide the {spec.heads} query heads")
    return spec.with_(heads=spec.heads // tp, kv_heads=None)  # NOTE: no K/V heads of its own to carry over


keeps_line = base.no_keeps_line
kv_fixed_bytes = base.no_fixed_bytes
kv_cache_held_bytes = kv_cache_bytes  # NOTE: the storage held after the step is what the latent cache keeps
config_entries = base.sized_entries(mla_sizes)
head_counts = base.ungrouped_heads
HF_CLASS = "built"  # NOTE: what --module does with a Hugging Face class of this kind (Kind.HF_CLASS)
BENCH_FORMS = True  # NOTE: bench times each form: naive and absorbed, the one asked first
