"""Gated DeltaNet (Qwen3-Next's ``linear_attention`` layers): closed forms, params, the constant state.

A Gated DeltaNet layer keeps no KV cache: it folds every token into a recurrent state of
DK x DV per value head, decayed by a gate and corrected by the delta rule, and reads it with
the query. HK query/key heads of DK features serve HV value heads of DV (HV / HK each). Per
token (transformers 5.24's ``Qwen3NextGatedDeltaNet``, its torch path):

- ``in_proj_qkvz`` E x (2*HK*DK + 2*HV*DV): q, k, v and the output gate z;
- ``in_proj_ba`` E x 2*HV: beta (the delta rule's step) and a (the decay's input);
- ``conv1d``: a depthwise causal convolution of kernel K over the 2*HK*DK + HV*DV q, k, v
  channels, K multiply-adds per output; transformers' torch ``causal_conv1d_fn`` pads K - 1 on
  both sides and keeps the first L of its L + K - 1 outputs; after a state it convolves the K
  cached inputs too (L + 2K - 1 outputs), and a decode step's ``causal_conv1d_update`` 2;
- the delta rule, per value head, in one of two forms:

  - **recurrent** (``torch_recurrent_gated_delta_rule``, a decode step): per token,
    ``delta_read`` k^T S (DK x DV MACs), ``delta_write`` the rank-1 update k delta^T (DK x DV),
    ``delta_out`` q^T S (DK x DV): 3 DK DV MACs per token and value head;
  - **chunked** (``torch_chunk_gated_delta_rule``, prefill), L padded to LP, a multiple of C:
    within each chunk ``delta_kk`` (K_beta K^T, C x C over DK) and ``delta_qk`` (Q K^T, C x C
    over DK); then per chunk ``delta_read`` (K_cumdecay S), ``delta_out`` (Q S), ``delta_av``
    (the C x C intra-chunk attention times the new values, over DV) and ``delta_write`` (K^T V_new).

- ``norm`` (``Qwen3NextRMSNormGated``): rmsnorm(out) * weight * silu(z), elementwise: no
  multiply-adds of a matmul, not a stage;
- ``out_proj`` HV*DV x E.

Also uncounted, as fvcore and FlopCounterMode leave them: the l2norm of q and k, the decays and
gates, and the chunked form's two unit-triangular solves (C(C-1)/2 multiply-adds per column,
DK + DV columns per chunk and value head: :func:`triangular_solve_macs`).

The state, in place of a KV cache (transformers' ``LinearAttentionLayer``): the recurrent state
(B, HV, DK, DV) in float32 (the torch rules compute in float32 and the cache copies it) and the
conv state, the last K conv inputs (B, 2*HK*DK + HV*DV, K) at the layer's dtype; constant in the
context length, so :func:`kv_bytes_per_token` is 0. Nothing here imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attncli.kinds import base, forms
from attncli.kinds.gdn.sizes import gdn_sizes
from attncli.numbers import human, human_bytes
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.kinds.base import Counted
    from attncli.kinds.cache import CacheSpec
    from attncli.kinds.shapes import ShapesReport
    from attncli.spec import AttnSpec

NAME = "gdn"
FORMS: tuple[str, ...] = ("auto", "recurrent", "chunked")

STATE_BYTES = 4
"""The recurrent state's bytes per element: transformers' torch rule (and fla's kernels) keep it in float32."""

STAGE_LABELS: dict[str, str] = {
    "in_proj_qkvz": "q,k,v,z proj", "in_proj_ba": "beta,a proj", "conv": "short conv",
    "delta_kk": "chunk K_beta K^T", "delta_qk": "chunk Q K^T", "delta_read": "state read (K S)",
    "delta_out": "state out (Q S)", "delta_av": "chunk attn x V_new", "delta_write": "state write (K^T V)",
    "out_proj": "W_O", "other": "other",
}
"""How the tables name each Gated DeltaNet stage."""

SHORT_LABELS: dict[str, str] = {
    "in_proj_qkvz": "qkvz", "in_proj_ba": "ba", "conv": "conv", "delta_kk": "KKc", "delta_qk": "QKc",
    "delta_read": "KS", "delta_out": "QS", "delta_av": "AVc", "delta_write": "KtV", "out_proj": "W_O",
    "other": "other",
}

ABBREVIATIONS: dict[str, str] = SHORT_LABELS
"""The narrowest column heads (the sweep's main table)."""

CONV_CHANNELS = "(2*HK*DK+HV*DV)"

CLOSED_FORMS: dict[str, str] = {
    "in_proj_qkvz": "B*L*E*(2*HK*DK+2*HV*DV)", "in_proj_ba": "B*L*E*2*HV", "out_proj": "B*L*HV*DV*E",
}
"""Dense MACs of the projections; the conv and the delta rule depend on the step (:func:`closed_form_texts`)."""

RECURRENCE_FORMS: dict[str, dict[str, str]] = {
    "recurrent": {"delta_read": "B*HV*L*DK*DV", "delta_write": "B*HV*L*DK*DV", "delta_out": "B*HV*L*DK*DV"},
    "chunked": {"delta_kk": "B*HV*LP*C*DK", "delta_qk": "B*HV*LP*C*DK", "delta_read": "B*HV*LP*DK*DV",
                "delta_out": "B*HV*LP*DK*DV", "delta_av": "B*HV*LP*C*DV", "delta_write": "B*HV*LP*DK*DV"},
}
"""The delta rule's stages in each form, in the order they run, and their dense MACs."""

TERMS = ("HK, HV = linear key and value heads, DK, DV = their head sizes, K = conv kernel, C = chunk (gdn_chunk), "
         "LP = L rounded up to a multiple of C (transformers pads); the conv computes L+K-1 outputs per channel "
         "(L+2K-1 after a state, 2 for a decode step) as transformers' torch path does; no KV cache: a constant state")
"""What the letters of the Gated DeltaNet closed forms stand for."""

KV_FORM = "state: B*HV*DK*DV*4 (float32) + B*(2*HK*DK+HV*DV)*K*bytes"

PERMUTE_SKIPPED: str | None = ("not run: a Gated DeltaNet layer is a causal recurrence (each token reads a state "
                               "written by the tokens before it, after a causal convolution), so permuting its "
                               "tokens changes every output by construction")
"""Why ``attncli report`` runs no permutation test on this kind."""

SWEEP_EXPECTED: dict[str, str] = {
    "seq": "every stage grows as L (exponent 1): no stage is quadratic; the chunked form's intra-chunk stages grow "
           "as L x C, the conv as L + K - 1",
    "batch": "every stage grows as B (1), and so does the state",
    "dim": "in_proj_qkvz, in_proj_ba and W_O grow as E (1); the conv and the delta rule stay (0)",
    "cache": "nothing grows with N (0): the state is constant in the context length; a cache only adds the K "
             "cached conv inputs to the conv and the state's read",
    "heads": "no stage changes (0): --heads sets the full-attention layers, a Gated DeltaNet layer's heads are "
             "linear_num_key_heads and linear_num_value_heads",
}
"""What the closed forms predict when ``attncli sweep`` sweeps each setting."""


SWEEP_EFFECTIVE_OWN = False
"""Whether :data:`SWEEP_EXPECTED` already says how the effective counts grow under a mask."""
TP_WORDS: str | None = None
"""How ``--tp`` shards the layer, in words (None: the words every kind shares)."""
PAGED_MODELLED = True
"""Whether a paged engine's layout of this kind's cache is modelled."""


REFUSED: tuple[tuple[str, str, str], ...] = (
    ("window", "--window", "a linear-attention layer has no window: its state holds every past token"),
    ("chunk", "--chunk", "chunked attention does not apply (the delta rule's chunk is --gdn-chunk)"),
    ("kv_seq", "--kv-seq", "Gated DeltaNet here is self-attention (use --cache for past tokens)"),
    ("kdim", "--kdim", "Gated DeltaNet here is self-attention"),
    ("vdim", "--vdim", "Gated DeltaNet here is self-attention"),
)
"""Spec settings Gated DeltaNet does not take, with the flag and why (each exits 2 when set)."""

WHY = "does not apply to Gated DeltaNet linear attention (linear_num_value_heads)"


def validate(spec: AttnSpec) -> None:
    """The Gated DeltaNet settings' checks (called by ``AttnSpec.validate``); :class:`SpecError` names the flag.

    ``--kv-heads`` and ``--head-dim`` are accepted and unused: a model's config gives them for
    its full-attention layers. Qwen3-Next's linear layers have no biases, so ``--bias`` is unused.
    """
    for name in ("linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim",
                 "linear_conv_kernel_dim", "gdn_chunk"):
        value = getattr(spec, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpecError("--" + name.replace("_", "-"), f"must be an integer of at least 1, got {value!r}")
    m = gdn_sizes(spec)
    if m.hv % m.hk:
        raise SpecError("--linear-num-value-heads", f"{m.hv} value heads must be a multiple of the {m.hk} key "
                                                    "heads (each key head serves HV / HK value heads)")
    if spec.gdn_form not in FORMS:
        raise SpecError("--gdn-form", f"unknown form {spec.gdn_form!r}; choose from {', '.join(FORMS)}")
    base.refuse_mixer_settings(spec, WHY, REFUSED, "it runs attncli's own Gated DeltaNet layer (--impl gdn); "
                                                   "choose its form with --gdn-form")


# ---------------------------------------------------------------------------- closed forms
def stages(spec: AttnSpec) -> tuple[str, ...]:
    """The stages of ``spec``'s form, in the order they run."""
    return ("in_proj_qkvz", "in_proj_ba", "conv", *RECURRENCE_FORMS[spec.form or "chunked"], "out_proj")


def visible_pairs(spec: AttnSpec) -> int:
    """Every (query, key) pair: a linear layer attends over no pairs a mask could hide, so its
    effective count is its dense count (:func:`effective`)."""
    from attncli.layer.visibility import dense_pairs

    return dense_pairs(spec)


def effective(spec: AttnSpec, by_stage: dict[str, int]) -> tuple[dict[str, int], tuple[str, ...]]:
    """Dense: a linear layer has no (query, key) pairs a mask could hide (it is causal by construction)."""
    return dict(by_stage), ()


def padded_length(spec: AttnSpec) -> int:
    """LP: L rounded up to a multiple of the chunk C, as ``torch_chunk_gated_delta_rule`` pads it."""
    c = spec.gdn_chunk
    return -(-spec.seq // c) * c


def conv_outputs(spec: AttnSpec) -> tuple[int, str]:
    """The outputs per channel transformers' torch conv computes (and the expression): L + K - 1
    without a state (``causal_conv1d_fn`` pads K - 1 on both sides); with a state, 2 for one token
    (``causal_conv1d_update`` on the K cached inputs + 1) and L + 2K - 1 for more (the K cached
    inputs prepended, then ``causal_conv1d_fn``)."""
    k, q_len = gdn_sizes(spec).kernel, spec.seq
    if not spec.cache:
        return q_len + k - 1, "(L+K-1)"
    if q_len == 1:
        return 2, "2"
    return q_len + 2 * k - 1, "(L+2K-1)"


def closed_form_texts(spec: AttnSpec) -> dict[str, str]:
    """The dense closed form of every stage of ``spec``'s form, as text."""
    texts = {**CLOSED_FORMS, "conv": f"B*{CONV_CHANNELS}*K*{conv_outputs(spec)[1]}",
             **RECURRENCE_FORMS[spec.form or "chunked"]}
    return {st: texts[st] for st in stages(spec)}


def closed_form(spec: AttnSpec) -> dict[str, int]:
    """Dense MACs per stage of ``spec``'s form (see the module docstring)."""
    m = gdn_sizes(spec)
    b, q_len, e, hv, dk, dv = spec.batch, spec.seq, spec.dim, m.hv, m.dk, m.dv
    out = {"in_proj_qkvz": b * q_len * e * m.qkvz,                  # (B*L, E) @ (E, 2HK*DK + 2HV*DV)
           "in_proj_ba": b * q_len * e * 2 * hv,                    # (B*L, E) @ (E, 2HV)
           "conv": b * m.conv_dim * m.kernel * conv_outputs(spec)[0]}  # (B, C, P, K) @ (C, K, 1)
    if spec.form == "recurrent":
        per_token = b * hv * q_len * dk * dv
        out["delta_read"] = per_token                               # L x (B, HV, 1, DK) @ (B, HV, DK, DV)
        out["delta_write"] = per_token                              # L x (B, HV, DK, 1) @ (B, HV, 1, DV)
        out["delta_out"] = per_token                                # L x (B, HV, 1, DK) @ (B, HV, DK, DV)
    else:
        lp, c = padded_length(spec), spec.gdn_chunk
        out["delta_kk"] = b * hv * lp * c * dk                      # (B, HV, n, C, DK) @ (B, HV, n, DK, C)
        out["delta_qk"] = b * hv * lp * c * dk                      # (B, HV, n, C, DK) @ (B, HV, n, DK, C)
        out["delta_read"] = b * hv * lp * dk * dv                   # n x (B, HV, C, DK) @ (B, HV, DK, DV)
        out["delta_out"] = b * hv * lp * dk * dv                    # n x (B, HV, C, DK) @ (B, HV, DK, DV)
        out["delta_av"] = b * hv * lp * c * dv                      # n x (B, HV, C, C) @ (B, HV, C, DV)
        out["delta_write"] = b * hv * lp * dk * dv                  # n x (B, HV, DK, C) @ (B, HV, C, DV)
    out["out_proj"] = b * q_len * m.value_dim * e if spec.out_proj else 0  # (B*L, HV*DV) @ (HV*DV, E)
    return out


def triangular_solve_macs(spec: AttnSpec) -> int:
    """The chunked form's two unit-lower-triangular solves (``torch.linalg.solve_triangular``),
    uncounted by fvcore and FlopCounterMode: C(C-1)/2 multiply-adds per column, DV + DK columns,
    per chunk and value head (0 in the recurrent form)."""
    if spec.form != "chunked":
        return 0
    m, c = gdn_sizes(spec), spec.gdn_chunk
    return spec.batch * m.hv * (padded_length(spec) // c) * c * (c - 1) // 2 * (m.dk + m.dv)


def params(spec: AttnSpec) -> dict[str, int]:
    """Parameters by module as transformers' ``Qwen3NextGatedDeltaNet`` holds them, and ``total``
    (no biases; ``conv1d`` is (2*HK*DK + HV*DV, 1, K); ``dt_bias`` and ``A_log`` HV each; the
    gated norm's weight DV)."""
    m = gdn_sizes(spec)
    out = {"in_proj_qkvz": m.dim * m.qkvz, "in_proj_ba": m.dim * 2 * m.hv, "conv1d": m.conv_dim * m.kernel,
           "dt_bias": m.hv, "A_log": m.hv, "norm": m.dv}
    if spec.out_proj:
        out["out_proj"] = m.value_dim * m.dim
    out["total"] = sum(out.values())
    return out


def kv_bytes_per_token(spec: AttnSpec, bytes_per_element: int) -> int:
    """0: the state does not grow with the context (a whole-model sizer adds nothing per token;
    :func:`kv_cache_bytes` is the constant state)."""
    return 0


def state_bytes(spec: AttnSpec, bytes_per_element: int) -> dict[str, int]:
    """The state transformers' cache (``LinearAttentionLayer``) keeps per layer after a step:
    ``recurrent`` (B, HV, DK, DV) in float32 and ``conv`` (B, 2*HK*DK + HV*DV, K) at the layer's dtype."""
    m = gdn_sizes(spec)
    return {"recurrent": spec.batch * m.hv * m.dk * m.dv * STATE_BYTES,
            "conv": spec.batch * m.conv_dim * m.kernel * bytes_per_element}


def kv_cache_bytes(spec: AttnSpec, bytes_per_element: int) -> int:
    """The state after this step, the same at any context length (:func:`state_bytes`)."""
    return sum(state_bytes(spec, bytes_per_element).values())


def vllm_cache_spec(spec: AttnSpec, kv_cache_dtype: str, model_bytes: int, ssm_bytes: int | None,
                    tp: int) -> tuple[CacheSpec, ...]:
    """vLLM's ``MambaSpec`` for a Gated DeltaNet layer (``MambaStateShapeCalculator.gated_delta_net_state_shape``):
    the conv state (2*HK*DK + HV*DV)/N x (K - 1) at the model's dtype (``mamba_cache_dtype`` auto) and
    the recurrent state HV/N x DV x DK at ``--mamba-ssm-cache-dtype`` (auto: the conv state's dtype,
    ``MambaStateDtypeCalculator._mamba_state_dtype``). vLLM keeps K - 1 conv columns; transformers K."""
    from attncli.kinds.cache import constant_state_spec

    m = gdn_sizes(spec)
    for what, n in (("conv channels", m.conv_dim), ("value heads", m.hv)):
        if n % tp:
            raise SpecError("--tp", f"--tp {tp} must divide the {n} {what} of a Gated DeltaNet layer")
    # NOTE: FlashInfer's GDN prefill (vLLM's default on CUDA Hopper/Blackwell) exports checkpoints every 64 tokens
    return constant_state_spec(kv_cache_dtype, m.conv_dim // tp, m.kernel, m.hv // tp * m.dv * m.dk, model_bytes,
                               ssm_bytes, checkpoint_alignment=64)


variant_specs = forms.variant_specs  # NOTE: the form --gdn-form runs (auto resolved), then the other
short_label = forms.short_label


def variant_label(spec: AttnSpec) -> str:
    return f"{gdn_sizes(spec).hv} value heads, {spec.form} form"


def variants_note(spec: AttnSpec) -> str:
    return forms.other_form_note("recurrent: one token at a time, 3 DK x DV products per token and value head; "
                                 "chunked: chunks of C tokens, L padded to a multiple of C")


def build_call(spec: AttnSpec, device: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    from attncli.kinds.gdn import torch_layer

    return base.layer_call(torch_layer, spec, device)


SCOPE_STAGES: dict[str, str] = {
    "in_proj_qkvz": "in_proj_qkvz", "in_proj_ba": "in_proj_ba", "conv1d": "conv", "out_proj": "out_proj",
    **{st: st for st in RECURRENCE_FORMS["chunked"]},
}
"""Submodule of attncli's Gated DeltaNet layer (transformers' names) -> the stage its matmuls belong to."""
relabel = base.scoped_relabel(SCOPE_STAGES)  # NOTE: every op is named by the submodule that ran it, else other


def check_representable(spec: AttnSpec) -> None:
    """Refuse tensors torch cannot describe (2**63 bytes at float32), even on the meta device."""
    m = gdn_sizes(spec)
    lp = padded_length(spec)
    base.refuse_unrepresentable((
        ("the projected q, k, v, z (B, L, 2*HK*DK + 2*HV*DV)", spec.batch * spec.seq * m.qkvz, "--seq"),
        ("the intra-chunk attention (B, HV, LP, C)", spec.batch * m.hv * lp * spec.gdn_chunk, "--gdn-chunk"),
        ("the value heads (B, HV, LP, DV)", spec.batch * m.hv * lp * max(m.dk, m.dv), "--seq"),
        ("the in_proj_qkvz weight", spec.dim * m.qkvz, "--dim")))


def title_parts(spec: AttnSpec) -> list[str]:
    """``Gated DeltaNet HK=16 HV=32 DK=128 DV=128 K=4`` and the form, for titles."""
    m = gdn_sizes(spec)
    return [f"Gated DeltaNet HK={m.hk} HV={m.hv} DK={m.dk} DV={m.dv} K={m.kernel}", forms.form_title(spec, m.chunk)]


def conclusion(report: Counted) -> str:
    """What the other form would cost, what transformers' solves add uncounted, and the state."""
    run, other = report.variants[0], report.variants[1]
    chunked = run.spec if run.form == "chunked" else other.spec
    solves = triangular_solve_macs(chunked) if chunked is not None else 0
    state = state_bytes(report.spec, run.memory.bytes_per_element)
    return (f"{forms.form_sentence(report, 'as --gdn-form asks', 'state')} The chunked form's two triangular "
            f"solves add {human(solves)} multiply-adds that neither fvcore nor FlopCounterMode counts. No KV cache: "
            "the state is "
            f"{human_bytes(state['recurrent'])} recurrent (float32) + {human_bytes(state['conv'])} conv "
            f"per layer, the same at any context length.")


def analyse_shapes(spec: AttnSpec) -> ShapesReport:
    """``attncli shapes`` of the Gated DeltaNet layer (:mod:`attncli.kinds.gdn.shapes`)."""
    from attncli.kinds.gdn.shapes import analyse

    return analyse(spec)


# NOTE: what the layer holds and moves (its memory model and roofline traffic) lives in
# attncli/kinds/gdn/traffic.py; the kind's protocol names are these.
from attncli.kinds.gdn.traffic import kernel_elements as kernel_elements  # noqa: E402
from attncli.kinds.gdn.traffic import memory as memory  # noqa: E402


def device_spec(spec: AttnSpec, tp: int) -> AttnSpec:
    """A Gated DeltaNet layer on one of ``tp`` devices: HK/N key heads and HV/N value heads (vLLM's
    GatedDeltaNet splits in_proj, the conv channels, A_log and dt_bias by heads and out_proj by rows; the
    gated norm's DV weights are whole). ``heads`` (the attention layers' query heads) is not one of its sizes."""
    m = gdn_sizes(spec)
    for what, n in (("linear_num_key_heads", m.hk), ("linear_num_value_heads", m.hv)):
        if n % tp:
            raise SpecError("--tp", f"--tp {tp} must divide the {n} {what} of a Gated DeltaNet layer")
    return spec.with_(linear_num_key_heads=m.hk // tp, linear_num_value_heads=m.hv // tp)


keeps_line = base.no_keeps_line
kv_fixed_bytes = base.no_fixed_bytes
kv_cache_held_bytes = kv_cache_bytes  # NOTE: the storage held after the step is what the state keeps
config_entries = base.sized_entries(gdn_sizes)
HF_CLASS = "counted"  # NOTE: what --module does with a Hugging Face class of this kind (Kind.HF_CLASS)
BENCH_FORMS = False  # NOTE: bench times the layer as asked


def head_counts(spec: AttnSpec) -> tuple[int, int | None]:
    """The layer's value heads (what ``--tp`` splits), no grouped K/V heads, as ``model --tp`` shows a device's."""
    return spec.linear_num_value_heads or spec.heads, None
