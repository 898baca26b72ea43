"""Mamba2 as a kind (:class:`attncli.kinds.base.Kind`): one Mamba2 layer of a hybrid model, from an
:class:`AttnSpec` whose ``mamba_num_heads`` is set. Every count is :mod:`attncli.kinds.mamba2.counts`'
(derived from transformers 5.25 ``modeling_nemotron_h.py``; cited there); the traced module is
:mod:`attncli.kinds.mamba2.torch_layer`. No torch at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attncli.kinds import base, forms
from attncli.kinds.mamba2 import counts, words
from attncli.kinds.mamba2.counts import SCAN_FORMS, STATE_BYTES, padded_length, state_bytes
from attncli.kinds.mamba2.sizes import SSM_DTYPES, mamba2_sizes
from attncli.numbers import human_bytes
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.kinds.base import Counted
    from attncli.kinds.cache import CacheSpec
    from attncli.kinds.shapes import ShapesReport
    from attncli.layer.formulas import Memory
    from attncli.spec import AttnSpec

NAME = "mamba2"
FORMS: tuple[str, ...] = ("auto", "recurrent", "chunked")
STAGE_LABELS: dict[str, str] = words.STAGE_LABELS
SHORT_LABELS: dict[str, str] = words.SHORT_LABELS
ABBREVIATIONS: dict[str, str] = SHORT_LABELS
TERMS = words.TERMS
KV_FORM = words.KV_FORM
PERMUTE_SKIPPED: str | None = ("not run: a Mamba2 layer is a causal recurrence (each token reads a state written by "
                               "the tokens before it, after a causal convolution), so permuting its tokens changes "
                               "every output by construction")
SWEEP_EXPECTED: dict[str, str] = {
    "seq": "every stage grows as L (exponent 1) but the chunk-state pass, (L/C)^2 (2, small); the intra-chunk "
           "stages grow as L x C, the conv as L + K - 1",
    "batch": "every stage grows as B (1), and so does the state",
    "dim": "in_proj and W_O grow as E (1); the conv and the scan stay (0)",
    "cache": "nothing grows with N (0): the state is constant in the context length",
    "heads": "no stage changes (0): --heads sets the attention layers, a Mamba2 layer's heads are mamba_num_heads",
}
WHY = "does not apply to a Mamba2 layer (mamba_num_heads)"
REFUSED: tuple[tuple[str, str, str], ...] = (
    ("window", "--window", "its state holds every past token"),
    ("chunk", "--chunk", "chunked attention does not apply (the scan's chunk is the config's chunk_size)"),
    ("kv_seq", "--kv-seq", "a Mamba2 layer here is a self-mixer (use --cache for past tokens)"),
    ("kdim", "--kdim", "a Mamba2 layer mixes one input"),
    ("vdim", "--vdim", "a Mamba2 layer mixes one input"),
)


SWEEP_EFFECTIVE_OWN = False
"""Whether :data:`SWEEP_EXPECTED` already says how the effective counts grow under a mask."""
TP_WORDS: str | None = None
"""How ``--tp`` shards the layer, in words (None: the words every kind shares)."""
PAGED_MODELLED = True
"""Whether a paged engine's layout of this kind's cache is modelled."""


def validate(spec: AttnSpec) -> None:
    """The Mamba2 settings' checks; :class:`SpecError` names the flag (``--config`` for the config's sizes)."""
    for name in ("mamba_num_heads", "mamba_head_dim", "ssm_state_size", "mamba_n_groups", "mamba_conv_kernel",
                 "mamba_chunk"):
        value = getattr(spec, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpecError("--config", f"{name} must be an integer of at least 1, got {value!r}")
    for name in ("mamba_proj_bias", "mamba_conv_bias"):
        if getattr(spec, name) not in (None, True, False):
            raise SpecError("--config", f"{name} must be true or false, got {getattr(spec, name)!r}")
    if spec.mamba_ssm_dtype is not None and spec.mamba_ssm_dtype not in SSM_DTYPES:
        raise SpecError("--config", f"mamba_ssm_cache_dtype must be one of {', '.join(SSM_DTYPES)}, got "
                                    f"{spec.mamba_ssm_dtype!r}")
    m = mamba2_sizes(spec)
    if m.heads % m.groups:
        raise SpecError("--config", f"mamba_num_heads {m.heads} must be a multiple of n_groups {m.groups} (each "
                                    "group's B and C serve H / G heads)")
    if spec.mamba_form not in FORMS:
        raise SpecError("--config", f"unknown Mamba2 form {spec.mamba_form!r}; choose from {', '.join(FORMS)}")
    base.refuse_mixer_settings(spec, WHY, REFUSED, "it runs attncli's own Mamba2 layer (--impl mamba2)")


def stages(spec: AttnSpec) -> tuple[str, ...]:
    return counts.stages(spec)


def closed_form(spec: AttnSpec) -> dict[str, int]:
    return counts.dense(spec)


def closed_form_texts(spec: AttnSpec) -> dict[str, str]:
    return words.closed_form_texts(spec)


def visible_pairs(spec: AttnSpec) -> int:
    """Every (query, key) pair: a Mamba2 layer has no attention matrix a mask could thin; the scan's own
    masked products are thinned in :func:`effective`."""
    from attncli.layer.visibility import dense_pairs

    return dense_pairs(spec)


def effective(spec: AttnSpec, by_stage: dict[str, int]) -> tuple[dict[str, int], tuple[str, ...]]:
    return counts.effective(spec, by_stage), ()


def params(spec: AttnSpec) -> dict[str, int]:
    return counts.params(spec)


def kv_bytes_per_token(spec: AttnSpec, bytes_per_element: int) -> int:
    """0: the state does not grow with the context."""
    return 0


def kv_cache_bytes(spec: AttnSpec, bytes_per_element: int) -> int:
    """The state after this step, the same at any context length (:func:`counts.state_bytes`)."""
    return sum(state_bytes(spec, bytes_per_element).values())


def device_spec(spec: AttnSpec, tp: int) -> AttnSpec:
    """What one of ``tp`` devices runs, as vLLM's ``MambaMixer2`` shards it: H/N heads (and their x, z, dt,
    A, D, norm and ``out_proj`` rows), and G/N groups of B and C; groups that N does not divide are
    replicated first to N (``extra_groups_for_head_shards``: only G = 1 is allowed then)."""
    m = mamba2_sizes(spec)
    if m.heads % tp:
        raise SpecError("--tp", f"--tp {tp} must divide the {m.heads} Mamba2 heads (mamba_num_heads)")
    if m.groups % tp and m.groups != 1:
        raise SpecError("--tp", f"--tp {tp} must divide the {m.groups} Mamba2 groups (n_groups), or there must be "
                                "one group (vLLM's MambaMixer2 replicates a single group)")
    groups = (m.groups + (0 if m.groups % tp == 0 else tp - m.groups)) // tp
    return spec.with_(mamba_num_heads=m.heads // tp, mamba_n_groups=groups)


def vllm_cache_spec(spec: AttnSpec, kv_cache_dtype: str, model_bytes: int, ssm_bytes: int | None,
                    tp: int) -> tuple[CacheSpec, ...]:
    """vLLM's ``MambaSpec`` for a Mamba2 layer (``MambaStateShapeCalculator.mamba2_state_shape``): the conv state
    (I + 2*G'*N)/N x (K - 1) at the model's dtype (``mamba_cache_dtype`` auto; G' the groups extended to the
    shards) and the SSM state H/N x P x N at ``--mamba-ssm-cache-dtype``; ``auto`` is the model's
    ``mamba_ssm_cache_dtype`` where vLLM reads it (``NemotronHForCausalLMConfig``), else the conv state's dtype."""
    from attncli.kinds.cache import constant_state_spec

    d = mamba2_sizes(device_spec(spec, tp))
    if ssm_bytes is None and spec.mamba_ssm_dtype is not None:
        ssm_bytes = SSM_DTYPES[spec.mamba_ssm_dtype]
    return constant_state_spec(kv_cache_dtype, d.conv_dim, d.kernel, d.heads * d.head_dim * d.state, model_bytes,
                               ssm_bytes)


def memory(spec: AttnSpec, dtype: str) -> Memory:
    """No (L, S) attention matrix: the chunked form's (C, C) scores per chunk and head (float32) stand in its
    column; the main activations; the state."""
    from attncli.choices import DTYPE_BYTES
    from attncli.layer.formulas import Memory

    if dtype not in DTYPE_BYTES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_BYTES)}")
    n = DTYPE_BYTES[dtype]
    m = mamba2_sizes(spec)
    b, q_len = spec.batch, spec.seq
    acts = {"in_proj": b * q_len * m.in_proj * n, "conv_out": b * q_len * m.conv_dim * n}
    attn = 0
    if spec.form == "chunked":
        lp = padded_length(spec)
        attn = b * m.heads * lp * m.chunk * STATE_BYTES
        acts.update(scores=attn, chunk_states=b * m.heads * (lp // m.chunk + 1) * m.head_dim * m.state * STATE_BYTES)
    acts.update(scan=b * q_len * m.inner * STATE_BYTES, gated=b * q_len * m.inner * n)
    if spec.out_proj:
        acts["output"] = b * q_len * spec.dim * n
    return Memory(dtype, n, attn, acts, kv_cache_bytes(spec, n))


def _linear(tokens: int, d_in: int, d_out: int) -> int:
    return tokens * d_in + d_in * d_out + tokens * d_out


def kernel_elements(spec: AttnSpec, naive: bool, dense: dict[str, int],
                    effective: dict[str, int]) -> list[tuple[str, int, int]]:
    """The roofline's kernels. Fused (``naive`` False, a chunked-scan kernel): one scan reads x, B, C, dt and
    the state and writes the output and the state. Naive (transformers' torch path): every product reads its
    operands and writes its result. Counts are elements."""
    m = mamba2_sizes(spec)
    b, q_len, h, p, ns = spec.batch, spec.seq, m.heads, m.head_dim, m.state
    bl, state = b * q_len, b * h * p * ns
    conv_io = b * m.conv_dim * m.kernel if spec.cache else 0
    out = [("in_proj", dense["in_proj"], _linear(bl, m.dim, m.in_proj)),
           ("conv", dense["conv"], 2 * bl * m.conv_dim + m.conv_dim * m.kernel + 2 * conv_io)]
    scan = list(SCAN_FORMS[spec.form or "chunked"])
    macs = effective if not naive else dense
    if not naive:
        io = bl * (2 * m.inner + 2 * m.groups * ns + h) + (2 if spec.cache else 1) * state
        out.append(("ssd_scan", sum(macs[st] for st in scan), io))
    elif spec.form == "recurrent":
        out.append(("ssm_out", dense["ssm_out"], b * q_len * h * (p * ns + ns + p)))
    else:
        c, rows = m.chunk, b * h * padded_length(spec)
        nc = rows // c // (b * h)
        states = b * h * (nc + 1) * p * ns
        out += [("ssd_cb", dense["ssd_cb"], 2 * rows * ns + rows * c),
                ("ssd_diag", dense["ssd_diag"], rows * c + 2 * rows * p),
                ("ssd_states", dense["ssd_states"], rows * (p + ns) + states),
                ("ssd_pass", dense["ssd_pass"], b * h * (nc + 1) ** 2 + 2 * states),
                ("ssd_out", dense["ssd_out"], rows * ns + states + rows * p)]
    out.append(("norm_gate", 0, 3 * bl * m.inner))
    if spec.out_proj:
        out.append(("out_proj", dense["out_proj"], _linear(bl, m.inner, m.dim)))
    return out


variant_specs = forms.variant_specs  # NOTE: the form it runs, then the other
short_label = forms.short_label


def variant_label(spec: AttnSpec) -> str:
    return f"{mamba2_sizes(spec).heads} Mamba2 heads, {spec.form} form"


def variants_note(spec: AttnSpec) -> str:
    return forms.other_form_note("recurrent: one token at a time, a P x N state read per token and head; "
                                 "chunked: the SSD scan in chunks of C tokens, L padded to a multiple of C")


def build_call(spec: AttnSpec, device: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    from attncli.kinds.mamba2 import torch_layer

    return base.layer_call(torch_layer, spec, device)


SCOPE_STAGES: dict[str, str] = {"in_proj": "in_proj", "conv1d": "conv", "out_proj": "out_proj",
                                **{st: st for form in SCAN_FORMS.values() for st in form}}
relabel = base.scoped_relabel(SCOPE_STAGES)  # NOTE: every op is named by the submodule that ran it, else other


def check_representable(spec: AttnSpec) -> None:
    """Refuse tensors torch cannot describe (2**63 bytes at float32), even on the meta device."""
    m = mamba2_sizes(spec)
    lp = padded_length(spec)
    base.refuse_unrepresentable((
        ("the projected z, x, B, C, dt (B, L, 2*I + 2*G*N + H)", spec.batch * spec.seq * m.in_proj, "--seq"),
        ("the chunk scores (B, H, LP, C)", spec.batch * m.heads * lp * m.chunk, "--seq"),
        ("the chunk states (B, H, n+1, P, N)", spec.batch * m.heads * (lp // m.chunk + 1) ** 2 * m.head_dim * m.state,
         "--seq"),
        ("the in_proj weight", spec.dim * m.in_proj, "--dim")))


def title_parts(spec: AttnSpec) -> list[str]:
    m = mamba2_sizes(spec)
    return [f"Mamba2 H={m.heads} P={m.head_dim} N={m.state} G={m.groups} K={m.kernel}", forms.form_title(spec, m.chunk)]


def conclusion(report: Counted) -> str:
    state = state_bytes(report.spec, report.variants[0].memory.bytes_per_element)
    return (f"{forms.form_sentence(report, 'as the config asks', 'state')} No KV cache: the state is "
            f"{human_bytes(state['ssm'])} SSM (float32) + {human_bytes(state['conv'])} conv per layer, the same at "
            "any context length.")


def analyse_shapes(spec: AttnSpec) -> ShapesReport:
    from attncli.kinds.mamba2.shapes import analyse

    return analyse(spec)


keeps_line = base.no_keeps_line
kv_fixed_bytes = base.no_fixed_bytes
kv_cache_held_bytes = kv_cache_bytes  # NOTE: the storage held after the step is what the state keeps
config_entries = base.sized_entries(mamba2_sizes)
head_counts = base.ungrouped_heads
HF_CLASS = "refused"  # NOTE: what --module does with a Hugging Face class of this kind (Kind.HF_CLASS)
BENCH_FORMS = False  # NOTE: bench times the layer as asked
